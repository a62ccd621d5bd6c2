"""The admin pages through the Flask test client: generated forms, errors, versions, drafts, history,
ranking, workbook and rules."""

from __future__ import annotations

import html
import io
import shutil

import pytest
from openpyxl import load_workbook

from admin import export, forms, present
from service import operations as ops
from service import rounds
from service.access import Actor
from service.cli import read_facts_file
from service.config import PROJECT_ROOT
from service.domain.facts import InvalidFacts, validate_facts

from ..conftest import MINIMAL
from .conftest import SCHEME, csrf_token, make_app, official, round_of, sign_in

EXAMPLES = read_facts_file(PROJECT_ROOT / "examples" / f"{SCHEME}.yaml")


def _actor(app, username):
    from service.db import User

    with app.extensions["scoring"].db.transaction() as s:
        user = s.query(User).filter_by(username=username).one()
    return Actor(user.id, user.username, user.role, user.unit_id)


def _form(facts: dict) -> dict:
    return {f"f.{name}": forms.to_text(value) for name, value in facts.items()}


def _post_facts(client, unit, scheme, data, fresh=False):
    page = client.get(f"/admin/units/{unit}/schemes/{scheme}/facts" + ("?fresh=1" if fresh else ""))
    assert page.status_code == 200, page.text[:500]
    base = page.text.split('name="base_version" value="')[1].split('"')[0]
    body = {"csrf_token": csrf_token(page.text), "base_version": base}
    body.update(data)
    return client.post(f"/admin/units/{unit}/schemes/{scheme}/facts", data=body)


def test_every_scheme_gets_a_generated_form(app, client):
    sign_in(client, "admin")
    for scheme in app.extensions["scoring"].registry.schemes().values():
        page = client.get(f"/admin/units/dachang/schemes/{scheme.id}/facts")
        assert page.status_code == 200, scheme.id
        text = html.unescape(page.text)
        for spec in scheme.facts.values():
            assert spec.label in text, (scheme.id, spec.name)
            assert f'name="f.{spec.name}"' in page.text
            if spec.type in ("number", "integer", "percent"):
                assert forms.allowed(spec) in text  # the allowed range, in the domain's words
        for clause in scheme.clauses.values():
            assert clause.title in text
            assert clause.source.text.splitlines()[0].strip()[:30] in text
            for item in clause.evidence:
                assert item in text


def test_an_error_is_shown_beside_its_field_and_nothing_typed_is_lost(app, client):
    # the unit's self-assessment first (the admin, as the unit), then the reviewer's corrections
    sign_in(client, "admin")
    facts = dict(EXAMPLES["大场镇"])
    data = _form(facts)
    data.update(
        {
            "f.org_leadership_score": "3.5",
            "f.policy_funding_score": "两分",
            "action": "self",
            "e.four_brands_score": "品牌培育名单；宝质办〔2022〕8号",
        }
    )
    r = _post_facts(client, "dachang", SCHEME, data)
    assert r.status_code == 422
    scheme = app.extensions["scoring"].registry.get(SCHEME)
    with pytest.raises(InvalidFacts) as err:
        validate_facts(
            scheme,
            {
                "org_leadership_score": forms.value_of(
                    forms.layout(scheme).fields["org_leadership_score"], "3.5"
                ),
                "policy_funding_score": "两分",
            },
        )
    expected = {e.field: e.message for e in err.value.errors}
    text = html.unescape(r.text)
    for name, message in expected.items():  # the domain's own words, inside the field's box
        box = text.split(f'id="f-{name}-box"')[1].split('<div class="field')[0]
        assert message in box and 'class="field-error"' in box
    assert 'value="3.5"' in r.text and 'value="两分"' in r.text  # the wrong values as typed
    assert 'value="2"' in r.text.split('id="f-work_plan_score"')[1][:200]  # the right ones too
    assert facts["org_leadership_reason"] in text
    assert "品牌培育名单；宝质办〔2022〕8号" in text  # and the evidence
    assert not ops.history(app.extensions["scoring"], _actor(app, "reviewer"), "dachang", SCHEME)

    data.update(
        {"f.org_leadership_score": "３分", "f.policy_funding_score": "2"}
    )  # full-width digits and a unit
    r = _post_facts(client, "dachang", SCHEME, data)
    assert r.status_code == 302 and r.headers["Location"].endswith(
        f"/admin/units/dachang/schemes/{SCHEME}/score"
    )
    row = ops.history(app.extensions["scoring"], _actor(app, "reviewer"), "dachang", SCHEME)[-1]
    assert row.facts["org_leadership_score"] == 3 and row.role == "self"
    assert row.evidence == {"four_brands_score": ["品牌培育名单", "宝质办〔2022〕8号"]}

    client = app.test_client()
    sign_in(client, "reviewer")
    data["action"] = "review"

    # a correction says why for each fact it changes, beside that fact, or in one general reason;
    # the form is based on the version it was read from
    r = _post_facts(client, "dachang", SCHEME, dict(data, **{"f.org_leadership_score": "2.5"}))
    assert r.status_code == 422 and 'value="2.5"' in r.text
    box = (
        html.unescape(r.text)
        .split('id="f-org_leadership_score-box"')[1]
        .split('<div class="field')[0]
    )
    assert "改动了此项，须写明理由" in box and 'name="r.org_leadership_score"' in box
    r = _post_facts(
        client,
        "dachang",
        SCHEME,
        dict(data, **{"f.org_leadership_score": "2.5", "r.org_leadership_score": "会议签到不全"}),
    )
    assert r.status_code == 302
    row = ops.history(app.extensions["scoring"], _actor(app, "reviewer"), "dachang", SCHEME)[-1]
    assert row.reasons == {"org_leadership_score": "会议签到不全"} and row.reason == ""
    assert row.role == "review"
    r = _post_facts(
        client,
        "dachang",
        SCHEME,
        dict(
            data, **{"f.org_leadership_score": "2", "base_version": "2", "reason": "按复核意见恢复"}
        ),
    )
    assert r.status_code == 302


