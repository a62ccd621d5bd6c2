"""The auditor's desk through the API (issue 11), on SQLite and PostgreSQL: each fact's provenance
(self, review, appeal correction) in the score and on its own endpoint, a fact's history, the replay
with its detail, the replay of a round as a job and its report, a round's audit, the tamper check's
last result; the stored trace and its hash untouched; the OpenAPI document names all of it."""

from __future__ import annotations

import io
import shutil
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from sqlalchemy import event, select, text

from admin.present import when
from service import jobs, provenance
from service.db import Score, Unit

from ..admin.conftest import sign_in
from ..conftest import FIXTURES
from .conftest import DATABASES, make_api

SCHEME = "gumeilu-2022"
SELF = {"leader_evaluation_score": 4, "leader_evaluation_reason": "工作扎实",
        "featured_quality_score": 30, "featured_quality_reason": "特色一般"}  # fmt: skip
FEATURED = "12"  # 一镇一品: reads featured_quality_score
PATH = f"/api/units/gucun/schemes/{SCHEME}"


def _walk(api) -> dict:
    """顾村镇: the submitter's self-assessment with evidence (v1), the reviewer's correction of one
    fact with its reason (v2), reviewed and scored; published, appealed, and the appeal answered
    with a 更正 (v3, a new official score)."""
    sent = api.post(f"{PATH}/submissions", "submitter", json={
        "role": "self", "facts": SELF,
        "evidence": {"featured_quality_score": ["附件1：特色工作总结"],
                     "leader_evaluation_score": ["附件2：区领导评价表"]}})  # fmt: skip
    assert sent.status_code == 201, sent.json
    review = api.post(f"{PATH}/submissions", "reviewer", headers={"If-Match": '"1"'}, json={
        "role": "review", "facts": {**SELF, "featured_quality_score": 33},
        "reasons": {"featured_quality_score": "现场核查后上调"}})  # fmt: skip
    assert review.status_code == 201, review.json
    rid = api.round_of(SCHEME)
    assert api.post(f"/api/rounds/{rid}/units/gucun/review-complete", "reviewer").status_code == 200
    first = api.post(f"{PATH}/scores", "reviewer", json={"kind": "official"})
    assert first.status_code == 201, first.json
    return {"round": rid, "first": first.json}


def _appeal_and_correct(api, rid: int) -> dict:
    # every unit of the round must be scored before publication: 大场镇 too
    api.official("dachang", SCHEME, SELF)
    published = api.post(f"/api/rounds/{rid}/publish", "admin")
    assert published.status_code == 200, published.json
    filed = api.post(f"/api/rounds/{rid}/units/gucun/appeals", "submitter", json={
        "items": [{"clause": FEATURED, "reason": "有市级媒体报道，评审漏看"}]})  # fmt: skip
    assert filed.status_code == 201, filed.json
    answered = api.post(
        f"/api/appeals/{filed.json['id']}/items/{FEATURED}/answer", "reviewer", json={
            "answer": "correct", "reason": "经复核，成效显著",
            "facts": {"featured_quality_score": 38},
            "reasons": {"featured_quality_score": "核实报道，改为38分"}})  # fmt: skip
    assert answered.status_code == 200, answered.json
    return answered.json


