"""Who may do what, and the journal of every write and every denial.

Roles:
    admin      administrator: everything, including units and users
    editor     policy editor: the rules (validate, reload, versions), schemes, what-if
    reviewer   reviews facts (评审) for any unit; computes scores; reads rankings
    submitter  self-assessment (自评) for their own unit only
    auditor    reads everything (traces, history, journal), writes nothing

``PERMISSIONS`` is the whole policy; ``tests/api/test_access_matrix.py`` walks
every endpoint with every role on its own and on another unit.

Also here, because they decide who gets in: API tokens (made with an expiry, listed, revoked,
never valid for a disabled user), the sign-in throttle (failed sign-ins counted per account and
per client address in the database, so every host sees the same counts, and checked before the
expensive password hash), accounts disabled and enabled, the password policy, and anonymous
refusals counted per client and window instead of journaled one row per request.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import bindparam, case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from .db import (
    AdminSession,
    Database,
    DenialCount,
    JournalEntry,
    ServiceSecret,
    SignInCounter,
    Token,
    Unit,
    User,
    journal_subjects,
    now,
)
from .domain.text import unstorable
from .exceptions import Forbidden, Invalid, NotFound, TooManyAttempts, Unauthenticated

# a locked-out user is told when to come back in the time they read on their own clock
CST = timezone(timedelta(hours=8))
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
    # evidence files: whoever enters facts for the unit (a submitter: own unit); read as submissions
    "evidence.write": {"admin", "reviewer", "submitter"},
    "scores.read": {"admin", "reviewer", "auditor", "submitter"},  # submitter: own unit
    "scores.write": {"admin", "reviewer", "submitter"},  # submitter: own unit
    "scores.replay": {"admin", "reviewer", "auditor"},  # writes nothing
    "ranking.read": {"admin", "reviewer", "auditor", "editor"},
    "rules.read": {"admin", "editor", "auditor"},
    "rules.validate": {"admin", "editor"},
    "rules.reload": {"admin", "editor"},
    # the impact of a rule change on every reviewed unit (service/impact.py): a background job
    "rules.impact": {"admin", "editor"},
    # drafts of rule versions (service/releases.py): create, edit, check, propose, withdraw; an
    # admin who is not the proposer approves or returns (four eyes); reading them is rules.read
    "rules.draft": {"admin", "editor"},
    "rules.approve": {"admin"},
    "journal.read": {"admin", "auditor"},
    "tokens.read": ALL,  # one's own tokens
    "tokens.revoke": ALL,  # one's own; an admin anyone's (OTHERS_TOKENS)
    "users.write": {"admin"},  # disable and enable accounts
    "rounds.read": ALL,  # a round's dates and stage; a submitter sees only their own unit's state
    "rounds.write": {"admin"},  # open a round, move a deadline
    "rounds.review": {"admin", "reviewer"},  # 退回, 完成评审, 重新打开评审
    "rounds.publish": {"admin"},  # 发布公示, 定稿
    # background jobs (service/jobs.py): each kind names the permission that starts it
    "jobs.read": {"admin", "reviewer", "auditor"},  # any job's progress and failures
    "jobs.cancel": {"admin"},
    "scores.recompute": {"admin", "reviewer"},  # the job: the official scores of a round, again
    "appeals.file": {"admin", "submitter"},  # 申诉: submitter, own unit
    "appeals.answer": {"admin", "reviewer"},  # 答复申诉 (维持 / 更正)
    "appeals.read": {"admin", "reviewer", "auditor", "submitter"},  # submitter: own unit
}
OWN_UNIT_ONLY = {"submitter"}
OTHERS_TOKENS = {"admin"}  # who may revoke a token that is not their own


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


DEFAULT_TOKEN_DAYS = 30.0
TOUCH_EVERY = timedelta(seconds=60)  # how stale a token's "last used" may get before it is written


def new_token(db: Database, user_id: int, label: str = "", days: float = DEFAULT_TOKEN_DAYS) -> str:
    return issue(db, user_id, label, days)[0]


def issue(db: Database, user_id: int, label: str, days: float) -> tuple[str, Token]:
    """A new token of the user (the secret, shown once, and its row): every sign-in makes its own,
    which is listed and revocable on its own; none is ever handed out twice."""
    token = secrets.token_urlsafe(32)
    made = now()
    with db.transaction() as s:
        row = Token(
            user_id=user_id,
            token_hash=hash_token(token),
            label=label,
            created_at=made,
            expires_at=made + timedelta(days=days),
        )
        s.add(row)
    return token, row


_ACTOR_OF_TOKEN = (
    select(
        User.id,
        User.username,
        User.role,
        User.unit_id,
        Token.id.label("token_id"),
        Token.last_used_at,
    )
    .join(Token, Token.user_id == User.id)
    .where(
        Token.token_hash == bindparam("token_hash"),
        Token.revoked_at.is_(None),
        Token.expires_at > bindparam("now"),
        User.active.is_(True),
        User.disabled_at.is_(None),
    )
)
_TOUCH_TOKEN = (
    update(Token).where(Token.id == bindparam("token_id")).values(last_used_at=bindparam("now"))
)


def actor_for_token(db: Database, token: str) -> Actor | None:
    # runs on every API call: one row of plain columns on a bare connection (no ORM
    # session or identity map), which is a fifth of the cost of loading a User; "last used" is
    # written at most once a minute per token, so a busy client costs no write per call
    moment = now()
    with db.engine.connect() as connection:
        row = connection.execute(
            _ACTOR_OF_TOKEN, {"token_hash": hash_token(token), "now": moment}
        ).first()
        if row is None:
            return None
        if row.last_used_at is None or moment - row.last_used_at > TOUCH_EVERY:
            connection.execute(_TOUCH_TOKEN, {"token_id": row.token_id, "now": moment})
            connection.commit()
    return Actor(*row[:4])


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


# --- anonymous refusals: counted per client and window, not journaled one row per request ------


def _upsert(session, table, values: dict, keys: list[str], changes: dict):
    """INSERT ... ON CONFLICT (keys) DO UPDATE SET changes, in the database's own dialect: one
    statement, atomic under concurrent requests from every host."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**values)
    return statement.on_conflict_do_update(index_elements=keys, set_=changes)


