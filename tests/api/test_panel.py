"""Several reviewers scoring a clause (专家评审) through the API, on SQLite and PostgreSQL.

The app serves the fixture scheme tests/fixtures/panel: clause 1 is scored by 3 reviewers (the
mean), clause 2 by 5 (the mean after dropping the highest and the lowest).  Each reviewer enters
their own mark (PUT/POST …/clauses/<clause>/marks), replaceable until the review is complete;
the marks are read blind; the official score's trace shows each reviewer by name.
"""

from __future__ import annotations

import shutil
import threading

import pytest
from sqlalchemy import select

from service.access import new_token
from service.db import JournalEntry, PanelMark, User

from ..conftest import FIXTURES
from .conftest import DATABASES, make_api

SCHEME = "panel"
UNIT = "gucun"  # the submitter's unit
#: reviewers besides the seeded one: (username, display name)
MORE = [(f"reviewer{i}", f"专家{n}") for i, n in zip(range(2, 8), "乙丙丁戊己庚")]


@pytest.fixture(params=DATABASES)
def api(request, tmp_path, engine):
    rules = tmp_path / "rules"
    shutil.copytree(FIXTURES / "panel", rules / "panel")
    made = make_api(tmp_path, request.param, engine, rules)
    db = made.ctx.db
    with db.transaction() as s:
        s.get(
            User, s.scalar(select(User.id).where(User.username == "reviewer"))
        ).display_name = "专家甲"
        users = [User(username=u, display_name=n, role="reviewer", active=True) for u, n in MORE]
        s.add_all(users)
        s.flush()
        ids = {u.username: u.id for u in users}
    for username, _name in MORE:
        made.tokens[username] = new_token(db, ids[username], "test")
    yield made
    db.engine.dispose()


def _marks(api, clause: str = "2", unit: str = UNIT) -> str:
    return f"/api/rounds/{api.round_of(SCHEME)}/units/{unit}/clauses/{clause}/marks"


def _submit(api, unit: str = UNIT):
    sent = api.post(
        f"/api/units/{unit}/schemes/{SCHEME}/submissions",
        "admin",
        json={"role": "self", "facts": {}},
    )
    assert sent.status_code == 201, sent.json


def _mark(api, who: str, points, clause: str = "2", reason: str = "理由", method: str = "PUT"):
    return api.call(method, _marks(api, clause), who, json={"points": points, "reason": reason})


REVIEWERS = ["reviewer"] + [u for u, _n in MORE]


def test_each_reviewer_enters_their_own_mark_and_reads_blind(api):
    _submit(api)
    first = _mark(api, "reviewer", 8, reason="措施到位")
    assert first.status_code == 200, first.json
    assert first.json["points"] == "8"
    assert (first.json["entered"], first.json["reviewers"]) == (1, 5)

    # another reviewer, before entering their own: how many are in, but nobody's points
    blind = api.get(_marks(api), "reviewer2").json
    assert (blind["visible"], blind["entered"], blind["marks"]) == (False, 1, [])
    assert blind["why_hidden"] == "录入您自己的打分后才能看到其他评审的打分"
    # the first reviewer sees their own (the only one in)
    own = api.get(_marks(api), "reviewer").json
    assert [m["points"] for m in own["marks"]] == ["8"] and own["marks"][0]["own"]

    assert _mark(api, "reviewer2", 9.5, method="POST").status_code == 200
    seen = api.get(_marks(api), "reviewer2").json
    assert seen["visible"] and [(m["reviewer_name"], m["points"]) for m in seen["marks"]] == [
        ("专家甲", "8"),
        ("专家乙", "9.5"),
    ]
    # an admin and an auditor see all; the unit's submitter nothing before publication
    assert len(api.get(_marks(api), "admin").json["marks"]) == 2
    assert len(api.get(_marks(api), "auditor").json["marks"]) == 2
    unit_view = api.get(_marks(api), "submitter").json
    assert (unit_view["visible"], unit_view["marks"]) == (False, [])
    assert unit_view["why_hidden"] == "评审打分在本单位得分公示后才能查看"


