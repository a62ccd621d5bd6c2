"""Every endpoint × every role × own / other unit (and anonymous): nobody reads or writes where they do not belong.

The matrix is data: ``MATRIX`` names, for every route of the application under
``/api``, the permission it needs, how to fill its URL for "own unit" (gucun,
the submitter's unit) and "other unit" (dachang), a valid request body, and the
tables an allowed call may change.  The expected outcome of each call is
derived from ``service.access.PERMISSIONS`` and ``OWN_UNIT_ONLY`` — never from
running the code:

    anonymous (no token, or a token nobody holds)  -> 401 (except the public routes)
    a role without the permission                  -> 403
    a submitter on another unit's data             -> 403
    anyone but an admin on another user's token    -> 403
    allowed                                        -> 2xx (the set-up makes the data exist)

A route of the application without an entry here fails the test, so a new
endpoint cannot ship without a decision about who may call it.

Besides the status, each call is checked against the database: every denial
leaves exactly one journal row (outcome "denied", the actor, the role, the
action = the permission, the target; for a caller without a valid token,
refused before the request body is read, the action "authenticate" and the
request line: only the first of its client and minute, the others counted in
``denial_counts`` instead, so anonymous traffic cannot grow the journal by a row
per request), and changes no data table; an allowed
call changes only the tables its entry declares and journals exactly the write
it made (or nothing, for a read).  The auditor's calls, taken together, change
nothing and leave no journal row but denials.  A second test asks about units
and scores that do not exist: who may not ask gets 401/403 there too, and so
does a unit submitter asking about anything but their own unit, not a 404 that
would tell them what exists.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from service import jobs
from service.access import OTHERS_TOKENS, OWN_UNIT_ONLY, PERMISSIONS, ROLES, Actor, issue
from service.db import (
    DeadlineChange,
    DenialCount,
    EvidenceBlob,
    EvidenceFile,
    JournalEntry,
    Round,
    RoundUnit,
    RuleVersion,
    Score,
    Submission,
    Token,
    Unit,
    User,
)
from service.operations import etag

from .. import evidence_samples
from ..conftest import MINIMAL
from .conftest import USERS

SCHEME = "gumeilu-2022"
FACTS = {"leader_evaluation_score": 4.5, "leader_evaluation_reason": "工作扎实"}
OWN, OTHER = "gucun", "dachang"  # the submitter belongs to gucun
ANONYMOUS = "（未登录）"  # the journal's name for a caller without a valid token
PASSWORD = "secret"  # tests/api/conftest.py gives every seeded user this password

#: the routes anybody may call, signed in or not
PUBLIC = {("GET", "/api/health"), ("POST", "/api/auth/token"), ("GET", "/api/openapi.json")}

DATA_TABLES = {
    "units": Unit,
    "users": User,
    "tokens": Token,
    "rule_versions": RuleVersion,
    "submissions": Submission,
    "scores": Score,
    "rounds": Round,
    "round_deadline_changes": DeadlineChange,
    "evidence_files": EvidenceFile,
    "evidence_blobs": EvidenceBlob,
}


@dataclass(frozen=True)
class Case:
    """One kind of call to one route."""

    permission: str | None  # None: a public route
    body: Callable | None = None  # (call) -> JSON body
    form: Callable | None = None  # (call) -> a multipart/form-data body (fields and files)
    query: str = ""
    if_match: bool = (
        False  # send the unit's current ETag (a correction that would succeed if allowed)
    )
    writes: frozenset = field(default_factory=frozenset)  # tables an allowed call may change
    # the actions of the "ok" journal rows an allowed call writes, in order: one action, a tuple of
    # them (a step of the review cycle journals the unit's move and the write), or a function of
    # the call giving a tuple
    journals: str | tuple | Callable | None = None
    reads: bool = (
        False  # reads a unit's data: journaled (permission, "ok") but by its own submitter
    )
    label: str = ""
    # who the "ok" journal row names, when not the caller: a sign-in names who signed in
    journal_actor: Callable | None = None
    # where the review cycle must stand for an allowed call to succeed: (the unit's state in the
    # round, the round's stage) -- set before the call, so each call is judged on access alone
    state: tuple = ("submitted", "open")


def _rules_files() -> dict:
    return {
        p.relative_to(MINIMAL).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(MINIMAL.rglob("*.yaml"))
    }


_unit_serial = iter(range(1, 10_000))


def _new_unit(_call) -> dict:
    return {
        "code": f"matrix-{next(_unit_serial)}",
        "name": "测试新单位",
        "kind": "park",
        "district": "宝山区",
    }


def _evidence_form(call) -> dict:
    # the same bytes every time: the first upload for a unit stores them, the others are the same
    # file (200), so each allowed call succeeds whether or not one made it before
    return {
        "fact": "leader_evaluation_score",
        "file": (io.BytesIO(evidence_samples.pdf()), "证明.pdf"),
    }


def _submission(role: str):
    return lambda call: {"role": role, "facts": FACTS, "reason": f"{call.username or '匿名'}更正"}


#: (method, rule of app.url_map without converters) -> the calls to make; one entry per route, no more, no fewer
MATRIX: dict[tuple[str, str], tuple[Case, ...]] = {
    ("GET", "/api/health"): (Case(None),),
    ("GET", "/api/openapi.json"): (Case(None),),
    ("POST", "/api/auth/token"): (
        Case(
            None,
            body=lambda call: {"username": call.username or "admin", "password": PASSWORD},
            writes=frozenset({"tokens"}),
            journals="sign-in",
            journal_actor=lambda call: call.username or "admin",
        ),
    ),
    ("GET", "/api/auth/tokens"): (Case("tokens.read"),),
    ("DELETE", "/api/auth/tokens/<token_id>"): (Case("tokens.revoke", journals="tokens.revoke"),),
    ("POST", "/api/users/<username>/disable"): (Case("users.write", journals="users.disable"),),
    ("POST", "/api/users/<username>/enable"): (Case("users.write", journals="users.enable"),),
    ("GET", "/api/schemes"): (Case("schemes.read"),),
    ("GET", "/api/schemes/<scheme_id>"): (Case("schemes.read"),),
    ("GET", "/api/schemes/<scheme_id>/facts-schema"): (Case("schemes.read"),),
    ("POST", "/api/schemes/<scheme_id>/evaluate"): (
        Case("evaluate", body=lambda call: {"facts": FACTS}),
    ),
    ("GET", "/api/schemes/<scheme_id>/ranking"): (Case("ranking.read"),),
    ("GET", "/api/units"): (Case("units.read"),),
    ("POST", "/api/units"): (
        Case("units.write", body=_new_unit, writes=frozenset({"units"}), journals="units.write"),
    ),
    ("GET", "/api/units/<code>"): (Case("units.read"),),
    ("GET", "/api/units/<code>/schemes/<scheme_id>/submissions"): (
        Case("submissions.read", reads=True),
    ),
    ("POST", "/api/units/<code>/schemes/<scheme_id>/submissions"): (
        Case(
            "submissions.write.self",
            body=_submission("self"),
            if_match=True,
            writes=frozenset({"submissions"}),
            journals=("rounds.submit_self", "submissions.write"),
            label="self",
            state=("draft", "open"),
        ),
        Case(
            "submissions.write.review",
            body=_submission("review"),
            if_match=True,
            writes=frozenset({"submissions"}),
            journals=("rounds.review", "submissions.write"),
            label="review",
        ),
    ),
    ("GET", "/api/units/<code>/schemes/<scheme_id>/submissions/latest"): (
        Case("submissions.read", reads=True),
    ),
    ("GET", "/api/units/<code>/schemes/<scheme_id>/submissions/<version>"): (
        Case("submissions.read", reads=True),
    ),
    ("GET", "/api/units/<code>/schemes/<scheme_id>/compare"): (
        Case("submissions.read", query="?from=1&to=1", reads=True),
    ),
    ("POST", "/api/units/<code>/schemes/<scheme_id>/scores"): (
        Case(
            "scores.write",
            body=lambda call: {},  # official for a reviewer or an admin, a preview for the unit
            writes=frozenset({"scores", "rule_versions"}),
            journals=lambda call: (
                ("rounds.compute_official", "scores.write")
                if call.role in ("admin", "reviewer")
                else ("scores.write",)
            ),
            state=("reviewed", "open"),
        ),
    ),
    ("GET", "/api/units/<code>/schemes/<scheme_id>/scores"): (Case("scores.read", reads=True),),
    ("POST", "/api/units/<code>/schemes/<scheme_id>/evidence"): (
        Case(
            "evidence.write",
            form=_evidence_form,
            writes=frozenset({"evidence_files", "evidence_blobs"}),
            journals="evidence.upload",
        ),
    ),
    ("GET", "/api/units/<code>/schemes/<scheme_id>/evidence"): (
        Case("submissions.read", reads=True),
    ),
    ("GET", "/api/evidence/<evidence_id>"): (Case("submissions.read", reads=True),),
    ("GET", "/api/scores/<score_id>"): (Case("scores.read", reads=True),),
    ("POST", "/api/scores/<score_id>/replay"): (Case("scores.replay", reads=True),),
    ("POST", "/api/rules/validate"): (
        Case("rules.validate", body=lambda call: {"files": _rules_files()}),
    ),
    ("POST", "/api/rules/reload"): (
        Case("rules.reload", writes=frozenset({"rule_versions"}), journals="rules.reload"),
    ),
    ("GET", "/api/rules/versions"): (Case("rules.read"),),
    ("GET", "/api/journal"): (Case("journal.read"),),
    ("GET", "/api/journal/verify"): (Case("journal.read", journals="history.verify"),),
    ("GET", "/api/rounds"): (Case("rounds.read"),),
    ("POST", "/api/rounds"): (
        Case(
            "rounds.write",
            body=lambda call: _new_round(),
            writes=frozenset({"rounds", "rule_versions"}),
            journals="rounds.open",
        ),
    ),
    ("GET", "/api/rounds/<round_id>"): (Case("rounds.read"),),
    ("POST", "/api/rounds/<round_id>/deadlines"): (
        Case(
            "rounds.write",
            body=lambda call: {
                "deadline": "publication_end",
                "new": f"2099-06-{next(_day_serial) % 28 + 1:02d}T17:00:00+08:00",
                "reason": "延期",
            },
            writes=frozenset({"round_deadline_changes"}),
            journals="rounds.deadline",
        ),
    ),
    ("GET", "/api/rounds/<round_id>/units"): (Case("rounds.read"),),
    ("GET", "/api/rounds/<round_id>/units/<code>"): (Case("rounds.read"),),
    ("GET", "/api/rounds/<round_id>/units/<code>/previous-year"): (
        Case("submissions.read", reads=True),
    ),
    ("POST", "/api/rounds/<round_id>/units/<code>/return"): (
        Case("rounds.review", body=lambda call: {"reason": "材料不全"}, journals="rounds.return"),
    ),
    ("POST", "/api/rounds/<round_id>/units/<code>/review-complete"): (
        Case("rounds.review", journals="rounds.complete_review", state=("in_review", "open")),
    ),
    ("POST", "/api/rounds/<round_id>/units/<code>/reopen"): (
        Case(
            "rounds.review",
            body=lambda call: {"reason": "复核"},
            journals="rounds.reopen_review",
            state=("reviewed", "open"),
        ),
    ),
    # the round as a whole: one journal row per unit it moves (the two the set-up put in the
    # round) and one for the round
    ("POST", "/api/rounds/<round_id>/publish"): (
        Case("rounds.publish", journals=("rounds.publish",) * 3, state=("reviewed", "open")),
    ),
    ("POST", "/api/rounds/<round_id>/finalize"): (
        Case("rounds.publish", journals=("rounds.finalize",) * 3, state=("published", "closed")),
    ),
    ("POST", "/api/jobs"): (
        Case(
            "scores.recompute",
            body=lambda call: {"kind": "scores.recompute", "params": {"scheme": SCHEME}},
            journals="jobs.start",
            label="scores.recompute",
        ),
    ),
    ("GET", "/api/jobs"): (Case("jobs.read"),),
    ("GET", "/api/jobs/<job_id>"): (Case("jobs.read"),),
    ("POST", "/api/jobs/<job_id>/cancel"): (Case("jobs.cancel", journals="jobs.cancel"),),
}

_year_serial = iter(range(2030, 2100))
_day_serial = iter(range(10_000))


def _new_round() -> dict:
    return {
        "scheme": "baoshan-2022-c1",
        "year": next(_year_serial),
        "self_deadline": "2099-01-01T17:00:00+08:00",
        "review_deadline": "2099-02-01T17:00:00+08:00",
        "publication_start": "2099-02-02T09:00:00+08:00",
        "appeal_deadline": "2099-02-09T17:00:00+08:00",
        "publication_end": "2099-02-12T17:00:00+08:00",
    }


def _token_of(call, world) -> str:
    """A fresh token to revoke: the caller's own, or another user's (never the one the caller
    is using, which the matrix goes on using)."""
    if call.scope == "own" and call.username is not None:
        holder = call.username
    else:
        holder = "reviewer" if call.username != "reviewer" else "editor"
    _secret, row = issue(world["db"], world["user_ids"][holder], "matrix", 1)
    return str(row.id)


_user_serial = iter(range(1, 10_000))


def _throwaway_user(call, world) -> str:
    """A user of its own for each call that disables or enables one."""
    username = f"matrix-user-{next(_user_serial)}"
    with world["db"].transaction() as s:
        s.add(User(username=username, display_name=username, role="auditor", active=True))
    return username


def _queued_job(call, world) -> str:
    """A job of its own for each call that reads or cancels one, queued by the admin."""
    admin = Actor(world["user_ids"]["admin"], "admin", "admin", None)
    job = jobs.start_job(world["ctx"], admin, "scores.recompute", {"scheme": SCHEME})
    return str(job["id"])


#: how to fill each URL parameter, given the call (and the unit it is about)
PARAMS = {
    "code": lambda call, world: call.unit,
    "scheme_id": lambda call, world: SCHEME,
    "version": lambda call, world: "1",
    "score_id": lambda call, world: str(world["scores"][call.unit]),
    "evidence_id": lambda call, world: str(world["evidence"][call.unit]),
    "token_id": _token_of,
    "username": _throwaway_user,
    "round_id": lambda call, world: str(world["round"]),
    "job_id": _queued_job,
}
#: parameters that make a route about one unit's data
UNIT_PARAMS = {"code", "score_id", "evidence_id"}
OWNED_PARAMS = {
    "token_id"
}  # parameters that make a route about the caller's own thing or another's


@dataclass
class Call:
    method: str
    rule: str
    case: Case
    username: str | None  # None: anonymous
    token: str | None  # what goes in the Authorization header
    role: str | None
    scope: str  # "own" | "other" | "-" (the route is not about one unit)
    unit: str | None

    @property
    def name(self) -> str:
        who = self.username or ("anonymous" if self.token is None else "forged-token")
        label = f"[{self.case.label}]" if self.case.label else ""
        return f"{self.method} {self.rule}{label} as {who} on {self.scope}"


def expected(call: Call):
    """The outcome the policy prescribes: 401, 403 or "allowed"."""
    if call.case.permission is None:
        return "allowed"
    if call.role is None:
        return 401
    if call.role not in PERMISSIONS[call.case.permission]:
        return 403
    if call.scope == "other":
        if "token_id" in _params(call.rule):
            if call.role not in OTHERS_TOKENS:
                return 403
        elif call.role in OWN_UNIT_ONLY:
            return 403
    return "allowed"


PARAMETER = re.compile(r"<(?:[^:>]+:)?([^:>]+)>")  # <name>, <int:name>, <int(max=9):name>


def api_routes(app) -> set[tuple[str, str]]:
    """(method, rule) of every route under /api, the rule written without converters: /api/scores/<score_id>."""
    return {
        (method, PARAMETER.sub(r"<\1>", rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def _params(rule: str) -> list[str]:
    return PARAMETER.findall(rule)


def build_calls(api) -> list[Call]:
    roles = {username: role for username, role, _unit in USERS}
    assert set(roles.values()) == set(ROLES), "the harness must seed one user per role"
    assert set(PERMISSIONS) == {c.permission for cases in MATRIX.values() for c in cases} - {
        None
    }, (
        "every permission of the policy is exercised by some route, and no route names an unknown one"
    )
    identities = [
        (None, None, None),
        (None, "forged-" + "x" * 40, None),
    ]  # no token; a token nobody holds
    identities += [(username, api.tokens[username], role) for username, role in roles.items()]
    calls = []
    # the auditor last, so its whole block can be checked for writes as one
    identities.sort(key=lambda ident: ident[2] == "auditor")
    for username, token, role in identities:
        for (method, rule), cases in MATRIX.items():
            about_unit = bool((UNIT_PARAMS | OWNED_PARAMS) & set(_params(rule)))
            for case in cases:
                for scope, unit in (
                    (("own", OWN), ("other", OTHER)) if about_unit else (("-", None),)
                ):
                    calls.append(Call(method, rule, case, username, token, role, scope, unit))
    return calls


def _snapshot(db) -> dict:
    """Row counts of the data tables and the last journal id, in one statement."""
    columns = [
        select(func.count()).select_from(table).scalar_subquery().label(name)
        for name, table in DATA_TABLES.items()
    ]
    columns.append(
        select(func.coalesce(func.max(JournalEntry.id), 0)).scalar_subquery().label("journal")
    )
    columns.append(
        select(func.coalesce(func.sum(DenialCount.count), 0)).scalar_subquery().label("counted")
    )
    with db.transaction() as s:
        return dict(s.execute(select(*columns)).one()._mapping)


def _journal_after(db, last: int) -> list[JournalEntry]:
    with db.transaction() as s:
        return list(
            s.scalars(select(JournalEntry).where(JournalEntry.id > last).order_by(JournalEntry.id))
        )


def _set_up(api) -> dict:
    """A submission and an official score on both units, by the admin, in the scheme's round, and
    an evidence file (a PNG: not the bytes the matrix uploads) on both units."""
    world = {"scores": {}, "evidence": {}, "round": api.round_of(SCHEME)}
    for unit in (OWN, OTHER):
        score = api.official(unit, SCHEME, FACTS)
        world["scores"][unit] = score.json["id"]
        uploaded = api.post(
            f"/api/units/{unit}/schemes/{SCHEME}/evidence",
            "admin",
            data={
                "fact": "leader_evaluation_score",
                "file": (io.BytesIO(evidence_samples.png()), "a.png"),
            },
            content_type="multipart/form-data",
        )
        assert uploaded.status_code == 201, uploaded.json
        world["evidence"][unit] = uploaded.json["id"]
    return world


def _stand(api, world, call: Call) -> None:
    """Put the cycle where the call's case needs it (the harness writes the rows directly: it is
    the access policy under test here, the cycle has tests of its own)."""
    unit_state, stage = call.case.state
    far = datetime(2099, 1, 1, tzinfo=UTC)
    past = datetime(2000, 1, 1, tzinfo=UTC)
    with api.ctx.db.transaction() as s:
        rnd = s.get(Round, world["round"])
        rnd.stage = "published" if stage == "closed" else stage
        rnd.self_deadline, rnd.review_deadline = far, far + timedelta(days=30)
        rnd.publication_start = far + timedelta(days=31)
        rnd.appeal_deadline = past if stage == "closed" else far + timedelta(days=38)
        rnd.publication_end = far + timedelta(days=40)
        if stage == "closed":  # deadlines in order, all passed but the publication's end
            rnd.self_deadline = rnd.review_deadline = rnd.publication_start = past
        for place in s.scalars(select(RoundUnit).where(RoundUnit.round_id == rnd.id)):
            place.state = unit_state
            # reviewed: the version of the unit's newest official score, and that score
            official = s.scalar(
                select(Score)
                .where(
                    Score.unit_id == place.unit_id,
                    Score.scheme_id == SCHEME,
                    Score.kind == "official",
                )
                .order_by(Score.id.desc())
                .limit(1)
            )
            place.reviewed_version = official.submission_version
            place.official_score_id = official.id


def _short(body) -> str:
    text = repr(body)
    return text if len(text) <= 300 else text[:300] + "…"


def _prepare(api, world, call: Call):
    """The request of a call, with whatever it acts on made beforehand."""
    path = call.rule
    for name in _params(call.rule):
        path = path.replace(f"<{name}>", PARAMS[name](call, world))
    headers = {}
    if call.token is not None:
        headers["Authorization"] = f"Bearer {call.token}"
    if (
        call.case.if_match
    ):  # the unit's current version, from the database (API reads are journaled)
        with api.ctx.db.transaction() as s:
            version = s.scalar(
                select(func.max(Submission.version))
                .join(Unit, Unit.id == Submission.unit_id)
                .where(Unit.code == call.unit, Submission.scheme_id == SCHEME)
            )
        headers["If-Match"] = etag(version)
    kwargs = {}
    if call.case.body is not None:
        kwargs["json"] = call.case.body(call)
    if call.case.form is not None:
        kwargs["data"], kwargs["content_type"] = call.case.form(call), "multipart/form-data"
    return path + call.case.query, headers, kwargs


def test_every_route_every_role_every_unit(api):
    routes = api_routes(api.app)
    missing, stale = routes - set(MATRIX), set(MATRIX) - routes
    assert not missing, (
        f"routes without an entry in the access matrix (decide who may call them): {sorted(missing)}"
    )
    assert not stale, f"matrix entries for routes that no longer exist: {sorted(stale)}"

    db = api.ctx.db
    world = _set_up(api)
    user_ids = {}
    with db.transaction() as s:
        for user in s.scalars(select(User)):
            user_ids[user.username] = user.id
    world.update(db=db, user_ids=user_ids, ctx=api.ctx)

    failures, denials, auditor_writes = [], 0, []
    auditor_before = None
    for call in build_calls(api):
        if call.role == "auditor" and auditor_before is None:
            auditor_before = _snapshot(db)
        want = expected(call)
        _stand(api, world, call)
        path, headers, kwargs = _prepare(api, world, call)
        before = _snapshot(db)
        response = api.client.open(path, method=call.method, headers=headers, **kwargs)
        after = _snapshot(db)
        entries = (
            _journal_after(db, before["journal"]) if after["journal"] != before["journal"] else []
        )
        status, body = response.status_code, response.get_json(silent=True)
        changed = {t for t in DATA_TABLES if after[t] != before[t]}
        problems = []
        if want == "allowed":
            if not 200 <= status < 300:
                problems.append(f"expected success, got {status}: {_short(body)}")
            if any(e.outcome == "denied" for e in entries):
                problems.append(
                    f"allowed, yet a denial was journalled: {[(e.action, e.outcome) for e in entries]}"
                )
            if changed - call.case.writes:
                problems.append(f"changed tables it may not: {sorted(changed - call.case.writes)}")
            actor = call.case.journal_actor(call) if call.case.journal_actor else call.username
            if any(e.actor != actor for e in entries):
                problems.append(f"journal rows of another actor: {[e.actor for e in entries]}")
            journals = call.case.journals
            if callable(journals):
                journals = journals(call)
            if isinstance(journals, str):
                journals = (journals,)
            wanted = [(action, "ok", actor) for action in journals or ()]
            if (
                call.case.reads and call.role not in OWN_UNIT_ONLY
            ):  # a read of a unit's data by others
                wanted = [(call.case.permission, "ok", actor)]
            if [(e.action, e.outcome, e.actor) for e in entries] != wanted:
                problems.append(
                    f"journal rows {[(e.action, e.outcome, e.actor) for e in entries]}, expected {wanted}"
                )
        else:
            denials += 1
            if status != want:
                problems.append(f"expected {want}, got {status}: {_short(body)}")
            else:
                code = "unauthenticated" if want == 401 else "forbidden"
                if set(body or {}) != {"error"} or body["error"]["code"] != code:
                    problems.append(
                        f"a denial must be the error shape only, code {code}: {_short(body)}"
                    )
                if want == 401 and response.headers.get("WWW-Authenticate") != "Bearer":
                    problems.append("401 without WWW-Authenticate: Bearer")
            if changed:
                problems.append(f"a denied call changed {sorted(changed)}")
            if call.role is None:  # anonymous: counted, and journaled if first of its window
                if after["counted"] != before["counted"] + 1:
                    problems.append("an anonymous refusal was not counted in denial_counts")
                if len(entries) > 1:
                    problems.append(f"more than one journal row: {[e.action for e in entries]}")
            elif len(entries) != 1:
                problems.append(
                    f"expected exactly one journal row, got {[(e.action, e.outcome) for e in entries]}"
                )
            if call.role is None and entries:  # refused before the body is read: the request
                e = entries[0]
                sent = f"{call.method} {response.request.path}"
                if (e.outcome, e.actor, e.role, e.action, e.target) != (
                    "denied",
                    ANONYMOUS,
                    "",
                    "authenticate",
                    sent,
                ):
                    problems.append(
                        f"journal row {(e.outcome, e.actor, e.role, e.action, e.target)}, expected {sent}"
                    )
            elif call.role is not None and entries:
                e = entries[0]
                if (e.outcome, e.actor, e.role, e.action) != (
                    "denied",
                    call.username,
                    call.role,
                    call.case.permission,
                ):
                    problems.append(f"journal row {(e.outcome, e.actor, e.role, e.action)}")
                if (
                    call.unit is not None
                    and "code" in _params(call.rule)
                    and f"unit:{call.unit}" not in e.target
                ):
                    problems.append(f"journal target {e.target!r} does not name unit {call.unit}")
                if (
                    "score_id" in _params(call.rule)
                    and f"score:{world['scores'][call.unit]}" != e.target
                ):
                    problems.append(f"journal target {e.target!r} does not name the score")
                if (
                    "evidence_id" in _params(call.rule)
                    and f"evidence:{world['evidence'][call.unit]}" != e.target
                ):
                    problems.append(f"journal target {e.target!r} does not name the file")
        if call.role == "auditor" and call.case.writes - {
            "tokens"
        }:  # signing in is not a write of data
            auditor_writes.append((call.name, status))
        if problems:
            failures.append(f"{call.name}: " + "; ".join(problems))
    assert not failures, f"{len(failures)} calls broke the policy:\n" + "\n".join(failures)
    assert denials > 100  # the matrix is not vacuous

    # the auditor wrote nothing: every write attempt denied, nothing authored, no journal row but denials
    assert auditor_writes and all(status == 403 for _name, status in auditor_writes), auditor_writes
    after = _snapshot(db)
    # signing in adds a token, and the harness adds a user for each call that disables one;
    # nothing else may change
    data = set(DATA_TABLES) - {"tokens", "users"}
    assert {t: after[t] for t in data} == {t: auditor_before[t] for t in data}
    auditor = user_ids["auditor"]
    with db.transaction() as s:
        assert s.scalar(
            select(func.count()).where(~User.username.startswith("matrix-user-"))
        ) == len(user_ids)
        assert s.scalar(select(func.count()).where(Submission.author_id == auditor)) == 0
        assert s.scalar(select(func.count()).where(Score.computed_by == auditor)) == 0
        outcomes = set(
            s.execute(
                select(JournalEntry.action, JournalEntry.outcome).where(
                    JournalEntry.actor == "auditor", JournalEntry.outcome != "denied"
                )
            ).all()
        )
    # besides denials: what the auditor did to their own credentials (signing in, revoking a token
    # of their own), its reads of units' data and its checks of the history chain; nothing written
    reads = {c.permission for cases in MATRIX.values() for c in cases if c.reads}
    assert {outcome for _action, outcome in outcomes} == {"ok"}
    done = {action for action, _outcome in outcomes}
    assert (
        {"sign-in", "tokens.revoke"}
        <= done
        <= reads | {"history.verify", "sign-in", "tokens.revoke"}
    )

    # a submitter sees only their own unit in the list
    listed = api.get("/api/units", "submitter")
    assert listed.status_code == 200 and [u["code"] for u in listed.json] == [OWN]
    assert len(api.get("/api/units", "auditor").json) > 1


#: calls about data that does not exist: a caller who may not make the call learns nothing from it
UNKNOWN = [
    ("GET", "/api/units/nowhere", None, "units.read"),
    ("GET", f"/api/units/nowhere/schemes/{SCHEME}/submissions", None, "submissions.read"),
    ("GET", f"/api/units/nowhere/schemes/{SCHEME}/submissions/latest", None, "submissions.read"),
    ("GET", f"/api/units/nowhere/schemes/{SCHEME}/submissions/1", None, "submissions.read"),
    ("GET", f"/api/units/nowhere/schemes/{SCHEME}/compare?from=1&to=1", None, "submissions.read"),
    (
        "POST",
        f"/api/units/nowhere/schemes/{SCHEME}/submissions",
        {"role": "review", "facts": FACTS},
        "submissions.write.review",
    ),
    (
        "POST",
        f"/api/units/nowhere/schemes/{SCHEME}/submissions",
        {"role": "self", "facts": FACTS},
        "submissions.write.self",
    ),
    ("POST", f"/api/units/nowhere/schemes/{SCHEME}/scores", {}, "scores.write"),
    ("GET", f"/api/units/nowhere/schemes/{SCHEME}/scores", None, "scores.read"),
    ("GET", "/api/scores/999999", None, "scores.read"),
    ("GET", f"/api/units/nowhere/schemes/{SCHEME}/evidence", None, "submissions.read"),
    ("GET", "/api/evidence/999999", None, "submissions.read"),
    ("POST", "/api/scores/999999/replay", None, "scores.replay"),
    ("GET", "/api/jobs/999999", None, "jobs.read"),
    ("POST", "/api/jobs/999999/cancel", None, "jobs.cancel"),
]


def test_unknown_data_is_not_revealed_to_those_who_may_not_ask(api):
    """Anonymous callers get 401, roles without the permission 403, and unit submitters 403 for any unit
    or score not their own, whether it exists or not."""
    roles = {username: role for username, role, _unit in USERS}
    failures = []
    for method, path, body, permission in UNKNOWN:
        for username in [None, *roles]:
            role = roles.get(username)
            if role is None:
                want = 401
            elif role not in PERMISSIONS[permission]:
                want = 403
            elif role in OWN_UNIT_ONLY:
                want = 403  # not their unit (or score), whether it exists or not
            else:
                want = 404  # allowed to ask; there is nothing
            kwargs = {"json": body} if body is not None else {}
            got = api.call(method, path, username, **kwargs).status_code
            if got != want:
                failures.append(
                    f"{method} {path} as {username or 'anonymous'}: expected {want}, got {got}"
                )
    assert not failures, "\n".join(failures)
