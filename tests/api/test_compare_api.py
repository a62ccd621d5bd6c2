"""GET /api/rules/compare: two archived versions of a scheme compared, grouped by clause.

Runs on a private copy of the fixture scheme (``api_on_copy``): the test edits a rule file,
reloads, and compares the version before with the version after."""

from __future__ import annotations

from .shapes import assert_error, check_every_response
from .test_rules_api import SCHEME, content_hash, edit

ZEROS = "0" * 64


def test_compare_two_archived_versions(api_on_copy):
    api = api_on_copy
    check_every_response(api)
    folder = api.rules_dir / SCHEME
    before = content_hash(folder)
    edit(folder / "clauses/06-awards.yaml", "each: 1, cap: 3", "each: 1.5, cap: 3")
    assert api.post("/api/rules/reload", "editor").status_code == 200
    after = content_hash(folder)

    got = api.get(f"/api/rules/compare?from={before}&to={after}", "auditor")
    assert got.status_code == 200, got.json
    assert got.json["from"] == {
        "version": before,
        "scheme": SCHEME,
        "title": "测试用细则",
        "year": "2026",
    }
    assert got.json["to"]["version"] == after
    assert got.json["count"] == 1
    assert got.json["groups"] == [
        {
            "clause": "6",
            "heading": "第6条 获奖",
            "differences": [
                {
                    "kind": "rule_each",
                    "clause": "6",
                    "sentence": "第6条每项分值由1分改为1.5分",
                    "before": "1",
                    "after": "1.5",
                }
            ],
        }
    ]
    same = api.get(f"/api/rules/compare?from={after}&to={after}", "editor")
    assert same.status_code == 200 and same.json["count"] == 0 and same.json["groups"] == []


def test_compare_errors(api_on_copy):
    api = api_on_copy
    check_every_response(api)
    served = content_hash(api.rules_dir / SCHEME)
    assert_error(
        api.get(f"/api/rules/compare?from={served}&to={ZEROS}", "auditor"),
        404,
        "unknown_rules_version",
    )
    assert_error(api.get(f"/api/rules/compare?from={served}&to=abc", "auditor"), 422, fields=["to"])
    assert_error(api.get(f"/api/rules/compare?to={served}", "auditor"), 422, fields=["from"])
    assert_error(api.get(f"/api/rules/compare?from={served}&to={served}"), 401)
    assert_error(api.get(f"/api/rules/compare?from={served}&to={served}", "submitter"), 403)