def test_a_stale_form_gets_409_with_a_reload_link(app, client):
    sign_in(client, "admin")
    page = client.get(f"/admin/units/bsip/schemes/{SCHEME}/facts")
    token = csrf_token(page.text)
    ctx = app.extensions["scoring"]
    ops.submit(
        ctx, _actor(app, "admin"), "bsip", SCHEME, "self", EXAMPLES["宝山工业园区"], {}, "", None
    )  # meanwhile
    data = _form(EXAMPLES["宝山工业园区"])
    data.update(
        {"csrf_token": token, "base_version": "0", "action": "self", "f.survey_tasks_score": "4"}
    )
    r = client.post(f"/admin/units/bsip/schemes/{SCHEME}/facts", data=data)
    assert r.status_code == 409
    assert "已被更新" in r.text and "当前已是第1版" in r.text
    assert f"/admin/units/bsip/schemes/{SCHEME}/facts?fresh=1" in r.text
    assert (
        'value="4"' in r.text.split('id="f-survey_tasks_score"')[1][:200]
    )  # what was typed is still there
    assert len(ops.history(ctx, _actor(app, "admin"), "bsip", SCHEME)) == 1


def test_a_draft_is_kept_until_submitted_or_discarded(app, client):
    sign_in(client, "submitter")
    scheme = "zhenxing-2010"
    r = _post_facts(
        client,
        "gucun",
        scheme,
        {"action": "draft", "f.dedicated_staff": "true", "f.inspection_rate": "96.5"},
    )
    if r.status_code != 302:
        pytest.fail(r.text[:2000])
    page = client.get(f"/admin/units/gucun/schemes/{scheme}/facts")
    assert "草稿" in page.text and 'value="96.5"' in page.text
    radio = page.text.split('name="f.dedicated_staff"')[1].split(">")[0]
    assert 'value="true"' in radio and "checked" in radio
    fresh = client.get(f"/admin/units/gucun/schemes/{scheme}/facts?fresh=1")
    assert 'value="96.5"' not in fresh.text and "恢复草稿" in fresh.text
    ask = client.get(f"/admin/units/gucun/schemes/{scheme}/facts/discard")
    assert "丢弃后无法恢复" in ask.text  # discarding asks first (tests/admin/test_drafts.py)
    r = client.post(
        f"/admin/units/gucun/schemes/{scheme}/facts/discard",
        data={"csrf_token": csrf_token(ask.text), "confirm": "yes"},
    )
    assert r.status_code == 302
    assert 'value="96.5"' not in client.get(f"/admin/units/gucun/schemes/{scheme}/facts").text
    assert not ops.history(app.extensions["scoring"], _actor(app, "submitter"), "gucun", scheme)


