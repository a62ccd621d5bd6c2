"""Every endpoint of the HTTP API, its success path and its failure paths.

Expected values are computed here from the rules (the rule files, or the
scheme as the API describes it), never copied from a response.  Every
response a test receives is checked at the end: no stack trace in any body,
and every error in the one shape {"error": {status, code, message, fields,
incident}}.
"""

from __future__ import annotations

import hashlib
import json
import logging
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
import simplejson
from ruamel.yaml import YAML
from sqlalchemy import func, select

from service.cli import read_facts_file
from service.db import Base
from service.engine.pool import EnginePool
from tools.demo import DEMO_UNITS

from ..conftest import ROOT, RULES
from .shapes import assert_all_well_formed, assert_clean, assert_error, aware, check_every_response

B1 = "baoshan-2022-b1"
EXAMPLE = read_facts_file(
    ROOT / "examples" / "baoshan-2022-b1.yaml"
)  # unit name -> facts (exact decimals)
CODE_OF = {name: code for code, name, _kind in DEMO_UNITS}


@pytest.fixture
def web(api):
    """The API, with every response it gives checked when the test ends."""
    seen = check_every_response(api)
    yield api
    assert_all_well_formed(seen)


def as_json(value) -> str:
    """Exact decimals written as JSON numbers (the test client would write them as strings)."""
    return simplejson.dumps(value, use_decimal=True, ensure_ascii=False)


def post_json(api, path, as_, body, headers=None):
    return api.post(path, as_, data=as_json(body), content_type="application/json", headers=headers)


def row_counts(api) -> dict:
    with api.ctx.db.transaction() as s:
        return {
            t.name: s.scalar(select(func.count()).select_from(t))
            for t in Base.metadata.sorted_tables
        }


# --- reading the rule files directly, to check what the API says about them ----------------

from service.cli import _decimals  # noqa: E402  (floats from YAML as exact decimals)


def load_yaml(path: Path):
    return _decimals(YAML(typ="safe").load(path.read_text(encoding="utf-8")))


def scheme_folders() -> dict:
    """scheme id -> folder, for every scheme shipped under rules/."""
    return {load_yaml(p)["id"]: p.parent for p in sorted(RULES.rglob("scheme.yaml"))}


