"""The service layer: what the API (and later the admin page) can do.

Each function takes plain values and the application's ``Context`` and does
one unit of work: checks access, calls the scoring core, and writes in one
transaction (with its journal entry), or raises ``ApiError``.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from werkzeug.security import check_password_hash, generate_password_hash

from .access import Actor, check, check_own_unit, journal, new_token
from .db import (
    Database,
    JournalEntry,
    RuleSet,
    RuleVersion,
    Score,
    Submission,
    Unit,
    User,
    is_unit_code,
)
from .domain.facts import InvalidFacts, unstorable, validate_facts
from .domain.grading import rank_units
from .domain.model import Scheme
from .domain.scoring import GradeVetoResult, ScoreResult, score_units
from .domain.trace import to_data
from .engine.pool import EngineUnavailable
from .errors import ApiError
from .registry import Registry
from .rulefiles import RuleSetError, contained
from .rulefiles.loader import load_files, path_problems, shown_name

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
            raise ApiError(404, "unknown_rules_version", f"没有版本为 {version[:16]} 的规则")
        files = dict(row.files)
    scheme = load_files(files, folder)
    if scheme.version != version:  # pragma: no cover - the hash covers exactly these files
        raise ApiError(500, "rules_version_mismatch", "存档的规则文件与版本号不符")
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
                row = RuleSet(
                    follows=latest.id if latest is not None else 0,
                    schemes=served,
                    actor=by.username,
                )
                s.add(row)
                s.flush()
                generation = row.id
                before = _version_map(latest.schemes) if latest is not None else {}
                changes = {
                    sid: [before.get(sid), entry["version"]]
                    for sid, entry in served.items()
                    if before.get(sid) != entry["version"]
                }
                changes.update({sid: [v, None] for sid, v in before.items() if sid not in served})
                journal(s, by, "rules.publish", f"rule_set:{generation}", "ok", changes=changes)
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
        raise ApiError(
            503, "rules_busy", "规则正在被其他进程发布，请稍后重试", headers={"Retry-After": "1"}
        )
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
        except (RuleSetError, ApiError) as err:
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
        raise ApiError(
            404,
            "unknown_scheme",
            f"没有编号为“{scheme_id}”的细则",
            {"scheme": [f"可用：{'、'.join(ctx.registry.schemes())}"]},
        )
    return scheme


# --- signing in, and the journal ---------------------------------------------------------

_NO_USER_HASH: list = []  # a password hash to check when there is no such user: the same work either way


def authenticate(ctx: Context, username: str, password: str) -> User | None:
    """The active user whose Werkzeug password hash matches; None otherwise, after the same work
    for an unknown user as for a wrong password (the time taken tells nothing)."""
    user = None
    if not unstorable(username):  # a NUL would make PostgreSQL refuse the query itself
        with ctx.db.transaction() as s:
            user = s.scalar(select(User).where(User.username == username, User.active.is_(True)))
    if user is None or not user.password_hash:
        if not _NO_USER_HASH:
            _NO_USER_HASH.append(generate_password_hash(secrets.token_hex(16)))
        check_password_hash(_NO_USER_HASH[0], password)
        return None
    return user if check_password_hash(user.password_hash, password) else None


def issue_token(ctx: Context, username: str, password: str) -> dict:
    """A new API token for the user; 401, the same for an unknown user as for a wrong password."""
    user = authenticate(ctx, username, password)
    if user is None:
        raise ApiError(
            401, "bad_credentials", "用户名或密码不对", {"password": ["用户名或密码不对"]}
        )
    with ctx.db.transaction() as s:
        unit = s.get(Unit, user.unit_id) if user.unit_id else None
    return {
        "token": new_token(ctx.db, user.id, "sign-in"),
        "role": user.role,
        "unit": unit.code if unit else None,
    }


def read_journal(ctx: Context, actor: Actor, limit: int = 500) -> list[JournalEntry]:
    """The newest entries of the journal: every write and every denial."""
    check(ctx.db, actor, "journal.read", "journal")
    with ctx.db.transaction() as s:
        return list(s.scalars(select(JournalEntry).order_by(JournalEntry.id.desc()).limit(limit)))


# --- scoring -------------------------------------------------------------------------


def _invalid(err: InvalidFacts) -> ApiError:
    fields: dict = {}
    for e in err.errors:
        fields.setdefault(f"facts.{e.field}", []).append(e.message)
    return ApiError(
        422, "invalid_facts", "事实有误：" + "；".join(str(e) for e in err.errors), fields
    )


def _check_facts(scheme: Scheme, facts) -> dict:
    try:
        return validate_facts(scheme, facts)
    except InvalidFacts as err:
        raise _invalid(err) from None


def _score(ctx: Context, scheme: Scheme, unit: str, facts: dict) -> ScoreResult:
    """The score of ``facts``; the core checks them first (a 422 naming each bad field)."""
    try:
        return score_units(scheme, {unit: facts}, ctx.engine, ctx.engine.name, explain=True)[0]
    except InvalidFacts as err:
        raise _invalid(err) from None
    except EngineUnavailable as err:
        raise ApiError(
            503,
            "engine_unavailable",
            err.message,
            incident=err.incident,
            headers={"Retry-After": "1"},
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
        raise ApiError(404, "unknown_unit", f"没有代码为“{code}”的单位")
    return unit


def list_units(ctx: Context, actor: Actor) -> list[Unit]:
    check(ctx.db, actor, "units.read", "units")
    with ctx.db.transaction() as s:
        query = select(Unit).order_by(Unit.code)
        if actor.role == "submitter":
            query = query.where(Unit.id == actor.unit_id)
        return list(s.scalars(query))


def read_unit(ctx: Context, actor: Actor, code: str) -> Unit:
    return _unit_for(ctx, actor, "units.read", code, f"unit:{code}")


def create_unit(ctx: Context, actor: Actor, code: str, name: str, kind: str, district: str) -> Unit:
    check(ctx.db, actor, "units.write", f"unit:{code}")
    try:
        with ctx.db.transaction() as s:
            unit = Unit(code=code, name=name, kind=kind, district=district)
            s.add(unit)
            s.flush()
            journal(s, actor, "units.write", f"unit:{code}", "ok", name=name)
    except IntegrityError:
        raise ApiError(
            409, "duplicate_unit", f"单位代码“{code}”已存在", {"code": ["已存在"]}
        ) from None
    return unit


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
    scheme = current_scheme(ctx, scheme_id)
    values = _check_facts(scheme, facts)
    unknown = [name for name in evidence if name not in scheme.facts]
    if unknown:
        raise ApiError(
            422,
            "invalid_evidence",
            "佐证材料对应的事实不存在",
            {f"evidence.{n}": ["不是本细则声明的事实"] for n in unknown},
        )
    reasons = {name: text.strip() for name, text in (reasons or {}).items() if text.strip()}
    unknown = [name for name in reasons if name not in scheme.facts]
    if unknown:
        raise ApiError(
            422,
            "invalid_reasons",
            "更正理由对应的事实不存在",
            {f"reasons.{n}": ["不是本细则声明的事实"] for n in unknown},
        )
    try:
        with ctx.db.transaction() as s:
            latest = _latest_version(s, unit.id, scheme_id)
            if latest:
                if if_match is None:
                    raise ApiError(
                        428,
                        "if_match_required",
                        f"已有第{latest}版，修改须带 If-Match: {etag(latest)}",
                        {"If-Match": [f"应为 {etag(latest)}"]},
                    )
                if if_match.strip() != etag(latest):
                    raise ApiError(
                        409,
                        "version_conflict",
                        f"提交基于 {if_match}，但当前已是第{latest}版；请重新读取后再改",
                        {"If-Match": [f"当前为 {etag(latest)}"]},
                        headers={"ETag": etag(latest)},
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
                        raise ApiError(
                            422,
                            "reason_required",
                            "更正已提交的事实须写明理由",
                            {"reason": ["更正时必填"]},
                        )
                    if unexplained:
                        raise ApiError(
                            422,
                            "reason_required",
                            "更正的每一项都须写明理由（逐项填写，或填写总的更正理由）",
                            {f"reasons.{n}": ["改动了此项，须写明理由"] for n in unexplained},
                        )
            elif if_match not in (None, "*") and if_match.strip() != etag(0):
                raise ApiError(
                    409, "version_conflict", "还没有任何提交", {"If-Match": ["当前没有版本"]}
                )
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
            )
            s.add(row)
            s.flush()
            journal(s, actor, "submissions.write", target, "ok", version=latest + 1, role=role)
            if ctx.pause_in_submit:  # tests: a window in which to kill the server mid-transaction
                s.flush()
                time.sleep(ctx.pause_in_submit)
    except IntegrityError:  # a concurrent writer took this version number first
        raise ApiError(
            409, "version_conflict", "另一位用户刚刚提交了新版本，请重新读取后再改"
        ) from None
    return row


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
    with ctx.db.transaction() as s:
        return list(s.scalars(query))


def history(ctx: Context, actor: Actor, unit_code: str, scheme_id: str) -> list[Submission]:
    """Every version of a unit's facts for a scheme, oldest first."""
    return _submissions(ctx, actor, unit_code, scheme_id)