def test_score_history_ranking_and_workbook(app, client):
    ctx = app.extensions["scoring"]
    reviewer = _actor(app, "reviewer")
    scheme = "baoshan-2022-c1"
    examples = read_facts_file(PROJECT_ROOT / "examples" / f"{scheme}.yaml")
    names = list(examples)
    for code, name in (("gucun", names[0]), ("dachang", names[1]), ("bsip", names[2])):
        official(app, code, scheme, examples[name])
    # the review of 顾村镇 is opened again and its facts corrected: the official score is dropped
    rounds.reopen_review(ctx, reviewer, round_of(app, scheme), "gucun", "现场核查发现问题")
    changed = dict(examples[names[0]])
    first = next(n for n, v in changed.items() if not isinstance(v, bool))
    changed[first] = 0
    ops.submit(ctx, reviewer, "gucun", scheme, "review", changed, {}, "现场核查后下调", '"1"')
    rounds.complete_review(ctx, reviewer, round_of(app, scheme), "gucun")

    sign_in(client, "reviewer")
    score = client.get(f"/admin/units/gucun/schemes/{scheme}/score")
    assert score.status_code == 200
    assert (
        "第2版提交" in score.text and "尚未计分" in score.text
    )  # the newest version is not scored yet
    r = client.post(
        f"/admin/units/gucun/schemes/{scheme}/score", data={"csrf_token": csrf_token(score.text)}
    )
    assert r.status_code == 302
    score = client.get(r.headers["Location"])
    latest = ops.list_scores(ctx, reviewer, "gucun", scheme)[-1]
    assert latest.submission_version == 2
    assert f'id="total">{export.Decimal(latest.trace["total"]):.2f}<' in score.text
    assert latest.rules_version[:12] in score.text and "依据第2版提交" in score.text
    facts = ctx.registry.get(scheme).facts
    for clause in latest.trace[
        "clauses"
    ]:  # every clause explained (quoted rule expressions put in words)
        assert (
            html.escape(present.humanize(clause["explanation"], facts), quote=False) in score.text
        )

    history = client.get(f"/admin/units/gucun/schemes/{scheme}/history")
    label = ctx.registry.get(scheme).facts[first].label
    assert "现场核查后下调" in history.text and label in html.unescape(history.text)
    assert "第1版 → 第2版" in history.text

    ranking = client.get(f"/admin/schemes/{scheme}/ranking")
    assert (
        ranking.status_code == 200 and ranking.text.count("<rect") >= 3 and "<svg" in ranking.text
    )
    book = client.get(f"/admin/schemes/{scheme}/ranking.xlsx")
    assert book.status_code == 200 and book.mimetype.endswith("spreadsheetml.sheet")
    assert "attachment" in book.headers["Content-Disposition"]
    wb = load_workbook(io.BytesIO(book.data))
    assert wb.sheetnames[0] == "排名" and len(wb.sheetnames) == 4
    ranking_data = ops.ranking(ctx, reviewer, scheme)
    ws = wb["排名"]
    header = [c.value for c in ws[4]]
    # each top-level category's subtotal between 总分 and 名次 (issue 9's publication outputs)
    cats = len(header) - len(export.RANK_HEADER)
    assert cats > 0 and header[:3] + header[3 + cats :] == list(export.RANK_HEADER)
    for i, entry in enumerate(ranking_data["entries"], start=5):
        assert ws.cell(i, 2).value == entry["unit"]
        assert ws.cell(i, 3).value == pytest.approx(float(entry["total"]))
        assert ws.cell(i, 4 + cats).value == entry["rank"]
    unit_ws = wb[ranking_data["entries"][0]["unit"]]
    assert [c.value for c in unit_ws[4]] == list(export.COMPARED_HEADER)


def test_rules_pages(app, client):
    sign_in(client, "editor")
    page = client.get("/admin/rules")
    assert page.status_code == 200 and "重新加载规则" in page.text
    checked = client.get("/admin/rules/check")
    assert "规则目录检查通过" in checked.text
    scheme = app.extensions["scoring"].registry.get(SCHEME)
    detail = client.get(f"/admin/schemes/{SCHEME}/rules")
    text = html.unescape(detail.text)
    for clause in scheme.clauses.values():
        assert clause.source.text.splitlines()[0][:30] in text
        for test in clause.tests:
            assert test.name in text
    other = app.test_client()
    sign_in(other, "reviewer")
    assert other.get("/admin/rules").status_code == 403  # reviewers do not manage rules


def test_reload_reports_what_changed_and_refuses_broken_rules(tmp_path, engine):
    rules = tmp_path / "rules"
    shutil.copytree(MINIMAL, rules / "minimal")
    app = make_app(tmp_path, engine, rules)
    try:
        client = app.test_client()
        sign_in(client, "editor")
        old = app.extensions["scoring"].registry.get("minimal").version
        clause = rules / "minimal" / "clauses" / "04-review.yaml"
        clause.write_text(clause.read_text(encoding="utf-8") + "\n# 修订\n", encoding="utf-8")
        page = client.get("/admin/rules")
        r = client.post("/admin/rules/reload", data={"csrf_token": csrf_token(page.text)})
        assert r.status_code == 200 and "已重新加载" in r.text
        new = app.extensions["scoring"].registry.get("minimal").version
        assert new != old and old[:12] in r.text and new[:12] in r.text

        clause.write_text(
            clause.read_text(encoding="utf-8").replace("points:", "pionts:", 1), encoding="utf-8"
        )
        checked = client.get("/admin/rules/check")
        assert "处错误" in checked.text and "04-review.yaml" in checked.text
        r = client.post("/admin/rules/reload", data={"csrf_token": csrf_token(checked.text)})
        assert r.status_code == 422 and "没有加载" in r.text and "04-review.yaml" in r.text
        assert (
            app.extensions["scoring"].registry.get("minimal").version == new
        )  # the last good set keeps serving
    finally:
        app.extensions["scoring"].db.engine.dispose()


def test_unknown_admin_page_is_a_page(client):
    sign_in(client, "auditor")
    r = client.get("/admin/no/such/page")
    assert r.status_code == 404 and "没有找到" in r.text and r.mimetype == "text/html"
