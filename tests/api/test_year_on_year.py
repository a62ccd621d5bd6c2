"""Year on year across rounds (issue 8, mechanism 4): a fact's previous-year value is read from
the same unit's reviewed facts of the previous year's round when the product has them, entered
by the unit otherwise, and missing when neither."""

from __future__ import annotations

import shutil
from decimal import Decimal

import pytest

from ..apps import ROUND_DATES, make_app
from ..conftest import FIXTURES
from .conftest import DATABASES, Api, _fresh_postgres

SCHEME = "year_on_year"


@pytest.fixture(params=DATABASES)
def two_years(request, tmp_path, engine):
    rules = tmp_path / "rules"
    shutil.copytree(FIXTURES / SCHEME, rules / SCHEME)
    url = f"sqlite:///{tmp_path / 'scoring.db'}" if request.param == "sqlite" else _fresh_postgres()
    app, tokens = make_app(tmp_path, url, engine, rules, open_rounds=False)
    api = Api(app.test_client(), tokens, app)
    yield api
    api.ctx.db.engine.dispose()


def _open(api, year: int) -> int:
    opened = api.post("/api/rounds", "admin", json={"scheme": SCHEME, "year": year, **ROUND_DATES})
    assert opened.status_code == 201, opened.json
    return opened.json["id"]


def _submit(api, code, facts, as_="admin", if_match=None, reason=""):
    body = {"role": "self", "facts": facts}
    if reason:
        body["reason"] = reason
    headers = {"If-Match": if_match} if if_match else {}
    return api.post(
        f"/api/units/{code}/schemes/{SCHEME}/submissions", as_, json=body, headers=headers
    )


def test_last_year_is_read_from_the_previous_round(two_years):
    api = two_years
    last = _open(api, 2025)
    # 2025: gucun reviewed at 95 %; dachang submitted but never reviewed
    assert (
        _submit(api, "gucun", {"quality_rate": 95, "quality_rate_last_year": 96}).status_code == 201
    )
    assert (
        api.post(f"/api/rounds/{last}/units/gucun/review-complete", "reviewer").status_code == 200
    )
    assert (
        _submit(api, "dachang", {"quality_rate": 90, "quality_rate_last_year": 90}).status_code
        == 201
    )
    this = _open(api, 2026)

    # the product has gucun's 2025 value: it is carried over and shown with where it came from
    carried = api.get(f"/api/rounds/{this}/units/gucun/previous-year", "submitter").json["facts"]
    assert list(carried) == ["quality_rate_last_year"]
    assert Decimal(carried["quality_rate_last_year"]["value"]) == 95
    assert "2025年度考核轮次" in carried["quality_rate_last_year"]["source"]
    assert "已评审的第1版" in carried["quality_rate_last_year"]["source"]
    # a different value typed for it is refused, naming the field; nothing is stored
    clash = _submit(
        api, "gucun", {"quality_rate": 92, "quality_rate_last_year": 90}, "submitter",
        if_match='"1"', reason="2026年度自评",
    )  # fmt: skip
    assert clash.status_code == 422, clash.json
    assert list(clash.json["error"]["fields"]) == ["facts.quality_rate_last_year"]
    sent = _submit(
        api, "gucun", {"quality_rate": 92}, "submitter", if_match='"1"', reason="2026年度自评"
    )
    assert sent.status_code == 201, sent.json
    assert Decimal(str(sent.json["facts"]["quality_rate_last_year"])) == 95
    assert any("2025年度" in e for e in sent.json["evidence"]["quality_rate_last_year"])
    assert (
        api.post(f"/api/rounds/{this}/units/gucun/review-complete", "reviewer").status_code == 200
    )
    score = api.post(f"/api/units/gucun/schemes/{SCHEME}/scores", "reviewer", json={})
    assert score.json["kind"] == "official" and Decimal(score.json["total"]) == 7  # fell 3 points

    # dachang's 2025 facts were never reviewed: nothing is carried, the unit enters last year's
    assert api.get(f"/api/rounds/{this}/units/dachang/previous-year", "admin").json == {"facts": {}}
    entered = _submit(
        api, "dachang", {"quality_rate": 88, "quality_rate_last_year": 90},
        if_match='"1"', reason="2026年度自评",
    )  # fmt: skip
    assert entered.status_code == 201, entered.json
    # bsip has neither: the fact is missing, not zero
    assert _submit(api, "bsip", {"quality_rate": 91}).status_code == 201
    preview = api.post(
        f"/api/units/bsip/schemes/{SCHEME}/scores", "admin", json={"kind": "preview"}
    )
    assert preview.json["complete"] is False
    assert "quality_rate_last_year" in str(preview.json["trace"]["clauses"][0]["missing"])
