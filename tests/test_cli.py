"""The command line, run as a user runs it."""

import json
import subprocess
import sys

from .conftest import MINIMAL, ROOT


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def test_check_lists_every_scheme():
    proc = run("check")
    assert proc.returncode == 0, proc.stderr
    assert "套细则检查通过" in proc.stdout


def test_check_reports_file_line_column(tmp_path):
    bad = tmp_path / "rules" / "minimal"
    import shutil

    shutil.copytree(MINIMAL, bad)
    path = bad / "clauses" / "07-accidents.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("points: 3", "pionts: 3"), encoding="utf-8"
    )
    proc = run("check", "--rules", str(tmp_path / "rules"))
    assert proc.returncode == 1
    assert (
        "minimal/clauses/07-accidents.yaml:4:1: 条款文件中没有键“pionts”。是否想写“points”？"
        in proc.stderr
    )


def test_test_command_runs_the_cases():
    proc = run("test", "--rules", str(MINIMAL), "--oracle")
    assert proc.returncode == 0 and proc.stdout.strip().endswith("15 passed, 0 failed")


def test_score_prints_the_explained_score(tmp_path):
    facts = tmp_path / "unit.json"
    facts.write_text(
        json.dumps(
            {
                "unit": "甲街道",
                "facts": {
                    "target": 95,
                    "actual": 91.8,
                    "coverage": 100,
                    "report_done": True,
                    "bureau_score": 100,
                    "review_points": 2,
                    "review_reason": "好",
                    "maturity": 100,
                    "awards": 0,
                    "accidents": 1,
                    "major_incident": False,
                },
            }
        ),
        encoding="utf-8",
    )
    proc = run("score", "minimal", str(facts), "--rules", str(MINIMAL))
    assert proc.returncode == 0, proc.stderr
    assert "低于目标值的百分点为3.2，落在(3, inf)档（高于3），扣5分" in proc.stdout
    assert "总分：14.00分" in proc.stdout and "等级：合格" in proc.stdout
    data = json.loads(run("score", "minimal", str(facts), "--rules", str(MINIMAL), "--json").stdout)
    assert data["results"][0]["total"] == "14" and len(data["version"]) == 64


def test_score_rejects_bad_facts_naming_the_field(tmp_path):
    facts = tmp_path / "unit.json"
    facts.write_text(json.dumps({"facts": {"actual": "high"}}), encoding="utf-8")
    proc = run("score", "minimal", str(facts), "--rules", str(MINIMAL), "--oracle")
    assert proc.returncode == 2
    assert "事实有误 actual: 实际合格率应为0到100之间的数值，不能是文字" in proc.stderr
