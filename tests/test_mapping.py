"""The fact mapping of an impact preview (service/mapping.py), without a database: 古美路 2022 and a
2023 copy in which the fact ``commendations`` is renamed ``commendation_count`` and a clause is
added (with ``rulefiles.edit.add_clause``) that reads a new fact ``quality_awards_2023``.

Each validation error with its exact message and field; ``apply_mapping``; and the impact of the
change over several units with the renamed fact mapped and the new fact set by value (totals
exact), and without a mapping (the facts listed as missing, never taken as zero)."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from service.engine.oracle import OracleMatcher
from service.exceptions import Invalid
from service.impact import compare_units, rank_both, render_text, workbook
from service.mapping import apply_mapping, check_mapping, dropped, lacking, parse_value
from service.rulefiles import edit
from service.rulefiles.loader import load_files

from .conftest import RULES

OLD_NAME, NEW_NAME, ADDED = "commendations", "commendation_count", "quality_awards_2023"
REASON = "2023年新增：各单位获奖情况尚未收集，暂按1项计"

NEW_CLAUSE = {
    "id": "20",
    "title": "2023年质量奖项",
    "category": "加分项",
    "points": 3,
    "source": {"document": "2023", "text": "2023年获质量奖项的，每项加1分（封顶3分）。"},
    "facts": [
        {"name": ADDED, "type": "integer", "label": "2023年获质量奖项数", "min": 0, "max": 100}
    ],
    "rules": [{"id": "r1", "kind": "per_unit", "count": ADDED, "each": 1}],
    "tests": [{"name": "2项", "facts": {ADDED: 2}, "points": 2, "fired": ["r1"]}],
}


def _texts() -> dict:
    folder = RULES / "minhang-gumeilu" / "2022"
    return {
        p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(folder.rglob("*.yaml"))
    }


def _two_versions():
    texts = _texts()
    old = load_files(texts, "minhang-gumeilu/2022")
    renamed = {k: re.sub(rf"\b{OLD_NAME}\b", NEW_NAME, v) for k, v in texts.items()}
    renamed = edit.set_scheme_field(renamed, "year", "2023")
    new = load_files(edit.add_clause(renamed, NEW_CLAUSE, "awards-2023"), "minhang-gumeilu/2023")
    return old, new


OLD, NEW = _two_versions()


def _invalid(mapping) -> tuple[str, dict]:
    with pytest.raises(Invalid) as caught:
        check_mapping(OLD, NEW, mapping)
    assert caught.value.code == "invalid_mapping"
    return caught.value.message, caught.value.fields


def test_the_facts_to_map_and_those_dropped():
    assert [f.name for f in lacking(OLD, NEW)] == [NEW_NAME, ADDED]
    assert [f.name for f in dropped(OLD, NEW)] == [OLD_NAME]
    assert dropped(OLD, NEW, {NEW_NAME: {"from": OLD_NAME}}) == []


def test_a_good_mapping_is_normalized_in_the_new_versions_order():
    got = check_mapping(
        OLD,
        NEW,
        {ADDED: {"value": Decimal(1), "reason": f"  {REASON} "}, NEW_NAME: {"from": OLD_NAME}},
    )
    assert got == {NEW_NAME: {"from": OLD_NAME}, ADDED: {"value": Decimal(1), "reason": REASON}}
    assert list(got) == [NEW_NAME, ADDED]
    assert check_mapping(OLD, NEW, None) == {} and check_mapping(OLD, NEW, {}) == {}


LABEL = "“2023年获质量奖项数”（quality_awards_2023）"
COUNT = "“受区质量（安全）工作领导小组及其办公室表彰次数”"


@pytest.mark.parametrize(
    ("entry_of", "message"),
    [
        ({"nope": {"from": OLD_NAME}}, ("nope", "新版本没有事实“nope”")),
        (
            {"quality_meetings": {"from": "quality_meetings"}},
            (
                "quality_meetings",
                "原版本也有事实“全年召开专题质量强镇（区）工作会议次数”（quality_meetings），不需要对应",
            ),
        ),
        (
            {ADDED: "quality_meetings"},
            (
                ADDED,
                '应为 {"from": 原事实名}（改名而来）或 {"value": 值, "reason": 理由}（固定值）',
            ),
        ),
        (
            {ADDED: {}},
            (
                ADDED,
                '应为 {"from": 原事实名}（改名而来）或 {"value": 值, "reason": 理由}（固定值）',
            ),
        ),
        (
            {ADDED: {"from": OLD_NAME, "value": 1, "reason": "x"}},
            (ADDED, "只能二选一：来自原事实（from），或固定值（value）和理由（reason）"),
        ),
        (
            {ADDED: {"value": 1, "reason": "x", "why": "y"}},
            (
                ADDED,
                '不认识的键“why”：应为 {"from": 原事实名}（改名而来）或 {"value": 值, "reason": 理由}（固定值）',
            ),
        ),
        ({ADDED: {"from": ""}}, (ADDED, "请选择它来自原版本的哪一个事实")),
        ({ADDED: {"from": "awards"}}, (ADDED, "原版本没有事实“awards”")),
        (
            {ADDED: {"from": "special_funds"}},
            (
                ADDED,
                "类型不相容：原事实“已落实牵头部门当年专项经费（含政府质量奖培育及质量工作宣传）”"
                f"（special_funds）是是/否，新事实{LABEL}是整数",
            ),
        ),
        (
            {ADDED: {"from": "excellence_model_score"}},
            (
                ADDED,
                "类型不相容：原事实“推广卓越绩效管理模式评审得分”（excellence_model_score）是数值，"
                f"新事实{LABEL}是整数",
            ),
        ),
        (
            {ADDED: {"value": None, "reason": REASON}},
            (ADDED, "请填写固定值（不知道的值不要对应：按缺失处理）"),
        ),
        (
            {ADDED: {"value": Decimal(101), "reason": REASON}},
            (ADDED, "固定值101超出范围，应为0到100之间的整数"),
        ),
        (
            {ADDED: {"value": Decimal("1.5"), "reason": REASON}},
            (ADDED, "固定值应为0到100之间的整数，不能有小数"),
        ),
        (
            {ADDED: {"value": True, "reason": REASON}},
            (ADDED, "固定值应为0到100之间的整数，不能是是/否"),
        ),
        (
            {ADDED: {"value": "1", "reason": REASON}},
            (ADDED, "固定值应为0到100之间的整数，不能是文字"),
        ),
        (
            {ADDED: {"value": 1}},
            (ADDED, "请写明理由：固定值用于每一个单位，理由写进结果和工作簿"),
        ),
        (
            {ADDED: {"value": 1, "reason": "   "}},
            (ADDED, "请写明理由：固定值用于每一个单位，理由写进结果和工作簿"),
        ),
        ({ADDED: {"value": 1, "reason": "长" * 501}}, (ADDED, "理由不能超过500字")),
        (
            {ADDED: {"value": 1, "reason": "a\x00b"}},
            (ADDED, "理由第2个字符是无法保存的字符 U+0000，请删去后重新填写"),
        ),
    ],
)
def test_each_error_names_its_fact(entry_of, message):
    name, words = message
    said, fields = _invalid(entry_of)
    assert fields == {f"mapping.{name}": [words]}
    assert said == f"事实对应有误（{name}）：{words}"


def test_every_wrong_entry_is_named_at_once_and_a_mapping_must_be_a_mapping():
    _said, fields = _invalid({NEW_NAME: {"from": "awards"}, ADDED: {"value": 1}})
    assert set(fields) == {f"mapping.{NEW_NAME}", f"mapping.{ADDED}"}
    said, fields = _invalid(["x"])
    assert said == "事实对应应为“新事实名: 对应方式”的映射"
    assert fields == {"mapping": ["应为“新事实名: 对应方式”的映射"]}


def test_a_rename_may_widen_the_type():
    """A whole number is a number: an integer fact may feed a number fact (not the reverse)."""
    texts = _texts()
    widened = {k: re.sub(rf"\b{OLD_NAME}\b", NEW_NAME, v) for k, v in texts.items()}
    widened = edit.set_fact_field(widened, "18", NEW_NAME, "type", "number")
    new = load_files(widened, "minhang-gumeilu/2023")
    assert check_mapping(OLD, new, {NEW_NAME: {"from": OLD_NAME}}) == {NEW_NAME: {"from": OLD_NAME}}


def test_apply_adds_the_mapped_facts_and_says_how():
    mapping = check_mapping(
        OLD, NEW, {NEW_NAME: {"from": OLD_NAME}, ADDED: {"value": Decimal(1), "reason": REASON}}
    )
    facts, notes = apply_mapping({OLD_NAME: Decimal(2), "quality_meetings": Decimal(3)}, mapping)
    assert facts == {
        OLD_NAME: Decimal(2),
        "quality_meetings": Decimal(3),
        NEW_NAME: Decimal(2),
        ADDED: Decimal(1),
    }
    assert notes == [
        {"fact": NEW_NAME, "how": "renamed", "from": OLD_NAME, "value": Decimal(2)},
        {"fact": ADDED, "how": "set", "value": Decimal(1), "reason": REASON},
    ]
    # a unit without the old fact: the new one stays missing (not zero), and the note says so
    facts, notes = apply_mapping({"quality_meetings": Decimal(3)}, mapping)
    assert NEW_NAME not in facts
    assert notes[0] == {"fact": NEW_NAME, "how": "renamed", "from": OLD_NAME, "value": None}


def test_parse_value_reads_what_a_form_or_the_command_line_types():
    spec = NEW.facts[ADDED]
    assert parse_value(spec, " 2 ") == Decimal(2)
    with pytest.raises(ValueError, match="^应为0到100之间的整数$"):
        parse_value(spec, "两项")
    flag = NEW.facts["special_funds"]
    assert parse_value(flag, "是") is True and parse_value(flag, "false") is False
    with pytest.raises(ValueError, match=r"^应为是（true）或否（false）$"):
        parse_value(flag, "也许")


def _units() -> dict:
    """Three units: the scheme's own full-marks case with 0, 1 and 3 commendations (2 a cap)."""
    full = dict(OLD.tests[0].facts)
    return {
        "甲街道": {**full, OLD_NAME: Decimal(3)},
        "乙街道": {**full, OLD_NAME: Decimal(1)},
        "丙街道": {k: v for k, v in full.items() if k != OLD_NAME},
    }


