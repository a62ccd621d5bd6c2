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

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from sqlalchemy import func, select

from service.access import OTHERS_TOKENS, OWN_UNIT_ONLY, PERMISSIONS, ROLES, issue
from service.db import (
    DenialCount,
    JournalEntry,
    PanelMark,
    RuleVersion,
    Score,
    Submission,
    Token,
    Unit,
    User,
)
from service.operations import etag

from ..conftest import FIXTURES, MINIMAL, RULES
from .conftest import DATABASES, USERS, make_api

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
    "panel_marks": PanelMark,
}
#: the scheme (tests/fixtures/panel, served besides the shipped ones) and the clause whose panel
#: marks the matrix enters and reads
PANEL_SCHEME, PANEL_CLAUSE = "panel", "2"
MARKS = "/api/rounds/<round_id>/units/<code>/clauses/<clause>/marks"


@pytest.fixture(params=DATABASES)
def api(request, tmp_path, engine):
    """The API on the shipped rules and the panel fixture scheme, once per database."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    shutil.copytree(FIXTURES / "panel", rules / "panel")
    made = make_api(tmp_path, request.param, engine, rules)
    yield made
    made.ctx.db.engine.dispose()


@dataclass(frozen=True)
class Case:
    """One kind of call to one route."""

    permission: str | None  # None: a public route
    body: Callable | None = None  # (call) -> JSON body
    query: str = ""
    if_match: bool = (
        False  # send the unit's current ETag (a correction that would succeed if allowed)
    )
    writes: frozenset = field(default_factory=frozenset)  # tables an allowed call may change
    journals: str | None = None  # the action of the "ok" journal row an allowed call writes
    reads: bool = (
        False  # reads a unit's data: journaled (permission, "ok") but by its own submitter
    )
    label: str = ""
    # who the "ok" journal row names, when not the caller: a sign-in names who signed in
    journal_actor: Callable | None = None


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
            journals="submissions.write",
            label="self",
        ),
        Case(
            "submissions.write.review",
            body=_submission("review"),
            if_match=True,
            writes=frozenset({"submissions"}),
            journals="submissions.write",
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
            body=lambda call: {},
            writes=frozenset({"scores", "rule_versions"}),
            journals="scores.write",
        ),
    ),
    ("GET", "/api/units/<code>/schemes/<scheme_id>/scores"): (Case("scores.read", reads=True),),
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
    ("PUT", MARKS): (
        Case(
            "rounds.review",
            body=lambda call: {"points": 8, "reason": f"{call.username}打分"},
            writes=frozenset({"panel_marks"}),
            journals="panel.mark",
        ),
    ),
    ("POST", MARKS): (
        Case(
            "rounds.review",
            body=lambda call: {"points": 7.5, "reason": f"{call.username}改分"},
            writes=frozenset({"panel_marks"}),
            journals="panel.mark",
        ),
    ),
    ("GET", MARKS): (Case("scores.read", reads=True),),
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


#: how to fill each URL parameter, given the call (and the unit it is about)
PARAMS = {
    "code": lambda call, world: call.unit,
    "scheme_id": lambda call, world: SCHEME,
    "version": lambda call, world: "1",
    "score_id": lambda call, world: str(world["scores"][call.unit]),
    "token_id": _token_of,
    "username": _throwaway_user,
    "round_id": lambda call, world: str(world["panel_round"]),
    "clause": lambda call, world: PANEL_CLAUSE,
}
UNIT_PARAMS = {"code", "score_id"}  # parameters that make a route about one unit's data
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
    """A submission and a score on both units, by the admin."""
    world = {"scores": {}}
    for unit in (OWN, OTHER):
        made = api.post(
            f"/api/units/{unit}/schemes/{SCHEME}/submissions",
            "admin",
            json={"role": "review", "facts": FACTS},
        )
        assert made.status_code == 201, made.json
        score = api.post(f"/api/units/{unit}/schemes/{SCHEME}/scores", "admin", json={})
        assert score.status_code == 201, score.json
        world["scores"][unit] = score.json["id"]
        # under review in the panel scheme's round, so that reviewers may enter marks
        sent = api.post(
            f"/api/units/{unit}/schemes/{PANEL_SCHEME}/submissions",
            "admin",
            json={"role": "self", "facts": {}},
        )
        assert sent.status_code == 201, sent.json
    world["panel_round"] = api.round_of(PANEL_SCHEME)
    return world


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
    world.update(db=db, user_ids=user_ids)

    failures, denials, auditor_writes = [], 0, []
    auditor_before = None
    for call in build_calls(api):
        if call.role == "auditor" and auditor_before is None:
            auditor_before = _snapshot(db)
        want = expected(call)
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
            wanted = [(call.case.journals, "ok", actor)] if call.case.journals else []
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
    ("POST", "/api/scores/999999/replay", None, "scores.replay"),
    ("GET", f"/api/rounds/1/units/nowhere/clauses/{PANEL_CLAUSE}/marks", None, "scores.read"),
    (
        "PUT",
        f"/api/rounds/1/units/nowhere/clauses/{PANEL_CLAUSE}/marks",
        {"points": 1, "reason": "x"},
        "rounds.review",
    ),
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
