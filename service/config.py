"""Configuration, read in one place from the environment, with safe defaults."""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    rules_dir: Path
    engine_workers: int
    engine_deadline: float
    database_url: str = ""
    secret_key: str = ""
    instance_dir: Path = PROJECT_ROOT / "instance"
    max_body_bytes: int = 1024 * 1024


def from_environment(env=os.environ) -> Settings:
    instance = Path(env.get("SCORING_INSTANCE_DIR", PROJECT_ROOT / "instance"))
    return Settings(
        rules_dir=Path(env.get("SCORING_RULES_DIR", PROJECT_ROOT / "rules")),
        engine_workers=int(env.get("SCORING_ENGINE_WORKERS", "2")),
        engine_deadline=float(env.get("SCORING_ENGINE_DEADLINE", "5")),
        # SQLite in the instance folder unless a database URL is given (postgresql+psycopg://...)
        database_url=env.get("SCORING_DATABASE_URL", f"sqlite:///{instance / 'scoring.db'}"),
        # without a configured key, a random one per start: sessions do not outlive a restart
        secret_key=env.get("SCORING_SECRET_KEY") or secrets.token_hex(32),
        instance_dir=instance,
        max_body_bytes=int(env.get("SCORING_MAX_BODY_BYTES", str(1024 * 1024))),
    )