def test_the_impact_with_a_renamed_fact_and_a_new_fact_set_by_value():
    mapping = check_mapping(
        OLD, NEW, {NEW_NAME: {"from": OLD_NAME}, ADDED: {"value": Decimal(1), "reason": REASON}}
    )
    rows = compare_units(OLD, NEW, _units(), OracleMatcher(), "oracle", mapping)
    result = rank_both(OLD, NEW, rows, mapping)
    by_unit = {u["unit"]: u for u in result["units"]}
    totals = {u: (r["total_before"], r["total_after"]) for u, r in by_unit.items()}
    # the renamed fact keeps each unit's commendation points (3 capped at 2, 1, none); the new
    # clause adds its fixed 1 to every unit
    assert totals == {
        "甲街道": ("102.0", "103.0"),
        "乙街道": ("101.0", "102.0"),
        "丙街道": ("100.0", "101.0"),
    }
    assert [(u["unit"], u["rank_before"], u["rank_after"]) for u in result["units"]] == [
        ("甲街道", 1, 1),
        ("乙街道", 2, 2),
        ("丙街道", 3, 3),
    ]
    first = by_unit["甲街道"]
    assert [(c["clause"], c["before"], c["after"]) for c in first["clauses"]] == [("20", None, "1")]
    assert first["clauses"][0]["trace_before"] == ""
    assert "✓ [r1]" in first["clauses"][0]["trace_after"]
    assert first["mapped"] == [
        {
            "fact": NEW_NAME,
            "label": "受区质量（安全）工作领导小组及其办公室表彰次数",
            "how": "renamed",
            "value": "3",
            "from": OLD_NAME,
            "from_label": "受区质量（安全）工作领导小组及其办公室表彰次数",
            "text": f"取自原事实{COUNT}：3",
        },
        {
            "fact": ADDED,
            "label": "2023年获质量奖项数",
            "how": "set",
            "value": "1",
            "reason": REASON,
            "text": f"固定值 1（理由：{REASON}）",
        },
    ]
    assert first["missing"] == [] and first["dropped"] == []
    third = by_unit["丙街道"]
    assert third["mapped"][0]["text"] == f"由原事实{COUNT}而来：该单位没有这一事实，按缺失处理"
    assert third["missing"] == [{"fact": NEW_NAME, "label": NEW.facts[NEW_NAME].label}]
    assert result["mapping"] == [
        {
            "fact": NEW_NAME,
            "label": NEW.facts[NEW_NAME].label,
            "how": "renamed",
            "from": OLD_NAME,
            "value": None,
            "reason": None,
            "text": f"新事实“{NEW.facts[NEW_NAME].label}”（{NEW_NAME}）取原事实"
            f"“{OLD.facts[OLD_NAME].label}”（{OLD_NAME}）的值",
        },
        {
            "fact": ADDED,
            "label": "2023年获质量奖项数",
            "how": "set",
            "from": None,
            "value": "1",
            "reason": REASON,
            "text": f"新事实{LABEL}每个单位都按固定值 1（理由：{REASON}）",
        },
    ]
    assert result["facts"]["missing"] == [
        {
            "fact": NEW_NAME,
            "label": NEW.facts[NEW_NAME].label,
            "units": 1,
            "sentence": f"2023版读取的事实“{NEW.facts[NEW_NAME].label}”在2022年的已评审事实中没有：1个单位",
        }
    ]
    text = render_text(result)
    assert f"事实对应：新事实{LABEL}每个单位都按固定值 1（理由：{REASON}）" in text
    assert f"  对应：{NEW.facts[NEW_NAME].label}（{NEW_NAME}）取自原事实{COUNT}：3" in text
    assert f"  对应：2023年获质量奖项数（{ADDED}）" not in text  # said once, not per unit
    from io import BytesIO

    from openpyxl import load_workbook

    book = load_workbook(BytesIO(workbook(result)))
    sheet = [[c.value for c in row] for row in book["事实对应"].iter_rows()]
    assert sheet[:3] == [
        ["事实", "说明", "对应方式", "原事实", "固定值", "理由"],
        [NEW_NAME, NEW.facts[NEW_NAME].label, "改名而来", OLD_NAME, None, None],
        [ADDED, "2023年获质量奖项数", "固定值", None, "1", REASON],
    ]
    units = [[c.value for c in row] for row in book["单位"].iter_rows()]
    first_row = next(r for r in units if r[1] == "甲街道")
    assert first_row[10] == (
        f"受区质量（安全）工作领导小组及其办公室表彰次数：取自原事实{COUNT}：3；"
        f"2023年获质量奖项数：固定值 1（理由：{REASON}）"
    )