def test_a_mark_is_replaced_not_added_and_every_entry_is_journaled(api):
    _submit(api)
    assert _mark(api, "reviewer", 6, reason="初评").status_code == 200
    again = _mark(api, "reviewer", 7, reason="复核后改")
    assert (again.json["points"], again.json["entered"]) == ("7", 1)
    with api.ctx.db.transaction() as s:
        rows = list(s.scalars(select(PanelMark)))
        entries = list(s.scalars(select(JournalEntry).where(JournalEntry.action == "panel.mark")))
    assert [(r.points, r.reason) for r in rows] == [("7", "复核后改")]
    assert [e.detail["points"] for e in entries] == ["6", "7"]
    assert entries[1].detail["replaced"] == {"points": "6", "reason": "初评"}
    assert entries[1].unit == UNIT and entries[1].scheme == SCHEME


def test_bad_marks_are_refused_naming_the_field_and_store_nothing(api):
    _submit(api)
    too_high = _mark(api, "reviewer", 11)
    assert too_high.status_code == 422
    assert too_high.json["error"]["fields"]["points"] == [
        "专家评审得分11超出范围，应为0到10之间的数值"
    ]
    assert _mark(api, "reviewer", True).status_code == 422
    assert _mark(api, "reviewer", "8").status_code == 422
    no_reason = api.call("PUT", _marks(api), "reviewer", json={"points": 8})
    assert no_reason.status_code == 422 and "reason" in no_reason.json["error"]["fields"]
    blank = _mark(api, "reviewer", 8, reason="   ")
    assert blank.status_code == 422 and "reason" in blank.json["error"]["fields"]
    unknown = api.call("PUT", _marks(api, "99"), "reviewer", json={"points": 1, "reason": "x"})
    assert (unknown.status_code, unknown.json["error"]["code"]) == (404, "unknown_clause")
    with api.ctx.db.transaction() as s:
        assert s.scalars(select(PanelMark)).first() is None


def test_marks_only_while_the_unit_is_under_review(api):
    # not submitted: no review to mark in
    early = _mark(api, "reviewer", 8)
    assert (early.status_code, early.json["error"]["code"]) == (409, "illegal_transition")
    assert "未填报" in early.json["error"]["message"]
    _submit(api)
    assert _mark(api, "reviewer", 8).status_code == 200
    rid = api.round_of(SCHEME)
    assert (
        api.post(f"/api/rounds/{rid}/units/{UNIT}/review-complete", "reviewer").status_code == 200
    )
    late = _mark(api, "reviewer", 9)
    assert (late.status_code, late.json["error"]["code"]) == (409, "illegal_transition")
    assert "已评审" in late.json["error"]["message"]
    # a submitter, an editor and an auditor enter no marks
    for who in ("submitter", "editor", "auditor"):
        assert _mark(api, who, 8).status_code == 403


def test_after_the_review_deadline_a_mark_is_refused_naming_it(api):
    _submit(api)
    rid = api.round_of(SCHEME)
    for deadline, when in (("self_deadline", "2020-01-01T00:00:00+08:00"),
                           ("review_deadline", "2020-02-01T00:00:00+08:00")):  # fmt: skip
        moved = api.post(
            f"/api/rounds/{rid}/deadlines",
            "admin",
            json={"deadline": deadline, "new": when, "reason": "测试截止"},
        )
        assert moved.status_code == 200, moved.json
    closed = _mark(api, "reviewer", 8)
    assert (closed.status_code, closed.json["error"]["code"]) == (423, "deadline_passed")
    assert "评审截止时间" in closed.json["error"]["message"]
    assert "review_deadline" in closed.json["error"]["fields"]