def test_each_fact_says_where_it_came_from(api):
    walked = _walk(api)
    score = walked["first"]
    read = api.get(f"/api/scores/{score['id']}", "auditor")
    assert read.status_code == 200, read.json
    # the fields the score always had, as they were; the stored trace untouched
    for key in ("id", "total", "rules_version", "submission_version", "engine_version", "trace"):
        assert read.json[key] == score[key], key
    with api.ctx.db.transaction() as s:
        row = s.get(Score, score["id"])
        assert row.trace == read.json["trace"] and "provenance" not in row.trace
    prov = read.json["provenance"]
    assert prov == api.get(f"/api/scores/{score['id']}/provenance", "auditor").json
    featured = prov["facts"]["featured_quality_score"]
    assert (featured["value"], featured["version"], featured["role"], featured["role_words"],
            featured["by"], featured["reason"], featured["changes"]) == (
        "33", 2, "review", "评审", "reviewer", "现场核查后上调", 2)  # fmt: skip
    leader = prov["facts"]["leader_evaluation_score"]
    assert (leader["value"], leader["version"], leader["role_words"], leader["by"]) == (
        "4",
        1,
        "自评",
        "submitter",
    )
    assert leader["at"] and featured["at"] >= leader["at"]
    assert "featured_quality_score" in prov["clauses"][FEATURED]
    assert api.ctx.db.verify_history()["problem"] is None  # nothing rewritten

    # a 更正 on appeal: the fact's source is the appeal, the version the answer made
    answered = _appeal_and_correct(api, walked["round"])
    item = answered["items"][0]
    corrected = api.get(f"/api/scores/{item['new_score_id']}/provenance", "auditor").json
    source = corrected["facts"]["featured_quality_score"]
    assert (source["value"], source["version"], source["role"], source["role_words"],
            source["appeal"], source["appeal_clause"], source["reason"]) == (
        "38", 3, "appeal", "申诉更正", answered["id"], FEATURED, "核实报道，改为38分")  # fmt: skip
    # the facts the appeal left alone keep their own source
    assert corrected["facts"]["leader_evaluation_score"]["version"] == 1

    history = api.get(f"{PATH}/facts/featured_quality_score/history", "auditor")
    assert history.status_code == 200, history.json
    assert [(v["version"], v["value"], v["changed"], v["role"]) for v in history.json["versions"]] == [
        (1, "30", True, "self"), (2, "33", True, "review"), (3, "38", True, "appeal")]  # fmt: skip
    assert history.json["versions"][0]["evidence"] == ["附件1：特色工作总结"]
    assert history.json["label"]
    unchanged = api.get(f"{PATH}/facts/leader_evaluation_score/history", "auditor").json
    assert [v["changed"] for v in unchanged["versions"]] == [True, False, False]
    unknown = api.get(f"{PATH}/facts/no_such_fact/history", "auditor")
    assert unknown.status_code == 404 and unknown.json["error"]["code"] == "unknown_fact"
    # the unit reads its own provenance; another unit's is refused
    assert api.get(f"/api/scores/{score['id']}/provenance", "submitter").status_code == 200
    assert (
        api.get(f"/api/units/dachang/schemes/{SCHEME}/facts/x/history", "submitter").status_code
        == 403
    )


def test_the_score_workbook_carries_each_facts_provenance(api):
    """score.xlsx has a sheet 事实来源: every fact of the score as the provenance endpoint gives it
    (value, version, as what, appeal, who, when, why, evidence), cell by cell."""
    walked = _walk(api)
    answered = _appeal_and_correct(api, walked["round"])
    new = answered["items"][0]["new_score_id"]
    prov = api.get(f"/api/scores/{new}/provenance", "auditor").json
    client = api.app.test_client()
    assert sign_in(client, "auditor").status_code == 302
    got = client.get(f"/admin/units/gucun/schemes/{SCHEME}/score.xlsx?id={new}")
    assert got.status_code == 200
    book = load_workbook(io.BytesIO(got.data))
    assert "事实来源" in book.sheetnames
    sheet = book["事实来源"]
    header = [c.value for c in sheet[3]]
    assert header == ["序号", "事实", "值", "读取的条款", "来自", "身份", "申诉", "录入/修改人",
                      "时间", "理由", "佐证材料"]  # fmt: skip
    rows = {}
    for values in sheet.iter_rows(min_row=4, values_only=True):
        if isinstance(values[0], int):
            row = dict(zip(header, values))
            rows[row["事实"].rsplit("（", 1)[1].rstrip("）")] = row
    assert set(rows) == set(prov["facts"])  # every fact of the score, once
    assert [r["序号"] for r in rows.values()] == list(range(1, len(rows) + 1))
    for name, p in prov["facts"].items():
        row = rows[name]
        value = row["值"]
        if not p["present"]:
            assert value == "缺失", name
        elif isinstance(value, (int, float)):
            assert Decimal(str(value)) == Decimal(p["value"]), name
        else:
            assert value == {True: "是", False: "否"}.get(p["value"], p["value"]), name
        clauses = [c for c, names in prov["clauses"].items() if name in names]
        assert (row["读取的条款"] or "") == "、".join(clauses), name
        assert row["来自"] == (f"第{p['version']}版" if p["version"] else "从未填报"), name
        assert (row["身份"] or "") == (p["role_words"] or ""), name
        assert (row["录入/修改人"] or "") == (p["by"] or ""), name
        assert (row["时间"] or "") == (when(p["at"]) if p["at"] else ""), name
        assert (row["理由"] or "") == p["reason"], name
        assert (row["佐证材料"] or "") == "；".join(p["evidence"]), name
    corrected = rows["featured_quality_score"]
    assert (corrected["值"], corrected["来自"], corrected["身份"], corrected["录入/修改人"],
            corrected["理由"]) == (38, "第3版", "申诉更正", "reviewer", "核实报道，改为38分")  # fmt: skip
    assert str(answered["id"]) in corrected["申诉"] and FEATURED in corrected["申诉"]
    assert FEATURED in corrected["读取的条款"].split("、")
    entered = rows["leader_evaluation_score"]
    assert (entered["值"], entered["来自"], entered["身份"], entered["录入/修改人"],
            entered["佐证材料"]) == (4, "第1版", "自评", "submitter", "附件2：区领导评价表")  # fmt: skip
    # what the reviewer changed before the appeal, seen in the first score's workbook
    first = client.get(f"/admin/units/gucun/schemes/{SCHEME}/score.xlsx?id={walked['first']['id']}")
    earlier = load_workbook(io.BytesIO(first.data))["事实来源"]
    row = next(r for r in earlier.iter_rows(min_row=4, values_only=True)
               if str(r[1]).endswith("（featured_quality_score）"))  # fmt: skip
    assert (row[2], row[4], row[5], row[7], row[9]) == (33, "第2版", "评审", "reviewer",
                                                         "现场核查后上调")  # fmt: skip
    assert earlier.oddFooter.right.text.startswith("审核人")