def test_without_a_mapping_the_new_facts_are_missing_never_zero():
    rows = compare_units(OLD, NEW, _units(), OracleMatcher(), "oracle")
    result = rank_both(OLD, NEW, rows)
    by_unit = {u["unit"]: u for u in result["units"]}
    first = by_unit["甲街道"]
    # the commendations clause now reads a fact nobody has: incomplete, its 2 points not given
    assert (first["total_before"], first["total_after"]) == ("102.0", "100.0")
    assert [m["fact"] for m in first["missing"]] == [NEW_NAME, ADDED]
    changed = {c["clause"]: c for c in first["clauses"]}
    assert changed["18"]["after"] == "0" and "缺少事实" in changed["18"]["why_after"]
    assert "缺失不等于0" in changed["20"]["why_after"]
    assert first["dropped"] == [{"fact": OLD_NAME, "label": OLD.facts[OLD_NAME].label}]
    assert by_unit["丙街道"]["dropped"] == []  # it had no commendations to drop
    label = NEW.facts[NEW_NAME].label
    assert [m["sentence"] for m in result["facts"]["missing"]] == [
        f"2023版读取的事实“{label}”在2022年的已评审事实中没有：3个单位",
        "2023版读取的事实“2023年获质量奖项数”在2022年的已评审事实中没有：3个单位",
    ]
    assert result["facts"]["dropped"] == [
        {
            "fact": OLD_NAME,
            "label": OLD.facts[OLD_NAME].label,
            "units": 2,
            "sentence": f"2022年的已评审事实中的“{OLD.facts[OLD_NAME].label}”2023版不再读取："
            "2个单位有这一事实",
        }
    ]
    assert result["mapping"] == []


