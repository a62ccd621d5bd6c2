"""The impact preview of a rule draft through the API, on SQLite and PostgreSQL: 古美路 2022 with
three units reviewed, a 2023 draft copied from it in which ``commendations`` is renamed
``commendation_count`` and a clause is added reading a new fact; the mapping step
(GET/PUT /api/rules/drafts/{id}/mapping: what to map, each error naming mapping.<fact>, a stale
lock, who may), and POST /api/rules/impact {"draft": id}: the draft archived as a version, the
mapping kept with the job, each unit's totals exact.  Also {"from", "to", "mapping"}."""

from __future__ import annotations

import re
from decimal import Decimal

from sqlalchemy import select

from service import jobs, releases
from service.db import JournalEntry, RuleVersion
from service.rulefiles import edit
from service.rulefiles.loader import version_of

from ..conftest import RULES
from ..test_mapping import ADDED, NEW_CLAUSE, NEW_NAME, OLD_NAME, REASON
from .shapes import assert_error, check_every_response
from .test_releases import actor

GUMEILU = RULES / "minhang-gumeilu" / "2022"
SCHEME = "gumeilu-2022"


def _reviewed(api) -> dict:
    """gucun, dachang and bsip reviewed under 2022 with 3, 1 and no commendations."""
    from service.rulefiles.loader import load_scheme

    full = dict(load_scheme(GUMEILU).tests[0].facts)
    api.official("gucun", SCHEME, {**full, OLD_NAME: Decimal(3)})
    api.official("dachang", SCHEME, {**full, OLD_NAME: Decimal(1)})
    api.official("bsip", SCHEME, {k: v for k, v in full.items() if k != OLD_NAME})
    return full


def _draft_2023(api) -> releases.DraftView:
    """The 2023 copy, with the fact renamed and the clause added, saved as an editor would."""
    editor = actor(api, "editor")
    draft = releases.copy_version(api.ctx, editor, version_of(GUMEILU), "2023")
    files = {k: re.sub(rf"\b{OLD_NAME}\b", NEW_NAME, v) for k, v in draft.files.items()}
    files = edit.add_clause(files, NEW_CLAUSE, "awards-2023")
    saved = releases.save_files(api.ctx, editor, draft.id, draft.lock, files, "改名并新增条款")
    return saved


def _put(api, draft_id: int, body, who="editor"):
    return api.call("PUT", f"/api/rules/drafts/{draft_id}/mapping", who, json=body)