def test_no_more_marks_than_the_panel_has_reviewers(api):
    _submit(api)
    for who in REVIEWERS[:3]:
        assert _mark(api, who, 8, clause="1").status_code == 200
    full = _mark(api, REVIEWERS[3], 8, clause="1")
    assert (full.status_code, full.json["error"]["code"]) == (409, "panel_full")
    assert full.json["error"]["message"] == ("条款“1”的评审组为3人，已有3名评审打分，不能再录入")
    assert _mark(api, REVIEWERS[0], 9, clause="1").status_code == 200  # one's own: replaced


def test_the_official_score_takes_the_panels_means_and_the_trace_names_each_reviewer(api):
    _submit(api)
    for who, points in zip(REVIEWERS, (6, 7, 8, 9, 10)):
        assert _mark(api, who, points).status_code == 200
    for who, points in zip(REVIEWERS, (8, 9, 9)):
        assert _mark(api, who, points, clause="1").status_code == 200
    rid = api.round_of(SCHEME)
    assert (
        api.post(f"/api/rounds/{rid}/units/{UNIT}/review-complete", "reviewer").status_code == 200
    )
    score = api.post(
        f"/api/units/{UNIT}/schemes/{SCHEME}/scores", "reviewer", json={"kind": "official"}
    )
    assert score.status_code == 201, score.json
    clauses = {c["id"]: c for c in score.json["trace"]["clauses"]}
    assert clauses["2"]["points"] == "8" and clauses["2"]["status"] == "scored"
    panel = clauses["2"]["rules"][0]["panel"]
    assert [(m["reviewer"], m["points"], m["dropped"]) for m in panel["marks"]] == [
        ("专家甲", "6", "lowest"),
        ("专家乙", "7", ""),
        ("专家丙", "8", ""),
        ("专家丁", "9", ""),
        ("专家戊", "10", "highest"),
    ]
    assert clauses["2"]["explanation"].startswith(
        "评审组5人独立打分：专家甲6分（最低分，去掉）、专家乙7分"
    )
    # 26/3: exact in the data, 2 places in the sentence
    assert clauses["1"]["points"].startswith("8.6666666666")
    assert "3人平均约8.67分" in clauses["1"]["explanation"]
    assert score.json["trace"]["complete"] is True

    # the score replays to itself (the marks are read again)
    replay = api.post(f"/api/scores/{score.json['id']}/replay", "auditor")
    assert replay.status_code == 200 and replay.json["reproduced"], replay.json

    # once published, the unit's submitter sees the marks
    assert api.post(f"/api/rounds/{rid}/publish", "admin").status_code == 200
    unit_view = api.get(_marks(api), "submitter").json
    assert unit_view["visible"] and len(unit_view["marks"]) == 5


def test_with_marks_missing_the_clause_is_incomplete_saying_how_many_are_in(api):
    _submit(api)
    for who in REVIEWERS[:2]:
        assert _mark(api, who, 8, clause="1").status_code == 200
    rid = api.round_of(SCHEME)
    assert (
        api.post(f"/api/rounds/{rid}/units/{UNIT}/review-complete", "reviewer").status_code == 200
    )
    path = f"/api/units/{UNIT}/schemes/{SCHEME}/scores"
    official = api.post(path, "reviewer", json={"kind": "official"})
    assert official.status_code == 201, official.json
    clause = official.json["trace"]["clauses"][0]
    assert clause["status"] == "incomplete" and clause["points"] == "0"
    assert clause["explanation"] == (
        "缺少事实：领导评价得分、领导评价理由（缺失不等于0；评审打分已收到2份，共需3份），本项暂计0分"
    )
    assert clause["rules"][0]["explanation"] == (
        "评审组应有3人独立打分，已收到2份（专家甲、专家乙），还缺1份，暂不计分"
    )
    assert official.json["trace"]["complete"] is False


