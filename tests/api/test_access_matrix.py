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
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from service import appeals, jobs, operations, releases, rounds
from service.access import OTHERS_TOKENS, OWN_UNIT_ONLY, PERMISSIONS, ROLES, Actor, issue
from service.db import (
    Appeal,
    AppealItem,
    DeadlineChange,
    DenialCount,
    EvidenceBlob,
    EvidenceFile,
    JournalEntry,
    PanelMark,
    Round,
    RoundUnit,
    RuleDraft,
    RuleVersion,
    Score,
    Submission,
    Token,
    Unit,
    User,
)
from service.operations import etag
from service.rulefiles.loader import version_of

from .. import evidence_samples
from ..apps import ROUND_DATES, round_dates
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
    "rounds": Round,
    "round_deadline_changes": DeadlineChange,
    "evidence_files": EvidenceFile,
    "evidence_blobs": EvidenceBlob,
    "appeals": Appeal,
    "appeal_items": AppealItem,
    "panel_marks": PanelMark,
    "rule_drafts": RuleDraft,
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
    form: Callable | None = None  # (call) -> a multipart/form-data body (fields and files)
    query: str = ""
    if_match: bool = (
        False  # send the unit's current ETag (a correction that would succeed if allowed)
    )
    writes: frozenset = field(default_factory=frozenset)  # tables an allowed call may change
    # the actions of the "ok" journal rows an allowed call writes (a step of the review cycle also
    # journals the unit's move, rounds.<action>), and those it may write besides
    journals: str | tuple | None = None
    also: tuple = ()
    # the unit's state in the round the call needs to succeed (see ``_bring``), made beforehand
    # by an admin or a reviewer through the service layer, outside the call's own checks
    state: str | None = None
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


def _evidence_form(call) -> dict:
    # the same bytes every time: the first upload for a unit stores them, the others are the same
    # file (200), so each allowed call succeeds whether or not one made it before
    return {
        "fact": "leader_evaluation_score",
        "file": (io.BytesIO(evidence_samples.pdf()), "证明.pdf"),
    }


def _submission(role: str):
    return lambda call: {"role": role, "facts": FACTS, "reason": f"{call.username or '匿名'}更正"}


OPENED = "zhuanqiao-2018"  # the scheme whose rounds the matrix opens (not the one it walks)
_open_years = iter(range(2030, 2101))
_deadline_serial = iter(range(1, 100_000))


def _dates() -> dict:
    dates = round_dates()
    return {name: getattr(dates, name).isoformat() for name in dates.__dataclass_fields__}


def _new_round(_call) -> dict:
    return {"scheme": OPENED, "year": next(_open_years), **_dates()}


def _later_end(_call) -> dict:
    moved = datetime(2100, 1, 1, tzinfo=UTC) + timedelta(minutes=next(_deadline_serial))
    return {"deadline": "publication_end", "new": moved.isoformat(), "reason": "公示延长"}


APPEALED = "区领导评价"  # the clause of SCHEME the matrix appeals (FACTS are its facts)


def _appeal(_call) -> dict:
    return {"items": [{"clause": APPEALED, "reason": "评价未考虑下半年工作"}]}


_ZQ = version_of(RULES / "zhuanqiao" / "2018")  # a served version, for the comparison
_GM = version_of(RULES / "minhang-gumeilu" / "2022")  # SCHEME's served version: the impact preview

_draft_serial = iter(range(1, 100_000))
_last_draft: dict = {}  # the draft the last call's URL names: its lock goes into the call's body


def _new_draft(_call) -> dict:
    """A copy of a served version under an id of its own (each allowed call makes one)."""
    return {"copy": {"version": _ZQ, "year": "2031", "scheme_id": f"matrix-{next(_draft_serial)}"}}