def test_the_mapping_step_of_a_draft(api):
    check_every_response(api)
    draft = _draft_2023(api)
    path = f"/api/rules/drafts/{draft.id}/mapping"

    shown = api.get(path, "auditor")
    assert shown.status_code == 200, shown.json
    view = shown.json
    assert (view["draft"], view["lock"], view["state"]) == (draft.id, draft.lock, "draft")
    assert view["old"]["version"] == version_of(GUMEILU) and view["new"]["year"] == "2023"
    assert [f["fact"] for f in view["facts"]] == [NEW_NAME, ADDED]
    assert [f["entry"] for f in view["facts"]] == [None, None]
    renamed = view["facts"][0]
    assert (renamed["type"], renamed["allowed"]) == ("integer", "0到1000之间的整数")
    assert OLD_NAME in [s["fact"] for s in renamed["sources"]]
    assert "special_funds" not in [s["fact"] for s in renamed["sources"]]  # a yes/no fact
    assert [d["fact"] for d in view["dropped"]] == [OLD_NAME]

    # each wrong entry named; nothing stored
    bad = _put(
        api,
        draft.id,
        {"lock": draft.lock, "mapping": {NEW_NAME: {"from": "special_funds"}, ADDED: {"value": 1}}},
    )
    assert_error(bad, 422, "invalid_mapping", fields=[f"mapping.{NEW_NAME}", f"mapping.{ADDED}"])
    assert bad.json["error"]["fields"][f"mapping.{ADDED}"] == [
        "请写明理由：固定值用于每一个单位，理由写进结果和工作簿"
    ]
    assert_error(_put(api, draft.id, {"mapping": {}}), 422, fields=["lock"])
    assert_error(_put(api, draft.id, {"lock": draft.lock, "mapping": []}), 422, fields=["mapping"])
    for role in ("auditor", "reviewer", "submitter"):
        assert_error(_put(api, draft.id, {"lock": draft.lock, "mapping": {}}, role), 403)
    assert_error(_put(api, 999999, {"lock": 1, "mapping": {}}), 404, "unknown_draft")
    assert releases.read_draft(api.ctx, actor(api, "admin"), draft.id).mapping == {}

    good = {NEW_NAME: {"from": OLD_NAME}, ADDED: {"value": 1, "reason": REASON}}
    saved = _put(api, draft.id, {"lock": draft.lock, "mapping": good})
    assert saved.status_code == 200, saved.json
    assert saved.json["lock"] == draft.lock + 1
    entries = [f["entry"] for f in saved.json["facts"]]
    assert [(e["how"], e["from"], e["value"], e["reason"]) for e in entries] == [
        ("renamed", OLD_NAME, None, None),
        ("set", None, "1", REASON),
    ]
    assert saved.json["dropped"] == []  # the renamed fact's values are taken
    stored = releases.read_draft(api.ctx, actor(api, "admin"), draft.id).mapping
    assert stored == {NEW_NAME: {"from": OLD_NAME}, ADDED: {"value": 1, "reason": REASON}}

    # a page read before the save: its lock is stale
    stale = _put(api, draft.id, {"lock": draft.lock, "mapping": {}})
    assert_error(stale, 409, "stale_draft", fields=["lock"])
    with api.ctx.db.transaction() as s:
        [row] = s.scalars(select(JournalEntry).where(JournalEntry.action == "rules.draft.mapping"))
        assert (row.outcome, row.detail["old"]) == ("ok", version_of(GUMEILU))
        assert row.detail["facts"][ADDED] == (
            f"新事实“2023年获质量奖项数”（{ADDED}）每个单位都按固定值 1（理由：{REASON}）"
        )


def test_the_impact_of_a_draft_with_its_mapping(api):
    check_every_response(api)
    _reviewed(api)
    draft = _draft_2023(api)
    good = {NEW_NAME: {"from": OLD_NAME}, ADDED: {"value": 1, "reason": REASON}}
    assert _put(api, draft.id, {"lock": draft.lock, "mapping": good}).status_code == 200

    both = api.post(
        "/api/rules/impact", "editor", json={"draft": draft.id, "from": version_of(GUMEILU)}
    )
    assert_error(both, 422, fields=["from"])
    assert_error(api.post("/api/rules/impact", "editor", json={"year": 2026}), 422, fields=["from"])
    assert_error(api.post("/api/rules/impact", "auditor", json={"draft": draft.id}), 403)

    started = api.post("/api/rules/impact", "editor", json={"draft": draft.id})
    assert started.status_code == 201, started.json
    params = started.json["params"]
    assert params["from"] == version_of(GUMEILU) and params["draft"] == draft.id
    assert params["mapping"] == {
        NEW_NAME: {"from": OLD_NAME},
        ADDED: {"value": "1", "reason": REASON},
    }
    with api.ctx.db.transaction() as s:  # the draft's files archived as the version compared
        archived = s.get(RuleVersion, params["to"])
        assert archived is not None and archived.scheme_id == "gumeilu-2023"
    assert jobs.Worker(api.ctx).run_once() is True
    result = api.get(f"/api/rules/impact/{started.json['id']}", "editor").json
    assert result["draft"] == draft.id and result["finished"] is True
    totals = {
        u["unit_code"]: (u["total_before"], u["total_after"], u["rank_before"], u["rank_after"])
        for u in result["units"]
    }
    assert totals == {
        "gucun": ("102.0", "103.0", 1, 1),
        "dachang": ("101.0", "102.0", 2, 2),
        "bsip": ("100.0", "101.0", 3, 3),
    }
    by_code = {u["unit_code"]: u for u in result["units"]}
    assert [m["text"] for m in by_code["gucun"]["mapped"]] == [
        "取自原事实“受区质量（安全）工作领导小组及其办公室表彰次数”：3",
        f"固定值 1（理由：{REASON}）",
    ]
    [clause] = by_code["gucun"]["clauses"]
    assert (clause["clause"], clause["before"], clause["after"]) == ("20", None, "1")
    assert "✓ [r1]" in clause["trace_after"]
    assert by_code["bsip"]["missing"] == [
        {"fact": NEW_NAME, "label": "受区质量（安全）工作领导小组及其办公室表彰次数"}
    ]
    assert [m["how"] for m in result["mapping"]] == ["renamed", "set"]
    assert result["facts"]["missing"][0]["sentence"] == (
        "2023版读取的事实“受区质量（安全）工作领导小组及其办公室表彰次数”在2026年的已评审事实中没有：1个单位"
    )


