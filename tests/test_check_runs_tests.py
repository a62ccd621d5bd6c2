"""检查 means check and test: a rules directory whose own test cases fail does not pass the check.

A copy of a shipped scheme with one case expecting the wrong points (the check of a 2023 draft
failing 14 of its cases used to pass: only the loader ran).
"""

import shutil
import subprocess
import sys
from pathlib import Path

from service.casebook import check_rules, run_cases
from service.rulefiles.loader import load_all

from .conftest import ROOT

SCHEME = ROOT / "rules" / "jiangsu-zhenxing"
CLAUSE = "jiangsu-zhenxing/2010/clauses/01-organisation.yaml"
#: where the broken case starts ("- name: 只开了1次会"), and what the check says of it
FAILING_AT = f"{CLAUSE}:36"
FAILING_CASE = "1 只开了1次会"
DIFFERENCE = "期望9分，实得8分"


def failing_rules(root: Path) -> Path:
    """A rules directory holding the shipped 2010 振兴 scheme with one case expecting 9 points
    where the rules give 8 (the file still loads: 9 is within the clause's range)."""
    rules = root / "rules"
    shutil.copytree(SCHEME, rules / "jiangsu-zhenxing")
    path = rules / CLAUSE
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    assert lines[35].strip() == "- name: 只开了1次会" and lines[37].strip() == "points: 8"
    lines[37] = lines[37].replace("points: 8", "points: 9")
    path.write_text("".join(lines), encoding="utf-8")
    return rules


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def test_check_runs_the_cases_and_fails_on_one(tmp_path):
    rules = failing_rules(tmp_path)
    proc = run("check", "--rules", str(rules))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # listed as `scoring test` lists it: where the case is, which case, what differed
    assert f"✗ {FAILING_AT}：{FAILING_CASE}\n    {DIFFERENCE}" in proc.stderr
    assert "69 passed, 1 failed" in proc.stdout
    assert "有 1 个测试用例未通过" in proc.stderr
    assert "✗ zhenxing-2010" in proc.stdout
    assert "检查通过" not in proc.stdout


def test_check_and_test_list_a_failing_case_in_the_same_words(tmp_path):
    rules = failing_rules(tmp_path)
    checked, tested = run("check", "--rules", str(rules)), run("test", "--rules", str(rules))
    assert tested.returncode == 1
    listed = [line for line in tested.stderr.splitlines() if line.startswith(("✗", "    "))]
    assert len(listed) == 2 and listed[0] == f"✗ {FAILING_AT}：{FAILING_CASE}"
    assert listed[1].startswith(f"    {DIFFERENCE}（条件“dedicated_staff”成立")
    assert "\n".join(listed) in checked.stderr


def test_check_without_tests_only_loads(tmp_path):
    proc = run("check", "--no-tests", "--rules", str(failing_rules(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    assert "未运行测试用例" in proc.stdout


def test_check_of_the_shipped_rules_runs_every_case():
    proc = run("check")
    assert proc.returncode == 0, proc.stderr
    assert " 0 failed" in proc.stdout and "测试用例全部通过" in proc.stdout


def test_check_rules_reports_where_each_failing_case_is(tmp_path, engine):
    rules = failing_rules(tmp_path)
    checked = check_rules(lambda: load_all(rules), engine)
    assert not checked.ok and not checked.errors
    [case] = checked.failing
    assert (case.at, case.name, case.problems[0][: len(DIFFERENCE)]) == (
        FAILING_AT,
        FAILING_CASE,
        DIFFERENCE,
    )
    assert len(checked.results) == 70


def test_a_version_known_to_pass_is_not_run_again(tmp_path, engine):
    rules = failing_rules(tmp_path)
    version = next(iter(load_all(rules).values())).version
    checked = check_rules(lambda: load_all(rules), engine, passed={version})
    assert checked.ok and checked.results == [] and checked.tested == ()


def test_loader_errors_come_before_any_case(tmp_path, engine):
    rules = failing_rules(tmp_path)
    path = rules / CLAUSE
    path.write_text(path.read_text(encoding="utf-8").replace("points: 10\n", "pionts: 10\n", 1))
    checked = check_rules(lambda: load_all(rules), engine)
    assert checked.errors and checked.results == [] and not checked.ok
    assert checked.errors[0].file == CLAUSE


def test_every_case_of_the_shipped_schemes_knows_its_line(shipped, oracle):
    for scheme in shipped.values():
        for result in run_cases(scheme, oracle):
            lines = (ROOT / "rules" / result.where).read_text(encoding="utf-8").splitlines()
            bare = (
                result.name.split(" ", 1)[1] if result.where.find("/clauses/") > 0 else result.name
            )
            assert result.line > 0 and bare in lines[result.line - 1], (result.at, result.name)
