"""The service layer: what the API (and later the admin page) can do.

Each function takes plain values and the application's ``Context`` and does
one unit of work: checks access, calls the scoring core, and writes in one
transaction (with its journal entry), or raises one of ``service.exceptions``
(no HTTP here: the API and the admin pages map them to what their callers see).
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from werkzeug.security import check_password_hash, generate_password_hash

from . import build
from .access import (
    OWN_UNIT_ONLY,
    PERMISSIONS,
    Actor,
    SignInLimits,
    check,
    check_own_unit,
    clear_failed_sign_ins,
    count_anonymous,
    count_failed_sign_in,
    issue,
    journal,
    sign_in_wait,
    throttled,
)
from .casebook import CaseResult, FailingCases, RuleCheck, check_rules
from .db import (
    Database,
    Draft,
    EvidenceFile,
    JournalEntry,
    Round,
    RoundUnit,
    RuleDraft,
    RuleSet,
    RuleVersion,
    Score,
    Submission,
    Unit,
    User,
    intact,
    marks_of,
)
from .domain.cycle import ROUND_STAGES
from .domain.facts import MAX_TEXT, InvalidFacts, validate_facts
from .domain.grading import rank_units
from .domain.model import Scheme
from .domain.panel import MARKS_PUBLIC
from .domain.scoring import GradeVetoResult, ScoreResult, pending_grade_vetoes, score_units
from .domain.text import (
    EVIDENCE_CHARS_MAX,
    EVIDENCE_ITEMS_MAX,
    FACT_REASON_CHARS_MAX,
    REASON_CHARS_MAX,
    is_unit_code,
    unstorable,
)
from .domain.trace import to_data
from .engine.pool import EngineUnavailable
from .exceptions import (
    Conflict,
    Inconsistent,
    Invalid,
    NotFound,
    PreconditionRequired,
    ServiceError,
    Unauthenticated,
    Unavailable,
)
from .registry import Registry
from .roundstate import (
    advance,
    allowed,
    carried_over,
    describe,
    latest_round_of,
    no_round,
    open_round_of,
    place_of,
)
from .rulefiles import RuleSetError, contained
from .rulefiles.loader import load_all, load_files, path_problems, shown_name

log = logging.getLogger(__name__)


@dataclass
class Context:
    db: Database
    registry: Registry
    engine: object  # a Matcher: the contained durable-rules pool
    pause_in_submit: float = 0.0  # tests only: seconds to wait inside the submission transaction
    rules_check_seconds: float = (
        1.0  # how often a worker looks for a rule set another one published
    )
    rules_checked_at: float = float("-inf")
    sign_in: SignInLimits = SignInLimits()  # the sign-in throttle (SCORING_SIGN_IN_*)
    token_days: float = 30.0  # SCORING_TOKEN_DAYS


# --- rule versions -------------------------------------------------------------------


def _archive(s, scheme: Scheme) -> None:
    """Store a scheme version's files, unless they are stored already: the very texts the version
    hashes, not the files as they are on disk now."""
    if s.get(RuleVersion, scheme.version) is None:
        s.add(
            RuleVersion(
                version=scheme.version,
                scheme_id=scheme.id,
                title=scheme.title,
                files=dict(scheme.texts),
            )
        )
        s.flush()


def persist_versions(ctx: Context) -> None:
    """Store every served scheme version's files, so scores made under it replay later.

    Every gunicorn worker runs this as it starts: a version that another worker
    stored a moment earlier is not an error (it used to fail that worker's boot,
    which stops the whole server)."""
    for scheme in ctx.registry.schemes().values():
        try:
            with ctx.db.transaction() as s:
                _archive(s, scheme)
        except IntegrityError:
            pass  # stored meanwhile by another worker: the same version is the same files


def scheme_by_version(ctx: Context, version: str, folder: str = "scheme") -> Scheme:
    """A scheme version, served or stored; ``folder``: where under the rules root it was served from
    (the trace names each clause's file by that path, so a replay must load it there too)."""
    scheme = ctx.registry.by_version(version)
    if scheme is not None:
        return scheme
    with ctx.db.transaction() as s:
        row = s.get(RuleVersion, version) if re.fullmatch(r"[0-9a-f]{64}", version) else None
        if row is None:
            raise NotFound("unknown_rules_version", f"没有版本为 {version[:16]} 的规则")
        files = dict(row.files)
        # a version written in the pages (service/releases.py) is text a user typed: loaded in a
        # child process, as its check was, never in this worker
        typed = s.scalar(select(RuleDraft.id).where(RuleDraft.version == version).limit(1))
    if typed is not None:
        inside = folder or "scheme"
        loaded = contained.load_tree({f"{inside}/{rel}": t for rel, t in files.items()}, inside)
        scheme = next(iter(loaded.values()))
    else:
        scheme = load_files(files, folder)
    if scheme.version != version:  # pragma: no cover - the hash covers exactly these files
        raise Inconsistent("rules_version_mismatch", "存档的规则文件与版本号不符")
    ctx.registry.remember(scheme)
    return scheme


# --- the rule set every worker serves ------------------------------------------------------
#
# Each gunicorn worker has its own registry.  The rule set in force is the newest row of
# rule_sets: a start or a reload that serves something new publishes a row, and every worker
# looks for a newer row at most every ``rules_check_seconds`` (before a request) and then
# serves exactly those versions, from its own memory or from the archive (rule_versions), never
# from the rules directory, which may have moved on meanwhile.


def folder_of(scheme: Scheme) -> str:
    """The scheme's folder under the rules root, as its files are named in traces."""
    first = scheme.files[0] if scheme.files else ""
    return first.rsplit("/", 1)[0] if "/" in first else ""


def _latest_rule_set(connection):
    return connection.execute(
        select(RuleSet.id, RuleSet.schemes).order_by(RuleSet.id.desc()).limit(1)
    ).first()


def _version_map(schemes: dict) -> dict:
    return {sid: entry["version"] for sid, entry in schemes.items()}


#: who publishes the rules directory a worker loads as it starts, in the journal
STARTUP = Actor(0, "（启动）", "system", None)


def publish_rules(ctx: Context, actor: Actor | None = None) -> int:
    """Make what this worker serves the rule set in force (its versions archived first); the id of
    the row, a new one only if the newest row serves something else.  ``actor``: who reloaded the
    rules; None for a worker's start."""
    by = actor if actor is not None else STARTUP
    persist_versions(ctx)
    served = {
        sid: {"version": sc.version, "folder": folder_of(sc)}
        for sid, sc in ctx.registry.schemes().items()
    }
    for _attempt in range(20):
        try:
            with ctx.db.transaction() as s:
                latest = _latest_rule_set(s)
                if latest is not None and _version_map(latest.schemes) == _version_map(served):
                    generation = latest.id
                    break
                generation = _next_rule_set(s, by, latest, served, _changes(latest, served))
                break
        except (IntegrityError, OperationalError) as err:
            # another worker published meanwhile (PostgreSQL: the unique "follows"; SQLite: that,
            # or a read snapshot that can no longer become a write): look again
            if (
                isinstance(err, OperationalError)
                and "locked" not in str(err)
                and "busy" not in str(err)
            ):
                raise
            continue
    else:  # pragma: no cover - twenty publications in a row by others
        raise Unavailable("rules_busy", "规则正在被其他进程发布，请稍后重试", retry_after=1)
    ctx.registry.generation = generation
    ctx.rules_checked_at = time.monotonic()
    return generation


def sync_rules(ctx: Context, force: bool = False) -> None:
    """Serve the rule set in force, if another worker published a newer one."""
    now = time.monotonic()
    if not force and now - ctx.rules_checked_at < ctx.rules_check_seconds:
        return
    ctx.rules_checked_at = now
    with ctx.db.engine.connect() as connection:
        latest = _latest_rule_set(connection)
    if latest is None or latest.id == ctx.registry.generation:
        return
    if _version_map(latest.schemes) != ctx.registry.versions():
        try:
            schemes = {
                sid: scheme_by_version(ctx, entry["version"], entry["folder"])
                for sid, entry in latest.schemes.items()
            }
        except (RuleSetError, ServiceError) as err:
            # e.g. a worker of an older release during an upgrade, whose loader refuses the new files:
            # it keeps serving what it has (and says so) rather than failing every request
            log.error(
                "cannot serve rule set %s published by another worker, keeping rule set %s: %s",
                latest.id,
                ctx.registry.generation,
                err,
            )
            return
        changes = ctx.registry.swap(schemes)
        log.info("serving rule set %s (published by another worker): %s", latest.id, changes)
    ctx.registry.generation = latest.id


def current_scheme(ctx: Context, scheme_id: str) -> Scheme:
    scheme = ctx.registry.get(scheme_id)
    if scheme is None:
        raise NotFound(
            "unknown_scheme",
            f"没有编号为“{scheme_id}”的细则",
            {"scheme": [f"可用：{'、'.join(ctx.registry.schemes())}"]},
        )
    return scheme


# --- what is published in the pages stays published -----------------------------------------
#
# Versions are also written in the product (service/releases.py) and published as rule sets.  A
# restart or a reload never reverts them: the rules directory is imported only where its content
# is new.  A disk scheme is served from disk only if its version never appeared in any rule set;
# otherwise the newest rule set's entry for that scheme id stays, and schemes published in the
# pages but absent from disk stay served too.


def published_versions(connection) -> set[str]:
    """Every version any rule set ever served."""
    return {
        entry["version"]
        for (schemes,) in connection.execute(select(RuleSet.schemes))
        for entry in schemes.values()
    }


def kept_published(ctx: Context, disk: dict) -> dict:
    """What to serve of the rules directory's schemes ``disk`` (checked) and the rule set in
    force: disk schemes whose version is new, else the rule set's own entries."""
    with ctx.db.engine.connect() as connection:
        latest = _latest_rule_set(connection)
        ever = published_versions(connection) if latest is not None else set()
    if latest is None:
        return dict(disk)
    served = {}
    for sid, entry in latest.schemes.items():
        on_disk = disk.get(sid)
        if on_disk is not None and (
            on_disk.version == entry["version"] or on_disk.version not in ever
        ):
            continue  # the same version, or new content on disk (imported): served from disk
        try:
            served[sid] = scheme_by_version(ctx, entry["version"], entry["folder"])
        except (RuleSetError, ServiceError) as err:  # pragma: no cover - unreadable archive
            log.error("规则集 %s 中的细则 %s 无法读取，改用规则目录中的：%s", latest.id, sid, err)
    for sid, scheme in disk.items():
        served.setdefault(sid, scheme)
    return served


def publish_scheme(s, actor: Actor, scheme: Scheme, folder: str) -> int:
    """Inside the caller's transaction: a new rule set, the newest one with ``scheme``'s entry
    replaced or added (its files archived first); the new row's id.  Two publications at once
    collide on the unique ``follows`` (IntegrityError): the caller tries again."""
    _archive(s, scheme)
    latest = _latest_rule_set(s)
    schemes = dict(latest.schemes) if latest is not None else {}
    before = schemes.get(scheme.id, {}).get("version")
    schemes[scheme.id] = {"version": scheme.version, "folder": folder}
    # the released scheme, named as before even if its version were the one in force
    return _next_rule_set(s, actor, latest, schemes, {scheme.id: [before, scheme.version]})


def _changes(latest, schemes: dict) -> dict:
    """scheme id -> [the version ``latest`` served or None, the version ``schemes`` serve or None],
    for every scheme whose version differs."""
    before = _version_map(latest.schemes) if latest is not None else {}
    changes = {
        sid: [before.get(sid), entry["version"]]
        for sid, entry in schemes.items()
        if before.get(sid) != entry["version"]
    }
    changes.update({sid: [v, None] for sid, v in before.items() if sid not in schemes})
    return changes


def _next_rule_set(s, actor: Actor, latest, schemes: dict, changes: dict) -> int:
    """Inside the caller's transaction: the rule set after ``latest`` (the newest row, or None)
    serving ``schemes``, published by ``actor``, and its journal entry; the new row's id.  The
    one place both publications (a worker's rules, an approved release) write.  Two at once
    collide on the unique ``follows`` (IntegrityError): the caller tries again."""
    row = RuleSet(
        follows=latest.id if latest is not None else 0, schemes=schemes, actor=actor.username
    )
    s.add(row)
    s.flush()
    journal(s, actor, "rules.publish", f"rule_set:{row.id}", "ok", changes=changes)
    return row.id


# --- signing in, and the journal ---------------------------------------------------------

_NO_USER_HASH: list = []  # a password hash to check when there is no such user: the same work either way


def authenticate(
    ctx: Context, username: str, password: str, address: str = "", via: str = "api"
) -> User | None:
    """The active user whose Werkzeug password hash matches; None otherwise, after the same work
    for an unknown user as for a wrong password (the time taken tells nothing).

    Throttled first (``TooManyAttempts``, before any hash is computed: a locked account or
    address costs one indexed read); every sign-in is journaled with the client address: ok and
    failed one row each (failures are bounded by the throttle), throttled ones the first per
    address and window (the rest counted in ``denial_counts``)."""
    # the name as the journal and the counters can keep it (a NUL: a stand-in, the counters hash it)
    shown = username[:200] if not unstorable(username) else "（无法保存的用户名）"
    limits, target = ctx.sign_in, f"user:{shown}"
    address = address if not unstorable(address) else "?"
    wait = sign_in_wait(ctx.db, limits, username, address)
    if wait:
        with ctx.db.transaction() as s:
            count_anonymous(
                s,
                address,
                "sign-in",
                target,
                limits.denial_window_seconds,
                outcome="throttled",
                via=via,
                retry_after=wait,
            )
        raise throttled(wait)
    user = None
    if not unstorable(username):  # a NUL would make PostgreSQL refuse the query itself
        with ctx.db.transaction() as s:
            user = s.scalar(
                select(User).where(
                    User.username == username, User.active.is_(True), User.disabled_at.is_(None)
                )
            )
    if user is None or not user.password_hash:
        if not _NO_USER_HASH:
            _NO_USER_HASH.append(generate_password_hash(secrets.token_hex(16)))
        check_password_hash(_NO_USER_HASH[0], password)
        user = None
    elif not check_password_hash(user.password_hash, password):
        user = None
    if user is None:
        count_failed_sign_in(ctx.db, limits, username, address)
    else:
        clear_failed_sign_ins(ctx.db, username)
    with ctx.db.transaction() as s:
        journal(
            s,
            Actor(user.id, user.username, user.role, user.unit_id) if user else None,
            "sign-in",
            target,
            "ok" if user else "failed",
            address=address,
            via=via,
        )
    return user


def issue_token(
    ctx: Context, username: str, password: str, address: str = "", label: str = ""
) -> dict:
    """A new API token for the user, ending after ``ctx.token_days``; 401, the same for an unknown
    user as for a wrong password; 429 while the account or address is locked."""
    user = authenticate(ctx, username, password, address, via="api")
    if user is None:
        raise Unauthenticated(
            "bad_credentials", "用户名或密码不对", {"password": ["用户名或密码不对"]}
        )
    with ctx.db.transaction() as s:
        unit = s.get(Unit, user.unit_id) if user.unit_id else None
    token, row = issue(ctx.db, user.id, label or "sign-in", ctx.token_days)
    return {
        "token": token,
        "role": user.role,
        "unit": unit.code if unit else None,
        "id": row.id,
        "label": row.label,
        "expires_at": row.expires_at,
    }


#: the journal's page sizes: the default (what the journal showed before it had pages) and the most
JOURNAL_PAGE, JOURNAL_PAGE_MAX = 500, 1000
#: the journal's filters: name -> the column each compares equal
JOURNAL_FILTERS = {
    "actor": JournalEntry.actor,
    "role": JournalEntry.role,
    "unit": JournalEntry.unit,
    "scheme": JournalEntry.scheme,
    "action": JournalEntry.action,
    "outcome": JournalEntry.outcome,
}


@dataclass
class JournalPage:
    entries: list
    next_cursor: str | None  # the cursor of the next (older) page; None on the last page


def read_journal(
    ctx: Context,
    actor: Actor,
    limit: int = JOURNAL_PAGE,
    cursor: str | None = None,
    since=None,
    until=None,
    filters: dict | None = None,
) -> JournalPage:
    """A page of the journal, newest first: every write, every denial, every read of a unit's data
    by others.  Keyset paging on the id (``cursor``: the id below which the page starts, as the
    previous page gave it), so a page costs the same deep in the history as at its top, and rows
    appended meanwhile neither shift nor repeat entries; ``filters``: ``JOURNAL_FILTERS`` names,
    each equal; ``since``/``until``: times, ``since`` included, ``until`` not."""
    check(ctx.db, actor, "journal.read", "journal")
    if not 1 <= limit <= JOURNAL_PAGE_MAX:
        raise Invalid(
            "invalid_limit",
            f"每页条数应在1到{JOURNAL_PAGE_MAX}之间",
            {"limit": [f"应为1到{JOURNAL_PAGE_MAX}"]},
        )
    query = select(JournalEntry)
    if cursor is not None:
        if not re.fullmatch(r"[1-9][0-9]{0,18}", cursor):
            raise Invalid("invalid_cursor", "翻页位置无效", {"cursor": ["应为上一页给出的位置"]})
        query = query.where(JournalEntry.id < int(cursor))
    for name, value in (filters or {}).items():
        if value is not None:
            query = query.where(JOURNAL_FILTERS[name] == value)
    if since is not None:
        query = query.where(JournalEntry.at >= since)
    if until is not None:
        query = query.where(JournalEntry.at < until)
    with ctx.db.transaction() as s:
        # one row more than the page: whether there is a next page, without counting
        rows = list(s.scalars(query.order_by(JournalEntry.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return JournalPage(rows, str(rows[-1].id) if more else None)


def verify_history(ctx: Context, actor: Actor | None) -> dict:
    """Walk the history chain (submissions, scores, journal) and journal the result; ``actor``
    None: the command line.  The first broken row, if any, is named: table, id, what is wrong."""
    if actor is not None:
        check(ctx.db, actor, "journal.read", "history")
    by = actor if actor is not None else Actor(0, "（命令行）", "system", None)
    started = time.perf_counter()
    result = ctx.db.verify_history()
    result["ok"] = result["problem"] is None
    result["seconds"] = Decimal(time.perf_counter() - started).quantize(Decimal("0.001"))
    with ctx.db.transaction() as s:
        entry = journal(
            s,
            by,
            "history.verify",
            "history",
            "ok" if result["ok"] else "failed",
            rows=result["rows"],
            head_seq=result["head_seq"],
            # worth noting down elsewhere: a chain worked out again from scratch ends elsewhere
            head_hash=result["head_hash"],
            problem=result["problem"],
        )
        s.flush()
    result["checked_at"] = entry.at
    return result


def last_history_check(ctx: Context, actor: Actor) -> JournalEntry | None:
    """The journal entry of the last check of the history chain (None: never checked)."""
    check(ctx.db, actor, "journal.read", "history")
    with ctx.db.transaction() as s:
        return s.scalars(
            select(JournalEntry)
            .where(JournalEntry.action == "history.verify")
            .order_by(JournalEntry.id.desc())
            .limit(1)
        ).first()


# --- scoring -------------------------------------------------------------------------


def _invalid(err: InvalidFacts) -> Invalid:
    fields: dict = {}
    for e in err.errors:
        fields.setdefault(f"facts.{e.field}", []).append(e.message)
    return Invalid("invalid_facts", "事实有误：" + "；".join(str(e) for e in err.errors), fields)


def _check_facts(scheme: Scheme, facts) -> dict:
    try:
        return validate_facts(scheme, facts)
    except InvalidFacts as err:
        raise _invalid(err) from None


def _score(
    ctx: Context,
    scheme: Scheme,
    unit: str,
    facts: dict,
    marks: dict | None = None,
    withheld: bool = False,
) -> ScoreResult:
    """The score of ``facts``; the core checks them first (a 422 naming each bad field).
    ``marks``: the unit's panel marks by clause (``db.marks_of``); none: no panel clause is complete;
    ``withheld``: the marks are not public yet (``domain.panel.with_marks``)."""
    try:
        return score_units(
            scheme,
            {unit: facts},
            ctx.engine,
            ctx.engine.name,
            explain=True,
            marks={unit: marks or {}},
            withheld=withheld,
        )[0]
    except InvalidFacts as err:
        raise _invalid(err) from None
    except EngineUnavailable as err:
        raise Unavailable(
            "engine_unavailable",
            err.message,
            incident=err.incident,
            retry_after=1,
        ) from None


def evaluate(ctx: Context, actor: Actor, scheme_id: str, facts: dict) -> ScoreResult:
    """What-if: the explained score of ``facts``; nothing is stored."""
    check(ctx.db, actor, "evaluate", f"scheme:{scheme_id}")
    scheme = current_scheme(ctx, scheme_id)
    return _score(ctx, scheme, "（试算）", facts)


# --- units ---------------------------------------------------------------------------


def find_unit(ctx: Context, code: str) -> Unit | None:
    # a code that could not have been created is unknown without asking the database (which may
    # refuse it outright: PostgreSQL cannot even compare text with a NUL, as in /api/units/%00)
    if not is_unit_code(code):
        return None
    with ctx.db.transaction() as s:
        return s.scalar(select(Unit).where(Unit.code == code))


def _unit_for(ctx: Context, actor: Actor | None, permission: str, code: str, target: str) -> Unit:
    """The unit, for a caller who may ask.  The permission is checked before the lookup, so a caller
    who may not ask learns nothing, not even whether the unit exists; a unit submitter asking about
    any unit but their own gets the same 403 whether that unit exists or not."""
    check(ctx.db, actor, permission, target)
    unit = find_unit(ctx, code)
    check_own_unit(ctx.db, actor, permission, target, unit)
    if unit is None:
        raise NotFound("unknown_unit", f"没有代码为“{code}”的单位")
    return unit


# Reads of a unit's data (its submissions, history, comparisons, scores, replays) by anyone but the
# unit's own submitter are journaled: one row per request and unit (the first read names it), so a
# page that reads a unit's facts and scores for every scheme costs one row, not one per query.
# The API and the admin pages open a request's scope (begin_reads) and close it (end_reads);
# outside a request (the command line, tests calling operations) every read is a row.
_READS: ContextVar[set | None] = ContextVar("unit_reads_this_request", default=None)
#: rows this request served whose content no longer matches their hash ("table:id")
_TAMPERED: ContextVar[list | None] = ContextVar("tampered_rows_this_request", default=None)


def begin_reads() -> None:
    _READS.set(set())
    _TAMPERED.set([])


def end_reads() -> None:
    _READS.set(None)
    _TAMPERED.set(None)


def tampered_rows() -> list[str]:
    """The rows served in this request that were changed since they were written ("table:id")."""
    return list(_TAMPERED.get() or [])


def _served(ctx: Context, actor: Actor, rows: list, target: str) -> list:
    """``rows`` (submissions, scores) as they are served, each checked against its own hash: one
    rewritten in place since it was written (behind the triggers' back) is still served, as the
    record shows it, but the response says so (the API: an X-History-Warning header), the log
    names it and the journal keeps a "failed" history.check entry."""
    broken = [f"{r.__table__.name}:{r.id}" for r in rows if not intact(r)]
    if broken:
        log.error("rows changed since they were written, served to %s: %s", actor.username, broken)
        found = _TAMPERED.get()
        if found is not None:
            found.extend(broken)
        with ctx.db.transaction() as s:
            journal(s, actor, "history.check", target, "failed", rows=broken)
    return rows


def _refuse_tampered(ctx: Context, actor: Actor, row, target: str) -> None:
    """Nothing is computed from a row that was changed since it was written: 409."""
    if not intact(row):
        _served(ctx, actor, [row], target)
        raise Conflict(
            "history_tampered",
            f"第 {row.id} 号{'事实提交' if isinstance(row, Submission) else '评分'}"
            "的内容与写入时不符（被改动过），不能据此计算；请管理员核对历史链",
        )


def _journal_read(s, actor: Actor, permission: str, unit: Unit, target: str) -> None:
    """Journal, in the read's own transaction ``s``, that ``actor`` read ``unit``'s data."""
    if actor.role in OWN_UNIT_ONLY:  # a unit's submitter reading their own unit (all they may read)
        return
    seen = _READS.get()
    if seen is not None:
        if unit.id in seen:
            return
        seen.add(unit.id)
    journal(s, actor, permission, target, "ok")


def list_units(ctx: Context, actor: Actor) -> list[Unit]:
    check(ctx.db, actor, "units.read", "units")
    with ctx.db.transaction() as s:
        query = select(Unit).order_by(Unit.code)
        if actor.role == "submitter":
            query = query.where(Unit.id == actor.unit_id)
        return list(s.scalars(query))


def read_unit(ctx: Context, actor: Actor, code: str) -> Unit:
    return _unit_for(ctx, actor, "units.read", code, f"unit:{code}")


def _same_unit(s, unit: Unit) -> dict:
    """{field: [why]} for each of the code and the name that an existing unit already has (the
    same whatever its case, width or spacing)."""
    taken = {}
    for field, key in (("code", Unit.code_key), ("name", Unit.name_key)):
        mine = getattr(unit, f"{field}_key")
        other = s.scalar(select(Unit).where(key == mine, Unit.id != unit.id))
        if other is not None:
            taken[field] = [f"已有单位“{other.name}”（{other.code}）使用这个{_WORDS[field]}"]
    return taken


_WORDS = {"code": "代码", "name": "名称"}


def create_unit(ctx: Context, actor: Actor, code: str, name: str, kind: str, district: str) -> Unit:
    check(ctx.db, actor, "units.write", f"unit:{code}")
    unit = Unit(code=code, name=name, kind=kind, district=district)  # keeps its keys
    taken = {}
    try:
        with ctx.db.transaction() as s:
            taken = _same_unit(s, unit)
            if not taken:
                s.add(unit)
                s.flush()
                journal(s, actor, "units.write", f"unit:{unit.code}", "ok", name=unit.name)
    except IntegrityError:
        # another request created it between the look-up and the write: the unique keys decided
        with ctx.db.transaction() as s:
            taken = _same_unit(s, Unit(code=code, name=name)) or {"code": ["已存在"]}
    if taken:
        what = "、".join(_WORDS[f] for f in taken)
        raise Conflict("duplicate_unit", f"单位{what}已被使用：“{unit.code}” “{unit.name}”", taken)
    return unit


# --- rounds ------------------------------------------------------------------------------


def _open_round(ctx: Context, scheme_id: str) -> Round:
    """The round a scheme's facts are entered in now; 409 when it has none (nobody enters facts
    outside a round: that is how a self-assessment skipped the review before rounds)."""
    current_scheme(ctx, scheme_id)  # 404 for a scheme that does not exist, before anything else
    with ctx.db.transaction() as s:
        rnd = open_round_of(s, scheme_id)
    if rnd is None:
        raise no_round(scheme_id)
    return rnd


def round_scheme(ctx: Context, rnd: Round) -> Scheme:
    """The scheme version a round was opened under (served or from the archive): its facts are the
    ones entered in it, and every score of the round is computed under it."""
    return scheme_by_version(ctx, rnd.rules_version, rnd.folder)


def previous_year_facts(ctx: Context, rnd: Round, unit: Unit, scheme: Scheme) -> dict:
    """Year on year: {fact: (value, where it came from)} the product has for the scheme's facts
    that are a previous year's value (``previous_year``), from the unit's reviewed facts of the
    year before; a fact it has no value for is not there (the unit enters it)."""
    wanted = {f.name: f.previous_year for f in scheme.facts.values() if f.previous_year}
    if not wanted:  # most schemes: no transaction opened on every submission for nothing
        return {}
    with ctx.db.transaction() as s:
        return carried_over(s, rnd, unit.id, wanted)


def _with_previous_year(ctx, rnd, unit, scheme, facts: dict, evidence: dict) -> tuple:
    """``facts`` with the previous year's values the product has, and where each came from in its
    evidence; a different value typed for one of them is refused, naming the field (the office
    reviewed last year's value: it is not entered again)."""
    carried = previous_year_facts(ctx, rnd, unit, scheme)
    if not carried:
        return facts, evidence
    facts, evidence = dict(facts), {k: list(v) for k, v in evidence.items()}
    clashes = {}
    for name, (value, source) in carried.items():
        typed = facts.get(name)
        if typed is not None and _check_facts(scheme, {name: typed}).get(name) != value:
            clashes[f"facts.{name}"] = [f"上年度的值{source}，为{value}，不能另填"]
        facts[name] = value
        if source not in evidence.get(name, []):
            evidence[name] = [*evidence.get(name, []), source]
    if clashes:
        raise Invalid("previous_year_value", "上年度的值已由上一年度的考核轮次给出", clashes)
    return facts, evidence


# --- submissions -----------------------------------------------------------------------


def etag(version: int) -> str:
    return f'"{version}"'


def _latest_version(s, unit_id: int, scheme_id: str) -> int:
    return s.scalar(
        select(func.coalesce(func.max(Submission.version), 0)).where(
            Submission.unit_id == unit_id, Submission.scheme_id == scheme_id
        )
    )


def submit(
    ctx: Context,
    actor: Actor,
    unit_code: str,
    scheme_id: str,
    role: str,
    facts: dict,
    evidence: dict,
    reason: str,
    if_match: str | None,
    reasons: dict | None = None,
) -> Submission:
    """Append a version of a unit's facts.  A correction (there is a version already) must say why
    for each fact it changes: that fact's own entry in ``reasons``, or the general ``reason``."""
    target = f"unit:{unit_code}/scheme:{scheme_id}"
    unit = _unit_for(
        ctx,
        actor,
        "submissions.write.self" if role == "self" else "submissions.write.review",
        unit_code,
        target,
    )
    rnd = _open_round(ctx, scheme_id)
    scheme = round_scheme(ctx, rnd)
    facts, evidence = _with_previous_year(ctx, rnd, unit, scheme, facts, evidence)
    values = _check_facts(scheme, facts)
    unknown = [name for name in evidence if name not in scheme.facts]
    if unknown:
        raise Invalid(
            "invalid_evidence",
            "佐证材料对应的事实不存在",
            {f"evidence.{n}": ["不是本细则声明的事实"] for n in unknown},
        )
    _check_file_references(ctx, unit, scheme_id, evidence)
    reasons = {name: text.strip() for name, text in (reasons or {}).items() if text.strip()}
    unknown = [name for name in reasons if name not in scheme.facts]
    if unknown:
        raise Invalid(
            "invalid_reasons",
            "更正理由对应的事实不存在",
            {f"reasons.{n}": ["不是本细则声明的事实"] for n in unknown},
        )
    try:
        with ctx.db.transaction() as s:
            latest = _latest_version(s, unit.id, scheme_id)
            if latest:
                if if_match is None:
                    raise PreconditionRequired(
                        "if_match_required",
                        f"已有第{latest}版，修改须带 If-Match: {etag(latest)}",
                        {"If-Match": [f"应为 {etag(latest)}"]},
                    )
                if if_match.strip() != etag(latest):
                    raise Conflict(
                        "version_conflict",
                        f"提交基于 {if_match}，但当前已是第{latest}版；请重新读取后再改",
                        {"If-Match": [f"当前为 {etag(latest)}"]},
                        current_version=etag(latest),
                    )
                if not reason.strip():
                    before = s.scalar(
                        select(Submission.facts).where(
                            Submission.unit_id == unit.id,
                            Submission.scheme_id == scheme_id,
                            Submission.version == latest,
                        )
                    )
                    changed = sorted(
                        n for n in set(before) | set(values) if before.get(n) != values.get(n)
                    )
                    unexplained = [n for n in changed if n not in reasons]
                    if not changed:
                        raise Invalid(
                            "reason_required",
                            "更正已提交的事实须写明理由",
                            {"reason": ["更正时必填"]},
                        )
                    if unexplained:
                        raise Invalid(
                            "reason_required",
                            "更正的每一项都须写明理由（逐项填写，或填写总的更正理由）",
                            {f"reasons.{n}": ["改动了此项，须写明理由"] for n in unexplained},
                        )
            elif if_match not in (None, "*") and if_match.strip() != etag(0):
                raise Conflict("version_conflict", "还没有任何提交", {"If-Match": ["当前没有版本"]})
            # the unit's state moves with the submission, or the submission is refused: after
            # 已提交自评 the unit changes nothing until a reviewer returns it
            in_round = s.get(Round, rnd.id)
            if role == "self":
                advance(s, actor, in_round, unit.id, unit.code, "submit_self",
                        self_version=latest + 1, returned_reason=None)  # fmt: skip
            else:
                advance(s, actor, in_round, unit.id, unit.code, "review")
            row = Submission(
                unit_id=unit.id,
                scheme_id=scheme_id,
                version=latest + 1,
                role=role,
                author_id=actor.user_id,
                facts=values,
                evidence=evidence,
                reason=reason,
                reasons=reasons,
                round_id=rnd.id,
            )
            s.add(row)
            s.flush()
            journal(
                s, actor, "submissions.write", target, "ok",
                version=latest + 1, role=role, round=rnd.id,
            )  # fmt: skip
            # the submitter's draft is done with: gone with the submission, kept if it is refused
            s.execute(_own_draft(delete(Draft), actor, unit, scheme_id, rnd.id))
            if ctx.pause_in_submit:  # tests: a window in which to kill the server mid-transaction
                s.flush()
                time.sleep(ctx.pause_in_submit)
    except IntegrityError:  # a concurrent writer took this version number first
        raise Conflict("version_conflict", "另一位用户刚刚提交了新版本，请重新读取后再改") from None
    return row


#: an evidence reference that names an uploaded file ("file:<id>", service/evidence.py); any other
#: text is a reference as before (a document number, a link)
FILE_REFERENCE = re.compile(r"file:([0-9]{1,10})")


def _check_file_references(ctx: Context, unit: Unit, scheme_id: str, evidence: dict) -> None:
    """A submission may reference only files uploaded for its own unit and scheme (and, if the file
    was uploaded for a fact, for that fact): 422 naming each evidence field that does not.  Files
    are append-only, so one found here is still there when the submission commits."""
    wanted = {}
    for name, items in evidence.items():
        for item in items:
            found = FILE_REFERENCE.fullmatch(item.strip())
            if found:
                wanted.setdefault(name, []).append(int(found.group(1)))
    if not wanted:
        return
    # an id beyond the databases' INTEGER is no file (PostgreSQL would refuse the comparison)
    ids = {i for refs in wanted.values() for i in refs if i <= 2**31 - 1}
    with ctx.db.transaction() as s:
        files = {
            row.id: row for row in s.scalars(select(EvidenceFile).where(EvidenceFile.id.in_(ids)))
        }
    problems = {}
    for name, refs in wanted.items():
        for ref in refs:
            row = files.get(ref)
            if row is None or row.unit_id != unit.id or row.scheme_id != scheme_id:
                why = f"file:{ref} 不是本单位为本细则上传的文件"
            elif row.fact and row.fact != name:
                why = f"file:{ref}（{row.name}）是为事实“{row.fact}”上传的"
            else:
                continue
            problems.setdefault(f"evidence.{name}", []).append(why)
    if problems:
        raise Invalid("invalid_evidence", "佐证材料引用的文件不存在或不属于本单位本细则", problems)


# --- drafts ------------------------------------------------------------------------------
#
# A draft is one user's unsubmitted fact form for a unit and scheme, kept on the server (it
# survives sign-out and another browser).  Whoever may submit facts for the unit (自评 or 评审) may
# keep a draft of them; nobody else sees it, not even an admin.  Saving and discarding are
# journaled (one row each, without the draft's content): discarding destroys someone's typing, and
# "my draft vanished" should be answerable.  Drafts themselves are not history (replaced, deleted).

#: the roles whose drafts are the unit's own self-assessment (a reviewer's draft moves no state)
UNIT_SIDE = {"submitter"}

#: what the typed text of one evidence field may hold: as many references as a submission may have
DRAFT_EVIDENCE_CHARS_MAX = EVIDENCE_ITEMS_MAX * (EVIDENCE_CHARS_MAX + 1)


def _draft_unit(ctx: Context, actor: Actor | None, unit_code: str, scheme_id: str) -> Unit:
    """The unit, for a user who may submit its facts (a draft is a submission not yet made)."""
    permission = (
        "submissions.write.review"
        if actor is not None and actor.role in PERMISSIONS["submissions.write.review"]
        else "submissions.write.self"
    )
    return _unit_for(ctx, actor, permission, unit_code, f"unit:{unit_code}/scheme:{scheme_id}")


def _own_draft(statement, actor: Actor, unit: Unit, scheme_id: str, round_id: int):
    return statement.where(
        Draft.user_id == actor.user_id,
        Draft.unit_id == unit.id,
        Draft.scheme_id == scheme_id,
        Draft.round_id == round_id,
    )


def _draft_problems(scheme: Scheme, values, evidence, reason, reasons) -> dict:
    """{field: [why]} for text a draft may not keep: the storable-text and length checks of a
    submission, on the text as typed (a draft may hold a value that is not yet a valid fact)."""
    problems: dict = {}

    def look(key: str, text, limit: int) -> None:
        if not isinstance(text, str):
            problems.setdefault(key, []).append("应为文字")
            return
        why = unstorable(text)
        if why:
            problems.setdefault(key, []).append(why)
        if len(text) > limit:
            problems.setdefault(key, []).append(f"不超过{limit}字")

    for prefix, texts, limit in (
        ("facts", values, MAX_TEXT),
        ("evidence", evidence, DRAFT_EVIDENCE_CHARS_MAX),
        ("reasons", reasons, FACT_REASON_CHARS_MAX),
    ):
        for name, text in texts.items():
            if name not in scheme.facts:
                problems.setdefault(f"{prefix}.{name}", []).append("不是本细则声明的事实")
            else:
                look(f"{prefix}.{name}", text, limit)
    look("reason", reason, REASON_CHARS_MAX)
    return problems


def save_draft(
    ctx: Context,
    actor: Actor,
    unit_code: str,
    scheme_id: str,
    values: dict,
    evidence: dict,
    reason: str,
    reasons: dict,
    base_version: int,
) -> Draft:
    """Keep ``actor``'s draft of a unit's facts, replacing the one they had (one per user, unit and
    scheme).  ``values``, ``evidence`` and ``reasons`` are {fact name: text as typed}."""
    unit = _draft_unit(ctx, actor, unit_code, scheme_id)
    rnd = _open_round(ctx, scheme_id)
    scheme = round_scheme(ctx, rnd)
    problems = _draft_problems(scheme, values, evidence, reason, reasons)
    if problems:
        raise Invalid("invalid_draft", "草稿中有无法保存的内容", problems)
    target = f"unit:{unit_code}/scheme:{scheme_id}"
    content = {
        "values": dict(values),
        "evidence": dict(evidence),
        "reason": reason,
        "reasons": dict(reasons),
        "base_version": max(0, int(base_version)),
    }
    for attempt in (1, 2):
        try:
            with ctx.db.transaction() as s:
                if actor.role in UNIT_SIDE:  # the unit's own draft: 草稿, until the deadline
                    advance(s, actor, s.get(Round, rnd.id), unit.id, unit.code, "save_draft")
                row = s.scalar(_own_draft(select(Draft), actor, unit, scheme_id, rnd.id))
                if row is None:
                    row = Draft(
                        user_id=actor.user_id, unit_id=unit.id, scheme_id=scheme_id, round_id=rnd.id
                    )
                    s.add(row)
                for key, value in content.items():
                    setattr(row, key, value)
                row.saved_at = datetime.now(UTC)
                s.flush()
                journal(s, actor, "drafts.write", target, "ok", base_version=row.base_version)
            return row
        except IntegrityError:
            # the same user saved from another tab between the look-up and the insert: that
            # draft is there now, so the second attempt replaces it
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def read_draft(ctx: Context, actor: Actor, unit_code: str, scheme_id: str) -> Draft | None:
    """``actor``'s own draft of a unit's facts, or None (nobody reads another user's draft)."""
    unit = _draft_unit(ctx, actor, unit_code, scheme_id)
    with ctx.db.transaction() as s:
        rnd = open_round_of(s, scheme_id)
        if rnd is None:
            return None
        return s.scalar(_own_draft(select(Draft), actor, unit, scheme_id, rnd.id))


def discard_draft(ctx: Context, actor: Actor, unit_code: str, scheme_id: str) -> bool:
    """Delete ``actor``'s draft of a unit's facts; whether there was one."""
    unit = _draft_unit(ctx, actor, unit_code, scheme_id)
    target = f"unit:{unit_code}/scheme:{scheme_id}"
    with ctx.db.transaction() as s:
        rnd = open_round_of(s, scheme_id)
        gone = (
            s.execute(_own_draft(delete(Draft), actor, unit, scheme_id, rnd.id)).rowcount
            if rnd is not None
            else 0
        )
        if gone:
            journal(s, actor, "drafts.discard", target, "ok")
    return bool(gone)


def _submissions(
    ctx: Context, actor: Actor, unit_code: str, scheme_id: str, versions=None, latest=False
):
    unit = _unit_for(
        ctx, actor, "submissions.read", unit_code, f"unit:{unit_code}/scheme:{scheme_id}"
    )
    query = select(Submission).where(
        Submission.unit_id == unit.id, Submission.scheme_id == scheme_id
    )
    if versions is not None:
        query = query.where(Submission.version.in_(versions))
    query = (
        query.order_by(Submission.version.desc()).limit(1)
        if latest
        else query.order_by(Submission.version)
    )
    target = f"unit:{unit_code}/scheme:{scheme_id}"
    with ctx.db.transaction() as s:
        _journal_read(s, actor, "submissions.read", unit, target)
        rows = list(s.scalars(query))
    return _served(ctx, actor, rows, target)


def history(ctx: Context, actor: Actor, unit_code: str, scheme_id: str) -> list[Submission]:
    """Every version of a unit's facts for a scheme, oldest first."""
    return _submissions(ctx, actor, unit_code, scheme_id)


def latest_submission(ctx: Context, actor: Actor, unit_code: str, scheme_id: str) -> Submission:
    rows = _submissions(ctx, actor, unit_code, scheme_id, latest=True)
    if not rows:
        raise NotFound("no_submission", "该单位还没有提交这套细则的事实")
    return rows[0]


def get_submission(
    ctx: Context, actor: Actor, unit_code: str, scheme_id: str, version: int
) -> Submission:
    rows = _submissions(ctx, actor, unit_code, scheme_id, versions=[version])
    if not rows:
        raise NotFound("unknown_submission", f"没有第{version}版提交")
    return rows[0]


def compare(ctx: Context, actor: Actor, unit_code: str, scheme_id: str, a: int, b: int) -> dict:
    rows = {r.version: r for r in _submissions(ctx, actor, unit_code, scheme_id, versions=[a, b])}
    for v in (a, b):
        if v not in rows:
            raise NotFound(
                "unknown_submission",
                f"没有第{v}版提交",
                {"from" if v == a else "to": ["不存在"]},
            )
    old, new = rows[a].facts, rows[b].facts
    changes = []
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            # why: the newer version's own reason for this fact, else its general reason
            why = (rows[b].reasons or {}).get(name) or rows[b].reason if b > a else ""
            changes.append(
                {"fact": name, "from": old.get(name), "to": new.get(name), "reason": why}
            )
    return {"from": a, "to": b, "changes": changes, "reason": rows[b].reason, "role": rows[b].role}


def author_name(ctx: Context, user_id: int) -> str:
    with ctx.db.transaction() as s:
        user = s.get(User, user_id)
    return user.username if user else str(user_id)


# --- scores ---------------------------------------------------------------------------


#: what a stored score is: 正式 (official: ranked, exported) or 预览 (a what-if, never ranked)
SCORE_KINDS = {"official": "正式得分", "preview": "预览"}


def compute_score(
    ctx: Context,
    actor: Actor,
    unit_code: str,
    scheme_id: str,
    version: int | None = None,
    kind: str | None = None,
    within=None,
) -> Score:
    """Compute and store a unit's score in the scheme's current round.

    An official score (``kind`` "official") is computed by a reviewer or an admin, from the unit's
    reviewed version only, under the round's scheme version, and becomes the unit's official score
    in the round.  Anything else is a preview (预览): a unit's own what-if on its latest facts, under
    the same rules, stored with its trace but never ranked.  ``kind`` None: official when the unit
    is reviewed and the caller may compute it, a preview otherwise.  ``within(session, score)``:
    run inside the score's own transaction before it commits (a background job marks its item done
    there, so the item and the score commit together or not at all); what it raises rolls the
    score back."""
    target = f"unit:{unit_code}/scheme:{scheme_id}"
    unit = _unit_for(ctx, actor, "scores.write", unit_code, target)
    if kind not in (None, *SCORE_KINDS):
        raise Invalid(
            "invalid_kind", "评分类型应为 official 或 preview", {"kind": list(SCORE_KINDS)}
        )
    with ctx.db.transaction() as s:
        rnd = latest_round_of(s, scheme_id)
        place = place_of(s, rnd, unit.id) if rnd is not None else None
    if rnd is None:
        current_scheme(ctx, scheme_id)
        raise no_round(scheme_id)
    reviewed = place is not None and place.state in ("reviewed", "rechecked")
    if kind is None:
        kind = "official" if reviewed and actor.role in OFFICIAL_ROLES else "preview"
    if kind == "official":
        allowed(rnd, place, "compute_official", actor.role, datetime.now(UTC))
        if version is not None and version != place.reviewed_version:
            raise Conflict(
                "not_reviewed_version",
                f"正式得分只能按已评审的第{place.reviewed_version}版计算，第{version}版不是",
                {"version": [f"应为 {place.reviewed_version}"]},
            )
        version = place.reviewed_version
    scheme = round_scheme(ctx, rnd)
    with ctx.db.transaction() as s:
        query = select(Submission).where(
            Submission.unit_id == unit.id, Submission.scheme_id == scheme_id
        )
        query = (
            query.where(Submission.version == version)
            if version
            else query.order_by(Submission.version.desc())
        )
        submission = s.scalars(query.limit(1)).first()
    if submission is None:
        if version:
            raise NotFound("no_submission", f"没有第{version}版提交")
        raise Conflict("no_submission", "该单位还没有提交这套细则的事实")
    _refuse_tampered(ctx, actor, submission, target)
    with ctx.db.transaction() as s:
        marks = marks_of(s, rnd.id, unit.id)  # the reviewers' marks of its panel clauses
    # a preview is read by the unit and every reviewer: it shows no marks before publication
    withheld = kind == "preview" and (place is None or place.state not in MARKS_PUBLIC)
    result = _score(ctx, scheme, unit.name, submission.facts, marks, withheld)
    with ctx.db.transaction() as s:
        row = record_score(s, actor, rnd, unit, scheme, submission, result, kind)
        if within is not None:
            within(s, row)
        return row


def record_score(
    s,
    actor: Actor,
    rnd: Round,
    unit: Unit,
    scheme: Scheme,
    submission: Submission,
    result: ScoreResult,
    kind: str,
    action: str = "compute_official",
    **changes,
) -> Score:
    """Store ``result``, the score of ``submission`` under the round's ``scheme``, in session ``s``
    (the caller's transaction), journaled.  An official score becomes the unit's official score in
    the round by the cycle's ``action`` (with ``changes`` to its place), in the same transaction:
    ``compute_score`` for a reviewed unit, an appeal's 更正 (service/appeals.py) for its new
    reviewed version."""
    _archive(s, scheme)
    row = Score(
        unit_id=unit.id,
        scheme_id=rnd.scheme_id,
        submission_id=submission.id,
        submission_version=submission.version,
        rules_version=scheme.version,
        engine_version=result.matcher,
        total=result.total,
        grade=result.grade,
        complete=result.complete,
        trace=to_data(result),
        computed_by=actor.user_id,
        round_id=rnd.id,
        kind=kind,
    )
    s.add(row)
    s.flush()
    if kind == "official":
        # the unit's official score in the round, in the score's own transaction; the state
        # is checked again under the row's lock (a reviewer may have reopened it meanwhile)
        advance(s, actor, s.get(Round, rnd.id), unit.id, unit.code, action,
                official_score_id=row.id, **changes)  # fmt: skip
    journal(
        s,
        actor,
        "scores.write",
        f"unit:{unit.code}/scheme:{rnd.scheme_id}",
        "ok",
        score=row.id,
        total=str(result.total),
        rules_version=scheme.version,
        submission_version=submission.version,
        round=rnd.id,
        kind=kind,
    )
    return row


#: who computes official scores (a unit computes previews of its own facts only)
OFFICIAL_ROLES = {"admin", "reviewer"}


def _visible_score(
    ctx: Context, actor: Actor, score_id: int, permission: str = "scores.read"
) -> tuple[Score, Unit]:
    check(ctx.db, actor, permission, f"score:{score_id}")  # before the lookup: no existence oracle
    with ctx.db.transaction() as s:
        row = s.get(Score, score_id)
        unit = s.get(Unit, row.unit_id) if row else None
        if row is not None and unit is not None:  # a submitter's own unit is not journaled
            where = f"unit:{unit.code}/scheme:{row.scheme_id}/score:{row.id}"
            _journal_read(s, actor, permission, unit, where)
    check_own_unit(
        ctx.db, actor, permission, f"score:{score_id}", unit
    )  # 403 for a missing one too
    if row is None:
        raise NotFound("unknown_score", f"没有编号为 {score_id} 的评分")
    return _served(ctx, actor, [row], f"score:{score_id}")[0], unit


def get_score(ctx: Context, actor: Actor, score_id: int) -> tuple[Score, Unit]:
    """A stored score and its unit."""
    return _visible_score(ctx, actor, score_id)


def list_scores(ctx: Context, actor: Actor, unit_code: str, scheme_id: str) -> list[Score]:
    target = f"unit:{unit_code}/scheme:{scheme_id}"
    unit = _unit_for(ctx, actor, "scores.read", unit_code, target)
    with ctx.db.transaction() as s:
        _journal_read(s, actor, "scores.read", unit, target)
        rows = list(
            s.scalars(
                select(Score)
                .where(Score.unit_id == unit.id, Score.scheme_id == scheme_id)
                .order_by(Score.id)
            )
        )
    return _served(ctx, actor, rows, target)


# --- ranking --------------------------------------------------------------------------


@dataclass
class _Ranked:
    unit: str
    total: Decimal
    grade_vetoes: list
    grade: str | None = None
    distinctions: list = None
    grade_explanation: str = ""
    grade_pending_vetoes: list = None
    #: the stored facts: what the parts computed in ranking (relative) rank the units on
    facts: dict = None


def ranking(
    ctx: Context,
    actor: Actor,
    scheme_id: str,
    with_traces: bool = False,
    round_id: int | None = None,
) -> dict:
    """The units of a round (the scheme's newest, or ``round_id``) ranked and graded on their
    official scores, under the round's scheme version; every other unit is listed in ``unranked``
    with its state (未填报 / 待评审), never left out.  ``with_traces``: also ``traces``, unit code ->
    the stored trace of the score ranked (the admin page's chart and workbook), under the same
    permission as the ranking itself."""
    check(ctx.db, actor, "ranking.read", f"scheme:{scheme_id}")
    served = current_scheme(ctx, scheme_id)
    with ctx.db.transaction() as s:
        rnd = s.get(Round, round_id) if round_id is not None else latest_round_of(s, scheme_id)
        if rnd is None or rnd.scheme_id != scheme_id:
            if round_id is not None:
                raise NotFound(
                    "unknown_round", f"细则“{scheme_id}”没有编号为 {round_id} 的考核轮次"
                )
            rnd = None
        units = list(s.scalars(select(Unit).order_by(Unit.code)))
        places = (
            {p.unit_id: p for p in s.scalars(select(RoundUnit).where(RoundUnit.round_id == rnd.id))}
            if rnd is not None
            else {}
        )
        official = [p.official_score_id for p in places.values() if p.official_score_id]
        scores = {sc.id: sc for sc in s.scalars(select(Score).where(Score.id.in_(official)))}
    scheme = round_scheme(ctx, rnd) if rnd is not None else served
    rows, unranked = [], []
    for unit in units:
        place = places.get(unit.id)
        score = scores.get(place.official_score_id) if place and place.official_score_id else None
        if score is not None:
            rows.append((score, unit))
        else:
            state = describe(place)
            unranked.append(
                {
                    "unit": unit.name,
                    "unit_code": unit.code,
                    "state": state["state"],
                    "state_words": state["state_words"],
                    "shown": "未填报" if state["state"] in ("none", "draft") else "待评审",
                }
            )
    ranked, info = [], {}
    for score, unit in rows:
        vetoes = [
            GradeVetoResult(
                **{
                    k: v.get(k)
                    for k in ("id", "effect", "grade", "reason", "condition", "facts", "facts_text")
                }
            )
            for v in score.trace.get("grade_vetoes", [])
        ]
        # worked out again from the stored facts, not read from the trace: a score stored before
        # missing grade-veto facts were marked 待定 must not award the distinction either
        pending = pending_grade_vetoes(
            scheme,
            score.trace.get("facts") or {},
            {v.id for v in vetoes},
            set(score.trace.get("not_applicable") or ()),
        )
        ranked.append(
            _Ranked(
                unit.name,
                Decimal(score.trace["total"]),
                vetoes,
                None,
                None,
                "",
                pending,
                score.trace.get("facts") or {},
            )
        )
        info[unit.name] = {
            "unit_code": unit.code,
            **{
                k: v
                for k, v in describe(places.get(unit.id)).items()
                if k in ("state", "state_words")
            },
            "score_id": score.id,
            "rules_version": score.rules_version,
            "submission_version": score.submission_version,
            "complete": score.complete,
        }
    entries = rank_units(scheme, ranked)
    result = {
        "scheme": scheme.id,
        "version": scheme.version,
        "round": round_summary(rnd),
        "unranked": unranked,
        "method": scheme.grading.method,
        "entries": [
            dict(
                to_data(e),
                **info[e.unit],
                current_rules=info[e.unit]["rules_version"] == served.version,
            )
            for e in entries
        ],
    }
    if with_traces:
        result["traces"] = {unit.code: score.trace for score, unit in rows}
    return result


def round_summary(rnd: Round | None) -> dict | None:
    """A round as a ranking, a replay report or an audit names it."""
    if rnd is None:
        return None
    return {
        "id": rnd.id,
        "year": rnd.year,
        "title": rnd.title,
        "stage": rnd.stage,
        "stage_words": ROUND_STAGES[rnd.stage],
        "rules_version": rnd.rules_version,
    }


# --- checking a rule set --------------------------------------------------------------------
#
# 检查 means check and test: the strict loader, then every clause, scheme and ranking test case
# through the production engine (casebook.check_rules).  Validate reports both; a reload and a
# start serve nothing whose cases fail.  A version whose cases passed is journaled
# ("rules.tested", by its hash, with the program and the engine it passed under): the same bytes
# through the same program and engine pass again, so a worker's start and a reload run the cases
# of new versions only, and every version's once more after an upgrade of the scoring code or of
# the engine (an explicit check runs them all).

TESTED = "rules.tested"


def _tested_target(scheme: Scheme) -> str:
    return f"scheme:{scheme.id}/version:{scheme.version}"


def _passed_under(ctx: Context) -> dict:
    """What a pass must have been journaled under to count now: this process's program
    (``build.PROGRAM``) and the engine it scores with."""
    return {"program": build.PROGRAM, "engine": ctx.engine.name}


def passed_versions(ctx: Context) -> set[str]:
    """The versions whose cases are journaled as passed under this program and this engine.
    Entries journaled before passes named them (no program, no engine) count for nothing: the
    journal is append-only, so the first start after that change ran every case once again."""
    # the details' two keys compared in SQL (JSON paths that SQLite and PostgreSQL both read),
    # behind the action's index: only this program's passes come back, however many upgrades
    # the journal has seen
    detail = JournalEntry.detail
    with ctx.db.engine.connect() as connection:
        targets = connection.execute(
            select(JournalEntry.target).where(
                JournalEntry.action == TESTED,
                JournalEntry.outcome == "ok",
                *(detail[key].as_string() == value for key, value in _passed_under(ctx).items()),
            )
        ).scalars()
        return {t.rsplit("version:", 1)[-1] for t in targets}


def _remember_passed(ctx: Context, actor: Actor, checked: RuleCheck) -> None:
    """Journal the versions whose cases passed, once each under a program and an engine (a
    reload of unchanged rules runs no case, and writes nothing)."""
    known = passed_versions(ctx)
    under = _passed_under(ctx)
    with ctx.db.transaction() as s:
        for version in checked.tested:
            if version in known:
                continue
            scheme = next(sc for sc in checked.schemes.values() if sc.version == version)
            cases = sum(1 for r in checked.results if r.scheme == scheme.id)
            journal(s, actor, TESTED, _tested_target(scheme), "ok", cases=cases, **under)


def _release_unserved(ctx: Context, checked: RuleCheck) -> None:
    """The engine compiled every version it ran: those not served are released again (a
    candidate checked and refused, or one only validated, keeps no memory in the engine)."""
    if not hasattr(ctx.engine, "retire"):  # the oracle compiles nothing
        return
    served = set(ctx.registry.versions().values())
    for scheme in checked.schemes.values():
        if scheme.version in checked.tested and scheme.version not in served:
            ctx.engine.retire(scheme.program_name)


def check_rule_set(ctx: Context, load, passed=frozenset(), serve: bool = False) -> RuleCheck:
    """The one check: ``load`` (a loader that raises ``RuleSetError``) then every case through the
    engine this worker scores with, except those of the versions in ``passed``.  ``serve``: the
    caller serves the set if it passes (else the versions compiled for the check are released)."""
    checked = check_rules(load, ctx.engine, passed)
    if not (serve and checked.ok):
        _release_unserved(ctx, checked)
    return checked


def failing_case(case: CaseResult) -> dict:
    """A failing case as the API and the pages show it: where, which, what differed."""
    return {
        "scheme": case.scheme,
        "file": case.where,
        "line": case.line,
        "case": case.name,
        "problems": list(case.problems),
        "text": "\n".join(case.lines()),  # as `scoring check` and `scoring test` print it
    }


def serve_rules_at_start(ctx: Context) -> dict:
    """A worker's start: the rules directory, checked (cases of new versions only), served.
    Raises ``RuleSetError`` or ``FailingCases``, serving nothing of it."""
    checked = check_rule_set(
        ctx, lambda: load_all(ctx.registry.rules_dir), passed_versions(ctx), serve=True
    )
    if checked.errors:
        raise RuleSetError(checked.errors)
    if checked.failing:
        raise FailingCases(checked.failing)
    changes = ctx.registry.swap(kept_published(ctx, checked.schemes))
    _release_unserved(ctx, checked)
    _remember_passed(ctx, STARTUP, checked)
    return changes


# --- rules -------------------------------------------------------------------------------


def validate_rules(ctx: Context, actor: Actor, files: dict) -> dict:
    """Check a candidate scheme folder ({relative path: text}) without loading it: the strict
    loader, then its test cases through the engine."""
    check(ctx.db, actor, "rules.validate", "rules")
    for rel, problem in path_problems(files)[:1]:
        shown = shown_name(rel)
        raise Invalid("invalid_path", f"文件路径“{shown}”不可用", {f"files.{shown}": [problem]})
    # loaded in a child process: an upload that crashes or hangs the parser cannot take this worker
    checked = check_rule_set(ctx, lambda: contained.load_tree(files))
    return {
        "valid": checked.ok,
        "errors": [
            {"file": e.file, "line": e.line, "column": e.column, "message": e.message}
            for e in checked.errors
        ],
        "failing": [failing_case(c) for c in checked.failing],
        "cases": len(checked.results),
        "schemes": [
            {"id": s.id, "version": s.version, "clauses": len(s.clauses)}
            for s in checked.schemes.values()
        ],
    }


def reload_rules(ctx: Context, actor: Actor) -> dict:
    check(ctx.db, actor, "rules.reload", "rules")
    # loaded in a child process (see validate_rules), new versions tested, served all-or-nothing
    checked = check_rule_set(
        ctx, lambda: contained.load_all(ctx.registry.rules_dir), passed_versions(ctx), serve=True
    )
    if checked.errors:
        with ctx.db.transaction() as s:
            journal(s, actor, "rules.reload", "rules", "failed", errors=len(checked.errors))
        raise Invalid(
            "invalid_rules",
            "规则目录有错误，未加载；当前规则继续使用",
            {f"{e.file}:{e.line}:{e.column}": [e.message] for e in checked.errors},
        )
    if checked.failing:
        with ctx.db.transaction() as s:
            journal(
                s,
                actor,
                "rules.reload",
                "rules",
                "failed",
                failing=[f"{c.at} {c.name}" for c in checked.failing][:100],
            )
        fields: dict = {}
        for c in checked.failing:
            fields.setdefault(c.at, []).append(f"{c.name}：{'；'.join(c.problems)}")
        raise Invalid(
            "failing_tests",
            f"规则目录有 {len(checked.failing)} 个测试用例未通过，未加载；当前规则继续使用",
            fields,
        )
    changes = ctx.registry.swap(kept_published(ctx, checked.schemes))
    _release_unserved(ctx, checked)
    _remember_passed(ctx, actor, checked)
    generation = publish_rules(ctx, actor)
    with ctx.db.transaction() as s:
        journal(
            s,
            actor,
            "rules.reload",
            "rules",
            "ok",
            changes={k: list(v) for k, v in changes.items()},
            rule_set=generation,
        )
    return {
        "changes": {k: {"from": v[0], "to": v[1]} for k, v in changes.items()},
        "rule_set": generation,
    }


def rule_versions(ctx: Context, actor: Actor) -> list[dict]:
    check(ctx.db, actor, "rules.read", "rules")
    current = {s.version for s in ctx.registry.schemes().values()}
    with ctx.db.transaction() as s:
        rows = list(
            s.execute(
                select(
                    RuleVersion.version,
                    RuleVersion.scheme_id,
                    RuleVersion.title,
                    RuleVersion.loaded_at,
                ).order_by(RuleVersion.loaded_at)
            )
        )
    return [
        {
            "version": v,
            "scheme": sid,
            "title": t,
            "loaded_at": at.isoformat(),
            "serving": v in current,
        }
        for v, sid, t, at in rows
    ]


def compare_rule_versions(ctx: Context, actor: Actor, old: str, new: str) -> dict:
    """What changed from one archived (or served) scheme version to another, grouped by clause
    (``domain.compare``): any two versions, of one scheme's years or of two schemes."""
    from .domain.compare import compare

    check(ctx.db, actor, "rules.read", "rules")
    a, b = scheme_by_version(ctx, old), scheme_by_version(ctx, new)
    groups = compare(a, b)
    return {
        "from": _version_head(a),
        "to": _version_head(b),
        "count": sum(len(g.differences) for g in groups),
        "groups": to_data(groups),
    }


def _version_head(scheme: Scheme) -> dict:
    return {
        "version": scheme.version,
        "scheme": scheme.id,
        "title": scheme.title,
        "year": scheme.year,
    }