def test_a_preview_before_publication_does_not_reveal_the_marks(api):
    """A stored preview is read by the unit and by every reviewer: before the unit's score is
    published its panel clauses are left out of it (incomplete, saying so), never the points."""
    _submit(api)
    for who, points in zip(REVIEWERS, (8, 9, 10)):
        assert _mark(api, who, points, clause="1").status_code == 200
    for who in ("submitter", "reviewer", "admin"):
        preview = api.post(f"/api/units/{UNIT}/schemes/{SCHEME}/scores", who, json={})
        assert preview.status_code == 201 and preview.json["kind"] == "preview", preview.json
        clause = preview.json["trace"]["clauses"][0]
        assert clause["status"] == "incomplete"
        panel = clause["rules"][0]["panel"]
        assert (panel["status"], panel["entered"], panel["marks"]) == ("withheld", 3, [])
        assert clause["rules"][0]["explanation"] == (
            "评审组应有3人独立打分，已收到3份；评审打分在公示前不计入预览，暂不计分"
        )
        shown = str(preview.json["trace"])
        assert not any(name in shown for name in ("专家甲", "专家乙", "专家丙"))  # nobody's mark
        assert clause["facts"] == {"leader_points": None, "leader_reason": None}
        replay = api.post(f"/api/scores/{preview.json['id']}/replay", "admin")
        assert replay.json["reproduced"], replay.json
    # once published, a preview takes the marks like the official score
    for who, points in zip(REVIEWERS, (6, 7, 8, 9, 10)):
        assert _mark(api, who, points).status_code == 200
    rid = api.round_of(SCHEME)
    assert (
        api.post(f"/api/rounds/{rid}/units/{UNIT}/review-complete", "reviewer").status_code == 200
    )
    path = f"/api/units/{UNIT}/schemes/{SCHEME}/scores"
    assert api.post(path, "reviewer", json={"kind": "official"}).status_code == 201
    assert api.post(f"/api/rounds/{rid}/publish", "admin").status_code == 200
    after = api.post(path, "submitter", json={})
    assert after.json["kind"] == "preview"
    assert after.json["trace"]["clauses"][0]["points"] == "9"


def test_the_scheme_says_which_clauses_reviewers_score(api):
    clauses = {
        c["id"]: c for c in api.get(f"/api/schemes/{SCHEME}", "submitter").json["clause_details"]
    }
    assert clauses["2"]["rules"][0]["panel"] == {
        "reviewers": 5,
        "drop": {"highest": 1, "lowest": 1},
        "words": "5名评审独立打分，去掉1个最高分和1个最低分后取平均",
    }
    assert clauses["1"]["rules"][0]["panel"]["words"] == "3名评审独立打分，取平均"


def test_the_marks_operations_are_in_the_openapi_document(api):
    doc = api.get("/api/openapi.json").json
    path = "/api/rounds/{round_id}/units/{code}/clauses/{clause}/marks"
    assert set(doc["paths"][path]) >= {"get", "put", "post"}
    for status in ("401", "403", "404", "409", "422", "423"):
        assert status in doc["paths"][path]["put"]["responses"], status


def test_reviewers_racing_for_the_last_place_on_the_panel_leave_exactly_the_declared_number(api):
    """Clause 1 takes 3 marks; with 1 in, 5 reviewers enter theirs at the same moment: exactly 2
    succeed, the others get 409 (never 500, never a fourth mark)."""
    _submit(api)
    assert _mark(api, "reviewer", 8, clause="1").status_code == 200
    path = _marks(api, "1")
    racers = REVIEWERS[1:6]
    barrier = threading.Barrier(len(racers), timeout=60)
    results: list = [None] * len(racers)

    def worker(i: int) -> None:
        client = api.app.test_client()
        headers = {"Authorization": f"Bearer {api.tokens[racers[i]]}"}
        try:
            barrier.wait()
            results[i] = client.put(path, headers=headers, json={"points": 7, "reason": "并发"})
        except BaseException as err:  # the assertion below names it
            barrier.abort()
            results[i] = err

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(len(racers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    statuses = sorted(getattr(r, "status_code", r) for r in results)
    assert statuses == [200, 200, 409, 409, 409], statuses
    with api.ctx.db.transaction() as s:
        assert len(list(s.scalars(select(PanelMark).where(PanelMark.clause_id == "1")))) == 3