def _draft_zip(_call) -> dict:
    """A zip of the fixture scheme under an id of its own, uploaded as a draft."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for path in sorted(MINIMAL.rglob("*.yaml")):
            text = path.read_text(encoding="utf-8")
            if path.name == "scheme.yaml":
                text = text.replace("id: minimal", f"id: matrix-up-{next(_draft_serial)}", 1)
            z.writestr(f"minimal/{path.relative_to(MINIMAL).as_posix()}", text)
    return {"file": (io.BytesIO(out.getvalue()), "scheme.zip")}


def _with_lock(**body):
    return lambda call: {"lock": _last_draft["lock"], **body}


#: the draft whose impact the matrix previews: a 2031 copy of SCHEME (whose units are reviewed), made
#: once per world by the editor; the world is kept here by the draft routes' URL filling (which
#: comes first in the matrix), since a body is given only the call
_IMPACT: dict = {}


def _impact_draft(_call) -> dict:
    world = _IMPACT["world"]
    if world.get("impact_draft") is None:
        editor = Actor(world["user_ids"]["editor"], "editor", "editor", None)
        world["impact_draft"] = releases.copy_version(world["ctx"], editor, _GM, "2031").id
    return {"draft": world["impact_draft"]}


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
            journals=("submissions.write", "rounds.submit_self"),
            label="self",
            state="open",
        ),
        Case(
            "submissions.write.review",
            body=_submission("review"),
            if_match=True,
            writes=frozenset({"submissions"}),
            journals=("submissions.write", "rounds.review"),
            label="review",
            state="submitted",
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
            journals="scores.write",
            also=("rounds.compute_official",),  # official when a reviewer or admin scores one
        ),
    ),
    ("GET", "/api/units/<code>/schemes/<scheme_id>/scores"): (Case("scores.read", reads=True),),
    ("POST", "/api/units/<code>/schemes/<scheme_id>/evidence"): (
        Case(
            "evidence.write",
            form=_evidence_form,
            writes=frozenset({"evidence_files", "evidence_blobs"}),
            journals="evidence.upload",
            state="round",  # evidence belongs to the scheme's open round
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
    ("GET", "/api/rules/compare"): (Case("rules.read", query=f"?from={_ZQ}&to={_ZQ}"),),
    # the fact mapping of a draft's impact preview (before the preview: the draft is made there)
    ("GET", "/api/rules/drafts/<draft_id>/mapping"): (Case("rules.read"),),
    ("PUT", "/api/rules/drafts/<draft_id>/mapping"): (
        Case("rules.draft", body=_with_lock(mapping={}), journals="rules.draft.mapping"),
    ),
    # the impact preview of a rule change: a background job over the reviewed units of SCHEME
    ("POST", "/api/rules/impact"): (
        Case(
            "rules.impact",
            body=lambda call: {"from": _GM, "to": _GM},
            journals="jobs.start",
            state="reviewed",
        ),
        # a draft's: its files archived as a version (the first time) and previewed
        Case(
            "rules.impact",
            body=_impact_draft,
            writes=frozenset({"rule_versions"}),
            journals="jobs.start",
            state="reviewed",
            label="draft",
        ),
    ),
    ("GET", "/api/rules/impact/<job_id>"): (Case("rules.impact", state="reviewed"),),
    ("GET", "/api/rules/impact/<job_id>/workbook"): (Case("rules.impact", state="reviewed"),),
    # drafts and releases of rule versions (service/releases.py): each allowed call acts on a
    # draft of its own in the state it needs (``_draft_for``)
    ("GET", "/api/rules/drafts"): (Case("rules.read"),),
    ("POST", "/api/rules/drafts"): (
        Case(
            "rules.draft",
            body=_new_draft,
            writes=frozenset({"rule_drafts"}),
            journals="rules.draft.create",
        ),
    ),
    ("POST", "/api/rules/drafts/upload"): (
        Case(
            "rules.draft",
            form=_draft_zip,
            writes=frozenset({"rule_drafts"}),
            journals="rules.draft.create",
        ),
    ),
    ("GET", "/api/rules/drafts/<draft_id>"): (Case("rules.read"),),
    ("GET", "/api/rules/drafts/<draft_id>/zip"): (Case("rules.read"),),
    ("PUT", "/api/rules/drafts/<draft_id>/files"): (
        Case(
            "rules.draft",
            body=lambda call: {"lock": _last_draft["lock"], "files": _last_draft["files"]},
            journals="rules.draft.save",
        ),
    ),
    ("POST", "/api/rules/drafts/<draft_id>/check"): (Case("rules.draft"),),
    ("POST", "/api/rules/drafts/<draft_id>/propose"): (
        Case("rules.draft", body=_with_lock(note="请批准"), journals="rules.propose"),
    ),
    ("POST", "/api/rules/drafts/<draft_id>/return"): (
        Case("rules.approve", body=_with_lock(reason="请再核对"), journals="rules.return"),
    ),
    ("POST", "/api/rules/drafts/<draft_id>/approve"): (
        Case(
            "rules.approve",
            body=_with_lock(effective_year=2031),
            writes=frozenset({"rule_versions"}),
            journals=("rules.approve", "rules.publish"),
        ),
    ),
    ("POST", "/api/rules/drafts/<draft_id>/withdraw"): (
        Case("rules.draft", body=_with_lock(reason="不再需要"), journals="rules.withdraw"),
    ),
    ("GET", "/api/rules/versions/<version>/zip"): (Case("rules.read"),),
    ("GET", "/api/rules/disk"): (Case("rules.read"),),
    ("GET", "/api/journal"): (Case("journal.read"),),
    ("GET", "/api/journal/verify"): (Case("journal.read", journals="history.verify"),),
    # the review cycle: rounds (the steps on one unit before publication first, so a walk of the
    # routes goes through the cycle in its order; finalisation last)
    ("GET", "/api/rounds"): (Case("rounds.read"),),
    ("POST", "/api/rounds"): (
        Case(
            "rounds.write",
            body=_new_round,
            writes=frozenset({"rounds", "rule_versions"}),
            journals="rounds.open",
        ),
    ),
    ("GET", "/api/rounds/<round_id>"): (Case("rounds.read"),),
    ("POST", "/api/rounds/<round_id>/deadlines"): (
        Case(
            "rounds.write",
            body=_later_end,
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
        Case(
            "rounds.review",
            body=lambda call: {"reason": "佐证材料不全"},
            journals="rounds.return",
            state="submitted",
        ),
    ),
    ("POST", "/api/rounds/<round_id>/units/<code>/review-complete"): (
        Case("rounds.review", journals="rounds.complete_review", state="submitted"),
    ),
    ("POST", "/api/rounds/<round_id>/units/<code>/reopen"): (
        Case(
            "rounds.review",
            body=lambda call: {"reason": "事实须复核"},
            journals="rounds.reopen_review",
            state="reviewed",
        ),
    ),
    ("POST", "/api/rounds/<round_id>/publish"): (
        Case("rounds.publish", journals="rounds.publish", state="publishable"),
    ),
    # appeals: filed by the unit while published, answered by a reviewer, read by the unit
    ("POST", "/api/rounds/<round_id>/units/<code>/appeals"): (
        Case(
            "appeals.file",
            body=_appeal,
            writes=frozenset({"appeals", "appeal_items"}),
            journals=("appeals.file", "rounds.appeal"),
            state="published",
        ),
    ),
    ("GET", "/api/rounds/<round_id>/units/<code>/appeals"): (
        Case("appeals.read", reads=True, state="appealed"),
    ),
    ("POST", "/api/appeals/<appeal_id>/items/<clause>/answer"): (
        Case(
            "appeals.answer",
            body=lambda call: {"answer": "uphold", "reason": "评价为全年综合评价，维持"},
            journals=("appeals.answer", "rounds.answer_appeal"),
            state="appealed",
        ),
    ),
    ("POST", "/api/rounds/<round_id>/finalize"): (
        Case("rounds.publish", journals="rounds.finalize", state="finalizable"),
    ),
    ("POST", "/api/jobs"): (
        Case(
            "scores.recompute",
            body=lambda call: {"kind": "scores.recompute", "params": {"scheme": SCHEME}},
            journals="jobs.start",
            label="scores.recompute",
            state="reviewed",  # the job recomputes the official scores of reviewed units
        ),
    ),
    ("GET", "/api/jobs"): (Case("jobs.read"),),
    ("GET", "/api/jobs/<job_id>"): (Case("jobs.read", state="reviewed"),),
    ("POST", "/api/jobs/<job_id>/cancel"): (
        Case("jobs.cancel", journals="jobs.cancel", state="reviewed"),
    ),
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

_year_serial = iter(range(2030, 2100))
_day_serial = iter(range(10_000))


def _new_round() -> dict:
    return {
        "scheme": "baoshan-2022-c1",
        "year": next(_year_serial),
        **ROUND_DATES,
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
    """A job of its own for each call that reads or cancels one, queued by the admin (for the
    impact preview's routes, an impact preview)."""
    admin = Actor(world["user_ids"]["admin"], "admin", "admin", None)
    if "/rules/impact/" in call.rule:
        params = {"from": _GM, "to": _GM}
        job = jobs.start_job(world["ctx"], admin, "rules.impact", params)
        return str(job["id"])
    job = jobs.start_job(world["ctx"], admin, "scores.recompute", {"scheme": SCHEME})
    return str(job["id"])


def _open_item(call, world) -> AppealItem:
    """The unanswered clause of the open appeal of the call's unit (``_bring`` filed it)."""
    with world["db"].transaction() as s:
        return s.scalar(
            select(AppealItem)
            .join(Appeal, Appeal.id == AppealItem.appeal_id)
            .join(Unit, Unit.id == Appeal.unit_id)
            .where(
                Unit.code == call.unit,
                Appeal.round_id == world["round"],
                AppealItem.answer.is_(None),
            )
        )


def _draft_for(call, world) -> str:
    """A draft for the call: a fresh one (proposed by the editor where the route needs that) for a
    call that will be allowed, one shared draft for the others (refused before it is looked at)."""
    editor = Actor(world["user_ids"]["editor"], "editor", "editor", None)
    fresh = expected(call) == "allowed" and not call.rule.endswith(("<draft_id>", "/zip"))
    if not fresh and "draft" in world:
        draft = world["draft"]
    else:
        draft = releases.copy_version(
            world["ctx"], editor, _ZQ, "2031", scheme_id=f"matrix-{next(_draft_serial)}"
        )
        if call.rule.endswith(("/return", "/approve")):
            draft = releases.propose(world["ctx"], editor, draft.id, draft.lock, "准备")
        if not fresh:
            world["draft"] = draft
    _last_draft.update(lock=draft.lock, files=draft.files)
    return str(draft.id)


#: how to fill each URL parameter, given the call (and the unit it is about)
PARAMS = {
    "code": lambda call, world: call.unit,
    "scheme_id": lambda call, world: SCHEME,
    "version": lambda call, world: _ZQ if call.rule.startswith("/api/rules/") else "1",
    "draft_id": lambda call, world: _IMPACT.update(world=world) or _draft_for(call, world),
    "score_id": lambda call, world: str(world["scores"][call.unit]),
    "evidence_id": lambda call, world: str(world["evidence"][call.unit]),
    "token_id": _token_of,
    "username": _throwaway_user,
    "round_id": lambda call, world: str(
        world["panel_round"] if call.rule.endswith("/marks") else world["round"]
    ),
    "job_id": _queued_job,
    "appeal_id": lambda call, world: str(_open_item(call, world).appeal_id),
    "clause": lambda call, world: (
        PANEL_CLAUSE if call.rule.endswith("/marks") else _open_item(call, world).clause_id
    ),
}
#: parameters that make a route about one unit's data
UNIT_PARAMS = {"code", "score_id", "evidence_id", "appeal_id"}
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
    """A submission and an official score on both units (submitted by the admin for the unit,
    reviewed by the reviewer), and an evidence file (a PNG: not the bytes the matrix uploads) on
    both units."""
    world = {"scores": {}, "evidence": {}, "round": api.round_of(SCHEME)}
    for unit in (OWN, OTHER):
        world["scores"][unit] = api.official(unit, SCHEME, FACTS).json["id"]
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
        # under review in the panel scheme's round, so that reviewers may enter marks
        sent = api.post(
            f"/api/units/{unit}/schemes/{PANEL_SCHEME}/submissions",
            "admin",
            json={"role": "self", "facts": {}},
        )
        assert sent.status_code == 201, sent.json
    world["panel_round"] = api.round_of(PANEL_SCHEME)
    return world


# --- the state a call needs: each unit walked through the cycle beforehand --------------------
#
# The calls of the matrix run one after another on one database, and the review cycle moves each
# unit on: a self-assessment is accepted from 未填报/草稿 only, an appeal from 公示中 only.  Before
# each call the unit is brought to the state its case needs, by an admin and a reviewer through
# the service layer (their journal rows and writes come before the call's own are counted).  A
# unit past publication cannot go back: the matrix then opens the scheme's next year's round.

#: the states that satisfy each need
NEEDS = {
    "open": {"none", "draft"},
    "submitted": {"submitted", "in_review"},
    "reviewed": {"reviewed"},
    "published": {"published"},
    "appealed": {"appealed"},
}
PUBLISHED = {"published", "appealed", "rechecked", "final"}
_round_years = iter(range(2027, 2101))


def _staff(world) -> tuple[Actor, Actor]:
    ids = world["user_ids"]
    return (
        Actor(ids["admin"], "admin", "admin", None),
        Actor(ids["reviewer"], "reviewer", "reviewer", None),
    )


def _place(world, code: str) -> RoundUnit | None:
    with world["db"].transaction() as s:
        return s.scalar(
            select(RoundUnit)
            .join(Unit, Unit.id == RoundUnit.unit_id)
            .where(RoundUnit.round_id == world["round"], Unit.code == code)
        )


def _fresh_round(api, world) -> None:
    """The scheme's next year's round, when its round is final or its deadlines were moved past."""
    with world["db"].transaction() as s:
        rnd = s.get(Round, world["round"])
    if rnd.stage == "final" or rnd.self_deadline < datetime.now(UTC):
        admin, _reviewer = _staff(world)
        world["round"] = rounds.open_round(
            api.ctx, admin, SCHEME, next(_round_years), "", round_dates()
        ).id


def _official(api, world, code: str) -> None:
    """The unit's official score from its reviewed version, unless it has it already."""
    place = _place(world, code)
    with world["db"].transaction() as s:
        score = s.get(Score, place.official_score_id) if place.official_score_id else None
    if score is None or score.submission_version != place.reviewed_version:
        operations.compute_score(api.ctx, _staff(world)[1], code, SCHEME, kind="official")


def _publishable(api, world) -> None:
    """Every reviewed unit of the round with its official score (publication refuses otherwise)."""
    with world["db"].transaction() as s:
        codes = list(
            s.scalars(
                select(Unit.code)
                .join(RoundUnit, RoundUnit.unit_id == Unit.id)
                .where(RoundUnit.round_id == world["round"], RoundUnit.state == "reviewed")
            )
        )
    for code in codes:
        _official(api, world, code)


def _step(api, world, code: str, state: str, need: str) -> None:
    """One move of the unit from ``state`` towards ``need``."""
    ctx, rid = api.ctx, world["round"]
    admin, reviewer = _staff(world)
    before_publication = need in ("open", "submitted", "reviewed")
    if state in PUBLISHED and before_publication or state == "final":
        world["round"] = rounds.open_round(
            ctx, admin, SCHEME, next(_round_years), "", round_dates()
        ).id
    elif state in ("none", "draft"):
        with world["db"].transaction() as s:
            latest = s.scalar(
                select(func.coalesce(func.max(Submission.version), 0))
                .join(Unit, Unit.id == Submission.unit_id)
                .where(Unit.code == code, Submission.scheme_id == SCHEME)
            )
        operations.submit(ctx, admin, code, SCHEME, "self", FACTS, {}, "准备", etag(latest))
    elif state in ("submitted", "in_review"):
        if need == "open":
            rounds.return_submission(ctx, reviewer, rid, code, "准备：退回")
        else:
            rounds.complete_review(ctx, reviewer, rid, code)
    elif state == "reviewed":
        if need in ("open", "submitted"):
            rounds.reopen_review(ctx, reviewer, rid, code, "准备：重新评审")
        else:
            _publishable(api, world)
            rounds.publish_round(ctx, admin, rid)
    elif state == "published":
        appeals.file_appeal(ctx, admin, rid, code, _appeal(None)["items"])
    elif state == "appealed":
        with world["db"].transaction() as s:
            items = list(
                s.execute(
                    select(AppealItem.appeal_id, AppealItem.clause_id)
                    .join(Appeal, Appeal.id == AppealItem.appeal_id)
                    .join(Unit, Unit.id == Appeal.unit_id)
                    .where(
                        Unit.code == code,
                        Appeal.round_id == rid,
                        AppealItem.answer.is_(None),
                    )
                )
            )
        for appeal_id, clause in items:
            appeals.answer_item(ctx, reviewer, appeal_id, clause, "uphold", "准备：维持")
    elif state == "rechecked":
        _publishable(api, world)
        rounds.publish_round(ctx, admin, rid)


def _bring(api, world, code: str, need: str) -> None:
    """The unit in the state ``need`` names, in the scheme's current round."""
    _fresh_round(api, world)
    for _ in range(12):
        place = _place(world, code)
        state = place.state if place is not None else "none"
        if state in NEEDS[need]:
            if need == "reviewed":
                _official(api, world, code)
            return
        _step(api, world, code, state, need)
    raise AssertionError(f"{code} did not reach {need} (still {state})")


def _prepare_state(api, world, call: Call) -> None:
    need = call.case.state
    if need is None:
        return
    if need == "round":  # an open round of the scheme, whatever the unit's state
        _fresh_round(api, world)
    elif need == "publishable":  # the round's publication: a unit reviewed, every one scored
        _bring(api, world, OWN, "reviewed")
        _publishable(api, world)
    elif need == "finalizable":  # published, no appeal open, the appeal window over
        _bring(api, world, OWN, "published")
        if (_place(world, OTHER) or RoundUnit(state="none")).state == "appealed":
            _bring(api, world, OTHER, "published")
        past = datetime.now(UTC) - timedelta(days=1)
        admin, _reviewer = _staff(world)
        for i, name in enumerate(("self_deadline", "review_deadline", "publication_start",
                                  "appeal_deadline")):  # fmt: skip
            rounds.extend_deadline(
                api.ctx, admin, world["round"], name, past + timedelta(minutes=i), "准备：到期"
            )
    else:
        _bring(api, world, call.unit or OWN, need)


def _short(body) -> str:
    text = repr(body)
    return text if len(text) <= 300 else text[:300] + "…"


def _prepare(api, world, call: Call):
    """The request of a call, with whatever it acts on made beforehand."""
    _prepare_state(api, world, call)
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
    auditor_changes = {}  # table -> rows the auditor's calls added or removed, call by call
    for call in build_calls(api):
        want = expected(call)
        _prepare_state(api, world, call)
        path, headers, kwargs = _prepare(api, world, call)
        before = _snapshot(db)
        response = api.client.open(path, method=call.method, headers=headers, **kwargs)
        after = _snapshot(db)
        entries = (
            _journal_after(db, before["journal"]) if after["journal"] != before["journal"] else []
        )
        status, body = response.status_code, response.get_json(silent=True)
        changed = {t for t in DATA_TABLES if after[t] != before[t]}
        if call.role == "auditor":
            for t in changed:
                auditor_changes[t] = auditor_changes.get(t, 0) + after[t] - before[t]
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
            journals = call.case.journals or ()
            journals = (journals,) if isinstance(journals, str) else journals
            wanted = {(action, "ok", actor) for action in journals}
            if (
                call.case.reads and call.role not in OWN_UNIT_ONLY
            ):  # a read of a unit's data by others
                wanted = {(call.case.permission, "ok", actor)}
            may = wanted | {(action, "ok", actor) for action in call.case.also}
            got = {(e.action, e.outcome, e.actor) for e in entries}
            if not wanted <= got <= may:
                problems.append(f"journal rows {sorted(got)}, expected {sorted(wanted)}")
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
    # signing in adds a token, and the harness adds a user for each call that disables one;
    # nothing else may change (what the harness makes before each call is not the auditor's)
    assert not set(auditor_changes) - {"tokens", "users"}, auditor_changes
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
    ("GET", "/api/rules/impact/999999", None, "rules.impact"),
    ("GET", "/api/rules/impact/999999/workbook", None, "rules.impact"),
    (
        "POST",
        f"/api/appeals/999999/items/{APPEALED}/answer",
        {"answer": "uphold", "reason": "维持"},
        "appeals.answer",
    ),
    ("GET", f"/api/rounds/1/units/nowhere/clauses/{PANEL_CLAUSE}/marks", None, "scores.read"),
    (
        "PUT",
        f"/api/rounds/1/units/nowhere/clauses/{PANEL_CLAUSE}/marks",
        {"points": 1, "reason": "x"},
        "rounds.review",
    ),
]


def _unknown_in_round(api) -> list:
    """The same for a unit's appeals in a round that exists."""
    rid = api.round_of(SCHEME)
    return [
        ("GET", f"/api/rounds/{rid}/units/nowhere/appeals", None, "appeals.read"),
        ("POST", f"/api/rounds/{rid}/units/nowhere/appeals", _appeal(None), "appeals.file"),
        ("GET", f"/api/rounds/{rid}/units/nowhere", None, "rounds.read"),
        (
            "POST",
            f"/api/rounds/{rid}/units/nowhere/return",
            {"reason": "退回"},
            "rounds.review",
        ),
    ]


def test_unknown_data_is_not_revealed_to_those_who_may_not_ask(api):
    """Anonymous callers get 401, roles without the permission 403, and unit submitters 403 for any unit
    or score not their own, whether it exists or not."""
    roles = {username: role for username, role, _unit in USERS}
    failures = []
    for method, path, body, permission in UNKNOWN + _unknown_in_round(api):
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