def test_a_renamed_value_the_new_fact_refuses_is_missing_and_says_why():
    texts = _texts()
    narrowed = {k: re.sub(rf"\b{OLD_NAME}\b", NEW_NAME, v) for k, v in texts.items()}
    # the cases that give 3 give 2 (the clause's cap: the same points), so the range may narrow
    narrowed = {k: re.sub(rf"{NEW_NAME}: 3\b", f"{NEW_NAME}: 2", v) for k, v in narrowed.items()}
    narrowed = edit.set_fact_field(narrowed, "18", NEW_NAME, "max", 2)
    new = load_files(narrowed, "minhang-gumeilu/2023")
    mapping = check_mapping(OLD, new, {NEW_NAME: {"from": OLD_NAME}})
    rows = compare_units(OLD, new, _units(), OracleMatcher(), "oracle", mapping)
    first = rows[0]
    assert first["mapped"][0]["text"] == (
        f"由原事实{COUNT}而来：新事实不接受其值（3超出范围，应为0到2之间的整数），按缺失处理"
    )
    assert first["missing"] == [{"fact": NEW_NAME, "label": new.facts[NEW_NAME].label}]


def _folder(path, files: dict):
    for rel, text in files.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(text, encoding="utf-8")
    return str(path)


def test_the_command_line_maps_and_sets(tmp_path):
    """``scoring impact OLD NEW FACTS --map old=new --set fact=value:reason``: the same totals as
    the mapping given to the job; a wrong option is reported naming the fact, exit 2."""
    import json
    import subprocess
    import sys

    from .conftest import ROOT

    old = _folder(tmp_path / "2022", {rel: str(t) for rel, t in OLD.texts.items()})
    new = _folder(tmp_path / "2023", {rel: str(t) for rel, t in NEW.texts.items()})
    facts = tmp_path / "units.json"
    units = json.dumps({"units": _units()}, ensure_ascii=False, default=lambda d: str(d))
    # a number written as its digits, not as a JSON string
    facts.write_text(re.sub(r'"(-?\d+(?:\.\d+)?)"', r"\1", units), encoding="utf-8")

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "service.cli", "impact", old, new, str(facts), "--oracle", *args],
            capture_output=True, text=True, cwd=ROOT, timeout=300,
        )  # fmt: skip

    mapped = run(f"--map={OLD_NAME}={NEW_NAME}", f"--set={ADDED}=1:{REASON}", "--json")
    assert mapped.returncode == 0, mapped.stderr
    data = json.loads(mapped.stdout)
    assert [(u["unit"], u["total_before"], u["total_after"]) for u in data["units"]] == [
        ("甲街道", "102.0", "103.0"),
        ("乙街道", "101.0", "102.0"),
        ("丙街道", "100.0", "101.0"),
    ]
    assert [m["how"] for m in data["mapping"]] == ["renamed", "set"]
    assert data["mapping"][1]["reason"] == REASON

    text = run(f"--map={OLD_NAME}={NEW_NAME}", f"--set={ADDED}=1:{REASON}")
    assert f"事实对应：新事实{LABEL}每个单位都按固定值 1（理由：{REASON}）" in text.stdout

    no_reason = run(f"--set={ADDED}=1:")
    assert no_reason.returncode == 2 and no_reason.stdout == ""
    assert no_reason.stderr == (
        f"mapping.{ADDED}: 请写明理由：固定值用于每一个单位，理由写进结果和工作簿\n"
    )
    bad = run(f"--set={ADDED}=两项:{REASON}")
    assert (bad.returncode, bad.stderr) == (
        2,
        f"--set {ADDED}=两项:{REASON}：固定值应为0到100之间的整数\n",
    )
    wrong = run("--map=special_funds")
    assert (wrong.returncode, wrong.stderr) == (
        2,
        "--map special_funds：应写作 原事实名=新事实名\n",
    )
