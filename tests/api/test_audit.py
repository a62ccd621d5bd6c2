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


# --- 4. headers and wire details ---------------------------------------------------------------------


def _assert_api_headers(response):
    assert response.headers.get("X-Content-Type-Options") == "nosniff", response.headers
    assert "no-store" in response.headers.get("Cache-Control", ""), response.headers


def test_every_api_answer_is_nosniff_and_no_store(api):
    score = _submit_and_score(api)
    answers = [
        api.post("/api/auth/token", json={"username": "admin", "password": "secret"}),
        api.post("/api/auth/token", json={"username": "admin", "password": "wrong"}),
        api.get(f"/api/scores/{score}", "admin", headers={"Accept": "text/plain"}),
        api.get(f"/api/scores/{score}", "admin"),
        api.get("/api/units", "submitter"),
        api.get("/api/units"),
        api.get("/api/nothing-here", "admin"),
        api.get("/api/openapi.json"),
        api.get("/api/health"),
        api.call("DELETE", "/api/units", "admin"),
    ]
    assert answers[0].status_code == 201 and answers[2].mimetype == "text/plain"
    for response in answers:
        _assert_api_headers(response)


def test_a_405_says_which_methods_are_allowed(api):
    refused = api.call("DELETE", "/api/units", "admin")
    assert_error(refused, 405)
    assert set(refused.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    refused = api.call("PUT", f"/api/schemes/{GUMEILU}/evaluate", "admin", json={})
    assert_error(refused, 405)
    assert "POST" in refused.headers["Allow"]


def test_duplicate_json_keys_are_refused_naming_the_key(api):
    before = api.get("/api/units", "admin").json
    body = '{"code": "a1", "code": "b2", "name": "甲", "kind": "town", "district": "宝山区"}'
    refused = api.post("/api/units", "admin", data=body, content_type="application/json")
    error = assert_error(refused, 422, fields=["code"])
    assert "code" in error["message"]
    assert api.get("/api/units", "admin").json == before
    # nested too: a fact given twice is not silently its last value
    body = '{"facts": {"leader_evaluation_score": 1, "leader_evaluation_score": 4}}'
    refused = api.post(
        f"/api/schemes/{GUMEILU}/evaluate", "admin", data=body, content_type="application/json"
    )
    assert_error(refused, 422, fields=["leader_evaluation_score"])


@pytest.mark.parametrize("value", ["1.5", "1.000001", "2.5e0", "true", '"1"'])
def test_a_submission_version_must_be_an_integer(api, value):
    _submit_and_score(api)
    refused = api.post(
        f"/api/units/gucun/schemes/{GUMEILU}/scores",
        "admin",
        data='{"submission_version": ' + value + "}",
        content_type="application/json",
    )
    assert_error(refused, 422, fields=["submission_version"])


def test_evidence_has_one_limit_for_the_api_and_the_form(api):
    from admin import forms
    from service.domain import text

    assert forms.MAX_EVIDENCE_ITEMS == text.EVIDENCE_ITEMS_MAX
    assert forms.MAX_EVIDENCE == text.EVIDENCE_CHARS_MAX
    path = f"/api/units/gucun/schemes/{GUMEILU}/submissions"
    facts = {"leader_evaluation_score": 4}
    refused = api.post(
        path,
        "admin",
        json={
            "role": "self",
            "facts": facts,
            "evidence": {"leader_evaluation_score": ["文件"] * (text.EVIDENCE_ITEMS_MAX + 1)},
        },
    )
    error = assert_error(refused, 422)
    assert any(name.startswith("evidence.leader_evaluation_score") for name in error["fields"])
    assert f"不超过{text.EVIDENCE_ITEMS_MAX}条" in str(error["fields"])
    assert api.get(f"{path}", "admin").json == []
    made = api.post(
        path,
        "admin",
        json={
            "role": "self",
            "facts": facts,
            "evidence": {"leader_evaluation_score": ["文件"] * text.EVIDENCE_ITEMS_MAX},
        },
    )
    assert made.status_code == 201, made.json


def test_a_chunked_body_over_the_limit_is_413(api):
    limit = api.app.config["MAX_CONTENT_LENGTH"]
    body = b'{"facts": {"x": "' + b"a" * (limit + 10) + b'"}}'
    too_big = api.call(
        "POST",
        f"/api/schemes/{GUMEILU}/evaluate",
        "admin",
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        input_stream=io.BytesIO(body),
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert_error(too_big, 413)
    # a chunked body within the limit is read whole
    small = b'{"facts": {"leader_evaluation_score": 4}}'
    fine = api.call(
        "POST",
        f"/api/schemes/{GUMEILU}/evaluate",
        "admin",
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        input_stream=io.BytesIO(small),
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert fine.status_code == 200, fine.json


# --- 2. spreadsheet injection and download headers ----------------------------------------------------

FORMULA_STARTS = ["=1+2", "+SUM(1,2)", "-2+3", "@SUM(1)", "\t=1+2", "\r=1+2"]


def _cells_with(book: bytes, needle: str) -> list:
    wb = load_workbook(io.BytesIO(book))
    return [
        c
        for ws in wb.worksheets
        for row in ws.iter_rows()
        for c in row
        if needle in str(c.value or "")
    ]


@pytest.mark.parametrize("name", FORMULA_STARTS)
def test_a_unit_name_that_looks_like_a_formula_is_text_in_the_workbooks(name):
    from admin import export

    trace = {
        "scheme_title": "细则",
        "point_unit": "分",
        "total": "1",
        "maximum": "100",
        "standard": "1",
        "bonus": "0",
        "deduction": "0",
        "complete": True,
        "version": "v" * 64,
        "categories": [],
        "clauses": [],
    }
    entry = {"unit": name, "unit_code": "u1", "total": "1", "rank": 1, "grade": "A"}
    books = [
        export.unit_workbook("细则", name, trace, {"submission_version": 1}),
        export.ranking_workbook("细则", "v" * 64, [entry], {"u1": trace}),
    ]
    for book in books:
        wb = load_workbook(io.BytesIO(book))
        found = [
            c
            for ws in wb.worksheets
            for row in ws.iter_rows()
            for c in row
            if isinstance(c.value, str)
            # XML reads a CR back as a newline
            and c.value.lstrip("\t\r\n").startswith(name.lstrip("\t\r")[:2])
        ]
        assert found, [ws.title for ws in wb.worksheets]
        for cell in found:
            assert cell.data_type == "s", (cell.coordinate, cell.value, cell.data_type)
            if cell.value[:1] in "=+-@\t\r\n":
                assert cell.quotePrefix, (cell.coordinate, cell.value)


def test_downloads_name_their_file_safely(api):
    from admin.export import attachment

    for name in ['顾村"镇.xlsx', "a\r\nSet-Cookie: x=1.xlsx", "得分;filename=evil.exe"]:
        header = attachment(name)
        assert "\r" not in header and "\n" not in header
        fallback = header.split('filename="', 1)[1].split('"', 1)[0]
        assert fallback.isascii() and '"' not in fallback and ";" not in fallback
        assert "filename*=UTF-8''" in header
        encoded = header.split("filename*=UTF-8''", 1)[1]
        assert all(ch.isascii() and ch not in ' ";\\' for ch in encoded), encoded
        from urllib.parse import unquote

        assert unquote(encoded) == name.replace("\r", "").replace("\n", "")

    # end to end: a unit whose name has a quote, and one named like a formula
    for code, name in (("q1", '顾"村'), ("f1", '=HYPERLINK("http://x","点")')):
        made = api.post(
            "/api/units",
            "admin",
            json={"code": code, "name": name, "kind": "town", "district": "宝山区"},
        )
        assert made.status_code == 201, made.json
        _submit_and_score(api, code=code)
        client = _browser(api, "admin")
        book = client.get(f"/admin/units/{code}/schemes/{GUMEILU}/score.xlsx")
        assert book.status_code == 200
        disposition = book.headers["Content-Disposition"]
        assert disposition.count('"') == 2, disposition
        cells = _cells_with(book.data, name)
        assert cells and all(c.data_type == "s" for c in cells)
    ranking = _browser(api, "admin").get(f"/admin/schemes/{GUMEILU}/ranking.xlsx")
    assert ranking.status_code == 200
    assert ranking.headers["Content-Disposition"].count('"') == 2
    cells = _cells_with(ranking.data, "HYPERLINK")
    assert cells and all(c.data_type == "s" for c in cells)
