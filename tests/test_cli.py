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


FACTS = {
    "target": 95,
    "actual": 91.8,
    "coverage": 100,
    "report_done": True,
    "review_points": 2,
    "review_reason": "好",
    "maturity": 100,
    "awards": 0,
    "accidents": 1,
    "major_incident": False,
}


def _facts_file(tmp_path, data):
    path = tmp_path / "unit.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return str(path)


def test_score_one_clause_prints_only_that_clause(tmp_path):
    facts = _facts_file(tmp_path, {"unit": "甲街道", "facts": FACTS})  # bureau_score missing
    proc = run("score", "minimal", facts, "--rules", str(MINIMAL), "--oracle", "--clause", "1")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == "▶ 1 合格率：0.00（满分5.00，已计分）"
    assert "扣5分" in lines[2] and lines[-1].startswith("  = 起始5分")
    # nothing of the other clauses, the totals or the grade
    assert "工作" not in proc.stdout and "总分" not in proc.stdout and "等级" not in proc.stdout
    assert "缺少事实" not in proc.stdout  # clause 3's missing fact is not this clause's business
    data = json.loads(
        run(
            "score",
            "minimal",
            facts,
            "--rules",
            str(MINIMAL),
            "--oracle",
            "--clause",
            "1",
            "--json",
        ).stdout
    )
    assert [r["clause"]["id"] for r in data["results"]] == ["1"]
    assert data["results"][0]["clause"]["points"] == "0"
    unknown = run("score", "minimal", facts, "--rules", str(MINIMAL), "--oracle", "--clause", "9")
    assert (
        unknown.returncode != 0
        and "没有编号为“9”的条款（有：1、2、3、4、5、6、7）" in unknown.stderr
    )


def test_score_names_missing_facts_by_label(tmp_path):
    facts = _facts_file(tmp_path, {"unit": "甲街道", "facts": FACTS})  # bureau_score missing
    proc = run("score", "minimal", facts, "--rules", str(MINIMAL), "--oracle")
    assert proc.returncode == 0, proc.stderr
    assert "注意：缺少事实 区局考核分数，相关条款暂计0分" in proc.stdout
    assert "! 缺少事实：区局考核分数" in proc.stdout
    assert "bureau_score" not in proc.stdout
    one = run("score", "minimal", facts, "--rules", str(MINIMAL), "--oracle", "--clause", "3")
    assert "! 缺少事实：区局考核分数" in one.stdout and "bureau_score" not in one.stdout
    # the JSON keeps the names: they are what the facts file is written in
    data = json.loads(run("score", "minimal", facts, "--rules", str(MINIMAL), "--json").stdout)
    assert data["results"][0]["missing"] == ["bureau_score"]


def test_score_suggests_the_fact_name_meant(tmp_path):
    facts = _facts_file(tmp_path, {"facts": {**FACTS, "bureau_scor": 90}})
    proc = run("score", "minimal", facts, "--rules", str(MINIMAL), "--oracle")
    assert proc.returncode == 2
    assert "事实有误 bureau_scor: 不是本细则声明的事实。是否想写“bureau_score”？" in proc.stderr
    by_label = _facts_file(tmp_path, {"facts": {**FACTS, "区局考核分数": 90}})
    proc = run("score", "minimal", by_label, "--rules", str(MINIMAL), "--oracle")
    assert (
        "事实有误 区局考核分数: 不是本细则声明的事实。“区局考核分数”是事实“bureau_score”的说明，"
        "请写事实名“bureau_score”" in proc.stderr
    )


def test_score_units_form_takes_the_facts_directly(tmp_path):
    facts = _facts_file(tmp_path, {"units": {"甲": {"facts": FACTS}}})
    proc = run("score", "minimal", facts, "--rules", str(MINIMAL), "--oracle")
    assert proc.returncode != 0
    assert (
        "units 下的单位“甲”又套了一层 facts：units 的写法直接列出事实，"
        "如 units: {甲: {事实名: 值, …}}，不写 facts" in proc.stderr
    )
    good = _facts_file(tmp_path, {"units": {"甲": FACTS, "乙": FACTS}})
    proc = run("score", "minimal", good, "--rules", str(MINIMAL), "--oracle", "--clause", "1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("▶ 1 合格率") == 2 and "被考核单位：乙" in proc.stdout


def test_diff_prints_the_changes_grouped_by_clause(tmp_path):
    import shutil

    new = tmp_path / "minimal-2027"
    shutil.copytree(MINIMAL, new)
    path = new / "clauses" / "06-awards.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("each: 1, cap: 3", "each: 1, cap: 2").replace(
        "points: 3, fired", "points: 2, fired"
    )
    path.write_text(text, encoding="utf-8")
    proc = run("diff", str(MINIMAL), str(new))
    assert proc.returncode == 0, proc.stderr
    assert "\n第6条 获奖\n  · 第6条上限由3分改为2分\n\n共 1 处改动。\n" in proc.stdout
    same = run("diff", str(MINIMAL), str(MINIMAL))
    assert same.returncode == 0, same.stderr
    assert same.stdout.endswith("两个版本没有差别。\n")


def test_impact_prints_each_unit_before_and_after(tmp_path):
    """``scoring impact A B FACTS``: a band edge moved between two copies of the fixture scheme;
    each unit's total, rank and grade before → after, the clause that changed with both
    explanations, and the fact the new version reads that a unit lacks, without a database."""
    import shutil

    old, new = tmp_path / "a", tmp_path / "b"
    shutil.copytree(MINIMAL, old)
    shutil.copytree(MINIMAL, new)
    clause = new / "clauses/01-rate.yaml"
    clause.write_text(
        clause.read_text(encoding="utf-8")
        .replace('"(1, 3]", points: -3', '"(1, 4]", points: -3')
        .replace('"(3, inf)"', '"(4, inf)"'),
        encoding="utf-8",
    )
    full = {**FACTS, "accidents": 0, "bureau_score": 100}
    lacking = {k: v for k, v in full.items() if k != "bureau_score"}
    facts = _facts_file(
        tmp_path,
        {"units": {"甲街道": {**full, "actual": 91.5}, "乙街道": {**lacking, "actual": 96}}},
    )
    proc = run("impact", str(old), str(new), facts, "--oracle")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[2:] == [
        "甲街道：总分 15 → 17（+2），名次 2 → 1，等级 合格 → 合格",
        "  · 第1条 合格率：0 → 2",
        "      原：起始5分；低于目标值的百分点为3.5，落在(3, inf)档（高于3），扣5分。本项得0分（满分5分）",
        "      新：起始5分；低于目标值的百分点为3.5，落在(1, 4]档（高于1且不高于4），扣3分。本项得2分（满分5分）",
        "",
        "乙街道：总分 16 → 16（+0），名次 1 → 2，等级 合格 → 合格",
        "  缺少新版本读取的事实（按缺失处理，不按0计）：区局考核分数（bureau_score）",
        "",
        "共 2 个单位，2 个有变化。",
        "2026版读取的事实“区局考核分数”在2026年的已评审事实中没有：1个单位（按缺失处理，不按0计）。",
    ]
    data = json.loads(run("impact", str(old), str(new), facts, "--oracle", "--json").stdout)
    assert [(u["unit"], u["total_before"], u["total_after"]) for u in data["units"]] == [
        ("甲街道", "15", "17"),
        ("乙街道", "16", "16"),
    ]
    assert data["units"][1]["missing"] == [{"fact": "bureau_score", "label": "区局考核分数"}]