def _window_start(moment: datetime, seconds: int) -> datetime:
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % max(seconds, 1), UTC)


def count_anonymous(
    session, address: str, action: str, target: str, window_seconds: int, **detail
) -> bool:
    """Count an anonymous refusal of ``address`` in its window; journal it only if it is the first
    of that window (True).  So a client sending a thousand requests without a valid token adds one
    journal row and one counter row per window, not a thousand rows."""
    moment = now()
    window = _window_start(moment, window_seconds)
    table = DenialCount.__table__
    kept = _fit(target, table.c.last_target, {}, "target")  # the journal row fits its own copy
    statement = _upsert(
        session,
        table,
        {
            "address": address[:64],
            "action": action,
            "window_start": window,
            "count": 1,
            "last_target": kept,
            "last_at": moment,
        },
        ["address", "action", "window_start"],
        {"count": table.c.count + 1, "last_target": kept, "last_at": moment},
    ).returning(table.c.count)
    first = session.execute(statement).scalar_one() == 1
    if first:
        journal(
            session,
            None,
            action,
            target,
            detail.pop("outcome", "denied"),
            address=address,
            counted=f"同一地址本时段（{window_seconds}秒）内此后的同类请求只计数，不再逐条记录",
            **detail,
        )
    return first


def deny_anonymous(db: Database, address: str, target: str, window_seconds: int):
    """A request without a valid token: counted (the first of a window journaled), then 401."""
    with db.transaction() as s:
        count_anonymous(s, address, "authenticate", target, window_seconds, reason=NOT_SIGNED_IN)
    raise Unauthenticated("unauthenticated", NOT_SIGNED_IN)