def test_provenance_costs_the_same_few_queries_however_many_facts(api):
    score = _walk(api)["first"]
    ctx = api.ctx
    with ctx.db.transaction() as s:
        row = s.get(Score, score["id"])
        unit = s.scalar(select(Unit).where(Unit.code == "gucun"))
    statements = []

    def count(*_args):
        statements.append(1)

    event.listen(ctx.db.engine, "before_cursor_execute", count)
    try:
        out = provenance.of_score(ctx, row, unit)
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", count)
    assert len(out["facts"]) > 10  # every fact of every clause …
    assert len(statements) <= 4  # … from one walk of the versions, not one query per fact


def test_replay_says_reproduced_with_its_detail(api):
    score = _walk(api)["first"]
    replay = api.post(f"/api/scores/{score['id']}/replay", "auditor")
    assert replay.status_code == 200, replay.json
    body = replay.json
    assert body["reproduced"] is True and body["words"] == "已复现"
    assert body["clauses"] == [] and body["causes"] == [] and body["facts"] == []
    assert body["engine_version"] == body["replayed_engine"] == score["engine_version"]
    assert (body["unit"], body["submission_version"]) == ("gucun", 2)


def test_a_rounds_scores_replayed_as_a_job_its_report_and_the_round_audit(api):
    walked = _walk(api)
    rid = walked["round"]
    started = api.post(f"/api/rounds/{rid}/replay", "auditor")
    assert started.status_code == 201, started.json
    assert (started.json["kind"], started.json["total"]) == ("scores.replay", 1)
    worker = jobs.Worker(api.ctx)
    while worker.run_once():
        pass
    job = api.get(f"/api/jobs/{started.json['id']}", "auditor").json
    assert job["state"] == "done" and job["result"]["reproduced"] == 1
    report = api.get(f"/api/replays/{started.json['id']}", "auditor")
    assert report.status_code == 200, report.json
    assert (report.json["reproduced"], report.json["not_reproduced"], report.json["pending"]) == (
        1,
        0,
        0,
    )
    assert report.json["scores"][0]["score"] == walked["first"]["id"]
    assert report.json["round"]["id"] == rid
    # another kind of job is no replay report
    other = jobs.start_job(api.ctx, _admin(api), "scores.recompute", {"scheme": SCHEME})
    assert api.get(f"/api/replays/{other['id']}", "auditor").status_code == 404
    # a round without an official score: nothing to replay
    empty = api.round_of("zhuanqiao-2018")
    refused = api.post(f"/api/rounds/{empty}/replay", "auditor")
    assert refused.status_code == 409 and refused.json["error"]["code"] == "nothing_to_replay"

    audit = api.get(f"/api/rounds/{rid}/audit", "auditor")
    assert audit.status_code == 200, audit.json
    gucun = next(u for u in audit.json["units"] if u["unit"] == "gucun")
    assert gucun["score"]["id"] == walked["first"]["id"]
    assert gucun["score"]["submission_version"] == 2 and gucun["replay"]["reproduced"] is True
    assert gucun["provenance"]["facts"]["featured_quality_score"]["by"] == "reviewer"
    assert api.get(f"/api/rounds/{rid}/audit", "reviewer").status_code == 403


def _admin(api):
    from service.access import Actor
    from service.db import User

    with api.ctx.db.transaction() as s:
        user = s.scalar(select(User).where(User.username == "admin"))
        return Actor(user.id, user.username, user.role, user.unit_id)


def test_the_tamper_check_run_by_the_auditor_read_by_the_admin(api):
    # one permission for the check, as GET /api/journal/verify always had: an auditor runs it
    # (it changes nothing, it records its result); a unit's submitter may not
    assert api.get("/api/journal/checks/last", "auditor").json == {"checked": False}
    assert api.post("/api/journal/checks", "submitter").status_code == 403
    ran = api.post("/api/journal/checks", "auditor")
    assert ran.status_code == 200 and ran.json["ok"] is True
    last = api.get("/api/journal/checks/last", "admin").json
    assert (last["checked"], last["ok"], last["actor"], last["rows"]) == (
        True, True, "auditor", ran.json["rows"])  # fmt: skip


