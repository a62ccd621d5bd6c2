"""The OpenAPI document describes the API that is actually served."""

from __future__ import annotations

import re

from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

from ..unit.test_scoring import FULL
from .shapes import assert_error

METHODS = {"get", "post", "put", "patch", "delete"}


def openapi_path(rule: str) -> str:
    """/api/scores/<int:score_id> -> /api/scores/{score_id}"""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def resolve(doc: dict, node: dict) -> dict:
    while "$ref" in node:
        target = doc
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def response_schema(doc: dict, path: str, method: str, status: str) -> dict:
    responses = doc["paths"][path][method]["responses"]
    response = resolve(doc, responses[status] if status in responses else responses["default"])
    return response["content"]["application/json"]["schema"]


def schema_validator(doc: dict, schema: dict) -> OAS30Validator:
    """A validator for one schema of the document, resolving its references within the document."""
    return OAS30Validator({**schema, "components": doc["components"]})


def test_the_openapi_document_is_valid_and_covers_every_route(api_on_copy):
    api = api_on_copy
    response = api.get("/api/openapi.json")
    assert response.status_code == 200 and response.is_json
    doc = response.json
    assert doc["openapi"].startswith("3.")
    validate(doc)  # raises on an invalid OpenAPI document

    served = {}
    for rule in api.app.url_map.iter_rules():
        if not rule.rule.startswith("/api/") or rule.rule in ("/api/openapi.json", "/api/health"):
            continue
        methods = {m.lower() for m in rule.methods} & METHODS
        served.setdefault(openapi_path(rule.rule), set()).update(methods)
    assert len(served) >= 15  # units, submissions, scores, schemes, rules, journal, sign-in
    documented = {path: {m for m in item if m in METHODS} for path, item in doc["paths"].items()}
    missing = {
        p: sorted(ms - documented.get(p, set()))
        for p, ms in served.items()
        if ms - documented.get(p, set())
    }
    assert not missing, f"served but not documented: {missing}"
    extra = {
        p: sorted(ms - served.get(p, set()))
        for p, ms in documented.items()
        if ms - served.get(p, set())
    }
    assert not extra, f"documented but not served: {extra}"

    for path, methods in served.items():
        for method in methods:
            op = doc["paths"][path][method]
            codes = set(op["responses"])
            assert any(c.startswith("2") for c in codes), (method, path, codes)
            # every {param} of the path is declared as a path parameter
            params = op.get("parameters", []) + doc["paths"][path].get("parameters", [])
            declared = {resolve(doc, p)["name"] for p in params if resolve(doc, p)["in"] == "path"}
            assert declared == set(re.findall(r"{([^}]+)}", path)), (method, path, declared)

    submit = doc["paths"]["/api/units/{code}/schemes/{scheme_id}/submissions"]["post"]
    assert "If-Match" in {p["name"] for p in submit["parameters"] if p["in"] == "header"}
    compare = resolve(
        doc, response_schema(doc, "/api/units/{code}/schemes/{scheme_id}/compare", "get", "200")
    )
    assert {"from", "to", "changes"} <= set(compare["properties"])


def test_documented_error_responses_match_the_errors_served(api_on_copy):
    """Where the document describes an error response, a real error of that route fits it."""
    api = api_on_copy
    doc = api.get("/api/openapi.json").json
    cases = [
        (
            "/api/schemes/{scheme_id}/evaluate",
            "post",
            "422",
            api.post("/api/schemes/minimal/evaluate", "editor", json={}),
        ),
        (
            "/api/schemes/{scheme_id}/evaluate",
            "post",
            "422",
            api.post(
                "/api/schemes/minimal/evaluate", "editor", json={"facts": dict(FULL, coverage=101)}
            ),
        ),
        ("/api/schemes/{scheme_id}", "get", "404", api.get("/api/schemes/nope", "editor")),
        (
            "/api/units",
            "post",
            "409",
            api.post(
                "/api/units",
                "admin",
                json={"code": "gucun", "name": "顾村镇", "kind": "town", "district": "宝山区"},
            ),
        ),
        ("/api/journal", "get", "403", api.get("/api/journal", "editor")),
        ("/api/units", "get", "401", api.get("/api/units")),
    ]
    for path, method, status, served in cases:
        assert_error(served, int(status))
        responses = doc["paths"][path][method]["responses"]
        if status not in responses and "default" not in responses:
            continue  # not documented: nothing to contradict
        schema = response_schema(doc, path, method, status)
        errors = sorted(
            str(e.message) for e in schema_validator(doc, schema).iter_errors(served.json)
        )
        assert not errors, (method, path, status, served.json, errors)
        # and the document names the fields the error really has
        body = resolve(doc, resolve(doc, schema)["properties"]["error"])
        assert set(body["properties"]) == {"status", "code", "message", "fields", "incident"}
