"""Findings of the outside audit (schemathesis and hand probes), each pinned on SQLite and
PostgreSQL: integers beyond the database's range, spreadsheet injection and download headers,
unit codes and names, wire details (headers, duplicate keys, non-integers, limits), and one
permission for the ranking on the API and the admin pages."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from ..admin.conftest import sign_in
from .shapes import assert_error

GUMEILU = "gumeilu-2022"
B1 = "baoshan-2022-b1"
DB_INT_MAX = 2**31 - 1
TOO_BIG = ["2147483648", "4294967296", "9223372036854775808", "99999999999999999999999"]


def _submit_and_score(api, code="gucun", as_="admin", scheme=GUMEILU, headers=None):
    made = api.post(
        f"/api/units/{code}/schemes/{scheme}/submissions",
        as_,
        json={"role": "self", "facts": {"leader_evaluation_score": 4}},
        headers=headers,
    )
    assert made.status_code == 201, made.json
    scored = api.post(f"/api/units/{code}/schemes/{scheme}/scores", as_, json={})
    assert scored.status_code == 201, scored.json
    return scored.json["id"]


def _browser(api, username):
    client = api.app.test_client()
    assert sign_in(client, username).status_code == 302
    return client


# --- 1. integers beyond the database's range ------------------------------------------------------


@pytest.mark.parametrize("big", TOO_BIG)
def test_integers_beyond_the_database_are_refused_not_a_crash(api, big):
    _submit_and_score(api, as_="submitter")
    base = f"/api/units/gucun/schemes/{GUMEILU}"
    # a submitter on their own unit, as the audit found it
    assert_error(api.get(f"{base}/compare?from={big}&to=1", "submitter"), 422, fields=["from"])
    assert_error(api.get(f"{base}/compare?from=1&to={big}", "submitter"), 422, fields=["to"])
    assert_error(api.get(f"{base}/submissions/{big}", "submitter"), 404)
    assert_error(api.get(f"/api/scores/{big}", "admin"), 404)
    assert_error(api.post(f"/api/scores/{big}/replay", "admin"), 404)
    assert_error(
        api.post(f"{base}/scores", "admin", json={"submission_version": int(big)}),
        422,
        fields=["submission_version"],
    )
    # the largest id a database column holds is a plain "not there"
    assert_error(api.get(f"{base}/submissions/{DB_INT_MAX}", "submitter"), 404)
    assert_error(api.get(f"{base}/compare?from={DB_INT_MAX}&to=1", "submitter"), 404)

    # the admin history page: its ?from= and ?to= are bounded as well
    client = _browser(api, "submitter")
    for query in (f"from={big}&to=1", f"from=1&to={big}", f"from=-{big}&to=1"):
        page = client.get(f"/admin/units/gucun/schemes/{GUMEILU}/history?{query}")
        assert page.status_code == 422, (query, page.status_code)
        assert "版本号" in page.text
    for query in (f"id={big}", f"id=-{big}"):
        assert client.get(f"/admin/units/gucun/schemes/{GUMEILU}/score?{query}").status_code == 404
        assert (
            client.get(f"/admin/units/gucun/schemes/{GUMEILU}/score.xlsx?{query}").status_code
            == 404
        )


# --- 6. the ranking: one permission on the API and on the pages ----------------------------------


def test_the_editor_reads_the_ranking_on_the_pages_as_on_the_api(api):
    _submit_and_score(api)
    assert api.get(f"/api/schemes/{GUMEILU}/ranking", "editor").status_code == 200
    client = _browser(api, "editor")
    page = client.get(f"/admin/schemes/{GUMEILU}/ranking")
    assert page.status_code == 200 and "顾村镇" in page.text
    book = client.get(f"/admin/schemes/{GUMEILU}/ranking.xlsx")
    assert book.status_code == 200
    assert "顾村镇" in load_workbook(io.BytesIO(book.data)).sheetnames
    # and those the API refuses the ranking are refused on the pages too
    assert api.get(f"/api/schemes/{GUMEILU}/ranking", "submitter").status_code == 403
    submitter = _browser(api, "submitter")
    assert submitter.get(f"/admin/schemes/{GUMEILU}/ranking").status_code == 403
    assert submitter.get(f"/admin/schemes/{GUMEILU}/ranking.xlsx").status_code == 403
