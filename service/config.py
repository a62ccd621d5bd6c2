"""Configuration, read in one place from the environment, with safe defaults."""

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
    database_url: str = ""
    # empty: made once and kept in the database (``service_secrets``), so every host and worker
    # signs sessions and CSRF tokens with the same key without sharing a folder
    # who runs the migrations (owns the tables); the service's own role owns nothing (PostgreSQL)
    migration_database_url: str = ""
    secret_key: str = ""
    instance_dir: Path = PROJECT_ROOT / "instance"
    max_body_bytes: int = 1024 * 1024
    rules_check_seconds: float = 1.0
    # sign-in throttle: failed sign-ins counted in the database (every host sees them) per account
    # and per client address in a fixed window; at the limit, sign-ins are refused (429) before the
    # password hash is computed, until the window ends
    sign_in_window_seconds: int = 900
    sign_in_failures_per_account: int = 5
    sign_in_failures_per_address: int = 20
    # anonymous denials (401) are counted per client address in windows of this many seconds:
    # the first of a window is journaled, the rest only counted (``denial_counts``)
    denial_window_seconds: int = 60
    token_days: float = 30.0  # an API token ends this many days after it was made
    session_idle_hours: float = 8.0  # an admin session ends after this long without a request
    session_hours: float = 12.0  # and after this long in any case
    password_min_length: int = 10
    # reverse proxies (load balancers) in front of the service that append X-Forwarded-For: the
    # client address for throttling is the one the nearest trusted proxy saw; 0 behind none
    proxy_hops: int = 0
    cookie_secure: bool = False
    # evidence files (佐证材料): the largest file one upload may carry, and where the bytes live:
    # None keeps them in the database (one backup holds everything); a directory, for deployments
    # whose files outgrow the database, keeps them there named by their SHA-256
    evidence_max_bytes: int = 20 * 1024 * 1024
    evidence_dir: Path | None = None
    # background-job worker threads in each service process (service/jobs.py); 0: none here (a
    # separate `flask jobs run` does the work).  SCORING_JOB_WORKERS defaults to 1; a Settings made
    # in code (tests, tools) runs none unless it asks, so nothing runs behind a test's back
    job_workers: int = 0


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


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
        secret_key=env.get("SCORING_SECRET_KEY", ""),
        instance_dir=instance,
        max_body_bytes=int(env.get("SCORING_MAX_BODY_BYTES", str(1024 * 1024))),
        # a reload in one gunicorn worker reaches the others within this many seconds
        rules_check_seconds=float(env.get("SCORING_RULES_CHECK_SECONDS", "1")),
        sign_in_window_seconds=int(env.get("SCORING_SIGN_IN_WINDOW_SECONDS", "900")),
        sign_in_failures_per_account=int(env.get("SCORING_SIGN_IN_FAILURES_PER_ACCOUNT", "5")),
        sign_in_failures_per_address=int(env.get("SCORING_SIGN_IN_FAILURES_PER_ADDRESS", "20")),
        denial_window_seconds=int(env.get("SCORING_DENIAL_WINDOW_SECONDS", "60")),
        token_days=float(env.get("SCORING_TOKEN_DAYS", "30")),
        session_idle_hours=float(env.get("SCORING_SESSION_HOURS", "8")),
        session_hours=float(env.get("SCORING_SESSION_MAX_HOURS", "12")),
        password_min_length=int(env.get("SCORING_PASSWORD_MIN_LENGTH", "10")),
        proxy_hops=int(env.get("SCORING_PROXY_HOPS", "0")),
        cookie_secure=_flag(env.get("SCORING_COOKIE_SECURE")),
        evidence_max_bytes=int(env.get("SCORING_EVIDENCE_MAX_BYTES", str(20 * 1024 * 1024))),
        evidence_dir=Path(env["SCORING_EVIDENCE_DIR"]) if env.get("SCORING_EVIDENCE_DIR") else None,
        job_workers=int(env.get("SCORING_JOB_WORKERS", "1")),
    )