# --- the sign-in throttle ----------------------------------------------------------------------


@dataclass(frozen=True)
class SignInLimits:
    window_seconds: int = 900
    per_account: int = 5
    per_address: int = 20
    denial_window_seconds: int = 60


def _keys(username: str, address: str) -> dict[str, str]:
    # a name that cannot be stored as it is (a NUL) is counted under its hash
    account = (
        username
        if not unstorable(username) and len(username) <= 150
        else ("#" + hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest())
    )
    return {"account": f"account:{account}", "address": f"address:{address[:64]}"}


_last_purge = [0.0]
PURGE_EVERY = 600  # seconds between sweeps of ended windows (per process)


def sign_in_wait(db: Database, limits: SignInLimits, username: str, address: str) -> int:
    """Seconds until the account or the address may try again (0: now).  Read before the
    password hash is computed, so a locked account costs the server one indexed read."""
    keys = _keys(username, address)
    limit = {keys["account"]: limits.per_account, keys["address"]: limits.per_address}
    moment = now()
    with db.engine.connect() as connection:
        rows = connection.execute(
            select(SignInCounter.key, SignInCounter.window_start, SignInCounter.failures).where(
                SignInCounter.key.in_(list(limit))
            )
        ).all()
    wait = 0.0
    for key, start, failures in rows:
        ends = start + timedelta(seconds=limits.window_seconds)
        if failures >= limit[key] and ends > moment:
            wait = max(wait, (ends - moment).total_seconds())
    return math.ceil(wait)


def count_failed_sign_in(db: Database, limits: SignInLimits, username: str, address: str) -> None:
    """One more failure for the account and for the address, in their current fixed windows (a
    window that has ended starts again at this failure)."""
    moment = now()
    cutoff = moment - timedelta(seconds=limits.window_seconds)
    table = SignInCounter.__table__
    ended = table.c.window_start <= cutoff
    with db.transaction() as s:
        for key in _keys(username, address).values():
            s.execute(
                _upsert(
                    s,
                    table,
                    {"key": key, "window_start": moment, "failures": 1},
                    ["key"],
                    {
                        "failures": case((ended, 1), else_=table.c.failures + 1),
                        "window_start": case((ended, moment), else_=table.c.window_start),
                    },
                )
            )
        if time.monotonic() - _last_purge[0] > PURGE_EVERY:  # ended windows: one indexed delete
            _last_purge[0] = time.monotonic()
            s.execute(delete(SignInCounter).where(SignInCounter.window_start <= cutoff))


def clear_failed_sign_ins(db: Database, username: str) -> None:
    """A successful sign-in forgets the account's failures (never the address's: one good account
    must not let an address go on guessing the passwords of others)."""
    with db.transaction() as s:
        s.execute(delete(SignInCounter).where(SignInCounter.key == _keys(username, "")["account"]))


def throttled(retry_after: int) -> TooManyAttempts:
    minutes = max(1, math.ceil(retry_after / 60))
    until = (now() + timedelta(seconds=retry_after)).astimezone(CST)
    message = (
        f"登录失败次数过多，已暂停登录。请在{minutes}分钟后（北京时间 {until:%H:%M} 以后）再试；"
        "如忘记密码，请联系管理员。"
    )
    return TooManyAttempts("too_many_sign_ins", message, retry_after=retry_after)


# --- passwords --------------------------------------------------------------------------------


def check_password_policy(password: str, min_length: int, field: str = "password") -> None:
    """A password anyone sets: at least ``min_length`` characters (SCORING_PASSWORD_MIN_LENGTH)."""
    if len(password) < min_length:
        raise Invalid(
            "weak_password",
            f"密码太短：至少需要{min_length}个字符",
            {field: [f"密码至少需要{min_length}个字符，现在只有{len(password)}个"]},
        )
    problem = unstorable(password)
    if problem:
        raise Invalid("weak_password", "密码有无法保存的字符", {field: [problem]})


