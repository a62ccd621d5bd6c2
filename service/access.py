"""Who may do what, and the journal of every write and every denial.

Roles:
    admin      administrator: everything, including units and users
    editor     policy editor: the rules (validate, reload, versions), schemes, what-if
    reviewer   reviews facts (评审) for any unit; computes scores; reads rankings
    submitter  self-assessment (自评) for their own unit only
    auditor    reads everything (traces, history, journal), writes nothing

``PERMISSIONS`` is the whole policy; ``tests/api/test_access_matrix.py`` walks
every endpoint with every role on its own and on another unit.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import bindparam, select

from .db import Database, JournalEntry, Token, Unit, User, journal_subjects
from .exceptions import Forbidden, Unauthenticated

NOT_SIGNED_IN = "需要登录（请在 Authorization 头中提供令牌）"
NOT_ALLOWED = "没有权限"

ROLES = ("admin", "editor", "reviewer", "submitter", "auditor")
ROLE_WORDS = {
    "admin": "管理员",
    "editor": "规则编辑",
    "reviewer": "评审人员",
    "submitter": "单位填报人",
    "auditor": "审计人员",
}

ALL = set(ROLES)
PERMISSIONS = {
    "schemes.read": ALL,
    "evaluate": ALL,  # what-if: computes, stores nothing
    "units.read": ALL,  # a submitter sees only their own unit
    "units.write": {"admin"},
    "submissions.read": {"admin", "reviewer", "auditor", "submitter"},  # submitter: own unit
    "submissions.write.self": {"admin", "submitter"},  # submitter: own unit
    "submissions.write.review": {"admin", "reviewer"},
    "scores.read": {"admin", "reviewer", "auditor", "submitter"},  # submitter: own unit
    "scores.write": {"admin", "reviewer", "submitter"},  # submitter: own unit
    "scores.replay": {"admin", "reviewer", "auditor"},  # writes nothing
    "ranking.read": {"admin", "reviewer", "auditor", "editor"},
    "rules.read": {"admin", "editor", "auditor"},
    "rules.validate": {"admin", "editor"},
    "rules.reload": {"admin", "editor"},
    "journal.read": {"admin", "auditor"},
}
OWN_UNIT_ONLY = {"submitter"}


@dataclass(frozen=True)
class Actor:
    user_id: int
    username: str
    role: str
    unit_id: int | None

    @property
    def label(self) -> str:
        return f"{self.username}（{ROLE_WORDS.get(self.role, self.role)}）"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(db: Database, user_id: int, label: str = "") -> str:
    token = secrets.token_urlsafe(32)
    with db.transaction() as s:
        s.add(Token(user_id=user_id, token_hash=hash_token(token), label=label))
    return token


_ACTOR_OF_TOKEN = (
    select(User.id, User.username, User.role, User.unit_id)
    .join(Token, Token.user_id == User.id)
    .where(Token.token_hash == bindparam("token_hash"), User.active.is_(True))
)


def actor_for_token(db: Database, token: str) -> Actor | None:
    # runs on every API call: one row of plain columns on a bare connection (no ORM
    # session or identity map), which is a fifth of the cost of loading a User
    with db.engine.connect() as connection:
        row = connection.execute(_ACTOR_OF_TOKEN, {"token_hash": hash_token(token)}).first()
    return Actor(*row) if row is not None else None


#: what ends a journal value cut to fit its column
CUT = "…（已截断）"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # NUL (PostgreSQL text) and lone surrogates (UTF-8)


def _fit(text: str, column, detail: dict, name: str) -> str:
    """``text`` as its journal column can keep it: characters no database stores written as escapes,
    and cut with a marker to the column's length (its full length kept in ``detail``), so a denial
    of whatever a caller sent (a 400-character URL, a NUL) is journaled, never a 500."""
    text = _UNSTORABLE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    limit = column.type.length
    if len(text) > limit:
        detail[f"{name}_length"] = len(text)
        text = text[: limit - len(CUT)] + CUT
    return text


def journal(
    session, actor: Actor | None, action: str, target: str, outcome: str, **detail
) -> JournalEntry:
    columns = JournalEntry.__table__.c
    values = {
        "actor": actor.username if actor else "（未登录）",
        "role": actor.role if actor else "",
        "action": action,
        "target": target,
        "outcome": outcome,
    }
    values = {name: _fit(text, columns[name], detail, name) for name, text in values.items()}
    unit, scheme = journal_subjects(target)
    entry = JournalEntry(detail=detail, unit=unit, scheme=scheme, **values)
    session.add(entry)
    return entry


def deny(
    db: Database,
    actor: Actor | None,
    action: str,
    target: str,
    why: str | None = None,
    unauthenticated: bool = False,
):
    """Record the denial in its own transaction (the request itself will not commit) and raise
    ``Unauthenticated`` (no valid credentials) or ``Forbidden``."""
    why = why or (NOT_SIGNED_IN if unauthenticated else NOT_ALLOWED)
    with db.transaction() as s:
        journal(s, actor, action, target, "denied", reason=why)
    if unauthenticated:
        raise Unauthenticated("unauthenticated", why)
    raise Forbidden("forbidden", why)


def check(db: Database, actor: Actor | None, permission: str, target: str) -> None:
    """Allow, or journal the denial and raise 401/403 (a unit submitter's own unit: ``check_own_unit``)."""
    if actor is None:
        deny(db, None, permission, target, unauthenticated=True)
    if actor.role not in PERMISSIONS[permission]:
        deny(
            db,
            actor,
            permission,
            target,
            f"{ROLE_WORDS.get(actor.role, actor.role)}没有“{permission}”权限",
        )


def check_own_unit(
    db: Database, actor: Actor, permission: str, target: str, unit: Unit | None
) -> None:
    """A unit submitter reaches their own unit only: any other, or one that does not exist (None),
    is the same 403, so the answer never tells which units or scores exist."""
    if actor.role in OWN_UNIT_ONLY and (unit is None or actor.unit_id != unit.id):
        deny(db, actor, permission, target, "单位填报人只能访问本单位的数据")
