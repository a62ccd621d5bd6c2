"""The review cycle through the API (issue 9): what the ranking shows is what the office decided.

The scenario that started it: 顾村镇's submitter filed a new self-assessment after the reviewer's
corrections (claiming no major incident), computed a score herself, and 顾村镇 went to first place
on facts nobody reviewed.  Now a submitted self-assessment cannot be changed until a reviewer
returns it, a unit computes only previews, and the ranking reads official scores only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import func, select

from service.db import DeadlineChange, JournalEntry

from .test_endpoints import B1, CODE_OF, EXAMPLE, post_json, web  # noqa: F401

GUCUN = "gucun"


def _ranked(api, scheme=B1) -> dict:
    ranking = api.get(f"/api/schemes/{scheme}/ranking", "editor").json
    return {e["unit_code"]: e for e in ranking["entries"]}


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.json
    assert response.json["error"]["code"] == code, response.json
    return response.json["error"]


def test_a_unit_cannot_move_its_own_ranking_after_review(web):  # noqa: F811
    api = web
    # three units reviewed and official (as the demo has them); gucun with its major incident
    for name in ("顾村镇", "大场镇", "宝山工业园区"):
        api.official(CODE_OF[name], B1, EXAMPLE[name])
    before = _ranked(api)
    assert set(before) == {"gucun", "dachang", "bsip"}
    path = f"/api/units/{GUCUN}/schemes/{B1}"

    # the submitter files a new self-assessment claiming no major incident: refused, by state
    claimed = dict(EXAMPLE["顾村镇"], major_quality_incident=False)
    latest = api.get(f"{path}/submissions/latest", "submitter")
    refused = post_json(
        api,
        f"{path}/submissions",
        "submitter",
        {"role": "self", "facts": claimed, "reason": "事故不属实"},
        headers={"If-Match": latest.headers["ETag"]},
    )
    error = _error(refused, 409, "illegal_transition")
    assert "已评审" in error["message"] and "评审人" in error["message"]
    # she computes a score herself: a preview, labelled so, never ranked
    preview = api.post(f"{path}/scores", "submitter", json={})
    assert preview.status_code == 201 and preview.json["kind"] == "preview"
    assert preview.json["kind_words"] == "预览"
    official = api.post(f"{path}/scores", "submitter", json={"kind": "official"})
    assert official.status_code == 403, official.json
    assert _ranked(api) == before

    # nothing unreviewed reaches the ranking even when a reviewer computes on it: a review
    # reopened drops the official score, and the unit waits (待评审) until it is reviewed again
    rid = api.round_of(B1)
    reopened = api.post(
        f"/api/rounds/{rid}/units/gucun/reopen", "reviewer", json={"reason": "复核"}
    )
    assert reopened.status_code == 200, reopened.json
    ranking = api.get(f"/api/schemes/{B1}/ranking", "editor").json
    assert "gucun" not in {e["unit_code"] for e in ranking["entries"]}
    waiting = {u["unit_code"]: u for u in ranking["unranked"]}
    assert waiting["gucun"]["shown"] == "待评审" and waiting["gucun"]["state"] == "in_review"
    _error(
        api.post(f"{path}/scores", "reviewer", json={"kind": "official"}), 409, "illegal_transition"
    )
    assert api.post(f"{path}/scores", "reviewer", json={}).json["kind"] == "preview"


def test_every_unit_is_in_the_ranking_or_listed_with_its_state(web):  # noqa: F811
    api = web
    api.official("gucun", B1, EXAMPLE["顾村镇"])
    post_json(
        api, f"/api/units/dachang/schemes/{B1}/submissions", "admin",
        {"role": "self", "facts": EXAMPLE["大场镇"]},
    )  # fmt: skip
    ranking = api.get(f"/api/schemes/{B1}/ranking", "auditor").json
    assert [e["unit_code"] for e in ranking["entries"]] == ["gucun"]
    assert ranking["entries"][0]["state"] == "reviewed"
    unranked = {u["unit_code"]: (u["state"], u["shown"]) for u in ranking["unranked"]}
    assert unranked == {"dachang": ("submitted", "待评审"), "bsip": ("none", "未填报")}
    assert ranking["round"]["year"] == 2026 and ranking["round"]["stage"] == "open"


def test_return_lets_the_unit_change_its_facts_and_it_reads_why(web):  # noqa: F811
    api = web
    rid = api.round_of(B1)
    path = f"/api/units/{GUCUN}/schemes/{B1}"
    first = post_json(
        api, f"{path}/submissions", "submitter", {"role": "self", "facts": EXAMPLE["顾村镇"]}
    )
    assert first.status_code == 201
    state = api.get(f"/api/rounds/{rid}/units/gucun", "submitter").json
    assert (state["state"], state["state_words"], state["self_version"]) == (
        "submitted",
        "已提交自评",
        1,
    )

    # a submitter cannot return their own submission
    assert (
        api.post(
            f"/api/rounds/{rid}/units/gucun/return", "submitter", json={"reason": "x"}
        ).status_code
        == 403
    )
    returned = api.post(
        f"/api/rounds/{rid}/units/gucun/return", "reviewer", json={"reason": "佐证材料缺少盖章件"}
    )
    assert returned.status_code == 200, returned.json
    seen = api.get(f"/api/rounds/{rid}/units/gucun", "submitter").json
    assert seen["state"] == "draft" and seen["returned_reason"] == "佐证材料缺少盖章件"
    assert seen["state_words"] == "草稿（已退回）"

    again = post_json(
        api, f"{path}/submissions", "submitter",
        {"role": "self", "facts": EXAMPLE["顾村镇"], "reason": "补充盖章件"},
        headers={"If-Match": '"1"'},
    )  # fmt: skip
    assert again.status_code == 201, again.json
    seen = api.get(f"/api/rounds/{rid}/units/gucun", "submitter").json
    assert (seen["state"], seen["self_version"], seen["returned_reason"]) == ("submitted", 2, None)

    # every step is in the journal with the state it left and the one it reached
    with api.ctx.db.transaction() as s:
        moves = [
            (e.action, e.detail.get("before"), e.detail.get("after"))
            for e in s.scalars(
                select(JournalEntry)
                .where(
                    JournalEntry.action.like("rounds.%"),
                    JournalEntry.unit == "gucun",
                    JournalEntry.outcome == "ok",
                )
                .order_by(JournalEntry.id)
            )
        ]
    assert moves == [
        ("rounds.submit_self", "none", "submitted"),
        ("rounds.return", "submitted", "draft"),
        ("rounds.submit_self", "draft", "submitted"),
    ]


def test_a_passed_deadline_closes_its_stage_until_an_admin_extends_it(web):  # noqa: F811
    api = web
    rid = api.round_of(B1)
    path = f"/api/units/{GUCUN}/schemes/{B1}"
    # the admin brings the self-assessment deadline into the past (the review one after it)
    for name, when in (("self_deadline", "2020-01-10T17:00:00+08:00"),):
        moved = api.post(
            f"/api/rounds/{rid}/deadlines", "admin",
            json={"deadline": name, "new": when, "reason": "测试截止"},
        )  # fmt: skip
        assert moved.status_code == 200, moved.json
    late = post_json(
        api, f"{path}/submissions", "submitter", {"role": "self", "facts": EXAMPLE["顾村镇"]}
    )
    error = _error(late, 423, "deadline_passed")
    assert "自评截止时间（2020-01-10 17:00）已过" in error["message"]
    assert list(error["fields"]) == ["self_deadline"]
    assert api.get(f"{path}/submissions", "admin").json == []  # nothing half-written

    # deadlines out of order are refused, naming the field; a reason is required
    bad = api.post(
        f"/api/rounds/{rid}/deadlines", "admin",
        json={"deadline": "review_deadline", "new": "2019-01-01T00:00:00+08:00", "reason": "x"},
    )  # fmt: skip
    assert bad.status_code == 422 and "review_deadline" in bad.json["error"]["fields"]
    no_reason = api.post(
        f"/api/rounds/{rid}/deadlines", "admin",
        json={"deadline": "self_deadline", "new": "2099-01-01T00:00:00+08:00", "reason": ""},
    )  # fmt: skip
    assert no_reason.status_code == 422 and "reason" in no_reason.json["error"]["fields"]

    extended = api.post(
        f"/api/rounds/{rid}/deadlines", "admin",
        json={"deadline": "self_deadline", "new": "2098-12-31T17:00", "reason": "因疫情延期"},
    )  # fmt: skip
    assert extended.status_code == 200, extended.json
    # a time without its zone is Beijing time
    assert datetime.fromisoformat(extended.json["self_deadline"]) == datetime(
        2098, 12, 31, 9, tzinfo=UTC
    )
    ok = post_json(
        api, f"{path}/submissions", "submitter", {"role": "self", "facts": EXAMPLE["顾村镇"]}
    )
    assert ok.status_code == 201, ok.json
    with api.ctx.db.transaction() as s:
        changes = s.scalars(select(DeadlineChange).order_by(DeadlineChange.id)).all()
        assert [c.reason for c in changes] == ["测试截止", "因疫情延期"]
        assert s.scalar(select(func.count()).where(JournalEntry.action == "rounds.deadline")) == 2


def test_official_scores_come_from_the_reviewed_version_only(web):  # noqa: F811
    api = web
    rid = api.round_of(B1)
    path = f"/api/units/{GUCUN}/schemes/{B1}"
    post_json(api, f"{path}/submissions", "submitter", {"role": "self", "facts": EXAMPLE["顾村镇"]})
    corrected = dict(EXAMPLE["顾村镇"], major_quality_incident=False)
    post_json(
        api, f"{path}/submissions", "reviewer",
        {"role": "review", "facts": corrected, "reason": "经核实无事故"},
        headers={"If-Match": '"1"'},
    )  # fmt: skip
    _error(
        api.post(f"{path}/scores", "reviewer", json={"kind": "official"}), 409, "illegal_transition"
    )
    assert (
        api.post(f"/api/rounds/{rid}/units/gucun/review-complete", "reviewer").json[
            "reviewed_version"
        ]
        == 2
    )
    wrong = api.post(
        f"{path}/scores", "reviewer", json={"kind": "official", "submission_version": 1}
    )
    assert _error(wrong, 409, "not_reviewed_version")["fields"] == {"version": ["应为 2"]}
    official = api.post(f"{path}/scores", "reviewer", json={})
    assert (official.json["kind"], official.json["submission_version"]) == ("official", 2)
    entry = _ranked(api)["gucun"]
    assert entry["score_id"] == official.json["id"] and entry["vetoes"] == []
    assert Decimal(entry["total"]) == Decimal(official.json["total"])


def test_publish_and_finalize(web):  # noqa: F811
    api = web
    rid = api.round_of(B1)
    refused = api.post(f"/api/rounds/{rid}/publish", "admin")
    _error(refused, 409, "nothing_reviewed")
    api.official("gucun", B1, EXAMPLE["顾村镇"])
    assert api.post(f"/api/rounds/{rid}/publish", "reviewer").status_code == 403
    published = api.post(f"/api/rounds/{rid}/publish", "admin")
    assert published.status_code == 200 and published.json["stage"] == "published"
    board = {u["unit"]: u["state"] for u in api.get(f"/api/rounds/{rid}/units", "admin").json}
    assert board == {"gucun": "published", "dachang": "none", "bsip": "none"}
    assert [u["unit"] for u in api.get(f"/api/rounds/{rid}/units", "submitter").json] == ["gucun"]
    # not before the appeal window has closed
    _error(api.post(f"/api/rounds/{rid}/finalize", "admin"), 409, "appeal_window_open")
    for name, when in (
        ("self_deadline", "2020-01-01T00:00:00+08:00"),
        ("review_deadline", "2020-01-02T00:00:00+08:00"),
        ("publication_start", "2020-01-03T00:00:00+08:00"),
        ("appeal_deadline", "2020-01-04T00:00:00+08:00"),
    ):
        moved = api.post(
            f"/api/rounds/{rid}/deadlines", "admin",
            json={"deadline": name, "new": when, "reason": "提前结束"},
        )  # fmt: skip
        assert moved.status_code == 200, moved.json
    final = api.post(f"/api/rounds/{rid}/finalize", "admin")
    assert final.status_code == 200 and final.json["stage"] == "final"
    assert api.get(f"/api/rounds/{rid}/units/gucun", "admin").json["state"] == "final"
    # a final round takes no more facts: the scheme has no open round now
    late = post_json(
        api, f"/api/units/dachang/schemes/{B1}/submissions", "admin",
        {"role": "self", "facts": EXAMPLE["大场镇"]},
    )  # fmt: skip
    _error(late, 409, "no_open_round")
    assert _ranked(api)["gucun"]["state"] == "final"
