"""The appeal page: the unit files an appeal on its published score, a reviewer answers each
clause (维持 or 更正), the unit reads the answers; refusals are shown with what was typed; the
forms carry CSRF tokens; a submitter sees only their own unit's appeals and answers nothing."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from service import operations, rounds
from service.access import Actor
from service.db import Round, User

from .conftest import csrf_token, sign_in

SCHEME = "gumeilu-2022"
FACTS = {
    "gucun": {"leader_evaluation_score": 4, "featured_quality_score": 30},
    "dachang": {"leader_evaluation_score": 4.5, "featured_quality_score": 32},
}


def _actor(app, username: str) -> Actor:
    with app.extensions["scoring"].db.transaction() as s:
        user = s.scalar(select(User).where(User.username == username))
        return Actor(user.id, user.username, user.role, user.unit_id)


@pytest.fixture(scope="module")
def published(app) -> int:
    """Both units reviewed, scored officially and published in the scheme's round: its id."""
    ctx = app.extensions["scoring"]
    admin, reviewer = _actor(app, "admin"), _actor(app, "reviewer")
    with ctx.db.transaction() as s:
        rid = s.scalar(select(Round.id).where(Round.scheme_id == SCHEME))
    for code, facts in FACTS.items():
        operations.submit(ctx, admin, code, SCHEME, "self", facts, {}, "", None)
        rounds.complete_review(ctx, reviewer, rid, code)
        operations.compute_score(ctx, reviewer, code, SCHEME, kind="official")
    rounds.publish_round(ctx, admin, rid)
    return rid


def _page(rid: int, code: str = "gucun") -> str:
    return f"/admin/rounds/{rid}/units/{code}/appeals"


def test_a_unit_files_an_appeal_and_a_reviewer_answers_it_on_the_page(app, published):
    unit = app.test_client()
    sign_in(unit, "submitter")
    page = unit.get(_page(published))
    assert page.status_code == 200, page.text
    assert "公示中" in page.text and "提出申诉" in page.text and "本轮还没有申诉" in page.text
    assert 'name="reason.12"' in page.text and 'name="ev.12.featured_quality_score"' in page.text
    # another unit's appeals: refused, as the API refuses them
    assert unit.get(_page(published, "dachang")).status_code == 403

    # without the form's token: refused, nothing filed
    assert unit.post(_page(published), data={"reason.12": "漏看材料"}).status_code == 400

    # a clause with evidence but no reason: shown again with the message and what was typed
    token = csrf_token(page.text)
    refused = unit.post(
        _page(published),
        data={"csrf_token": token, "ev.12.featured_quality_score": "附件3：解放日报报道"},
    )
    assert refused.status_code == 422, refused.text
    assert "必须写明申诉理由" in refused.text and "附件3：解放日报报道" in refused.text
    assert "本轮还没有申诉" in refused.text

    filed = unit.post(
        _page(published),
        data={
            "csrf_token": token,
            "reason.12": "特色工作有市级媒体报道，评审漏看",
            "ev.12.featured_quality_score": "附件3：解放日报报道\n附件4：新民晚报",
            "reason.区领导评价": "未考虑下半年工作",
        },
        follow_redirects=True,
    )
    assert filed.status_code == 200, filed.text
    assert "已提交第" in filed.text and "申诉中" in filed.text
    assert "附件3：解放日报报道；附件4：新民晚报" in filed.text
    assert "提交答复" not in filed.text  # a unit answers nothing
    assert 'id="file-appeal"' not in filed.text  # one appeal at a time

    reviewer = app.test_client()
    sign_in(reviewer, "reviewer")
    page = reviewer.get(_page(published))
    assert page.status_code == 200 and page.text.count("提交答复") == 2, page.text
    appeal_id = int(re.search(r"/admin/appeals/(\d+)/items/", page.text).group(1))
    token = csrf_token(page.text)
    answer = f"/admin/appeals/{appeal_id}/items"
    common = {"csrf_token": token, "round_id": str(published), "code": "gucun"}

    # a changed fact without its reason: shown again, the typed value kept, nothing answered
    refused = reviewer.post(
        f"{answer}/12/answer",
        data={**common, "answer": "correct", "reason": "经复核成效显著",
              "f.featured_quality_score": "38", "was.featured_quality_score": "30"},
    )  # fmt: skip
    assert refused.status_code == 422, refused.text
    assert "改动了此项，须写明理由" in refused.text and 'value="38"' in refused.text

    upheld = reviewer.post(
        f"{answer}/区领导评价/answer",
        data={**common, "answer": "uphold", "reason": "全年综合评价，维持"},
        follow_redirects=True,
    )
    assert upheld.status_code == 200, upheld.text
    assert "维持" in upheld.text and "全年综合评价，维持" in upheld.text

    corrected = reviewer.post(
        f"{answer}/12/answer",
        data={**common, "answer": "correct", "reason": "经复核成效显著",
              "f.featured_quality_score": "38", "was.featured_quality_score": "30",
              "r.featured_quality_score": "核实媒体报道",
              "f.featured_quality_reason": "", "was.featured_quality_reason": ""},
        follow_redirects=True,
    )  # fmt: skip
    assert corrected.status_code == 200, corrected.text
    assert "已复核" in corrected.text and "更正为第2版事实" in corrected.text

    # the unit reads the answers
    read = unit.get(_page(published))
    assert read.status_code == 200
    assert "经复核成效显著" in read.text and "全年综合评价，维持" in read.text
    assert "已复核" in read.text


def test_who_may_not_answer_is_refused(app, published):
    """A unit's submitter posting an answer gets 403, whatever the form says."""
    unit = app.test_client()
    sign_in(unit, "submitter")
    token = csrf_token(unit.get(_page(published)).text)
    refused = unit.post(
        "/admin/appeals/1/items/12/answer",
        data={"csrf_token": token, "answer": "uphold", "reason": "维持", "round_id": "1",
              "code": "gucun"},
    )  # fmt: skip
    assert refused.status_code == 403
    editor = app.test_client()
    sign_in(editor, "editor")
    assert editor.get(_page(published)).status_code == 403