def latest_submission(ctx: Context, actor: Actor, unit_code: str, scheme_id: str) -> Submission:
    rows = _submissions(ctx, actor, unit_code, scheme_id, latest=True)
    if not rows:
        raise ApiError(404, "no_submission", "该单位还没有提交这套细则的事实")
    return rows[0]


def get_submission(
    ctx: Context, actor: Actor, unit_code: str, scheme_id: str, version: int
) -> Submission:
    rows = _submissions(ctx, actor, unit_code, scheme_id, versions=[version])
    if not rows:
        raise ApiError(404, "unknown_submission", f"没有第{version}版提交")
    return rows[0]


def compare(ctx: Context, actor: Actor, unit_code: str, scheme_id: str, a: int, b: int) -> dict:
    rows = {r.version: r for r in _submissions(ctx, actor, unit_code, scheme_id, versions=[a, b])}
    for v in (a, b):
        if v not in rows:
            raise ApiError(
                404,
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


def compute_score(
    ctx: Context, actor: Actor, unit_code: str, scheme_id: str, version: int | None = None
) -> Score:
    target = f"unit:{unit_code}/scheme:{scheme_id}"
    unit = _unit_for(ctx, actor, "scores.write", unit_code, target)
    scheme = current_scheme(ctx, scheme_id)
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
        raise ApiError(
            404 if version else 409,
            "no_submission",
            f"没有第{version}版提交" if version else "该单位还没有提交这套细则的事实",
        )
    result = _score(ctx, scheme, unit.name, submission.facts)
    trace = to_data(result)
    with ctx.db.transaction() as s:
        _archive(s, scheme)
        row = Score(
            unit_id=unit.id,
            scheme_id=scheme_id,
            submission_id=submission.id,
            submission_version=submission.version,
            rules_version=scheme.version,
            engine_version=result.matcher,
            total=result.total,
            grade=result.grade,
            complete=result.complete,
            trace=trace,
            computed_by=actor.user_id,
        )
        s.add(row)
        s.flush()
        journal(
            s,
            actor,
            "scores.write",
            target,
            "ok",
            score=row.id,
            total=str(result.total),
            rules_version=scheme.version,
            submission_version=submission.version,
        )
    return row


def _visible_score(
    ctx: Context, actor: Actor, score_id: int, permission: str = "scores.read"
) -> tuple[Score, Unit]:
    check(ctx.db, actor, permission, f"score:{score_id}")  # before the lookup: no existence oracle
    with ctx.db.transaction() as s:
        row = s.get(Score, score_id)
        unit = s.get(Unit, row.unit_id) if row else None
    check_own_unit(
        ctx.db, actor, permission, f"score:{score_id}", unit
    )  # 403 for a missing one too
    if row is None:
        raise ApiError(404, "unknown_score", f"没有编号为 {score_id} 的评分")
    return row, unit


def get_score(ctx: Context, actor: Actor, score_id: int) -> tuple[Score, Unit]:
    """A stored score and its unit."""
    return _visible_score(ctx, actor, score_id)


def list_scores(ctx: Context, actor: Actor, unit_code: str, scheme_id: str) -> list[Score]:
    unit = _unit_for(ctx, actor, "scores.read", unit_code, f"unit:{unit_code}/scheme:{scheme_id}")
    with ctx.db.transaction() as s:
        return list(
            s.scalars(
                select(Score)
                .where(Score.unit_id == unit.id, Score.scheme_id == scheme_id)
                .order_by(Score.id)
            )
        )


def replay(ctx: Context, actor: Actor, score_id: int) -> dict:
    """Recompute a stored score from its submission under its own rules version."""
    row, unit = _visible_score(ctx, actor, score_id, "scores.replay")
    # the folder the trace names the clause files by (archived versions load from memory, so it
    # is only a name: replay names them the same way)
    first_file = next((c.get("file", "") for c in row.trace.get("clauses", [])), "")
    folder = first_file.rsplit("/clauses/", 1)[0] if "/clauses/" in first_file else "scheme"
    scheme = scheme_by_version(ctx, row.rules_version, folder)
    with ctx.db.transaction() as s:
        submission = s.get(Submission, row.submission_id)
    result = _score(ctx, scheme, unit.name, submission.facts)
    again = to_data(result)
    stored = dict(row.trace)
    differences = sorted(k for k in set(stored) | set(again) if stored.get(k) != again.get(k))
    return {
        "score": row.id,
        "rules_version": row.rules_version,
        "reproduced": not differences,
        "stored_total": stored.get("total"),
        "replayed_total": again.get("total"),
        "differences": differences,
    }


# --- ranking --------------------------------------------------------------------------


@dataclass
class _Ranked:
    unit: str
    total: Decimal
    grade_vetoes: list
    grade: str | None = None
    distinctions: list = None
    grade_explanation: str = ""


def ranking(ctx: Context, actor: Actor, scheme_id: str) -> dict:
    check(ctx.db, actor, "ranking.read", f"scheme:{scheme_id}")
    scheme = current_scheme(ctx, scheme_id)
    with ctx.db.transaction() as s:
        latest = (
            select(Score.unit_id, func.max(Score.id).label("id"))
            .where(Score.scheme_id == scheme_id)
            .group_by(Score.unit_id)
            .subquery()
        )
        rows = list(
            s.execute(
                select(Score, Unit)
                .join(latest, Score.id == latest.c.id)
                .join(Unit, Unit.id == Score.unit_id)
            )
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
        ranked.append(_Ranked(unit.name, Decimal(score.trace["total"]), vetoes))
        info[unit.name] = {
            "unit_code": unit.code,
            "score_id": score.id,
            "rules_version": score.rules_version,
            "submission_version": score.submission_version,
            "complete": score.complete,
        }
    entries = rank_units(scheme, ranked)
    return {
        "scheme": scheme.id,
        "version": scheme.version,
        "method": scheme.grading.method,
        "entries": [
            dict(
                to_data(e),
                **info[e.unit],
                current_rules=info[e.unit]["rules_version"] == scheme.version,
            )
            for e in entries
        ],
    }


# --- rules -------------------------------------------------------------------------------


def validate_rules(ctx: Context, actor: Actor, files: dict) -> dict:
    """Check a candidate scheme folder ({relative path: text}) without loading it."""
    check(ctx.db, actor, "rules.validate", "rules")
    for rel, problem in path_problems(files)[:1]:
        shown = shown_name(rel)
        raise ApiError(
            422, "invalid_path", f"文件路径“{shown}”不可用", {f"files.{shown}": [problem]}
        )
    try:
        # in a child process: an upload that crashes or hangs the parser cannot take this worker
        schemes = contained.load_tree(files)
    except RuleSetError as err:
        return {
            "valid": False,
            "errors": [
                {"file": e.file, "line": e.line, "column": e.column, "message": e.message}
                for e in err.errors
            ],
        }
    return {
        "valid": True,
        "errors": [],
        "schemes": [
            {"id": s.id, "version": s.version, "clauses": len(s.clauses)} for s in schemes.values()
        ],
    }


def reload_rules(ctx: Context, actor: Actor) -> dict:
    check(ctx.db, actor, "rules.reload", "rules")
    try:
        # loaded in a child process (see validate_rules), served here all-or-nothing
        changes = ctx.registry.swap(contained.load_all(ctx.registry.rules_dir))
    except RuleSetError as err:
        with ctx.db.transaction() as s:
            journal(s, actor, "rules.reload", "rules", "failed", errors=len(err.errors))
        raise ApiError(
            422,
            "invalid_rules",
            "规则目录有错误，未加载；当前规则继续使用",
            {f"{e.file}:{e.line}:{e.column}": [e.message] for e in err.errors},
        ) from None
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