def test_versions_with_a_mapping_and_without(api):
    """{"from", "to", "mapping"}: the mapping checked against the two versions (errors name
    params.mapping.<fact>); without one the new facts are missing, never zero."""
    check_every_response(api)
    _reviewed(api)
    draft = _draft_2023(api)
    new = releases.draft_version(api.ctx, actor(api, "editor"), draft.id)
    old = version_of(GUMEILU)
    wrong = api.post(
        "/api/rules/impact",
        "editor",
        json={"from": old, "to": new, "mapping": {ADDED: {"value": 101, "reason": REASON}}},
    )
    assert_error(wrong, 422, "invalid_mapping", fields=[f"params.mapping.{ADDED}"])
    assert wrong.json["error"]["fields"][f"params.mapping.{ADDED}"] == [
        "固定值101超出范围，应为0到100之间的整数"
    ]
    plain = api.post("/api/rules/impact", "editor", json={"from": old, "to": new})
    assert plain.status_code == 201 and plain.json["params"]["mapping"] == {}
    jobs.Worker(api.ctx).run_once()
    result = api.get(f"/api/rules/impact/{plain.json['id']}", "editor").json
    totals = {u["unit_code"]: (u["total_before"], u["total_after"]) for u in result["units"]}
    # the commendations clause reads a fact nobody has now: its points not given, never zero-filled
    assert totals == {
        "gucun": ("102.0", "100.0"),
        "dachang": ("101.0", "100.0"),
        "bsip": ("100.0", "100.0"),
    }
    assert [(m["fact"], m["units"]) for m in result["facts"]["missing"]] == [
        (NEW_NAME, 3),
        (ADDED, 3),
    ]
    assert [(d["fact"], d["units"]) for d in result["facts"]["dropped"]] == [(OLD_NAME, 2)]


def test_the_openapi_document_describes_both(api):
    doc = api.get("/api/openapi.json").json
    put = doc["paths"]["/api/rules/drafts/{draft_id}/mapping"]["put"]
    assert set(put["responses"]) >= {"200", "401", "403", "404", "409", "422"}
    body = put["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(doc["components"]["schemas"][body]["required"]) == {"lock", "mapping"}
    assert "get" in doc["paths"]["/api/rules/drafts/{draft_id}/mapping"]
    post = doc["paths"]["/api/rules/impact"]["post"]["requestBody"]["content"]["application/json"]
    impact_in = doc["components"]["schemas"][post["schema"]["$ref"].rsplit("/", 1)[1]]["properties"]
    assert {"from", "to", "draft", "mapping", "year"} <= set(impact_in)


def test_a_proposed_draft_may_be_mapped_a_withdrawn_one_not(api):
    """The mapping changes no rule: a proposed draft's may be saved (its approver previews it);
    a withdrawn draft's may not (409 naming its state)."""
    draft = _draft_2023(api)
    editor = actor(api, "editor")
    proposed = releases.propose(api.ctx, editor, draft.id, draft.lock, "2023年版")
    saved = _put(api, draft.id, {"lock": proposed.lock, "mapping": {NEW_NAME: {"from": OLD_NAME}}})
    assert saved.status_code == 200, saved.json
    withdrawn = releases.withdraw(api.ctx, editor, draft.id, saved.json["lock"], "不再需要")
    refused = _put(api, draft.id, {"lock": withdrawn.lock, "mapping": {}})
    assert_error(refused, 409, "draft_state", fields=["state"])
