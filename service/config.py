"""Configuration, read in one place from the environment."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    rules_dir: Path
    engine_workers: int
    engine_deadline: float


def from_environment(env=os.environ) -> Settings:
    return Settings(
        rules_dir=Path(env.get("SCORING_RULES_DIR", PROJECT_ROOT / "rules")),
        engine_workers=int(env.get("SCORING_ENGINE_WORKERS", "2")),
        engine_deadline=float(env.get("SCORING_ENGINE_DEADLINE", "5")),
    )
