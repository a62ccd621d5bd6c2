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
    if as_ in ("admin", "reviewer"):  # reviewed, so the score is the official one (ranked)
        rid = api.round_of(scheme)
        done = api.post(f"/api/rounds/{rid}/units/{code}/review-complete", "reviewer")
        assert done.status_code == 200, done.json
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


# --- 3. unit codes and names --------------------------------------------------------------------------


def _unit(code, name, district="宝山区"):
    return {"code": code, "name": name, "kind": "town", "district": district}


def test_unit_codes_and_names_are_unique_whatever_their_case_or_width(api):
    before = api.get("/api/units", "admin").json
    for body, field in (
        (_unit("GUCUN", "另一个镇"), "code"),
        (_unit("ＧＵＣＵＮ", "另一个镇"), "code"),  # full-width letters are the same code (NFKC)
        (_unit("gucun2", "顾村镇"), "name"),
        (_unit("gucun3", " 顾村镇 "), "name"),
        (_unit("bsip2", "宝山工业园区"), "name"),
        (_unit("x1", "ＡＢＣ镇"), None),  # made below, then "abc镇" clashes with it
    ):
        answer = api.post("/api/units", "admin", json=body)
        if field is None:
            assert answer.status_code == 201, answer.json
            assert answer.json["name"] == "ABC镇"  # stored NFKC-normalised
            continue
        assert_error(answer, 409, "duplicate_unit", fields=[field])
    assert_error(api.post("/api/units", "admin", json=_unit("x2", "abc镇")), 409, fields=["name"])
    made = api.post("/api/units", "admin", json=_unit("ＹＵＥＰＵ", "月浦镇"))
    assert made.status_code == 201 and made.json["code"] == "YUEPU", made.json
    assert api.get("/api/units/YUEPU", "admin").status_code == 200
    codes = {u["code"] for u in api.get("/api/units", "admin").json}
    assert codes == {u["code"] for u in before} | {"x1", "YUEPU"}


INVISIBLE = [
    "\u202e",
    "\u202a",
    "\u2066",
    "\u2069",
    "\u200e",
    "\u200f",
    "\u061c",
    "\u200b",
    "\u200d",
    "\u2060",
    "\ufeff",
]


@pytest.mark.parametrize("char", INVISIBLE)
def test_bidi_controls_and_invisible_characters_are_refused_by_field(api, char):
    before = api.get("/api/units", "admin").json
    for body, field in (
        (_unit(f"ab{char}c", "甲镇"), "code"),
        (_unit("abc", f"甲{char}镇"), "name"),
        (_unit("abc", "甲镇", f"宝山{char}区"), "district"),
    ):
        error = assert_error(api.post("/api/units", "admin", json=body), 422, fields=[field])
        assert f"U+{ord(char):04X}" in error["fields"][field][0], error
    assert api.get("/api/units", "admin").json == before


def test_a_unit_name_is_one_line(api):
    for name in ("甲\n镇", "甲\r镇", "甲\t镇"):
        assert_error(api.post("/api/units", "admin", json=_unit("abc", name)), 422, fields=["name"])


def test_two_creates_of_the_same_unit_at_once_leave_one(api):
    """The database's unique keys decide, not a check before the write: both writes reach the
    database (the service's own look-up is bypassed) and only one is kept."""
    from sqlalchemy import func, select
    from sqlalchemy.exc import IntegrityError

    from service.db import Unit

    with api.ctx.db.transaction() as s:
        s.add(Unit(code="twin", name="双子镇", kind="town", district="宝山区"))
    for code, name in (("TWIN", "别的镇"), ("twin2", "双子镇"), ("twin3", "双子镇 ")):
        with pytest.raises(IntegrityError), api.ctx.db.transaction() as s:
            s.add(Unit(code=code, name=name, kind="town", district="宝山区"))
    with api.ctx.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Unit).where(Unit.code_key == "twin")) == 1


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_unit_keys_migration_fills_the_keys_or_names_the_clashes(tmp_path, database):
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, text

    from service.commands import MIGRATIONS

    from .conftest import _fresh_postgres

    def at(url, revision):
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
        command.upgrade(config, revision)

    for units, clash in (
        ([("gucun", "顾村镇"), ("dachang", "ＡＢＣ  镇")], None),
        ([("gucun", "顾村镇"), ("GUCUN", "另一镇")], "GUCUN"),
        ([("gucun", "Ab镇"), ("x2", "aB镇 ")], "x2"),
    ):
        url = (
            f"sqlite:///{tmp_path / (units[1][0] + '.db')}"
            if database == "sqlite"
            else _fresh_postgres()
        )
        at(url, "0003")
        engine = create_engine(url)
        with engine.begin() as connection:
            for code, name in units:
                connection.execute(
                    text(
                        "INSERT INTO units (code, name, kind, district, created_at) "
                        "VALUES (:code, :name, 'town', '宝山区', CURRENT_TIMESTAMP)"
                    ),
                    {"code": code, "name": name},
                )
        if clash is None:
            at(url, "head")
            with engine.connect() as connection:
                keys = connection.execute(
                    text("SELECT code_key, name_key FROM units ORDER BY id")
                ).all()
            assert [tuple(k) for k in keys] == [("gucun", "顾村镇"), ("dachang", "abc 镇")]
        else:
            with pytest.raises(RuntimeError, match=f"(?s)请先改名再升级.*{clash}"):
                at(url, "head")
            with engine.connect() as connection:  # nothing was changed
                columns = connection.execute(text("SELECT * FROM units")).keys()
            assert "code_key" not in columns
        engine.dispose()


def test_a_chunked_form_over_the_limit_is_refused_not_cut_short(api):
    """Werkzeug cuts a chunked body at the limit without a word: a form cut after its first fields
    would still parse, and submit only some of the facts. It is a 413 and nothing is stored."""
    from urllib.parse import urlencode

    from ..admin.conftest import csrf_token

    client = _browser(api, "submitter")
    page = client.get(f"/admin/units/gucun/schemes/{GUMEILU}/facts")
    fields = {
        "csrf_token": csrf_token(page.text),
        "action": "self",
        "base_version": "0",
        "f.leader_evaluation_score": "4",
        "reason": "x" * api.app.config["MAX_CONTENT_LENGTH"],
    }
    refused = client.post(
        f"/admin/units/gucun/schemes/{GUMEILU}/facts",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Transfer-Encoding": "chunked",
        },
        input_stream=io.BytesIO(urlencode(fields).encode()),
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert refused.status_code == 413, refused.status_code
    assert api.get(f"/api/units/gucun/schemes/{GUMEILU}/submissions", "admin").json == []
