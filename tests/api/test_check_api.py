"""检查 means check and test in the API, the admin rules page and at a start.

A rules directory holding a copy of the shipped 2010 振兴 scheme; the copy is then edited so that
one of its cases expects 9 points where the rules give 8 (the files still load): validate lists
the case, reload refuses it (the served version does not change), the admin page shows it beside
its file and line, a first start refuses it and a restart keeps serving the rule set in force.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from service import build
from service.app import create_app
from service.casebook import FailingCases
from service.config import Settings

from ..admin.conftest import csrf_token, sign_in
from ..test_check_runs_tests import (
    CLAUSE,
    DIFFERENCE,
    FAILING_AT,
    FAILING_CASE,
    SCHEME,
    failing_rules,
)
from .conftest import DATABASES, make_api
from .shapes import assert_error

SCHEME_ID = "zhenxing-2010"
LINE = 36


def good_rules(root: Path) -> Path:
    rules = root / "rules"
    shutil.copytree(SCHEME, rules / "jiangsu-zhenxing")
    return rules


def break_a_case(rules: Path, scratch: Path) -> None:
    """The copy at ``rules``, edited in place as ``failing_rules`` edits a fresh copy."""
    broken = failing_rules(scratch)
    shutil.copyfile(broken / CLAUSE, rules / CLAUSE)


@pytest.fixture(params=DATABASES)
def api(request, tmp_path, engine):
    made = make_api(tmp_path, request.param, engine, good_rules(tmp_path))
    made.rules_dir = tmp_path / "rules"
    yield made
    made.ctx.db.engine.dispose()


def served(api) -> str:
    return api.get(f"/api/schemes/{SCHEME_ID}", "auditor").json["version"]


def journal(api, action: str) -> list:
    return [e for e in api.get("/api/journal", "admin").json if e["action"] == action]


def folder_files(folder: Path) -> dict:
    return {
        p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(folder.rglob("*.yaml"))
    }


def test_validate_lists_the_failing_case(api, tmp_path):
    folder = failing_rules(tmp_path / "scratch") / "jiangsu-zhenxing" / "2010"
    checked = api.post("/api/rules/validate", "editor", json={"files": folder_files(folder)})
    assert checked.status_code == 200, checked.json
    body = checked.json
    assert body["valid"] is False and body["errors"] == [] and body["cases"] == 70
    [case] = body["failing"]
    # the files of a candidate folder are named within it, as in its errors
    assert (case["scheme"], case["file"], case["line"], case["case"]) == (
        SCHEME_ID,
        "clauses/01-organisation.yaml",
        LINE,
        FAILING_CASE,
    )
    assert case["problems"][0].startswith(DIFFERENCE)
    assert case["text"].startswith(f"✗ clauses/01-organisation.yaml:{LINE}：{FAILING_CASE}\n")
    # the same folder with its case as shipped passes, every case run
    good = api.post(
        "/api/rules/validate",
        "editor",
        json={"files": folder_files(SCHEME / "2010")},
    )
    assert good.json["valid"] is True and good.json["failing"] == [] and good.json["cases"] == 70


def test_reload_refuses_failing_cases_and_the_last_good_set_keeps_serving(api, tmp_path):
    before = served(api)
    break_a_case(api.rules_dir, tmp_path / "scratch")
    refused = api.post("/api/rules/reload", "editor")
    error = assert_error(refused, 422, "failing_tests", [FAILING_AT])
    assert list(error["fields"]) == [FAILING_AT]
    [words] = error["fields"][FAILING_AT]
    assert words.startswith(f"{FAILING_CASE}：{DIFFERENCE}")
    assert "1 个测试用例未通过" in error["message"]
    assert served(api) == before
    assert api.get("/api/health").json["rule_set"] == 1  # nothing published
    [entry] = journal(api, "rules.reload")
    assert entry["outcome"] == "failed" and entry["detail"] == {
        "failing": [f"{FAILING_AT} {FAILING_CASE}"]
    }

    # the case fixed (as the rules say: 8 points): the reload goes through, and remembers it
    shipped = (SCHEME.parent / CLAUSE).read_text(encoding="utf-8")
    (api.rules_dir / CLAUSE).write_text(shipped + "# 修订\n", encoding="utf-8")
    reloaded = api.post("/api/rules/reload", "editor")
    assert reloaded.status_code == 200, reloaded.json
    assert served(api) != before
    tested = {e["target"] for e in journal(api, "rules.tested")}
    assert tested == {f"scheme:{SCHEME_ID}/version:{v}" for v in (before, served(api))}


def test_the_rules_page_shows_failing_cases_and_refuses_to_reload(api, tmp_path):
    before = served(api)
    break_a_case(api.rules_dir, tmp_path / "scratch")
    client = api.app.test_client()
    sign_in(client, "editor")
    checked = client.get("/admin/rules/check")
    assert checked.status_code == 200
    assert "70 个测试用例中有 1 个未通过" in checked.text
    # beside its file and line: the directory's files are named from the rules root
    assert (
        f'文件 <span class="mono">{CLAUSE}</span> 第{LINE}行 测试用例“{FAILING_CASE}”'
        in checked.text
    )
    assert DIFFERENCE in checked.text
    refused = client.post("/admin/rules/reload", data={"csrf_token": csrf_token(checked.text)})
    assert refused.status_code == 422
    assert "没有加载" in refused.text and "1 个测试用例未通过" in refused.text
    assert f'<span class="mono">{FAILING_AT}</span>：{FAILING_CASE}：{DIFFERENCE}' in refused.text
    assert served(api) == before


def _settings(tmp_path: Path, url: str, rules: Path) -> Settings:
    return Settings(
        rules_dir=rules,
        engine_workers=1,
        engine_deadline=10,
        database_url=url,
        secret_key="test",
        instance_dir=tmp_path / "instance",
    )


def test_a_first_start_refuses_failing_cases(tmp_path, engine):
    from ..apps import migrate

    url = f"sqlite:///{tmp_path / 'scoring.db'}"
    migrate(url)
    rules = failing_rules(tmp_path / "scratch")
    with pytest.raises(FailingCases) as refused:
        create_app(_settings(tmp_path, url, rules), engine=engine)
    [case] = refused.value.failing
    assert (case.at, case.name) == (FAILING_AT, FAILING_CASE)
    assert f"✗ {FAILING_AT}：{FAILING_CASE}\n    {DIFFERENCE}" in str(refused.value)


def test_a_restart_keeps_serving_and_runs_only_new_versions_cases(api, tmp_path, engine, caplog):
    before = served(api)
    [first] = journal(api, "rules.tested")  # the first start ran the cases, and remembers it
    assert first["target"] == f"scheme:{SCHEME_ID}/version:{before}"
    assert first["actor"] == "（启动）" and first["detail"] == {
        "cases": 70,
        "program": build.PROGRAM,  # under which program and engine they passed
        "engine": api.ctx.engine.name,
    }
    settings = _settings(tmp_path / "again", api.ctx.db.url, api.rules_dir)

    # a restart on the same files: their cases passed, so they are not run again
    again = create_app(settings, engine=engine)
    again.extensions["scoring"].db.engine.dispose()
    assert len(journal(api, "rules.tested")) == 1

    # a restart on files whose cases fail: the rule set in force keeps serving
    break_a_case(api.rules_dir, tmp_path / "scratch")
    restarted = create_app(settings, engine=engine)
    try:
        registry = restarted.extensions["scoring"].registry
        assert registry.get(SCHEME_ID).version == before and registry.generation == 1
        # and says why, with the failing case where `scoring check` would list it
        assert "规则目录的测试用例未通过，未加载；继续使用当前发布的规则" in caplog.text
        assert f"✗ {FAILING_AT}：{FAILING_CASE}" in caplog.text
    finally:
        restarted.extensions["scoring"].db.engine.dispose()
    assert len(journal(api, "rules.tested")) == 1
