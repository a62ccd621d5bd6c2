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


def _documented(doc: dict, path: str, method: str) -> set:
    return set(doc["paths"][path][method]["responses"])


def test_decimals_are_documented_as_the_strings_served(api):
    """The document says what the server writes: points and bounds are strings of exact digits
    (the audit found "total": "100" against a documented number, 7 such mismatches)."""
    doc = api.get("/api/openapi.json").json
    cases = [
        ("/api/schemes", "get", api.get("/api/schemes", "admin")),
        ("/api/schemes/{scheme_id}", "get", api.get("/api/schemes/gumeilu-2022", "admin")),
        ("/api/schemes/{scheme_id}", "get", api.get("/api/schemes/baoshan-2022-b1", "admin")),
    ]
    for path, method, served in cases:
        assert served.status_code == 200
        schema = response_schema(doc, path, method, "200")
        errors = sorted(
            f"{list(e.absolute_path)}: {e.message}"
            for e in schema_validator(doc, schema).iter_errors(served.json)
        )
        assert not errors, (path, errors[:10])
    for name, body in doc["components"]["schemas"].items():
        for prop, spec in body.get("properties", {}).items():
            assert spec.get("type") != "number", f"{name}.{prop} is documented as a number"


def test_every_error_status_served_is_documented_for_its_operation(api):
    """Each status an operation really answers is named in its responses (not left to "default")."""
    doc = api.get("/api/openapi.json").json
    base = "/api/units/{code}/schemes/{scheme_id}"
    unit = "/api/units/gucun/schemes/gumeilu-2022"
    first = api.post(
        f"{unit}/submissions",
        "admin",
        json={"role": "self", "facts": {"leader_evaluation_score": 4}},
    )
    assert first.status_code == 201
    cases = [
        (
            f"{base}/submissions",
            "post",
            api.post(f"{unit}/submissions", "admin", json={"role": "self", "facts": {}}),
        ),
        (
            f"{base}/submissions",
            "post",
            api.post(
                f"{unit}/submissions",
                "admin",
                json={"role": "self", "facts": {}},
                headers={"If-Match": '"9"'},
            ),
        ),
        (
            f"{base}/submissions",
            "post",
            api.post(f"{unit}/submissions", "submitter", data="{", content_type="application/json"),
        ),
        (
            f"{base}/submissions",
            "post",
            api.post(
                "/api/units/dachang/schemes/gumeilu-2022/submissions",
                "submitter",
                json={"role": "self", "facts": {}},
            ),
        ),
        (f"{base}/submissions", "post", api.post(f"{unit}/submissions", json={})),
        (
            f"{base}/submissions",
            "post",
            api.post(
                "/api/units/nope/schemes/gumeilu-2022/submissions",
                "admin",
                json={"role": "self", "facts": {}},
            ),
        ),
        (
            "/api/units",
            "post",
            api.post(
                "/api/units",
                "admin",
                json={"code": "GUCUN", "name": "某镇", "kind": "town", "district": "宝山区"},
            ),
        ),
        (
            "/api/units",
            "post",
            api.post(
                "/api/units",
                "reviewer",
                json={"code": "n1", "name": "某镇", "kind": "town", "district": "宝山区"},
            ),
        ),
        (
            "/api/units",
            "post",
            api.post(
                "/api/units",
                "admin",
                json={"code": "a b", "name": "某镇", "kind": "town", "district": "宝山区"},
            ),
        ),
        ("/api/units/{code}", "get", api.get("/api/units/dachang", "submitter")),
        ("/api/units/{code}", "get", api.get("/api/units/nope", "admin")),
        ("/api/units", "get", api.get("/api/units")),
        (f"{base}/submissions/{{version}}", "get", api.get(f"{unit}/submissions/9", "admin")),
        (f"{base}/compare", "get", api.get(f"{unit}/compare?from=1&to=9", "admin")),
        (
            f"{base}/scores",
            "post",
            api.post("/api/units/dachang/schemes/gumeilu-2022/scores", "admin", json={}),
        ),
        ("/api/scores/{score_id}", "get", api.get("/api/scores/99", "admin")),
        ("/api/scores/{score_id}/replay", "post", api.post("/api/scores/99", "admin")),
        (
            "/api/schemes/{scheme_id}/ranking",
            "get",
            api.get("/api/schemes/gumeilu-2022/ranking", "submitter"),
        ),
        ("/api/schemes/{scheme_id}", "get", api.get("/api/schemes/nope", "admin")),
        (
            "/api/schemes/{scheme_id}/evaluate",
            "post",
            api.post("/api/schemes/nope/evaluate", "admin", json={"facts": {}}),
        ),
        (
            "/api/auth/token",
            "post",
            api.post("/api/auth/token", json={"username": "admin", "password": "wrong"}),
        ),
        ("/api/rules/reload", "post", api.post("/api/rules/reload", "reviewer")),
        ("/api/journal", "get", api.get("/api/journal", "editor")),
    ]
    for path, method, served in cases:
        if path.endswith("/replay") and served.status_code == 405:
            served = api.post("/api/scores/99/replay", "admin")
        assert served.status_code >= 400, (path, served.status_code)
        assert_error(served, served.status_code)
        assert str(served.status_code) in _documented(doc, path, method), (
            method,
            path,
            served.status_code,
            sorted(_documented(doc, path, method)),
        )
    codes = {str(c[2].status_code) for c in cases}
    assert {"400", "401", "403", "404", "409", "422", "428"} <= codes