def test_the_openapi_document_names_the_desk(api):
    doc = api.get("/api/openapi.json").json
    paths = doc["paths"]
    for path in ("/api/scores/{score_id}/provenance",
                 "/api/units/{code}/schemes/{scheme_id}/facts/{fact}/history",
                 "/api/rounds/{round_id}/replay", "/api/replays/{job_id}",
                 "/api/rounds/{round_id}/audit", "/api/journal/checks/last",
                 "/api/journal/checks"):  # fmt: skip
        assert path in paths, path
    journal = {p["name"] for p in paths["/api/journal"]["get"]["parameters"]}
    assert {"actor", "role", "unit", "scheme", "action", "outcome", "since", "until", "limit",
            "cursor"} <= journal  # fmt: skip

    def schema(path, method):
        ref = paths[path][method]["responses"]["200"]["content"]["application/json"]["schema"]
        return doc["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]

    assert "provenance" in schema("/api/scores/{score_id}", "get")["properties"]
    replay = schema("/api/scores/{score_id}/replay", "post")["properties"]
    assert {"clauses", "causes", "words", "reproduced", "differences"} <= set(replay)


@pytest.fixture(params=DATABASES)
def panel_api(request, tmp_path, engine):
    """The API on the panel fixture scheme (a clause the reviewers' marks score)."""
    rules = tmp_path / "rules"
    shutil.copytree(FIXTURES / "panel", rules / "panel")
    made = make_api(tmp_path, request.param, engine, rules)
    yield made
    made.ctx.db.engine.dispose()


def test_a_replay_that_differs_names_the_clause_the_numbers_and_the_panel(panel_api):
    """A reviewer's mark changed after the official score (the review reopened): the old score
    replayed with the marks as they are now is not reproduced, and says where and why."""
    api, scheme = panel_api, "panel"
    rid = api.round_of(scheme)
    marks = f"/api/rounds/{rid}/units/gucun/clauses/2/marks"
    sent = api.post(f"/api/units/gucun/schemes/{scheme}/submissions", "admin",
                    json={"role": "self", "facts": {}})  # fmt: skip
    assert sent.status_code == 201, sent.json
    assert (
        api.call("PUT", marks, "reviewer", json={"points": 6, "reason": "初评"}).status_code == 200
    )
    assert api.post(f"/api/rounds/{rid}/units/gucun/review-complete", "reviewer").status_code == 200
    score = api.post(f"/api/units/gucun/schemes/{scheme}/scores", "reviewer",
                     json={"kind": "official"}).json  # fmt: skip
    same = api.post(f"/api/scores/{score['id']}/replay", "auditor").json
    assert same["reproduced"] is True and same["words"] == "已复现"

    reopened = api.post(f"/api/rounds/{rid}/units/gucun/reopen", "reviewer",
                        json={"reason": "评审打分须复核"})  # fmt: skip
    assert reopened.status_code == 200, reopened.json
    assert (
        api.call("PUT", marks, "reviewer", json={"points": 9, "reason": "复核后改"}).status_code
        == 200
    )
    replay = api.post(f"/api/scores/{score['id']}/replay", "auditor").json
    assert replay["reproduced"] is False and replay["causes"] == ["panel"]
    assert [c["clause"] for c in replay["clauses"]] == ["2"]
    clause = replay["clauses"][0]
    assert clause["causes_words"] == ["评审组打分不同"] and clause["facts"] == []
    assert (
        replay["words"].startswith("未复现：1 个条款不同（2）")
        and "评审组打分不同" in replay["words"]
    )
    assert replay["stored_total"] == score["trace"]["total"]


def test_a_score_row_changed_since_it_was_written_is_replayed_and_said_not_reproduced(api):
    score = _walk(api)["first"]
    drop = (
        ["DROP TRIGGER scores_no_update ON scores"]
        if api.ctx.db.engine.dialect.name == "postgresql"
        else ["DROP TRIGGER scores_no_update", "DROP TRIGGER scores_no_delete"]
    )
    with api.ctx.db.engine.begin() as connection:
        for statement in [*drop, f"UPDATE scores SET total = 100 WHERE id = {score['id']}"]:
            connection.execute(text(statement))
    replay = api.post(f"/api/scores/{score['id']}/replay", "auditor")
    assert replay.status_code == 200, replay.json
    assert "X-History-Warning" in replay.headers
    assert replay.json["reproduced"] is False and replay.json["causes"] == ["tampered"]
    assert replay.json["differences"] == []  # the trace itself still says what was computed
