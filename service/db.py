"""The database adapter: tables, engine and sessions (SQLAlchemy 2).

SQLite in the instance folder is the embedded default; PostgreSQL is selected
by the database URL.  The schema is created by Alembic migrations
(``service/migrations``), never by ``create_all`` at run time.  Submissions,
scores, rule versions, served rule sets and the journal are append-only: the migrations add
triggers that refuse UPDATE and DELETE on them, in both databases.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime

import simplejson
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker, validates

from .domain.text import identity_key, normal


def now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timestamp that reads back with its UTC offset from every database (SQLite stores none)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return value.astimezone(UTC) if value is not None and value.tzinfo is not None else value

    def process_result_value(self, value, dialect):
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class Base(DeclarativeBase):
    pass


class Unit(Base):
    """An assessed unit: a street (街道), town (镇) or industrial park (园区).

    Its code and its name are each unique as a reader sees them (``identity_key``: whatever the
    case, the width or the spacing), by unique indexes on the keys, so two people creating the
    same unit at once cannot both succeed; the keys follow the code and name whenever they are set.
    """

    __tablename__ = "units"
    __table_args__ = (
        Index("uq_units_code_key", "code_key", unique=True),
        Index("uq_units_name_key", "name_key", unique=True),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # street | town | park
    district: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    code_key: Mapped[str] = mapped_column(String(64))
    # case folding can lengthen a name (ß → ss): room for three times its 200 characters
    name_key: Mapped[str] = mapped_column(String(600))

    @validates("code", "name")
    def _keep_keys(self, attribute: str, value: str) -> str:
        value = normal(value)
        setattr(self, f"{attribute}_key", identity_key(value))
        return value


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))  # admin | editor | reviewer | submitter | auditor
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), nullable=True)
    password_hash: Mapped[str | None] = mapped_column(String(300), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


class Token(Base):
    """An API token; only its SHA-256 is stored."""

    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


class RuleVersion(Base):
    """Every scheme version ever loaded, with its files, so old scores replay exactly."""

    __tablename__ = "rule_versions"
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    scheme_id: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(300))
    files: Mapped[dict] = mapped_column(JSON)  # relative path -> text
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


class RuleSet(Base):
    """Which scheme versions the service serves, from when: every gunicorn worker serves the
    newest row (a reload in one worker reaches the others), and an auditor can tell which rules
    were in force at any moment."""

    __tablename__ = "rule_sets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # the row it replaces (0 for the first): unique, so two workers publishing at once cannot both
    # follow the same row; the loser reads the winner's row and serves it, or follows it
    follows: Mapped[int] = mapped_column(Integer, unique=True)
    schemes: Mapped[dict] = mapped_column(
        JSON
    )  # scheme id -> {"version": hash, "folder": path under rules/}
    actor: Mapped[str] = mapped_column(String(100))  # who published it ("（启动）" for a start)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


class Submission(Base):
    """One version of a unit's facts for a scheme; never changed, only followed by a newer one."""

    __tablename__ = "submissions"
    __table_args__ = (
        UniqueConstraint("unit_id", "scheme_id", "version", name="uq_submission_version"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    scheme_id: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(20))  # self (自评) | review (评审)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    facts: Mapped[dict] = mapped_column(JSON)  # numbers kept as exact decimal strings
    evidence: Mapped[dict] = mapped_column(JSON)  # fact name -> list of references
    reason: Mapped[str] = mapped_column(Text, default="")
    reasons: Mapped[dict] = mapped_column(
        JSON, default=dict
    )  # fact name -> why this value was corrected
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


class Score(Base):
    """A computed score with everything needed to explain and replay it."""

    __tablename__ = "scores"
    __table_args__ = (
        Index("ix_scores_unit_scheme", "unit_id", "scheme_id"),
    )  # a unit's scores of a scheme
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    scheme_id: Mapped[str] = mapped_column(String(100))
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"))
    submission_version: Mapped[int] = mapped_column(Integer)
    rules_version: Mapped[str] = mapped_column(ForeignKey("rule_versions.version"))
    engine_version: Mapped[str] = mapped_column(String(100))
    total: Mapped[str] = mapped_column(Numeric(18, 6))
    grade: Mapped[str | None] = mapped_column(String(40), nullable=True)
    complete: Mapped[bool] = mapped_column(Boolean)
    trace: Mapped[dict] = mapped_column(JSON)
    computed_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


class JournalEntry(Base):
    """Append-only record of every write and every denial."""

    __tablename__ = "journal"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    actor: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(300))
    outcome: Mapped[str] = mapped_column(String(20))  # ok | denied | failed
    detail: Mapped[dict] = mapped_column(JSON)


APPEND_ONLY = ("submissions", "scores", "rule_versions", "journal", "rule_sets")


def _json_dumps(value) -> str:
    return simplejson.dumps(value, use_decimal=True, ensure_ascii=False)  # decimals stay exact


def _json_loads(text: str):
    return simplejson.loads(text, use_decimal=True)


def make_engine(url: str):
    json_options = {"json_serializer": _json_dumps, "json_deserializer": _json_loads}
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **json_options
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # pragma: no cover - trivial
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10, **json_options)


class Database:
    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.Session = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self):
        """One unit of work: committed whole, or rolled back whole."""
        session = self.Session()
        try:
            with session.begin():
                yield session
        finally:
            session.close()
