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
    # who runs the migrations (owns the tables); the service's own role owns nothing (PostgreSQL)
    migration_database_url: str = ""
    secret_key: str = ""
    instance_dir: Path = PROJECT_ROOT / "instance"
    max_body_bytes: int = 1024 * 1024
    rules_check_seconds: float = 1.0


def instance_secret(instance: Path) -> str:
    """The key in ``<instance>/secret_key``, made the first time it is asked for.

    Every gunicorn worker builds its own app: a key drawn at random by each would make a form
    signed by one worker fail its CSRF check on another, and sign everyone out at a restart.
    The file is created whole (written aside, then linked into place, which fails if another
    worker got there first), readable by its owner only."""
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        aside = instance / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
        try:
            os.link(aside, path)
        except FileExistsError:
            pass  # another worker made it first: use theirs
        finally:
            os.unlink(aside)
    return path.read_text().strip()


def from_environment(env=os.environ) -> Settings:
    instance = Path(env.get("SCORING_INSTANCE_DIR", PROJECT_ROOT / "instance"))
    database_url = env.get("SCORING_DATABASE_URL", f"sqlite:///{instance / 'scoring.db'}")
    return Settings(
        rules_dir=Path(env.get("SCORING_RULES_DIR", PROJECT_ROOT / "rules")),
        engine_workers=int(env.get("SCORING_ENGINE_WORKERS", "2")),
        engine_deadline=float(env.get("SCORING_ENGINE_DEADLINE", "5")),
        # SQLite in the instance folder unless a database URL is given (postgresql+psycopg://...)
        database_url=database_url,
        # db-upgrade connects with this one (the tables' owner) and grants the service's role,
        # named by SCORING_DATABASE_URL, only what it needs: history it may add to, never rewrite
        migration_database_url=env.get("SCORING_MIGRATION_DATABASE_URL") or database_url,
        secret_key=env.get("SCORING_SECRET_KEY") or instance_secret(instance),
        instance_dir=instance,
        max_body_bytes=int(env.get("SCORING_MAX_BODY_BYTES", str(1024 * 1024))),
        # a reload in one gunicorn worker reaches the others within this many seconds
        rules_check_seconds=float(env.get("SCORING_RULES_CHECK_SECONDS", "1")),
    )