def test_evidence_operations_are_documented_as_served(api):
    """The upload is one multipart body (the file and its form fields), the download a binary
    attachment, and each error status they serve is named for its operation."""
    import io

    from service.evidence import EvidenceStore

    from .. import evidence_samples as samples

    doc = api.get("/api/openapi.json").json
    upload_path = "/api/units/{code}/schemes/{scheme_id}/evidence"
    body = doc["paths"][upload_path]["post"]["requestBody"]["content"]
    schema = resolve(doc, body["multipart/form-data"]["schema"])
    assert schema["properties"]["file"] == {**schema["properties"]["file"], "format": "binary"}
    assert {"file", "fact", "clause"} == set(schema["properties"]) and schema["required"] == [
        "file"
    ]
    download = doc["paths"]["/api/evidence/{evidence_id}"]["get"]["responses"]["200"]
    assert download["content"]["application/octet-stream"]["schema"]["format"] == "binary"

    def send(data, who="submitter", unit="gucun", **form):
        return api.post(
            f"/api/units/{unit}/schemes/gumeilu-2022/evidence",
            who,
            data={"fact": "leader_evaluation_score", **form, "file": (io.BytesIO(data), "a.pdf")},
            content_type="multipart/form-data",
        )

    made = send(samples.pdf())
    listed = api.get("/api/units/gucun/schemes/gumeilu-2022/evidence", "admin")
    out = response_schema(doc, upload_path, "get", "200")
    assert not list(schema_validator(doc, out).iter_errors(listed.json))
    api.app.extensions["evidence"] = EvidenceStore(max_bytes=100)
    cases = [
        (upload_path, "post", send(samples.pdf())),  # 413
        (upload_path, "post", send(samples.exe())),  # 422
        (upload_path, "post", send(samples.pdf(), unit="dachang")),  # 403
        (upload_path, "post", send(samples.pdf(), who=None)),  # 401
        (upload_path, "post", send(samples.pdf(), who="admin", unit="nope")),  # 404
        (
            upload_path,
            "get",
            api.get("/api/units/dachang/schemes/gumeilu-2022/evidence", "submitter"),
        ),
        ("/api/evidence/{evidence_id}", "get", api.get("/api/evidence/99", "admin")),
        ("/api/evidence/{evidence_id}", "get", api.get("/api/evidence/99", "submitter")),
    ]
    for path, method, served in cases:
        assert served.status_code >= 400, (path, served.status_code)
        assert_error(served, served.status_code)
        assert str(served.status_code) in _documented(doc, path, method), (
            method,
            path,
            served.status_code,
        )
    assert {c[2].status_code for c in cases} == {401, 403, 404, 413, 422}
    assert made.status_code == 201
