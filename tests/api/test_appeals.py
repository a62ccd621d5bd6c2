"""Appeals (申诉/复核) through the API, on SQLite and PostgreSQL: a unit appeals its published score
clause by clause inside the appeal window, a reviewer answers each clause (维持 or 更正), a 更正
makes a new reviewed version and a new official score, the round is republished with it, the unit
reads the answers, and the round is finalised after the window; and every refusal on the way."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from service import appeals, operations, rounds
from service.access import Actor
from service.db import (
    Appeal,
    AppealItem,
    JournalEntry,
    RoundUnit,
    Score,
    Submission,
    Unit,
    User,
)
from service.domain.cycle import ACTIONS, STATES
from service.exceptions import Invalid

SCHEME = "gumeilu-2022"
#: 顾村镇 a little behind 大场镇 until its 一镇一品 score is corrected on appeal
GUCUN = {
    "leader_evaluation_score": 4,
    "leader_evaluation_reason": "工作扎实",
    "featured_quality_score": 30,
    "featured_quality_reason": "特色一般",
}
DACHANG = {
    "leader_evaluation_score": 4.5,
    "leader_evaluation_reason": "工作扎实",
    "featured_quality_score": 32,
    "featured_quality_reason": "特色较好",
}
FEATURED, LEADER = "12", "区领导评价"  # the clauses appealed (一镇一品; 区领导评价)


def _appeal(api, rid, code, as_, items):
    return api.post(f"/api/rounds/{rid}/units/{code}/appeals", as_, json={"items": items})


def _answer(api, appeal_id, clause, as_, **body):
    return api.post(f"/api/appeals/{appeal_id}/items/{clause}/answer", as_, json=body)


def _ranking(api) -> dict:
    ranking = api.get(f"/api/schemes/{SCHEME}/ranking", "auditor")
    assert ranking.status_code == 200, ranking.json
    return {e["unit_code"]: e for e in ranking.json["entries"]}


def _both_official_and_published(api) -> int:
    api.official("gucun", SCHEME, GUCUN)
    api.official("dachang", SCHEME, DACHANG)
    rid = api.round_of(SCHEME)
    published = api.post(f"/api/rounds/{rid}/publish", "admin")
    assert published.status_code == 200, published.json
    return rid


def _close_appeal_window(api, rid) -> None:
    """Move the round's deadlines up to the appeal deadline into the past, in their order (each may
    not come before the one before it), as an admin would: with a reason."""
    past = datetime.now(UTC) - timedelta(days=1)
    for i, name in enumerate(("self_deadline", "review_deadline", "publication_start",
                              "appeal_deadline")):  # fmt: skip
        moved = api.post(
            f"/api/rounds/{rid}/deadlines",
            "admin",
            json={
                "deadline": name,
                "new": (past + timedelta(minutes=i)).isoformat(),
                "reason": "测试：申诉期结束",
            },
        )
        assert moved.status_code == 200, moved.json


def _count(api, model) -> int:
    with api.ctx.db.transaction() as s:
        return s.scalar(select(func.count()).select_from(model))


def _place(api, rid, code) -> RoundUnit:
    with api.ctx.db.transaction() as s:
        unit = s.scalar(select(Unit).where(Unit.code == code))
        return s.scalar(
            select(RoundUnit).where(RoundUnit.round_id == rid, RoundUnit.unit_id == unit.id)
        )


def test_an_appeal_answered_with_a_correction_changes_the_ranking_once_republished(api):
    rid = _both_official_and_published(api)
    before = _ranking(api)
    assert before["dachang"]["rank"] == 1 and before["gucun"]["rank"] == 2
    gucun_score = before["gucun"]["score_id"]

    # the unit's submitter appeals two clauses, with reasons and evidence
    filed = _appeal(api, rid, "gucun", "submitter", [
        {"clause": FEATURED, "reason": "特色工作有市级媒体报道，评审漏看",
         "evidence": {"featured_quality_score": ["附件3：解放日报报道"]}},
        {"clause": LEADER, "reason": "区领导评价未考虑下半年工作"},
    ])  # fmt: skip
    assert filed.status_code == 201, filed.json
    appeal = filed.json
    assert (appeal["unit"], appeal["state"], appeal["unit_state"]) == ("gucun", "open", "appealed")
    assert appeal["unit_state_words"] == "申诉中" and appeal["filed_by"] == "submitter"
    assert appeal["appealed_score_id"] == gucun_score
    assert [(i["clause"], i["answer"], i["answer_words"]) for i in appeal["items"]] == [
        (FEATURED, None, "待答复"),
        (LEADER, None, "待答复"),
    ]
    assert appeal["items"][0]["evidence"] == {"featured_quality_score": ["附件3：解放日报报道"]}
    # one appeal at a time: the unit is 申诉中 now
    again = _appeal(api, rid, "gucun", "submitter", [{"clause": LEADER, "reason": "再申诉"}])
    assert again.status_code == 409, again.json
    assert "申诉中" in again.json["error"]["message"]

    # the appeal window closes: nobody appeals any more (423 naming the deadline) …
    _close_appeal_window(api, rid)
    late = _appeal(api, rid, "dachang", "admin", [{"clause": LEADER, "reason": "迟到的申诉"}])
    assert late.status_code == 423, late.json
    assert "appeal_deadline" in late.json["error"]["fields"]
    assert "申诉截止时间" in late.json["error"]["message"]
    assert _place(api, rid, "dachang").state == "published"
    # … but the appeals filed in time are answered, and the round cannot be finalised before
    early = api.post(f"/api/rounds/{rid}/finalize", "admin")
    assert early.status_code == 409 and early.json["error"]["code"] == "appeals_open", early.json

    # 维持 on one clause: the unit stays 申诉中 until every clause is answered
    upheld = _answer(api, appeal["id"], LEADER, "reviewer", answer="uphold",
                     reason="区领导评价为全年综合评价，维持")  # fmt: skip
    assert upheld.status_code == 200, upheld.json
    assert upheld.json["unit_state"] == "appealed" and upheld.json["state"] == "open"
    leader = next(i for i in upheld.json["items"] if i["clause"] == LEADER)
    assert (leader["answer"], leader["answer_words"], leader["answered_by"]) == (
        "uphold",
        "维持",
        "reviewer",
    )
    assert leader["new_score_id"] is None and leader["new_submission_version"] is None
    twice = _answer(api, appeal["id"], LEADER, "admin", answer="uphold", reason="再答复")
    assert twice.status_code == 409 and twice.json["error"]["code"] == "already_answered"

    # 更正 on the other: a new reviewed version, a new official score, the unit 已复核
    corrected = _answer(api, appeal["id"], FEATURED, "reviewer", answer="correct",
                        reason="经复核，特色工作成效显著",
                        facts={"featured_quality_score": 38},
                        reasons={"featured_quality_score": "核实市级媒体报道，改为38分"})  # fmt: skip
    assert corrected.status_code == 200, corrected.json
    answered = corrected.json
    assert (answered["state"], answered["unit_state"]) == ("answered", "rechecked")
    item = next(i for i in answered["items"] if i["clause"] == FEATURED)
    assert (item["answer"], item["answer_words"]) == ("correct", "更正")
    assert item["new_submission_version"] == 2
    assert Decimal(item["new_total"]) == Decimal(before["gucun"]["total"]) + 8
    assert answered["official_score_id"] == item["new_score_id"] != gucun_score
    place = _place(api, rid, "gucun")
    assert (place.state, place.reviewed_version, place.official_score_id) == (
        "rechecked",
        2,
        item["new_score_id"],
    )
    with api.ctx.db.transaction() as s:
        version = s.scalar(
            select(Submission).where(Submission.version == 2, Submission.scheme_id == SCHEME,
                                     Submission.unit_id == place.unit_id)
        )  # fmt: skip
        score = s.get(Score, item["new_score_id"])
    assert version.role == "review" and f"第{appeal['id']}号申诉" in version.reason
    assert version.facts["featured_quality_score"] == 38
    assert version.facts["leader_evaluation_score"] == 4  # the rest as reviewed
    assert version.reasons == {"featured_quality_score": "核实市级媒体报道，改为38分"}
    assert (score.kind, score.submission_version, score.round_id) == ("official", 2, rid)

    # republished: 顾村镇 is published again with its new score, and now ranks first
    republished = api.post(f"/api/rounds/{rid}/publish", "admin")
    assert republished.status_code == 200, republished.json
    assert _place(api, rid, "gucun").state == "published"
    after = _ranking(api)
    assert after["gucun"]["rank"] == 1 and after["dachang"]["rank"] == 2
    assert after["gucun"]["score_id"] == item["new_score_id"]
    assert after["gucun"]["submission_version"] == 2

    # the unit reads the answers (its own unit only); so do the reviewer and the auditor
    read = api.get(f"/api/rounds/{rid}/units/gucun/appeals", "submitter")
    assert read.status_code == 200, read.json
    [shown] = read.json
    assert {i["clause"]: (i["answer_words"], i["answer_reason"]) for i in shown["items"]} == {
        LEADER: ("维持", "区领导评价为全年综合评价，维持"),
        FEATURED: ("更正", "经复核，特色工作成效显著"),
    }
    assert shown["unit_state"] == "published"
    assert api.get(f"/api/rounds/{rid}/units/dachang/appeals", "submitter").status_code == 403
    assert api.get(f"/api/rounds/{rid}/units/gucun/appeals", "auditor").status_code == 200
    assert api.get(f"/api/rounds/{rid}/units/dachang/appeals", "reviewer").json == []

    # after the window, finalised: 定稿, every unit, with the corrected score
    final = api.post(f"/api/rounds/{rid}/finalize", "admin")
    assert final.status_code == 200, final.json
    assert {_place(api, rid, code).state for code in ("gucun", "dachang")} == {"final"}
    assert _ranking(api)["gucun"]["score_id"] == item["new_score_id"]
    closed = _answer(api, appeal["id"], LEADER, "reviewer", answer="uphold", reason="定稿后")
    assert closed.status_code == 409

    # journaled: the filing, each answer, and the cycle's moves
    with api.ctx.db.transaction() as s:
        actions = list(
            s.scalars(
                select(JournalEntry.action).where(
                    JournalEntry.outcome == "ok",
                    JournalEntry.action.in_(
                        ("appeals.file", "appeals.answer", "rounds.appeal",
                         "rounds.correct_appeal", "rounds.answer_appeal")
                    ),
                ).order_by(JournalEntry.id)
            )
        )  # fmt: skip
    assert actions == [
        "rounds.appeal",
        "appeals.file",
        "appeals.answer",
        "rounds.correct_appeal",
        "appeals.answer",
        "rounds.answer_appeal",
    ]
    # the history chain still holds with the corrected version and score in it
    verified = api.get("/api/journal/verify", "admin")
    assert verified.status_code == 200 and verified.json["ok"], verified.json


def test_refused_appeals_and_answers_store_nothing(api):
    api.official("gucun", SCHEME, GUCUN)
    api.official("dachang", SCHEME, DACHANG)
    rid = api.round_of(SCHEME)
    item = [{"clause": FEATURED, "reason": "评审漏看材料"}]

    # before publication: the unit is 已评审, not 公示中
    early = _appeal(api, rid, "gucun", "submitter", item)
    assert early.status_code == 409, early.json
    assert early.json["error"]["code"] == "illegal_transition"
    assert "已评审" in early.json["error"]["message"]
    assert api.post(f"/api/rounds/{rid}/publish", "admin").status_code == 200

    # the body: a clause the round's scheme does not have, a blank reason, evidence for a fact the
    # clause does not read, the same clause twice, nothing appealed
    cases = [
        ([{"clause": "99", "reason": "x"}], "items.0.clause"),
        ([{"clause": FEATURED, "reason": "   "}], "items.0.reason"),
        ([{"clause": FEATURED, "reason": "x", "evidence": {"commendations": ["附件"]}}],
         "items.0.evidence.commendations"),
        ([{"clause": LEADER, "reason": "x"}, {"clause": LEADER, "reason": "y"}], "items.1.clause"),
        ([], "items"),
    ]  # fmt: skip
    for items, field in cases:
        refused = _appeal(api, rid, "gucun", "submitter", items)
        assert refused.status_code == 422, (items, refused.json)
        assert field in refused.json["error"]["fields"], (field, refused.json)
    unknown = _appeal(api, rid, "gucun", "submitter", [{"clause": "99", "reason": "x"}])
    assert "本轮细则中没有条款“99”" in unknown.json["error"]["fields"]["items.0.clause"]
    # the service keeps evidence within a submission's limits whoever calls it (the pages too)
    for refs, why in ((["x" * 501], "不超过500字"), (["a"] * 51, "不超过50条"), ([" "], "非空")):
        with pytest.raises(Invalid) as refused:
            appeals.file_appeal(api.ctx, _staff(api, "submitter"), rid, "gucun", [
                {"clause": FEATURED, "reason": "x", "evidence": {"featured_quality_score": refs}}
            ])  # fmt: skip
        [message] = refused.value.fields["items.0.evidence.featured_quality_score"]
        assert why in message, message

    # who may appeal: the unit's own submitter or an admin; not another unit's, nor a reviewer
    assert _appeal(api, rid, "dachang", "submitter", item).status_code == 403
    for role in ("reviewer", "editor", "auditor"):
        assert _appeal(api, rid, "gucun", role, item).status_code == 403, role
    assert _appeal(api, 999_999, "gucun", "submitter", item).status_code == 404
    assert _count(api, Appeal) == 0 and _count(api, AppealItem) == 0
    assert _place(api, rid, "gucun").state == "published"

    filed = _appeal(api, rid, "gucun", "submitter", item)
    assert filed.status_code == 201, filed.json
    appeal_id = filed.json["id"]

    # who may answer: a reviewer or an admin; never the unit's submitter, the auditor or an editor
    for role in ("submitter", "auditor", "editor"):
        got = _answer(api, appeal_id, FEATURED, role, answer="uphold", reason="维持")
        assert got.status_code == 403, (role, got.json)
    assert (
        _answer(api, 999_999, FEATURED, "reviewer", answer="uphold", reason="x").status_code == 404
    )
    assert (
        _answer(api, appeal_id, LEADER, "reviewer", answer="uphold", reason="x").status_code == 404
    )
    # an answer without a reason, a 维持 that changes facts, a 更正 of a fact the clause does not
    # read, one without its reason, one that changes nothing
    bad = [
        ({"answer": "uphold", "reason": " "}, "reason"),
        ({"answer": "maybe", "reason": "x"}, "answer"),
        ({"answer": "uphold", "reason": "x", "facts": {"featured_quality_score": 35}}, "facts"),
        ({"answer": "correct", "reason": "x", "facts": {"leader_evaluation_score": 5},
          "reasons": {"leader_evaluation_score": "y"}}, "facts.leader_evaluation_score"),
        ({"answer": "correct", "reason": "x", "facts": {"featured_quality_score": 35}},
         "reasons.featured_quality_score"),
        ({"answer": "correct", "reason": "x", "facts": {"featured_quality_score": 30},
          "reasons": {"featured_quality_score": "y"}}, "facts"),
        ({"answer": "correct", "reason": "x", "facts": {"featured_quality_score": 41},
          "reasons": {"featured_quality_score": "y"}}, "facts.featured_quality_score"),
        ({"answer": "correct", "reason": "x"}, "facts"),
    ]  # fmt: skip
    versions, scores = _count(api, Submission), _count(api, Score)
    for body, field in bad:
        got = _answer(api, appeal_id, FEATURED, "reviewer", **body)
        assert got.status_code == 422, (body, got.json)
        assert field in got.json["error"]["fields"], (field, got.json)
    assert (_count(api, Submission), _count(api, Score)) == (versions, scores)
    shown = api.get(f"/api/rounds/{rid}/units/gucun/appeals", "admin").json
    assert [i["answer"] for i in shown[0]["items"]] == [None]
    assert _place(api, rid, "gucun").state == "appealed"


def test_the_openapi_document_has_the_appeal_operations(api):
    paths = api.get("/api/openapi.json").json["paths"]
    filed = paths["/api/rounds/{round_id}/units/{code}/appeals"]
    assert {"get", "post"} <= set(filed)
    assert {"201", "409", "422", "423"} <= set(filed["post"]["responses"])
    answer = paths["/api/appeals/{appeal_id}/items/{clause}/answer"]["post"]
    assert {"200", "403", "404", "409", "422"} <= set(answer["responses"])


def _staff(api, username: str) -> Actor:
    with api.ctx.db.transaction() as s:
        user = s.scalar(select(User).where(User.username == username))
        return Actor(user.id, user.username, user.role, user.unit_id)


def test_a_correction_that_fails_half_way_stores_nothing(api, monkeypatch):
    """The new version, the new score, the unit's place and the answer are one transaction: a
    failure after the score is stored (here: injected right after it) leaves none of them."""
    rid = _both_official_and_published(api)
    filed = _appeal(api, rid, "gucun", "submitter", [{"clause": FEATURED, "reason": "漏看材料"}])
    assert filed.status_code == 201, filed.json
    versions, scores = _count(api, Submission), _count(api, Score)
    real = appeals.record_score

    def fails_after_storing(*args, **kwargs):
        real(*args, **kwargs)
        raise RuntimeError("injected after the score was stored")

    monkeypatch.setattr(appeals, "record_score", fails_after_storing)
    with pytest.raises(RuntimeError):
        appeals.answer_item(
            api.ctx, _staff(api, "reviewer"), filed.json["id"], FEATURED, "correct", "更正",
            {"featured_quality_score": 38}, {"featured_quality_score": "核实"},
        )  # fmt: skip
    assert (_count(api, Submission), _count(api, Score)) == (versions, scores)
    place = _place(api, rid, "gucun")
    assert (place.state, place.reviewed_version) == ("appealed", 1)
    assert place.official_score_id == filed.json["appealed_score_id"]
    shown = api.get(f"/api/rounds/{rid}/units/gucun/appeals", "admin").json[0]
    assert shown["items"][0]["answer"] is None and shown["state"] == "open"

    monkeypatch.setattr(appeals, "record_score", real)  # and it can be answered afterwards
    done = _answer(api, filed.json["id"], FEATURED, "reviewer", answer="correct", reason="更正",
                   facts={"featured_quality_score": 38},
                   reasons={"featured_quality_score": "核实"})  # fmt: skip
    assert done.status_code == 200 and done.json["unit_state"] == "rechecked", done.json


def _race(api, n: int, send) -> list:
    barrier = threading.Barrier(n, timeout=60)
    results: list = [None] * n

    def worker(i: int) -> None:
        client = api.app.test_client()
        try:
            barrier.wait()
            results[i] = send(client, i)
        except BaseException as err:
            barrier.abort()
            results[i] = err

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "an answering thread hung"
    assert not [r for r in results if isinstance(r, BaseException)], results
    return results


def test_reviewers_answering_at_once_each_answer_once_and_the_unit_is_rechecked_once(api):
    """Answers to one appeal take turns (the appeal's row is taken first): of several answers to
    one clause exactly one is kept, and when the last clauses are answered at the same moment,
    the unit is moved to 已复核 exactly once, never left 申诉中 with every clause answered."""
    rid = _both_official_and_published(api)
    clauses = ["1", "2", "3", "4", "7", LEADER]
    filed = _appeal(api, rid, "gucun", "submitter",
                    [{"clause": c, "reason": f"申诉{c}"} for c in clauses])  # fmt: skip
    assert filed.status_code == 201, filed.json
    appeal_id = filed.json["id"]
    auth = {"Authorization": f"Bearer {api.tokens['reviewer']}"}

    def same_clause(client, i):
        return client.post(f"/api/appeals/{appeal_id}/items/1/answer", headers=auth,
                           json={"answer": "uphold", "reason": f"维持{i}"})  # fmt: skip

    got = _race(api, 4, same_clause)
    assert sorted(r.status_code for r in got) == [200, 409, 409, 409], [r.json for r in got]
    assert {r.json["error"]["code"] for r in got if r.status_code == 409} == {"already_answered"}

    def each_clause(client, i):
        return client.post(f"/api/appeals/{appeal_id}/items/{clauses[i + 1]}/answer",
                           headers=auth, json={"answer": "uphold", "reason": "维持"})  # fmt: skip

    got = _race(api, len(clauses) - 1, each_clause)
    assert [r.status_code for r in got] == [200] * (len(clauses) - 1), [r.json for r in got]
    assert _place(api, rid, "gucun").state == "rechecked"
    shown = api.get(f"/api/rounds/{rid}/units/gucun/appeals", "admin").json[0]
    assert shown["state"] == "answered"
    assert all(i["answer"] == "uphold" for i in shown["items"])
    with api.ctx.db.transaction() as s:
        moves = s.scalar(
            select(func.count())
            .select_from(JournalEntry)
            .where(JournalEntry.action == "rounds.answer_appeal")
        )
        answers = s.scalar(
            select(func.count())
            .select_from(JournalEntry)
            .where(JournalEntry.action == "appeals.answer")
        )
    assert (moves, answers) == (1, len(clauses))


def test_an_appeal_is_taken_in_the_states_the_cycle_says_and_nowhere_else(api):
    """The unit walked through every state of the cycle; at each, an appeal by its submitter is
    accepted exactly when ``domain.cycle.ACTIONS["appeal"]`` starts from that state (then 201),
    refused with the state's words otherwise (409), after the appeal deadline with the deadline
    named (423), and in a final round as final; an answer is taken only while 申诉中."""
    rid = api.round_of(SCHEME)
    ctx, path = api.ctx, f"/api/units/gucun/schemes/{SCHEME}"
    submitter, reviewer = _staff(api, "submitter"), _staff(api, "reviewer")
    item = [{"clause": FEATURED, "reason": "评审漏看材料"}]
    seen = []

    def attempt(expect_file: int | None = None) -> dict | None:
        state = (_place(api, rid, "gucun") or RoundUnit(state="none")).state
        want = 201 if state in ACTIONS["appeal"].starts else 409
        got = _appeal(api, rid, "gucun", "submitter", item)
        assert got.status_code == (expect_file or want), (state, got.json)
        if got.status_code == 409:
            assert STATES[state] in got.json["error"]["message"], (state, got.json)
        seen.append(state)
        return got.json if got.status_code == 201 else None

    attempt()  # 未填报
    operations.save_draft(ctx, submitter, "gucun", SCHEME, {"featured_quality_score": "30"},
                          {}, "", {}, 0)  # fmt: skip
    attempt()  # 草稿
    api.official("dachang", SCHEME, DACHANG)
    sent = api.post(f"{path}/submissions", "submitter", json={"role": "self", "facts": GUCUN})
    assert sent.status_code == 201, sent.json
    attempt()  # 已提交自评
    corrected = api.post(f"{path}/submissions", "reviewer",
                         json={"role": "review", "facts": GUCUN, "reason": "评审核对"},
                         headers={"If-Match": sent.headers["ETag"]})  # fmt: skip
    assert corrected.status_code == 201, corrected.json
    attempt()  # 评审中
    rounds.complete_review(ctx, reviewer, rid, "gucun")
    operations.compute_score(ctx, reviewer, "gucun", SCHEME, kind="official")
    attempt()  # 已评审
    assert api.post(f"/api/rounds/{rid}/publish", "admin").status_code == 200
    filed = attempt()  # 公示中: taken
    attempt()  # 申诉中
    answered = _answer(api, filed["id"], FEATURED, "reviewer", answer="uphold", reason="维持")
    assert answered.status_code == 200, answered.json
    attempt()  # 已复核
    again = _answer(api, filed["id"], FEATURED, "reviewer", answer="uphold", reason="维持")
    assert again.status_code == 409, again.json
    assert api.post(f"/api/rounds/{rid}/publish", "admin").status_code == 200
    _close_appeal_window(api, rid)
    late = attempt(expect_file=423)  # 公示中 again, but after the appeal deadline
    assert late is None
    assert api.post(f"/api/rounds/{rid}/finalize", "admin").status_code == 200
    final = _appeal(api, rid, "gucun", "submitter", item)
    assert final.status_code == 409 and final.json["error"]["code"] == "round_final"
    assert seen == [
        "none", "draft", "submitted", "in_review", "reviewed", "published", "appealed",
        "rechecked", "published",
    ]  # fmt: skip


def test_appeals_filed_at_once_for_one_unit_make_one_appeal(api):
    """The unit's move to 申诉中 and the appeal's rows are one transaction, and the move is taken
    under the unit's row lock: of several filings at the same moment exactly one is stored."""
    rid = _both_official_and_published(api)
    auth = {"Authorization": f"Bearer {api.tokens['submitter']}"}

    def file(client, i):
        return client.post(f"/api/rounds/{rid}/units/gucun/appeals", headers=auth,
                           json={"items": [{"clause": FEATURED, "reason": f"申诉{i}"}]})  # fmt: skip

    got = _race(api, 4, file)
    assert sorted(r.status_code for r in got) == [201, 409, 409, 409], [r.json for r in got]
    assert (_count(api, Appeal), _count(api, AppealItem)) == (1, 1)
    assert _place(api, rid, "gucun").state == "appealed"