# --- tokens: listed and revoked by their holders ------------------------------------------------


def list_tokens(db: Database, actor: Actor) -> list[Token]:
    """The caller's own tokens still in force, newest first (never the secret: only its hash is
    stored, and that is not shown either)."""
    check(db, actor, "tokens.read", f"user:{actor.username}")
    with db.transaction() as s:
        return list(
            s.scalars(
                select(Token)
                .where(
                    Token.user_id == actor.user_id,
                    Token.revoked_at.is_(None),
                    Token.expires_at > now(),
                )
                .order_by(Token.id.desc())
            )
        )


def revoke_token(db: Database, actor: Actor, token_id: int) -> None:
    """Revoke a token: one's own; an administrator anyone's.  Anyone else asking about a token that
    is not theirs gets 403 whether it exists or not, which tells them nothing."""
    target = f"token:{token_id}"
    check(db, actor, "tokens.revoke", target)
    with db.transaction() as s:
        token = s.get(Token, token_id, with_for_update=True)
        if actor.role not in OTHERS_TOKENS and (token is None or token.user_id != actor.user_id):
            pass  # refused below, outside this transaction
        elif token is None:
            raise NotFound("unknown_token", f"没有编号为 {token_id} 的令牌")
        else:
            owner = s.get(User, token.user_id)
            if token.revoked_at is None:
                token.revoked_at = now()
            journal(s, actor, "tokens.revoke", target, "ok", user=owner.username if owner else None)
            return
    deny(db, actor, "tokens.revoke", target, "只能撤销自己的令牌")


# --- accounts disabled and enabled -------------------------------------------------------------


def set_user_enabled(db: Database, actor: Actor, username: str, enabled: bool) -> User:
    """Disable an account (every token of theirs revoked, every admin session ended: nothing they
    held keeps working) or enable it again (which revives none of those: they sign in anew)."""
    storable = not unstorable(username)  # a NUL: nobody has that name (PostgreSQL cannot ask)
    shown = username[:200] if storable else "（无法保存的用户名）"
    target = f"user:{shown}"
    check(db, actor, "users.write", target)
    with db.transaction() as s:
        user = (
            s.scalar(select(User).where(User.username == username).with_for_update())
            if storable
            else None
        )
        if user is None:
            raise NotFound("unknown_user", f"没有用户名为 {shown} 的用户")
        if not enabled and user.id == actor.user_id:
            raise Invalid(
                "cannot_disable_self", "不能停用自己的账号", {"username": ["不能停用自己的账号"]}
            )
        moment = now()
        revoked = ended = 0
        if enabled:
            user.active, user.disabled_at = True, None
        else:
            user.active = False
            user.disabled_at = user.disabled_at or moment
            revoked = s.execute(
                update(Token)
                .where(Token.user_id == user.id, Token.revoked_at.is_(None))
                .values(revoked_at=moment)
            ).rowcount
            ended = s.execute(delete(AdminSession).where(AdminSession.user_id == user.id)).rowcount
        journal(
            s,
            actor,
            "users.enable" if enabled else "users.disable",
            target,
            "ok",
            tokens_revoked=revoked,
            sessions_ended=ended,
        )
    return user


# --- the made secret key --------------------------------------------------------------------


def stored_secret(db: Database, name: str = "secret_key") -> str:
    """The secret called ``name``, made the first time any host asks for it and kept in the
    database: two hosts starting at once both try to insert, the primary key lets one win, and
    the other reads the winner's, so every host signs with the same key."""
    for _attempt in range(3):
        with db.engine.connect() as connection:
            found = connection.execute(
                select(ServiceSecret.value).where(ServiceSecret.name == name)
            ).scalar()
        if found is not None:
            return found
        try:
            with db.transaction() as s:
                s.add(ServiceSecret(name=name, value=secrets.token_hex(32), created_at=now()))
        except IntegrityError:
            continue  # another host or worker made it first: read theirs
    raise RuntimeError(f"could not read or store the secret {name!r}")
