"""The database adapter: tables, engine and sessions (SQLAlchemy 2).

SQLite in the instance folder is the embedded default; PostgreSQL is selected
by the database URL.  The schema is created by Alembic migrations
(``service/migrations``), never by ``create_all`` at run time.  Submissions,
scores, rule versions, served rule sets, the journal and evidence files are append-only: the
migrations add triggers that refuse UPDATE and DELETE on them, in both databases.

Triggers stop the service, not whoever owns the tables (``DROP TRIGGER``, ``TRUNCATE``, SQLite's
``INSERT OR REPLACE``), so submissions, scores and journal entries are also one hash chain: each
row stores its place in the chain (``chain_seq``), the hash of the row before it and the hash of
its own content (``row_hash``), and ``history_head`` the place and hash of the last row.  Rows are
chained as they are flushed (``_chain_row``); ``Database.verify_history`` walks the chain and names
the first row that was changed, removed or slipped in.
"""

from __future__ import annotations

import hashlib
import heapq
import re
import sqlite3
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal

import simplejson
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    cast,
    create_engine,
    event,
    func,
    select,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker, validates

from .domain.panel import Mark
from .domain.text import identity_key, is_unit_code, normal


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


class Chained:
    """A row of the history chain (submissions, scores, journal): filled by ``_chain_row``."""

    chain_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    row_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)


class HistoryHead(Base):
    """The one row that says where the history chain ends: the last row's place and hash (so rows
    cut off the end, or a whole table emptied, are found missing).  Every writer that appends to
    the chain updates it first, which also makes concurrent writers take turns."""

    __tablename__ = "history_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    seq: Mapped[int] = mapped_column(BigInteger)  # the last row's place; 0 for an empty chain
    last_hash: Mapped[str] = mapped_column(String(64))
    last_table: Mapped[str] = mapped_column(String(20))
    last_id: Mapped[int] = mapped_column(BigInteger)


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
    # when an administrator disabled the account (None: enabled); disabling also revokes every
    # token and ends every session, so enabling again revives none of them
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Token(Base):
    """An API token; only its SHA-256 is stored.  It serves until it expires or is revoked."""

    __tablename__ = "tokens"
    __table_args__ = (Index("ix_tokens_user", "user_id"),)  # a user's tokens: listed, revoked
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # written at most once a minute per token, not on every call (see access.actor_for_token)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AdminSession(Base):
    """A signed-in session of the admin pages.  The browser holds a random id; the row is keyed by
    its SHA-256 (the table read by someone else signs nobody in).  Any host can serve any request."""

    __tablename__ = "admin_sessions"
    __table_args__ = (
        Index("ix_admin_sessions_expires", "expires_at"),
        Index("ix_admin_sessions_user", "user_id"),
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    data: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    # the earlier of the idle end and the absolute end, as of the last write: what purging reads
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SignInCounter(Base):
    """Failed sign-ins of one account or one client address in the current fixed window."""

    __tablename__ = "sign_in_counters"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)  # account:<name> | address:<ip>
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    failures: Mapped[int] = mapped_column(Integer)