def content_hash(folder: Path) -> str:
    """The documented version: SHA-256 over every YAML file's relative path and bytes."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.yaml")):
        digest.update(
            path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes() + b"\0"
        )
    return digest.hexdigest()


def walk_categories(categories, parent=None):
    for c in categories:
        yield c, parent
        yield from walk_categories(c.get("categories", []), c)


# --- the rules of baoshan-2022-b1, applied by hand ------------------------------------------


def b1_expected(detail: dict, facts: dict) -> dict:
    """Total, bonus and deduction of table B.1 computed from the scheme as the API describes it.

    Basic clauses are reviewer-assessed (points = the reviewer's number); each bonus
    clause gives ``each`` per honour up to the clause's points, the bonus pool is capped;
    the deduction clause takes its fixed points when its condition fact is true.
    """
    fact_types = {f["name"]: f["type"] for f in detail["facts"]}
    bonus_cap = next(
        Decimal(c["cap"]) for c, _ in walk_categories(detail["categories"]) if c["kind"] == "bonus"
    )
    base = bonus = deduction = Decimal(0)
    for clause in detail["clause_details"]:
        (rule,) = clause["rules"]
        if clause["kind"] == "standard":
            assert rule["kind"] == "assessed"
            (number,) = [f for f in clause["facts"] if fact_types[f] == "number"]
            base += Decimal(facts[number])
        elif clause["kind"] == "bonus":
            assert rule["kind"] == "per_unit"
            bonus += min(Decimal(clause["points"]), Decimal(rule["each"]) * facts[rule["measure"]])
        else:
            assert clause["kind"] == "deduction" and rule["kind"] == "fixed"
            if facts[rule["when"]]:
                deduction += -Decimal(rule["points"])
    bonus = min(bonus, bonus_cap)
    return {"total": base + bonus - deduction, "base": base, "bonus": bonus, "deduction": deduction}


def competition_ranks(totals: dict) -> dict:
    return {u: 1 + sum(1 for o in totals.values() if o > t) for u, t in totals.items()}


# --- health, sign-in, and the protocol errors -------------------------------------------------


def test_health_sign_in_and_protocol_errors(web, caplog):
    api = web

    def boom():
        raise RuntimeError("secret internal detail")

    api.app.add_url_rule("/api/_boom_for_test", "boom_for_test", boom)  # before the first request

    health = api.get("/api/health")
    assert health.status_code == 200
    assert health.json == {
        "status": "ok",
        "schemes": len(scheme_folders()),
        "rule_set": 1,
    }  # published at the start

    # sign-in: the password "secret" was set for every seeded user
    good = api.post("/api/auth/token", json={"username": "submitter", "password": "secret"})
    assert good.status_code == 201, good.json
    assert good.json["role"] == "submitter" and good.json["unit"] == "gucun"
    fresh = good.json["token"]
    assert fresh and fresh not in api.tokens.values()
    units = api.get("/api/units", headers={"Authorization": f"Bearer {fresh}"})
    assert units.status_code == 200 and [u["code"] for u in units.json] == [
        "gucun"
    ]  # own unit only
    admin = api.post("/api/auth/token", json={"username": "admin", "password": "secret"})
    assert admin.status_code == 201 and admin.json["role"] == "admin" and admin.json["unit"] is None

    wrong = api.post("/api/auth/token", json={"username": "admin", "password": "Secret"})
    assert_error(wrong, 401, "bad_credentials", ["password"])
    nobody = api.post("/api/auth/token", json={"username": "nobody", "password": "secret"})
    assert_error(nobody, 401, "bad_credentials", ["password"])
    assert (
        nobody.json["error"]["message"] == wrong.json["error"]["message"]
    )  # no hint which part was wrong
    missing = api.post("/api/auth/token", json={"username": "admin"})
    assert_error(missing, 422, "invalid_request", ["password"])
    empty = api.post("/api/auth/token", json={"username": "", "password": "secret"})
    assert_error(empty, 422, "invalid_request", ["username"])

    # no token, or a token nobody was given
    anonymous = api.get("/api/units")
    assert_error(anonymous, 401, "unauthenticated")
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    forged = api.get("/api/units", headers={"Authorization": "Bearer not-a-token"})
    assert_error(forged, 401, "unauthenticated")
    # who is not signed in hears nothing about the body of a call they may not make
    for body in ({"facts": {"not_a_fact": "x"}}, {"facts": [1]}, {}):
        assert_error(
            api.post("/api/schemes/gumeilu-2022/evaluate", json=body), 401, "unauthenticated"
        )
    assert_error(
        api.post(
            "/api/schemes/gumeilu-2022/evaluate", data="{not json", content_type="application/json"
        ),
        401,
        "unauthenticated",
    )

    # malformed JSON, wrong method, unknown path, a body over the limit (the harness sets 256 KiB)
    broken = api.post(
        "/api/schemes/gumeilu-2022/evaluate",
        "admin",
        data='{"facts": {"x": 1',
        content_type="application/json",
    )
    assert_error(broken, 400, "bad_request")
    not_object = api.post("/api/schemes/gumeilu-2022/evaluate", "admin", json=[1, 2])
    assert_error(not_object, 422, "invalid_request")
    # bodies that cannot be read are the client's error (400), never the server's (500)
    unreadable = {
        "nested thousands deep": '{"facts": ' + "[" * 50_000 + "]" * 50_000 + "}",
        "an integer of 5000 digits": '{"facts": {"work_plan_score": 1' + "0" * 5000 + "}}",
        "not UTF-8": b'{"facts": {"org_leadership_reason": "\xff\xfe"}}',
    }
    for _what, body in unreadable.items():
        response = api.post(
            "/api/schemes/baoshan-2022-b1/evaluate",
            "admin",
            data=body,
            content_type="application/json",
        )
        assert_error(response, 400, "bad_request")
    # ids beyond what the databases hold are simply not there
    for huge in (2**31, 2**63):
        assert_error(api.get(f"/api/scores/{huge}", "admin"), 404)
        assert_error(api.post(f"/api/scores/{huge}/replay", "admin"), 404)
    assert_error(api.call("DELETE", "/api/units", "admin"), 405)
    assert_error(api.get("/api/no-such-thing", "admin"), 404, "not_found")
    limit = api.app.config["MAX_CONTENT_LENGTH"]
    assert limit == 256 * 1024
    too_big = api.post(
        "/api/schemes/gumeilu-2022/evaluate",
        "admin",
        data=json.dumps({"facts": {}, "pad": "x" * limit}),
        content_type="application/json",
    )
    assert_error(too_big, 413, "request_entity_too_large")

    # an unexpected failure: an incident id for the client, the details only in the log
    with caplog.at_level(logging.ERROR, logger="service.errors"):
        crash = api.get("/api/_boom_for_test")
    error = assert_error(crash, 500, "internal_error")
    assert error["incident"] and error["incident"] in error["message"]
    assert b"secret internal detail" not in crash.data and b"RuntimeError" not in crash.data
    assert any(error["incident"] in r.getMessage() for r in caplog.records)


# --- schemes, as their rule files say ----------------------------------------------------------


def test_schemes_describe_their_rule_files(web):
    api = web
    folders = scheme_folders()
    listed = api.get("/api/schemes", "auditor")
    assert listed.status_code == 200
    assert sorted(s["id"] for s in listed.json) == sorted(folders)

    for summary in listed.json:
        folder = folders[summary["id"]]
        scheme_file = load_yaml(folder / "scheme.yaml")
        clause_files = {
            str(c["id"]): c for c in map(load_yaml, sorted((folder / "clauses").glob("*.yaml")))
        }
        detail = api.get(f"/api/schemes/{summary['id']}", "submitter")
        assert detail.status_code == 200, detail.json
        d = detail.json

        # identity and version: the SHA-256 of the folder's files, recomputed here
        assert d["version"] == summary["version"] == content_hash(folder)
        assert (d["title"], d["year"], d["issuer"]) == (
            scheme_file["title"],
            scheme_file["year"],
            scheme_file["issuer"],
        )
        assert Decimal(d["total"]) == scheme_file["total"]
        assert d["clauses"] == summary["clauses"] == len(clause_files) == len(d["clause_details"])
        assert d["grading"] == d["grading_policy"]["method"] == scheme_file["grading"]["method"]

        # the category tree, as declared, with every clause under its category
        def tree(cats):
            return [
                (
                    str(c["id"]),
                    c["title"],
                    c.get("kind", "standard"),
                    c.get("points"),
                    c.get("cap"),
                    tree(c.get("categories", [])),
                )
                for c in cats
            ]

        def served(cats):
            return [
                (
                    c["id"],
                    c["title"],
                    c["kind"],
                    None if c["points"] is None else Decimal(c["points"]),
                    None if c["cap"] is None else Decimal(c["cap"]),
                    served(c["categories"]),
                )
                for c in cats
            ]

        assert served(d["categories"]) == tree(scheme_file["categories"])
        standard_top = [Decimal(c["points"]) for c in d["categories"] if c["kind"] == "standard"]
        assert sum(standard_top) == Decimal(d["total"])
        placed = {cid: c["id"] for c, _ in walk_categories(d["categories"]) for cid in c["clauses"]}
        assert placed == {cid: str(c["category"]) for cid, c in clause_files.items()}

        # each clause: verbatim source text, points, offices, deadline, evidence, the facts it declares
        for clause in d["clause_details"]:
            source = clause_files[clause["id"]]
            assert clause["title"] == source["title"]
            assert clause["source"] == source["source"]["text"]
            assert clause["source_ref"] == source["source"].get("ref", "")
            assert Decimal(clause["points"]) == source["points"]
            assert clause["offices"] == source.get("offices", [])
            assert clause["evidence"] == source.get("evidence", [])
            assert clause["deadline"] == str(source.get("deadline", ""))
            assert [r["id"] for r in clause["rules"]] == [str(r["id"]) for r in source["rules"]]
            assert {f["name"] for f in source.get("facts", [])} <= set(clause["facts"])

        # each fact: type, unit, range, label, help, exactly as declared
        declared = [f for c in clause_files.values() for f in c.get("facts", [])] + scheme_file.get(
            "facts", []
        )
        facts = {f["name"]: f for f in d["facts"]}
        assert sorted(facts) == sorted(f["name"] for f in declared)
        for f in declared:
            out = facts[f["name"]]
            assert (out["type"], out["label"], out["unit"], out["help"]) == (
                f["type"],
                f["label"],
                f.get("unit", ""),
                f.get("help", ""),
            )
            for key in ("min", "max"):
                if key in f:
                    assert Decimal(out[key]) == f[key], (f["name"], key)
            if f["type"] == "percent" and "min" not in f:
                assert (out["min"], out["max"]) == (
                    "0",
                    "100",
                )  # a percentage is 0..100 unless declared
            if f["type"] in ("boolean", "text"):
                assert out["min"] is None and out["max"] is None
            assert out["choices"] == f.get("choices", [])
            assert out["required"] is f.get("required", True)

    some_offices = api.get("/api/schemes/zhuanqiao-2018", "auditor").json
    assert any(
        c["offices"] for c in some_offices["clause_details"]
    )  # the check above saw real offices

    unknown = api.get("/api/schemes/no-such-scheme", "admin")
    error = assert_error(unknown, 404, "unknown_scheme", ["scheme"])
    assert B1 in error["fields"]["scheme"][0]  # says which schemes exist
    for path in ("/facts-schema", "/ranking"):
        assert_error(api.get(f"/api/schemes/no-such-scheme{path}", "admin"), 404, "unknown_scheme")
    assert_error(
        api.post("/api/schemes/no-such-scheme/evaluate", "admin", json={"facts": {}}),
        404,
        "unknown_scheme",
    )


def test_facts_schema_is_json_schema_the_server_agrees_with(web):
    api = web
    detail = api.get(f"/api/schemes/{B1}", "admin").json
    response = api.get(f"/api/schemes/{B1}/facts-schema", "submitter")
    assert response.status_code == 200
    schema = response.json
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["x-scheme-version"] == detail["version"]
    assert sorted(schema["properties"]) == sorted(f["name"] for f in detail["facts"])
    for f in detail["facts"]:
        prop = schema["properties"][f["name"]]
        assert prop["title"] == f["label"]
        if f["min"] is not None:
            assert Decimal(str(prop["minimum"])) == Decimal(f["min"])
        if f["max"] is not None:
            assert Decimal(str(prop["maximum"])) == Decimal(f["max"])
        if f["unit"]:
            assert prop["x-unit"] == f["unit"]
    validator = jsonschema.Draft202012Validator(schema)

    # a good facts object, as a client would have it (parsed from JSON text)
    good = json.loads(as_json(EXAMPLE["罗店镇"]))
    assert list(validator.iter_errors(good)) == []
    assert (
        post_json(api, f"/api/schemes/{B1}/evaluate", "admin", {"facts": good}).status_code == 200
    )

    # each bad object fails the schema AND the server, on the same fact
    bad_cases = {
        "org_leadership_score": "3",  # text for a number
        "policy_funding_score": True,  # yes/no for a number
        "work_plan_score": 2.5 + 10,  # above its declared maximum (2)
        "national_honours": 1.5,  # a fraction for a whole number
        "major_quality_incident": 1,  # a number for yes/no
        "not_a_fact": 1,  # not declared by the scheme
    }
    for name, value in bad_cases.items():
        facts = dict(good, **{name: value})
        assert list(validator.iter_errors(facts)), f"the schema let {name}={value!r} through"
        refused = api.post(f"/api/schemes/{B1}/evaluate", "admin", json={"facts": facts})
        error = assert_error(refused, 422, "invalid_facts")
        assert list(error["fields"]) == [f"facts.{name}"], error


# --- what-if: explained, stored nowhere ----------------------------------------------------------


def test_what_if_explains_every_point_and_stores_nothing(web):
    api = web
    detail = api.get(f"/api/schemes/{B1}", "admin").json
    facts = EXAMPLE["顾村镇"]
    expected = b1_expected(detail, facts)
    # 顾村镇: honours 1+1+1 give 3+2+1 = 6 bonus points, over the pool's cap; and a major incident
    assert expected["bonus"] < sum(
        min(Decimal(c["points"]), Decimal(c["rules"][0]["each"]) * facts[c["rules"][0]["measure"]])
        for c in detail["clause_details"]
        if c["kind"] == "bonus"
    )
    assert facts["major_quality_incident"] is True

    before = row_counts(api)
    response = post_json(api, f"/api/schemes/{B1}/evaluate", "editor", {"facts": facts})
    assert response.status_code == 200, response.json
    assert set(response.json) == {
        "result"
    }  # the structured trace; its text is the text/plain answer
    result = response.json["result"]
    assert Decimal(result["total"]) == expected["total"]
    assert Decimal(result["bonus"]) == expected["bonus"]
    assert (
        Decimal(result["deduction"]) == -expected["deduction"]
    )  # written as the points it takes off
    assert result["version"] == detail["version"] and result["scheme"] == B1
    assert (
        result["matcher"] == EnginePool.name
        and result["complete"] is True
        and result["missing"] == []
    )
    # every clause is explained, with the facts it read and the file it came from
    assert sorted(c["id"] for c in result["clauses"]) == sorted(
        c["id"] for c in detail["clause_details"]
    )
    for clause in result["clauses"]:
        assert clause["explanation"] and clause["file"].endswith(".yaml") and clause["facts"]
    by_id = {c["id"]: c for c in result["clauses"]}
    assert Decimal(by_id["1.1.1"]["points"]) == facts["org_leadership_score"]
    assert facts["org_leadership_reason"] in by_id["1.1.1"]["explanation"]  # the reviewer's reason
    bonus_pool = next(c for c in result["categories"] if c["kind"] == "bonus")
    assert bonus_pool["capped"] is True and Decimal(bonus_pool["points"]) == expected["bonus"]
    # rank grading needs the other units: no grade on one's own, and the barring veto is reported
    assert result["grade"] is None and "排名" in result["grade_explanation"]
    assert [v["id"] for v in result["grade_vetoes"]] == ["major_incident"]
    # the same score as text, for people: Accept: text/plain
    as_text = post_json(
        api,
        f"/api/schemes/{B1}/evaluate",
        "editor",
        {"facts": facts},
        headers={"Accept": "text/plain"},
    )
    assert (
        as_text.status_code == 200
        and as_text.headers["Content-Type"] == "text/plain; charset=utf-8"
    )
    text = as_text.get_data(as_text=True)
    assert f"总分：{expected['total']:.2f}" in text and "加分项" in text
    for clause in result["clauses"]:
        assert f"{clause['id']} {clause['title']}" in text and clause["explanation"] in text
    # a client that takes both, or anything, gets JSON
    for accept in ("application/json, text/plain;q=0.5", "*/*", "image/png"):
        answer = post_json(
            api,
            f"/api/schemes/{B1}/evaluate",
            "editor",
            {"facts": facts},
            headers={"Accept": accept},
        )
        assert answer.status_code == 200 and answer.json["result"] == result, accept
    assert row_counts(api) == before  # nothing stored: no score, no submission, no journal entry

    # incomplete facts are scored as missing, not as zero
    partial = {k: v for k, v in facts.items() if k != "quality_tools_score"}
    response = post_json(api, f"/api/schemes/{B1}/evaluate", "submitter", {"facts": partial})
    assert response.status_code == 200
    assert response.json["result"]["complete"] is False
    assert "quality_tools_score" in json.dumps(response.json["result"]["missing"])
    assert (
        Decimal(response.json["result"]["total"])
        == expected["total"] - facts["quality_tools_score"]
    )

    # bad facts: 422 naming facts.<name>, one entry per bad fact
    bad = api.post(
        f"/api/schemes/{B1}/evaluate",
        "admin",
        json={
            "facts": {
                "org_leadership_score": "2",  # text for a number
                "policy_funding_score": False,  # yes/no for a number
                "work_plan_score": 3,  # out of range (0..2)
                "area_meetings_score": -1,  # out of range
                "national_honours": 2.5,  # not whole
                "org_leadership_reason": 7,  # a number for text
                "no_such_fact": 1,  # unknown
            }
        },
    )
    error = assert_error(bad, 422, "invalid_facts")
    assert sorted(error["fields"]) == sorted(
        f"facts.{n}"
        for n in (
            "org_leadership_score",
            "policy_funding_score",
            "work_plan_score",
            "area_meetings_score",
            "national_honours",
            "org_leadership_reason",
            "no_such_fact",
        )
    )
    # numbers are read exactly: more than 15 significant digits is refused, not rounded to 2 on the way in;
    # beyond the engine's range either way is refused, not a crash; NaN is no JSON, but Python reads it
    for text in ("1.99999999999999999", "1e400000000", "-1e400000000", "1e-330", "NaN", "Infinity"):
        refused = api.post(
            f"/api/schemes/{B1}/evaluate",
            "admin",
            data=f'{{"facts": {{"work_plan_score": {text}}}}}',
            content_type="application/json",
        )
        assert_error(refused, 422, "invalid_facts", ["facts.work_plan_score"])
    missing = api.post(f"/api/schemes/{B1}/evaluate", "admin", json={})
    assert_error(missing, 422, "invalid_request", ["facts"])
    not_mapping = api.post(f"/api/schemes/{B1}/evaluate", "admin", json={"facts": [1, 2]})
    assert_error(not_mapping, 422, "invalid_request", ["facts"])
    assert row_counts(api) == before  # failures store nothing either


# --- units and the journal ----------------------------------------------------------------------


def test_units_and_the_journal(web):
    api = web
    listed = api.get("/api/units", "auditor")
    assert listed.status_code == 200
    assert [u["code"] for u in listed.json] == [
        "bsip",
        "dachang",
        "gucun",
    ]  # seeded, sorted by code

    new = {"code": "luodian", "name": "罗店镇", "kind": "town", "district": "宝山区"}
    created = api.post("/api/units", "admin", json=new)
    assert created.status_code == 201 and created.json == new
    assert api.get("/api/units/luodian", "reviewer").json == new
    assert [u["code"] for u in api.get("/api/units", "admin").json] == [
        "bsip",
        "dachang",
        "gucun",
        "luodian",
    ]
    assert [u["code"] for u in api.get("/api/units", "submitter").json] == ["gucun"]

    duplicate = api.post("/api/units", "admin", json=dict(new, name="另一个罗店"))
    assert_error(duplicate, 409, "duplicate_unit", ["code"])
    assert api.get("/api/units/luodian", "admin").json["name"] == "罗店镇"  # the first one stands
    assert_error(
        api.post("/api/units", "admin", json=dict(new, code="x1", kind="village")),
        422,
        "invalid_request",
        ["kind"],
    )
    assert_error(
        api.post("/api/units", "admin", json=dict(new, code="has space")),
        422,
        "invalid_request",
        ["code"],
    )
    no_district = {k: v for k, v in new.items() if k != "district"}
    assert_error(
        api.post("/api/units", "admin", json=dict(no_district, code="x2")),
        422,
        "invalid_request",
        ["district"],
    )
    assert_error(api.get("/api/units/nowhere", "admin"), 404, "unknown_unit")

    # denials: a submitter creating a unit, a submitter reading another unit, nobody signed in
    assert_error(api.post("/api/units", "submitter", json=dict(new, code="x3")), 403, "forbidden")
    assert_error(api.get("/api/units/dachang", "submitter"), 403, "forbidden")
    assert_error(api.post("/api/units", json=dict(new, code="x4")), 401, "unauthenticated")
    assert [u["code"] for u in api.get("/api/units", "admin").json] == [
        "bsip",
        "dachang",
        "gucun",
        "luodian",
    ]

    journal = api.get("/api/journal", "admin")
    assert journal.status_code == 200
    entries = journal.json
    assert [e["id"] for e in entries] == sorted(
        (e["id"] for e in entries), reverse=True
    )  # newest first
    assert {k for e in entries for k in e} == {
        "id",
        "at",
        "actor",
        "role",
        "action",
        "target",
        "outcome",
        "detail",
    }
    for e in entries:
        aware(e["at"])
    # (the test app's rounds were opened as it was set up: not what this test is about)
    writes = [
        e
        for e in entries
        if e["outcome"] == "ok" and e["action"] not in ("rounds.open", "rules.tested")
    ]
    served = {sid: [None, s.version] for sid, s in api.ctx.registry.schemes().items()}
    # the start ran the test cases of every version it put in force, and remembers that they passed
    assert {e["target"] for e in entries if e["action"] == "rules.tested"} == {
        f"scheme:{sid}/version:{s.version}" for sid, s in api.ctx.registry.schemes().items()
    }
    assert [(e["actor"], e["action"], e["target"], e["detail"]) for e in writes] == [
        ("admin", "units.write", "unit:luodian", {"name": "罗店镇"}),
        (
            "（启动）",
            "rules.publish",
            "rule_set:1",
            {"changes": served},
        ),  # the start put the rules in force
    ]
    denied = [
        (e["actor"], e["role"], e["action"], e["target"])
        for e in entries
        if e["outcome"] == "denied"
    ]
    assert ("submitter", "submitter", "units.write", "unit:x3") in denied
    assert ("submitter", "submitter", "units.read", "unit:dachang") in denied
    assert (
        "（未登录）",
        "",
        "authenticate",
        "POST /api/units",
    ) in denied  # refused before the body is read
    assert all(e["detail"].get("reason") for e in entries if e["outcome"] == "denied")
    assert (
        api.get("/api/journal", "auditor").json[0]["id"] >= entries[0]["id"]
    )  # auditors read it too
    assert_error(api.get("/api/journal", "editor"), 403, "forbidden")


# --- submissions (append-only, versioned) and scores (stored, replayable) ---------------------------


REPLAY_FIELDS = ("score", "rules_version", "reproduced", "stored_total", "replayed_total",
                 "differences")  # fmt: skip


def test_submissions_are_versioned_and_scores_replay(web):
    api = web
    detail = api.get(f"/api/schemes/{B1}", "admin").json
    path = f"/api/units/gucun/schemes/{B1}"
    v1_facts = dict(EXAMPLE["顾村镇"])
    v2_facts = dict(v1_facts, quality_tools_score=Decimal("6.5"), major_quality_incident=False)

    assert_error(api.get(f"{path}/submissions/latest", "auditor"), 404, "no_submission")
    assert api.get(f"{path}/submissions", "auditor").json == []

    # an evidence reference for a fact the scheme does not declare
    bad_evidence = post_json(
        api,
        f"{path}/submissions",
        "submitter",
        {"role": "self", "facts": v1_facts, "evidence": {"no_such_fact": ["证书"]}},
    )
    assert_error(bad_evidence, 422, "invalid_evidence", ["evidence.no_such_fact"])
    bad_role = post_json(
        api, f"{path}/submissions", "submitter", {"role": "boss", "facts": v1_facts}
    )
    assert_error(bad_role, 422, "invalid_request", ["role"])
    no_facts = api.post(f"{path}/submissions", "submitter", json={"role": "self"})
    assert_error(no_facts, 422, "invalid_request", ["facts"])

    # the first version: no If-Match needed
    first = post_json(
        api,
        f"{path}/submissions",
        "submitter",
        {
            "role": "self",
            "facts": v1_facts,
            "evidence": {"org_leadership_score": ["会议纪要-2022-01"]},
        },
    )
    assert first.status_code == 201, first.json
    assert first.headers["ETag"] == '"1"'
    assert (
        first.json["version"],
        first.json["role"],
        first.json["author"],
        first.json["reason"],
    ) == (1, "self", "submitter", "")
    assert first.json["evidence"] == {"org_leadership_score": ["会议纪要-2022-01"]}
    assert {
        k: Decimal(v) if isinstance(v, str) and k.endswith(("_score", "_honours")) else v
        for k, v in first.json["facts"].items()
    } == v1_facts

    # a correction without If-Match, with a stale one, without a reason: refused, nothing written
    correction = {
        "role": "review",
        "facts": v2_facts,
        "reason": "复核：重大质量事件经查不属实；质量工具运用不足",
    }
    assert_error(
        post_json(api, f"{path}/submissions", "reviewer", correction),
        428,
        "if_match_required",
        ["If-Match"],
    )
    stale = post_json(
        api, f"{path}/submissions", "reviewer", correction, headers={"If-Match": '"0"'}
    )
    assert_error(stale, 409, "version_conflict", ["If-Match"])
    assert stale.headers["ETag"] == '"1"'  # says what is current
    no_reason = post_json(
        api,
        f"{path}/submissions",
        "reviewer",
        dict(correction, reason="  "),
        headers={"If-Match": '"1"'},
    )
    # each fact the correction changes must say why: here neither does
    error = assert_error(no_reason, 422, "reason_required")
    assert set(error["fields"]) == {"reasons.major_quality_incident", "reasons.quality_tools_score"}
    assert [s["version"] for s in api.get(f"{path}/submissions", "auditor").json] == [1]

    second = post_json(
        api, f"{path}/submissions", "reviewer", correction, headers={"If-Match": '"1"'}
    )
    assert second.status_code == 201, second.json
    assert second.headers["ETag"] == '"2"' and second.json["version"] == 2
    assert_error(
        post_json(api, f"{path}/submissions", "reviewer", correction, headers={"If-Match": '"1"'}),
        409,
        "version_conflict",
    )  # v1 is no longer current

    # history: who, when, in what role, why
    history = api.get(f"{path}/submissions", "auditor")
    assert history.status_code == 200
    assert [(h["version"], h["author"], h["role"], h["reason"]) for h in history.json] == [
        (1, "submitter", "self", ""),
        (2, "reviewer", "review", correction["reason"]),
    ]
    when = [aware(h["created_at"]) for h in history.json]
    assert when[0] <= when[1]
    assert when[0] == aware(first.json["created_at"]) and when[1] == aware(
        second.json["created_at"]
    )
    # a version reads back exactly as it was answered when written
    one = api.get(f"{path}/submissions/1", "submitter")
    assert one.status_code == 200 and one.headers["ETag"] == '"1"'
    assert one.json == history.json[0] == first.json
    assert api.get(f"{path}/submissions/2", "auditor").json == second.json
    latest = api.get(f"{path}/submissions/latest", "reviewer")
    assert latest.headers["ETag"] == '"2"' and latest.json == second.json
    assert_error(api.get(f"{path}/submissions/3", "auditor"), 404, "unknown_submission")

    # compare: exactly the facts that changed, from what to what
    compared = api.get(f"{path}/compare?from=1&to=2", "auditor")
    assert compared.status_code == 200, compared.json
    changed = {k for k in set(v1_facts) | set(v2_facts) if v1_facts.get(k) != v2_facts.get(k)}
    assert compared.json["from"] == 1 and compared.json["to"] == 2
    assert (
        {c["fact"] for c in compared.json["changes"]}
        == changed
        == {"quality_tools_score", "major_quality_incident"}
    )
    for c in compared.json["changes"]:
        assert (
            c["from"] == first.json["facts"][c["fact"]]
            and c["to"] == second.json["facts"][c["fact"]]
        )
    assert compared.json["reason"] == correction["reason"] and compared.json["role"] == "review"
    assert api.get(f"{path}/compare?from=2&to=2", "auditor").json["changes"] == []
    assert_error(
        api.get(f"{path}/compare?from=1&to=9", "auditor"), 404, "unknown_submission", ["to"]
    )
    assert_error(
        api.get(f"{path}/compare?from=0&to=x", "auditor"), 422, "invalid_request", ["from", "to"]
    )
    assert_error(api.get(f"{path}/compare?to=2", "auditor"), 422, "invalid_request", ["from"])

    # scores: computed from a stored submission under the serving rules, stored with everything
    assert_error(
        api.post(f"/api/units/dachang/schemes/{B1}/scores", "reviewer", json={}),
        409,
        "no_submission",
    )
    assert_error(
        api.post(f"{path}/scores", "reviewer", json={"submission_version": 3}), 404, "no_submission"
    )
    for bad_version in (0, 2**31, "x"):
        assert_error(
            api.post(f"{path}/scores", "reviewer", json={"submission_version": bad_version}),
            422,
            "invalid_request",
            ["submission_version"],
        )
    assert_error(
        api.post(f"/api/units/nowhere/schemes/{B1}/scores", "reviewer", json={}),
        404,
        "unknown_unit",
    )
    before = row_counts(api)
    latest_score = api.post(f"{path}/scores", "reviewer", json={})
    assert latest_score.status_code == 201, latest_score.json
    s2 = latest_score.json
    assert Decimal(s2["total"]) == b1_expected(detail, v2_facts)["total"]
    assert (s2["unit"], s2["scheme"], s2["submission_version"], s2["computed_by"]) == (
        "gucun",
        B1,
        2,
        "reviewer",
    )
    assert s2["rules_version"] == detail["version"] and s2["engine_version"] == EnginePool.name
    assert s2["complete"] is True and s2["grade"] is None  # rank grading: graded in the ranking
    assert (
        Decimal(s2["trace"]["total"]) == Decimal(s2["total"])
        and s2["trace"]["version"] == detail["version"]
    )
    assert "text" not in s2  # the stored score's text is its text/plain answer
    after = row_counts(api)
    assert after["scores"] == before["scores"] + 1 and after["journal"] == before["journal"] + 1
    first_score = api.post(f"{path}/scores", "admin", json={"submission_version": 1})
    assert first_score.status_code == 201
    s1 = first_score.json
    assert (
        s1["submission_version"] == 1
        and Decimal(s1["total"]) == b1_expected(detail, v1_facts)["total"]
    )
    assert Decimal(s1["total"]) != Decimal(s2["total"])

    listed = api.get(f"{path}/scores", "submitter")
    assert [(s["id"], s["submission_version"]) for s in listed.json] == [
        (s2["id"], 2),
        (s1["id"], 1),
    ]
    read = api.get(f"/api/scores/{s2['id']}", "auditor")
    assert read.status_code == 200
    assert read.json["trace"] == s2["trace"]
    read_text = api.get(f"/api/scores/{s2['id']}", "auditor", headers={"Accept": "text/plain"})
    assert read_text.status_code == 200 and read_text.mimetype == "text/plain"
    assert f"总分：{Decimal(s2['total']):.2f}" in read_text.get_data(as_text=True)
    assert f"细则版本：{s2['rules_version'][:16]}" in read_text.get_data(as_text=True)
    assert (
        Decimal(read.json["total"]) == Decimal(s2["total"])
        and read.json["rules_version"] == s2["rules_version"]
    )
    assert aware(read.json["created_at"]) == aware(s2["created_at"])
    assert_error(api.get("/api/scores/999999", "auditor"), 404, "unknown_score")

    for score in (s1, s2):
        replay = api.post(f"/api/scores/{score['id']}/replay", "auditor")
        assert replay.status_code == 200, replay.json
        # the fields the replay always had, as they were (issue 11 added more beside them)
        assert {k: replay.json[k] for k in REPLAY_FIELDS} == {
            "score": score["id"],
            "rules_version": detail["version"],
            "reproduced": True,
            "stored_total": score["trace"]["total"],
            "replayed_total": score["trace"]["total"],
            "differences": [],
        }
    assert_error(api.post("/api/scores/999999/replay", "auditor"), 404, "unknown_score")
    journal = api.get("/api/journal", "admin").json
    assert [
        (e["action"], e["detail"].get("score")) for e in journal if e["action"] == "scores.write"
    ] == [("scores.write", s1["id"]), ("scores.write", s2["id"])]
    assert [e["detail"]["version"] for e in journal if e["action"] == "submissions.write"] == [2, 1]
    # computing a score can answer with its text too; stored all the same
    third = api.post(f"{path}/scores", "reviewer", json={}, headers={"Accept": "text/plain"})
    assert third.status_code == 201 and third.mimetype == "text/plain"
    assert third.get_data(as_text=True) == read_text.get_data(
        as_text=True
    )  # same facts and rules: same text
    assert row_counts(api)["scores"] == after["scores"] + 2


def test_a_correction_says_why_for_each_fact_it_changes(web):
    api = web
    path = f"/api/units/dachang/schemes/{B1}"
    v1 = dict(EXAMPLE["大场镇"])
    v2 = dict(
        v1, quality_tools_score=Decimal(1), major_quality_incident=not v1["major_quality_incident"]
    )
    assert (
        post_json(api, f"{path}/submissions", "admin", {"role": "self", "facts": v1}).status_code
        == 201
    )
    before = row_counts(api)

    def correct(**extra):
        return post_json(
            api,
            f"{path}/submissions",
            "reviewer",
            dict({"role": "review", "facts": v2}, **extra),
            headers={"If-Match": '"1"'},
        )

    error = assert_error(correct(), 422, "reason_required")
    assert error["fields"] == {
        "reasons.major_quality_incident": ["改动了此项，须写明理由"],
        "reasons.quality_tools_score": ["改动了此项，须写明理由"],
    }
    one = {"quality_tools_score": "现场核查仅见一种质量工具的运用记录"}
    error = assert_error(correct(reasons=one), 422, "reason_required")
    assert list(error["fields"]) == ["reasons.major_quality_incident"]  # only the unexplained one
    error = assert_error(
        correct(reasons=dict(one, not_a_fact="x")), 422, "invalid_reasons", ["reasons.not_a_fact"]
    )
    blank = dict(one, major_quality_incident="   ")  # blank is no reason
    assert list(assert_error(correct(reasons=blank), 422, "reason_required")["fields"]) == [
        "reasons.major_quality_incident"
    ]
    assert row_counts(api) == before  # nothing written by any of these

    both = dict(one, major_quality_incident="经区市场监管局复核，该事件不属于重大质量事件")
    second = correct(reasons=both)
    assert second.status_code == 201, second.json
    assert second.json["reasons"] == both and second.json["reason"] == ""
    compared = api.get(f"{path}/compare?from=1&to=2", "auditor").json
    assert {c["fact"]: c["reason"] for c in compared["changes"]} == both
    # a correction that changes nothing must still say why it was made
    error = post_json(
        api,
        f"{path}/submissions",
        "reviewer",
        {"role": "review", "facts": v2},
        headers={"If-Match": '"2"'},
    )
    assert_error(error, 422, "reason_required", ["reason"])
    # a general reason speaks for every change it does not explain one by one
    third = post_json(
        api,
        f"{path}/submissions",
        "reviewer",
        {
            "role": "review",
            "facts": v1,
            "reason": "撤回第2版的更正",
            "reasons": {"quality_tools_score": "恢复原分"},
        },
        headers={"If-Match": '"2"'},
    )
    assert third.status_code == 201, third.json
    changes = {
        c["fact"]: c["reason"]
        for c in api.get(f"{path}/compare?from=2&to=3", "auditor").json["changes"]
    }
    assert changes == {
        "quality_tools_score": "恢复原分",
        "major_quality_incident": "撤回第2版的更正",
    }


# --- ranking: rank grading by the rules of table B.1 -----------------------------------------------


def test_ranking_grades_by_rank_with_ties_and_the_excellence_veto(web):
    api = web
    detail = api.get(f"/api/schemes/{B1}", "admin").json
    policy = detail["grading_policy"]
    assert policy["method"] == "rank"
    (tier_a, tier_b) = policy["tiers"]
    (excellent,) = policy["distinctions"]
    (veto,) = policy["vetoes"]
    assert (
        tier_a["grade"],
        tier_b["grade"],
        excellent["grade"],
        veto["effect"],
        veto["grade"],
    ) == ("A", "B", "A", "bar", excellent["name"])

    # the seeded units plus the other seven of the example; facts from examples/baoshan-2022-b1.yaml
    seeded = {u["code"] for u in api.get("/api/units", "admin").json}
    for code, name, kind in DEMO_UNITS:
        if code not in seeded:
            made = api.post(
                "/api/units",
                "admin",
                json={"code": code, "name": name, "kind": kind, "district": "宝山区"},
            )
            assert made.status_code == 201, made.json
    assert {u["name"] for u in api.get("/api/units", "admin").json} == set(EXAMPLE)

    assert api.get(f"/api/schemes/{B1}/ranking", "reviewer").json["entries"] == []
    for name, facts in EXAMPLE.items():
        api.official(CODE_OF[name], B1, facts)

    totals = {name: b1_expected(detail, facts)["total"] for name, facts in EXAMPLE.items()}
    ranks = competition_ranks(totals)
    response = api.get(f"/api/schemes/{B1}/ranking", "editor")
    assert response.status_code == 200, response.json
    ranking = response.json
    assert (ranking["scheme"], ranking["version"], ranking["method"]) == (
        B1,
        detail["version"],
        "rank",
    )
    entries = {e["unit"]: e for e in ranking["entries"]}
    assert set(entries) == set(EXAMPLE)
    assert [e["rank"] for e in ranking["entries"]] == sorted(ranks.values())  # listed by rank
    for name, e in entries.items():
        incident = EXAMPLE[name]["major_quality_incident"]
        grade = tier_a["grade"] if ranks[name] <= tier_a["top"] else tier_b["grade"]
        distinctions = (
            [excellent["name"]]
            if grade == excellent["grade"] and ranks[name] <= excellent["top"] and not incident
            else []
        )
        assert (Decimal(e["total"]), e["rank"], e["grade"], e["distinctions"]) == (
            totals[name],
            ranks[name],
            grade,
            distinctions,
        ), name
        assert (
            e["unit_code"] == CODE_OF[name] and e["current_rules"] is True and e["complete"] is True
        )
        assert e["vetoes"] == (["major_incident"] if incident else [])
        # the grade is explained: the rank (or the rest-tier), and the veto when it applies
        if grade == tier_a["grade"]:
            assert f"排名第{ranks[name]}，在前{tier_a['top']}名内" in e["explanation"], e[
                "explanation"
            ]
        else:
            assert tier_b["title"] in e["explanation"], e["explanation"]
        if incident and ranks[name] <= excellent["top"]:
            assert "不评优秀" in e["explanation"] and "不顺延" in e["explanation"]

    # what the example sets out to show (its header comment), as the rules above decide it
    assert ranks["月浦镇"] == ranks["宝山工业园区"] == 6
    assert entries["月浦镇"]["grade"] == entries["宝山工业园区"]["grade"] == "A"
    assert sorted(ranks.values()).count(6) == 2 and 7 not in ranks.values()
    assert (
        ranks["顾村镇"] <= 3
        and entries["顾村镇"]["grade"] == "A"
        and entries["顾村镇"]["distinctions"] == []
    )
    fourth = [n for n, r in ranks.items() if r == 4]
    assert fourth and all(
        entries[n]["distinctions"] == [] for n in fourth
    )  # 优秀 is not passed down
    assert sum(1 for e in entries.values() if e["distinctions"]) == 2
    assert sum(1 for e in entries.values() if e["grade"] == "B") == len(EXAMPLE) - 7

    # a newer official score of a unit replaces its older one in the ranking: the review is
    # reopened (with a reason), corrected, completed again and the official score computed again
    path = f"/api/units/gucun/schemes/{B1}"
    rid = api.round_of(B1)
    cleared = dict(EXAMPLE["顾村镇"], major_quality_incident=False)
    reopened = api.post(
        f"/api/rounds/{rid}/units/gucun/reopen", "reviewer", json={"reason": "事件须复核"}
    )
    assert reopened.status_code == 200 and reopened.json["state"] == "in_review", reopened.json
    assert reopened.json["official_score_id"] is None
    assert (
        post_json(
            api,
            f"{path}/submissions",
            "reviewer",
            {"role": "review", "facts": cleared, "reason": "事件经复核不属实"},
            headers={"If-Match": '"1"'},
        ).status_code
        == 201
    )
    assert api.post(f"/api/rounds/{rid}/units/gucun/review-complete", "reviewer").status_code == 200
    assert api.post(f"{path}/scores", "reviewer", json={}).json["kind"] == "official"
    again = {e["unit"]: e for e in api.get(f"/api/schemes/{B1}/ranking", "auditor").json["entries"]}
    assert Decimal(again["顾村镇"]["total"]) == b1_expected(detail, cleared)["total"]
    assert again["顾村镇"]["submission_version"] == 2 and again["顾村镇"]["vetoes"] == []
    assert len(again) == len(EXAMPLE)
    assert_clean(api.get(f"/api/schemes/{B1}/ranking", "auditor"))


# --- text no database can keep --------------------------------------------------------------


def test_text_no_database_can_keep_is_refused_by_field(web):
    """A NUL, another control character, or a lone surrogate ("\\ud800" is valid JSON but has no
    UTF-8 form) is a 422 naming the field: PostgreSQL would refuse it only at the insert or even
    the lookup (a 500), and SQLite would keep text that cannot be read back as UTF-8."""
    api = web
    before = row_counts(api)
    facts = dict(EXAMPLE["顾村镇"])
    b1 = f"/api/schemes/{B1}/evaluate"

    def raw_post(
        path, as_, body_text
    ):  # escapes written by hand: the test client would refuse them
        return api.post(path, as_, data=body_text, content_type="application/json")

    for bad, code_point in (("\\ud800", "U+D800"), ("\\u0000", "U+0000"), ("\\u001b", "U+001B")):
        body = as_json({"facts": dict(facts, month_plan_summary_reason="PLACEHOLDER")})
        response = raw_post(b1, "reviewer", body.replace("PLACEHOLDER", "材料" + bad))
        error = assert_error(response, 422, "invalid_facts", ["facts.month_plan_summary_reason"])
        assert (
            f"第3个字符是无法保存的字符 {code_point}"
            in error["fields"]["facts.month_plan_summary_reason"][0]
        )
    # tabs and new lines are ordinary text
    fine = post_json(
        api, b1, "reviewer", {"facts": dict(facts, month_plan_summary_reason="第一行\n\t第二行")}
    )
    assert fine.status_code == 200, fine.json

    submissions = f"/api/units/gucun/schemes/{B1}/submissions"
    for field, body in (
        ("reason", '{"role": "self", "facts": {}, "reason": "a\\u0000b"}'),
        (
            "evidence",
            '{"role": "self", "facts": {}, "evidence": {"work_plan_score": ["x\\ud800"]}}',
        ),
    ):
        error = assert_error(raw_post(submissions, "submitter", body), 422, None, None)
        assert any(name.startswith(field) for name in error["fields"]), error
    error = assert_error(
        raw_post("/api/auth/token", None, '{"username": "ad\\u0000min", "password": "secret"}'),
        422,
        "invalid_request",
        ["username"],
    )
    assert "U+0000" in error["fields"]["username"][0]
    assert_error(
        raw_post(
            "/api/units",
            "admin",
            '{"code": "x1", "name": "\\udfff", "kind": "town", "district": "宝山区"}',
        ),
        422,
        "invalid_request",
        ["name"],
    )
    assert_error(
        raw_post(
            "/api/units",
            "admin",
            '{"code": "x1\\n", "name": "某镇", "kind": "town", "district": "宝山区"}',
        ),
        422,
        "invalid_request",
        ["code"],
    )
    rules = raw_post(
        "/api/rules/validate", "editor", '{"files": {"scheme.yaml": "id: x\\nname: \\ud800\\n"}}'
    )
    error = assert_error(rules, 422, "invalid_request")
    assert "第2行第7列是无法保存的字符 U+D800" in json.dumps(error["fields"], ensure_ascii=False)
    # unit codes that could not exist are unknown, without a query PostgreSQL would refuse
    for code in ("%00", "gucun%0A", "%E6%97%A0"):
        assert_error(api.get(f"/api/units/{code}", "admin"), 404, "unknown_unit")
    assert_error(
        api.get(f"/api/units/%00/schemes/{B1}/submissions", "reviewer"), 404, "unknown_unit"
    )
    assert row_counts(api) == before  # nothing stored, not even half