class DenialCount(Base):
    """Anonymous refusals of one client address in one window: the first is journaled, the rest
    only counted here, so anonymous traffic adds at most one journal row per client and window."""

    __tablename__ = "denial_counts"
    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    action: Mapped[str] = mapped_column(String(100), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    last_target: Mapped[str] = mapped_column(String(300))
    last_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


class ServiceSecret(Base):
    """Secrets the service makes for itself once (the key that signs sessions and CSRF tokens when
    SCORING_SECRET_KEY is not set): in the database, so every host uses the same one."""

    __tablename__ = "service_secrets"
    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
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


class RuleDraft(Base):
    """A scheme version being written in the product (issue 10): its files, its state (draft ->
    proposed -> published, or withdrawn) and the last check's result.  A draft is never served and
    never scores officially; once approved, its files are archived in ``rule_versions`` and
    published as a new ``rule_sets`` row.  Mutable (not append-only): the journal is its history.
    ``lock`` is bumped by every change, so a save from a stale page is refused (409)."""

    __tablename__ = "rule_drafts"
    __table_args__ = (Index("ix_rule_drafts_state", "state", "scheme_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scheme_id: Mapped[str] = mapped_column(String(100))  # the ``id:`` of its scheme.yaml
    folder: Mapped[str] = mapped_column(
        String(300)
    )  # under the rules root ("minhang-gumeilu/2023")
    title: Mapped[str] = mapped_column(String(300))
    year: Mapped[str] = mapped_column(String(40))  # as scheme.yaml writes it ("2016-2017")
    origin: Mapped[str] = mapped_column(String(20))  # copy | upload | disk
    base_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    files: Mapped[dict] = mapped_column(JSON)  # path inside the scheme folder -> text
    state: Mapped[str] = mapped_column(String(20))  # draft | proposed | published | withdrawn
    version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    checked: Mapped[dict] = mapped_column(JSON, default=dict)  # the last check (releases.py)
    mapping: Mapped[dict] = mapped_column(JSON, default=dict)  # the impact fact mapping
    note: Mapped[str | None] = mapped_column(Text, nullable=True)  # the proposal's note
    proposed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    proposed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)  # why returned or withdrawn
    effective_year: Mapped[int | None] = mapped_column(Integer, nullable=True)
    effective_round_id: Mapped[int | None] = mapped_column(ForeignKey("rounds.id"), nullable=True)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    lock: Mapped[int] = mapped_column(Integer)

    # every UPDATE says "WHERE lock = <the value read>" and bumps it: a stale save is an error
    __mapper_args__ = {"version_id_col": lock}


class Submission(Chained, Base):
    """One version of a unit's facts for a scheme; never changed, only followed by a newer one."""

    __tablename__ = "submissions"
    __table_args__ = (
        UniqueConstraint("unit_id", "scheme_id", "version", name="uq_submission_version"),
        Index("ix_submissions_chain_seq", "chain_seq", unique=True),
        Index("ix_submissions_round", "round_id", "unit_id"),
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
    # the assessment round it was entered in (None: before rounds existed); hashed when set
    round_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Round(Base):
    """An assessment round (考核轮次): one scheme version, one year, the dates that close each stage.

    Not append-only (its stage and deadlines move on), but every change is journaled, and every
    deadline change is also a row of ``round_deadline_changes`` with its reason."""

    __tablename__ = "rounds"
    __table_args__ = (UniqueConstraint("scheme_id", "year", name="uq_rounds_scheme_year"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scheme_id: Mapped[str] = mapped_column(String(100))
    rules_version: Mapped[str] = mapped_column(ForeignKey("rule_versions.version"))
    folder: Mapped[str] = mapped_column(String(300))  # where the version was served from
    year: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    self_deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    review_deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    publication_start: Mapped[datetime] = mapped_column(UTCDateTime())
    appeal_deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    publication_end: Mapped[datetime] = mapped_column(UTCDateTime())
    stage: Mapped[str] = mapped_column(String(20))  # open | published | final
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finalized_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class DeadlineChange(Base):
    """A deadline of a round moved, by whom and why (append-only)."""

    __tablename__ = "round_deadline_changes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id"))
    deadline: Mapped[str] = mapped_column(String(40))
    old: Mapped[datetime] = mapped_column(UTCDateTime())
    new: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(Text)
    changed_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


class RoundUnit(Base):
    """A unit's place in a round: its state (``domain.cycle.STATES``), the versions of its facts the
    cycle fixed, its official score.  A unit with no row is 未填报.  ``lock`` is bumped by every
    change, so two reviewers moving the same unit at once cannot both succeed."""

    __tablename__ = "round_units"
    __table_args__ = (UniqueConstraint("round_id", "unit_id", name="uq_round_units"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    state: Mapped[str] = mapped_column(String(20))
    self_version: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the one submitted
    reviewed_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    official_score_id: Mapped[int | None] = mapped_column(ForeignKey("scores.id"), nullable=True)
    returned_reason: Mapped[str | None] = mapped_column(
        Text, nullable=True
    )  # 退回: the unit reads it
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    lock: Mapped[int] = mapped_column(Integer)

    # every UPDATE says "WHERE lock = <the value read>" and bumps it: a concurrent change is an error
    __mapper_args__ = {"version_id_col": lock}


class Draft(Base):
    """A user's unsubmitted fact form for one unit, scheme and round, kept on the server so it
    survives sign-out and another browser.  Not history: saving again replaces it, submitting
    deletes it (in the submission's transaction), and it is in no hash chain.  The values are the
    strings as typed (a draft may hold what is not yet a valid fact).  ``round_id`` 0: a draft kept
    from before rounds existed."""

    __tablename__ = "drafts"
    __table_args__ = (
        UniqueConstraint("user_id", "unit_id", "scheme_id", "round_id", name="uq_drafts_owner"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    scheme_id: Mapped[str] = mapped_column(String(100))
    values: Mapped[dict] = mapped_column(JSON)  # fact name -> the text as typed
    evidence: Mapped[dict] = mapped_column(JSON)  # fact name -> the references as typed
    reason: Mapped[str] = mapped_column(Text, default="")
    reasons: Mapped[dict] = mapped_column(JSON, default=dict)  # fact name -> why it was corrected
    base_version: Mapped[int] = mapped_column(Integer)  # the version the form was filled from
    saved_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    round_id: Mapped[int] = mapped_column(Integer, default=0)


class Score(Chained, Base):
    """A computed score with everything needed to explain and replay it."""

    __tablename__ = "scores"
    __table_args__ = (
        Index("ix_scores_unit_scheme", "unit_id", "scheme_id"),  # a unit's scores of a scheme
        Index("ix_scores_chain_seq", "chain_seq", unique=True),
        Index("ix_scores_round", "round_id", "unit_id"),
    )
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
    # the round it was computed in, and as what: official (正式, from a reviewed version, by a
    # reviewer or admin) or preview (预览, never ranked); None for scores from before rounds
    round_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    kind: Mapped[str | None] = mapped_column(String(20), nullable=True)


class PanelMark(Base):
    """One reviewer's points and reason for one clause of a unit in a round (专家评审: a clause whose
    rule declares a panel).  One row per reviewer; replaced (points, reason, ``entered_at``) while the
    unit's review is open, never afterwards; every entry and replacement is journaled with the old
    and the new value.  Points are kept as their exact decimal text (a numeric column would pad or
    round what a fact's 15 significant digits allow)."""

    __tablename__ = "panel_marks"
    __table_args__ = (
        UniqueConstraint(
            "round_id", "unit_id", "clause_id", "reviewer_id", name="uq_panel_marks_reviewer"
        ),
        Index("ix_panel_marks_unit", "round_id", "unit_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    clause_id: Mapped[str] = mapped_column(String(100))
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    points: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


def marks_of(session, round_id: int, unit_id: int) -> dict:
    """A unit's panel marks in a round, for scoring: clause id -> ``domain.panel.Mark`` in the order
    first entered, each reviewer shown by their display name."""
    rows = session.execute(
        select(PanelMark, User.display_name, User.username)
        .join(User, User.id == PanelMark.reviewer_id)
        .where(PanelMark.round_id == round_id, PanelMark.unit_id == unit_id)
        .order_by(PanelMark.id)
    )
    out: dict = {}
    for mark, display_name, username in rows:
        out.setdefault(mark.clause_id, []).append(
            Mark(display_name or username, Decimal(mark.points), mark.reason)
        )
    return out


class JournalEntry(Chained, Base):
    """Append-only record of every write, every denial and every read of a unit's data by others."""

    __tablename__ = "journal"
    __table_args__ = (
        Index("ix_journal_chain_seq", "chain_seq", unique=True),
        # the journal's filters, each newest first (keyset paging runs on id)
        Index("ix_journal_actor", "actor", "id"),
        Index("ix_journal_unit", "unit", "id"),
        Index("ix_journal_scheme", "scheme", "id"),
        Index("ix_journal_action", "action", "id"),
        Index("ix_journal_outcome", "outcome", "id"),
        Index("ix_journal_at", "at"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    actor: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(300))
    # the unit and the scheme the target names, if any, for filtering
    unit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    scheme: Mapped[str | None] = mapped_column(String(100), nullable=True)
    outcome: Mapped[str] = mapped_column(String(20))  # ok | denied | failed
    detail: Mapped[dict] = mapped_column(JSON)


class EvidenceBlob(Base):
    """The bytes of an evidence file, once per content (keyed by SHA-256): the same file uploaded
    for two facts or two units is stored once.  ``content`` is None when the bytes are kept in the
    evidence directory (SCORING_EVIDENCE_DIR) under their hash.  Append-only: evidence must not
    vanish or change under a score that relied on it."""

    __tablename__ = "evidence_blobs"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    content: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


class EvidenceFile(Base):
    """One evidence file uploaded for a unit's fact (or clause) of a scheme: who, when, its name as
    uploaded and the type its content was found to be.  One row per unit, scheme, fact, clause and
    content: uploading the same bytes again for the same place is the same file (a retried upload
    makes no duplicate).  Append-only, like the submissions that reference it (``file:<id>``)."""

    __tablename__ = "evidence_files"
    __table_args__ = (
        UniqueConstraint(
            "unit_id", "scheme_id", "fact", "clause", "sha256", name="uq_evidence_files_place"
        ),
        Index("ix_evidence_files_unit_scheme", "unit_id", "scheme_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    scheme_id: Mapped[str] = mapped_column(String(100))
    fact: Mapped[str] = mapped_column(String(100), default="")  # "" for a clause's file
    clause: Mapped[str] = mapped_column(String(100), default="")  # "" for a fact's file
    sha256: Mapped[str] = mapped_column(ForeignKey("evidence_blobs.sha256"))
    size: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(255))  # the original file name, checked
    content_type: Mapped[str] = mapped_column(String(100))  # as found in the content
    uploaded_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    # the assessment round it belongs to; no foreign key yet (rounds are being added alongside)
    round_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Appeal(Base):
    """A unit's appeal (申诉) of its published official score in a round, clause by clause
    (``AppealItem``).  Not append-only: its items receive their answers, and it is ``answered``
    once every item has one; filing and every answer are journaled.  ``lock`` is taken (bumped) by
    every answer first, so two reviewers answering the last two items at once take turns and the
    second sees the first's answer (the appeal is then answered exactly once)."""

    __tablename__ = "appeals"
    __table_args__ = (Index("ix_appeals_round_unit", "round_id", "unit_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    filed_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    filed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    state: Mapped[str] = mapped_column(String(20))  # open | answered
    # the official score the unit appealed (the one published when it filed)
    appealed_score_id: Mapped[int] = mapped_column(ForeignKey("scores.id"))
    lock: Mapped[int] = mapped_column(Integer, default=0)


class AppealItem(Base):
    """One clause of an appeal: the unit's reason and evidence, and the reviewer's answer: 维持
    (uphold) or 更正 (correct, with the new reviewed version of the facts and the new official
    score it gave), always with a reason."""

    __tablename__ = "appeal_items"
    __table_args__ = (UniqueConstraint("appeal_id", "clause_id", name="uq_appeal_items_clause"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeals.id"))
    clause_id: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict] = mapped_column(JSON)  # fact name -> list of references
    answer: Mapped[str | None] = mapped_column(String(20), nullable=True)  # uphold | correct
    answer_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    answered_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    new_submission_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    new_score_id: Mapped[int | None] = mapped_column(ForeignKey("scores.id"), nullable=True)


APPEND_ONLY = (
    "submissions",
    "scores",
    "rule_versions",
    "journal",
    "rule_sets",
    "evidence_blobs",
    "evidence_files",
    "round_deadline_changes",
)


def _json_dumps(value) -> str:
    return simplejson.dumps(value, use_decimal=True, ensure_ascii=False)  # decimals stay exact


def _json_loads(text: str):
    return simplejson.loads(text, use_decimal=True)


_SUBJECT = re.compile(r"(?:^|/)(unit|scheme)s?[:/]([^/?#\s]+)")


def journal_subjects(target: str) -> tuple[str | None, str | None]:
    """The unit code and the scheme id a journal target names ("unit:gucun/scheme:x", or a
    request line "GET /api/units/gucun/schemes/x/…"), for the journal's filters; None where it
    names none, or nothing that could be one."""
    found: dict = {}
    for kind, value in _SUBJECT.findall(target):
        found.setdefault(kind, value)
    unit, scheme = found.get("unit"), found.get("scheme")
    return (
        unit if unit is not None and is_unit_code(unit) else None,
        scheme if scheme is not None and len(scheme) <= 100 else None,
    )


# --- the history chain -------------------------------------------------------------------------

#: the columns each chained row's hash covers, fixed here: a column added to one of these tables
#: later is not covered (so old rows keep their hashes) unless it is added here with a migration
#: that chains again.  row_hash itself is the hash of these.
CHAIN_COLUMNS = {
    "submissions": (
        "id", "unit_id", "scheme_id", "version", "role", "author_id", "facts", "evidence",
        "reason", "reasons", "created_at", "chain_seq", "prev_hash",
    ),
    "scores": (
        "id", "unit_id", "scheme_id", "submission_id", "submission_version", "rules_version",
        "engine_version", "total", "grade", "complete", "trace", "computed_by", "created_at",
        "chain_seq", "prev_hash",
    ),
    "journal": (
        "id", "at", "actor", "role", "action", "target", "unit", "scheme", "outcome", "detail",
        "chain_seq", "prev_hash",
    ),
}  # fmt: skip
#: columns added later, hashed only when set: a row written before they existed (None) keeps its
#: hash, and setting or clearing one afterwards changes the hash, so either is found
CHAIN_COLUMNS_WHEN_SET = {
    "submissions": ("round_id",),
    "scores": ("round_id", "kind"),
    "journal": (),
}
CHAINED = tuple(CHAIN_COLUMNS)


def _chain_names(table: str) -> tuple:
    return CHAIN_COLUMNS[table] + CHAIN_COLUMNS_WHEN_SET[table]


GENESIS = "0" * 64  # the "previous hash" of the first row


def _canonical(column, value):
    """A column's value as the chain hashes it: the same whether it was just written or read back
    from SQLite or PostgreSQL (JSON values come here parsed, with exact decimals)."""
    if value is None:
        return None
    if isinstance(column.type, UTCDateTime):
        value = value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return value.isoformat(timespec="microseconds")
    if isinstance(column.type, Numeric):  # the databases pad or round: the column's own scale
        return format(Decimal(value).quantize(Decimal(1).scaleb(-column.type.scale)), "f")
    return value


def row_hash(table: str, values: dict) -> str:
    """SHA-256 of a chained row's content (``values``: column name -> value, JSON parsed)."""
    columns = Base.metadata.tables[table].columns
    content = {name: _canonical(columns[name], values[name]) for name in CHAIN_COLUMNS[table]}
    for name in CHAIN_COLUMNS_WHEN_SET[table]:
        if values.get(name) is not None:
            content[name] = _canonical(columns[name], values[name])
    data = simplejson.dumps(
        {"table": table, "row": content},
        sort_keys=True,
        use_decimal=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(data.encode()).hexdigest()


def _lock_head(connection, table):
    """Take the chain head for this transaction (concurrent writers wait here until it commits or
    rolls back, in both databases: a row lock on PostgreSQL, the write lock on SQLite, where this
    UPDATE is the first write and so reads the newest head) and read it; on PostgreSQL the new
    row's id comes with it (one round trip instead of two)."""
    postgres = connection.dialect.name == "postgresql"
    head = connection.execute(
        text(
            "UPDATE history_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, last_hash"
            + (", nextval(pg_get_serial_sequence(:table, 'id')) AS new_id" if postgres else "")
        ),
        {"table": table.name} if postgres else {},
    ).first()
    if head is None:
        raise RuntimeError("history_head has no row: the database is not migrated (db-upgrade)")
    return head


def _next_id(connection, table) -> int:
    """SQLite: the new row's id, chosen before the INSERT because the hash covers it (under the
    write lock): after the last row, and after any row of this flush that is not inserted yet
    (SQLAlchemy runs every before_insert of a table before its INSERTs)."""
    stored = connection.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()
    pending = connection.info.setdefault("chain_ids", {})
    new = max(stored, pending.get(table.name, 0)) + 1
    pending[table.name] = new
    return new


def _chain_row(mapper, connection, target) -> None:
    """Before a submission, score or journal entry is inserted: its defaults, id, place in the
    chain, previous hash and own hash, and the head moved on to it."""
    table = mapper.local_table
    for column in table.columns:
        key = mapper.get_property_by_column(column).key
        if getattr(target, key) is None and column.default is not None:
            default = column.default
            setattr(target, key, default.arg(None) if default.is_callable else default.arg)
    head = _lock_head(connection, table)
    if target.id is None:
        postgres = connection.dialect.name == "postgresql"
        target.id = head.new_id if postgres else _next_id(connection, table)
    target.chain_seq, target.prev_hash = head.seq, head.last_hash
    values = {}
    for name in _chain_names(table.name):
        value = getattr(target, mapper.get_property_by_column(table.c[name]).key)
        if isinstance(table.c[name].type, JSON):  # as it will read back: through the JSON text
            value = _json_loads(_json_dumps(value))
        values[name] = value
    target.row_hash = row_hash(table.name, values)
    connection.execute(
        text(
            "UPDATE history_head SET last_hash = :hash, last_table = :table, last_id = :id"
            " WHERE id = 1"
        ),
        {"hash": target.row_hash, "table": table.name, "id": target.id},
    )


for _model in (Submission, Score, JournalEntry):
    event.listen(_model, "before_insert", _chain_row)


def intact(row) -> bool:
    """Whether a chained row as loaded (ORM, JSON parsed with exact decimals) still has the content
    its hash was made of: a row rewritten in place since (or never chained) has not."""
    table = row.__table__.name
    values = {name: getattr(row, name) for name in _chain_names(table)}
    return row.row_hash is not None and row_hash(table, values) == row.row_hash


@dataclass
class ChainProblem:
    """The first row where the chain is broken."""

    table: str
    id: int | None
    seq: int | None
    kind: str  # changed | missing | inserted
    message: str  # in Chinese, for the people who read the check's result

    def as_dict(self) -> dict:
        return asdict(self)


TABLE_WORDS = {"submissions": "事实提交", "scores": "评分", "journal": "操作日志"}


def _where(table: str, row_id) -> str:
    return f"{TABLE_WORDS.get(table, table)}（{table}）第 {row_id} 号记录"


def _chained_rows(connection, table: str, upto: int, batch: int):
    """(chain_seq, table, row) of a table's chained rows up to ``upto``, in chain order, read in
    batches by key (no long transaction, no server-side cursor); JSON read as its stored text."""
    t = Base.metadata.tables[table]
    columns = [
        cast(t.c[name], Text).label(name) if isinstance(t.c[name].type, JSON) else t.c[name]
        for name in _chain_names(table)
    ] + [t.c.row_hash]
    after = 0
    while True:
        rows = connection.execute(
            select(*columns)
            .where(t.c.chain_seq > after, t.c.chain_seq <= upto)
            .order_by(t.c.chain_seq)
            .limit(batch)
        ).all()
        for row in rows:
            values = dict(row._mapping)
            for name in _chain_names(table):
                if isinstance(t.c[name].type, JSON) and values[name] is not None:
                    values[name] = _json_loads(values[name])
            yield values["chain_seq"], table, values
        if len(rows) < batch:
            return
        after = rows[-1].chain_seq


def verify_chain(connection, batch: int = 500) -> dict:
    """Walk the history chain up to its head; the number of rows checked, the head, and the first
    problem (None if there is none)."""
    head = connection.execute(
        select(HistoryHead.seq, HistoryHead.last_hash, HistoryHead.last_table, HistoryHead.last_id)
    ).first()
    result = {"rows": 0, "head_seq": head.seq if head else None, "head_hash": None, "problem": None}
    if head is None:
        result["problem"] = ChainProblem(
            "history_head", None, None, "missing", "链头记录（history_head）缺失，无法核对"
        ).as_dict()
        return result
    result["head_hash"] = head.last_hash
    expected, previous, previous_at = 1, GENESIS, None
    problem = None
    streams = [_chained_rows(connection, table, head.seq, batch) for table in CHAINED]
    for seq, table, values in heapq.merge(*streams, key=lambda item: item[0]):
        row_id = values["id"]
        if seq < expected:
            problem = ChainProblem(
                table, row_id, seq, "inserted",
                f"{_where(table, row_id)}是插入的：它在链上的位置 {seq} 已有别的记录",
            )  # fmt: skip
        elif seq > expected:
            problem = ChainProblem(
                table, row_id, seq, "missing",
                f"{_where(table, row_id)}之前缺少 {seq - expected} 条记录（链上第 {expected}"
                f" 至 {seq - 1} 条被删除）",
            )  # fmt: skip
        elif row_hash(table, values) != values["row_hash"]:
            problem = ChainProblem(
                table, row_id, seq, "changed", f"{_where(table, row_id)}的内容被改动过（哈希不符）"
            )
        elif values["prev_hash"] != previous:
            # the row before was rewritten with its own hash worked out again: it is the one changed
            at_table, at_id = previous_at if previous_at else (table, row_id)
            problem = ChainProblem(
                at_table, at_id, seq - 1, "changed",
                f"{_where(at_table, at_id)}的内容被改动过（它的哈希被重算，与下一条记录所记的不符）",
            )  # fmt: skip
        if problem is not None:
            break
        result["rows"] += 1
        expected, previous, previous_at = seq + 1, values["row_hash"], (table, row_id)
    if problem is None and expected - 1 < head.seq:
        problem = ChainProblem(
            head.last_table, head.last_id, expected, "missing",
            f"链尾缺少 {head.seq - expected + 1} 条记录（链上第 {expected} 至 {head.seq} 条被删除，"
            f"最后一条应为{_where(head.last_table, head.last_id)}）",
        )  # fmt: skip
    elif problem is None and previous != head.last_hash:
        at_table, at_id = previous_at
        problem = ChainProblem(
            at_table, at_id, head.seq, "changed",
            f"{_where(at_table, at_id)}的内容被改动过（它的哈希被重算，与链头所记的不符）",
        )  # fmt: skip
    if problem is None:  # rows that are in no place of the chain: slipped in without it
        for table in CHAINED:
            t = Base.metadata.tables[table]
            stray = connection.execute(
                select(t.c.id).where(t.c.chain_seq.is_(None)).order_by(t.c.id).limit(1)
            ).scalar()
            if stray is not None:
                problem = ChainProblem(
                    table, stray, None, "inserted", f"{_where(table, stray)}是插入的：它不在链上"
                )
                break
    result["problem"] = problem.as_dict() if problem else None
    return result


def make_engine(url: str):
    json_options = {"json_serializer": _json_dumps, "json_deserializer": _json_loads}
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **json_options
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # pragma: no cover - trivial
            cursor = dbapi_connection.cursor()
            # readers do not block the writer. The mode lasts in the file, and switching needs an
            # exclusive lock that SQLite's busy wait does not cover: hosts starting at once each
            # trying it failed with "database is locked". One of them switches; a connection that
            # cannot works in the file's current mode, correctly, and a later one switches
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                try:
                    cursor.execute("PRAGMA journal_mode=WAL")
                except sqlite3.OperationalError:
                    pass
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

    def verify_history(self, batch: int = 500) -> dict:
        """Walk the history chain (see ``verify_chain``) in one read-only snapshot where the database
        gives one (PostgreSQL: REPEATABLE READ, so rows appended meanwhile do not show)."""
        engine = self.engine
        if engine.dialect.name == "postgresql":
            engine = engine.execution_options(isolation_level="REPEATABLE READ")
        with engine.connect() as connection, connection.begin():
            return verify_chain(connection, batch)

    @contextmanager
    def transaction(self):
        """One unit of work: committed whole, or rolled back whole."""
        session = self.Session()
        try:
            with session.begin():
                yield session
        finally:
            session.close()


# --- background jobs (service/jobs.py) ----------------------------------------------------------


class Job(Base):
    """A background job: a bulk action (recompute every unit's score, replay a round…) that runs
    item by item on whichever host claims it.  All of its state is here, so any host shows its
    progress and a host that dies mid-job leaves it to another: the one running it holds a lease
    (``lease_owner`` until ``lease_until``) that it renews as it goes; a lease that ran out is
    claimed again and the job resumes at its first item not yet done.  Not history (it is updated
    as it runs); every start, cancel and end is in the journal."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state", "state", "id"),)  # the queue: claimable jobs first
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(50))
    params: Mapped[dict] = mapped_column(JSON)
    target: Mapped[str] = mapped_column(String(300))  # what the journal names ("scheme:…")
    state: Mapped[str] = mapped_column(String(20))  # queued | running | done | failed | cancelled
    total: Mapped[int] = mapped_column(Integer)
    # as of the last heartbeat (the items themselves are counted when a job is read)
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    claims: Mapped[int] = mapped_column(Integer, default=0)  # how many times a worker took it
    cancelled_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    result: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # the summary at its end
    error: Mapped[str | None] = mapped_column(Text, nullable=True)  # why it failed, in Chinese


class JobItem(Base):
    """One item of a job (a unit, a score): pending until done or failed.  An item is marked done
    in the same transaction as its own write, and only while its job's lease is held, so an item
    is never done twice, not even by two hosts that both think they hold the job."""

    __tablename__ = "job_items"
    __table_args__ = (
        UniqueConstraint("job_id", "key", name="uq_job_items_key"),
        Index("ix_job_items_state", "job_id", "state", "seq"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    seq: Mapped[int] = mapped_column(Integer)  # the order the items run in
    key: Mapped[str] = mapped_column(String(200))  # what the kind runs it by (a unit code)
    label: Mapped[str] = mapped_column(String(300))  # what the pages show (a unit's name)
    state: Mapped[str] = mapped_column(String(20))  # pending | done | failed
    result: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)  # why it failed, in Chinese
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
