"""Edits of the grading and of the header's source (service.rulefiles.edit_grading): each changes
exactly what it edits in scheme.yaml, every other byte of every file stays as it was, and the
result is what the strict loader reads."""

from __future__ import annotations

from decimal import Decimal

import pytest

from service.rulefiles import edit
from service.rulefiles import edit_grading as g

from ..conftest import RULES
from .test_rule_edits import _changes, _files, _one_line

B1 = RULES / "baoshan" / "2022-b1"
SHUANGTAIZI = RULES / "shuangtaizi" / "2016-2017"
GUMEILU = RULES / "minhang-gumeilu" / "2022"


def _only_scheme_changed(before: dict, after: dict) -> tuple[list[str], list[str]]:
    changes = _changes(before, after)
    assert list(changes) == ["scheme.yaml"], changes
    return changes["scheme.yaml"]


def test_a_tier_and_a_distinction_change_their_one_line_and_load():
    before = _files(B1)
    after = g.set_tier_field(before, 1, "top", Decimal(5))
    _one_line(before, after, "scheme.yaml", "{grade: A, top: 5, title: A档}")
    after = g.set_distinction_field(after, 1, "top", Decimal(2))
    removed, added = _only_scheme_changed(before, after)
    assert added == ["    - {grade: A, top: 5, title: A档}", "    - {name: 优秀, grade: A, top: 2}"]
    assert len(removed) == 2
    scheme = edit.check(after, "b1").scheme
    assert scheme is not None
    assert scheme.grading.tiers[0].top == 5


def test_setting_a_grading_value_to_itself_is_byte_identical():
    before = _files(B1)
    assert g.set_tier_field(before, 1, "top", 6) == before
    assert g.set_grading_method(before, "rank") == before
    assert g.set_grade_veto_field(before, "major_incident", "effect", "bar") == before
    assert g.set_scheme_source(before, "document", "002_21de423f0c0d4a05.txt") == before


def test_a_grade_veto_edit_changes_only_its_value():
    before = _files(SHUANGTAIZI)
    after = g.set_grade_veto_field(before, "systemic_incident", "grade", "C")
    _one_line(before, after, "scheme.yaml", "grade: C")
    assert edit.check(after, "s").ok


def test_switching_a_tier_from_rank_to_score_takes_the_other_key_out():
    before = _files(B1)
    after = g.set_grading_method(before, "thresholds")
    after = g.set_tier_field(after, 1, "top", None)
    after = g.set_tier_field(after, 1, "min", Decimal(90))
    after = g.set_distinction_field(after, 1, "top", "")
    after = g.set_distinction_field(after, 1, "min", Decimal(95))
    removed, added = _only_scheme_changed(before, after)
    assert "    - {grade: A, title: A档, min: 90}" in added
    assert "    - {name: 优秀, grade: A, min: 95}" in added
    assert "  method: thresholds" in added and len(removed) == 3


def test_tiers_distinctions_and_vetoes_added_and_removed():
    before = _files(GUMEILU)
    after = g.set_grading_method(before, "thresholds")
    after = g.add_tier(after, {"grade": "优秀", "min": Decimal(90)})
    after = g.add_tier(after, {"grade": "良好", "min": Decimal(80)})
    after = g.add_tier(after, {"grade": "一般"})
    checked = edit.check(after, "gumeilu")
    assert checked.ok, checked.error
    assert [t.grade for t in checked.scheme.grading.tiers] == ["优秀", "良好", "一般"]
    after = g.add_grade_veto(
        after,
        {
            "id": "accident",
            "when": "equipment_accident_deaths > 0",
            "effect": "bar",
            "grade": "优秀",
            "reason": "发生死亡事故的不得评优秀",
        },
    )
    # the loader's word on the veto, at its line: a grade veto reads scheme-level facts only
    error = str(edit.check(after, "gumeilu").error)
    assert "gumeilu/scheme.yaml:77:13: 事实“equipment_accident_deaths”声明在条款 13 中" in error
    # only the grading block of scheme.yaml changed: every clause file is byte-identical
    _only_scheme_changed(before, after)
    assert after["scheme.yaml"].startswith(before["scheme.yaml"].split("grading:")[0])
    assert after["scheme.yaml"].endswith(before["scheme.yaml"].split("  note: 原表只规定")[1]
                                         .split("\n", 1)[1])  # fmt: skip
    back = g.remove_grade_veto(after, "accident")
    for n in (3, 2, 1):
        back = g.remove_tier(back, n)
    back = g.set_grading_method(back, "none")
    assert back == before


def test_the_header_source_text_edit_changes_only_its_lines():
    before = _files(GUMEILU)
    text = "附件\n2023年度古美路街道质量管理绩效评估考核细则任务分解表\n工作总分95分"
    after = g.set_scheme_source(before, "text", text)
    removed, added = _only_scheme_changed(before, after)
    assert added == ["    2023年度古美路街道质量管理绩效评估考核细则任务分解表"]
    assert removed[0].endswith("2022年度古美路街道质量管理绩效评估考核细则任务分解表")
    assert edit.check(after, "g").ok


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda f: g.set_tier_field(f, 9, "top", 1), "只有2个等级，没有第9个"),
        (lambda f: g.set_tier_field(f, 1, "colour", 1), "等级没有可在表单中修改的字段 colour"),
        (lambda f: g.set_grade_veto_field(f, "nope", "grade", "C"), "没有编号为 nope 的等级否决"),
        (lambda f: g.set_grade_veto_field(f, "major_incident", "effect", "x"), "效果应为"),
        (lambda f: g.set_grading_method(f, "vote"), "评级办法应为"),
        (lambda f: g.add_tier(f, {"title": "x"}), "新等级缺少等级名称"),
        (lambda f: g.set_tier_field(f, 1, "grade", ""), "第1个等级的 grade 不能为空"),
        (
            lambda f: g.add_grade_veto(
                f, {"id": "major_incident", "when": "x", "effect": "lower", "reason": "r"}
            ),
            "已有编号为 major_incident",
        ),  # fmt: skip
    ],
)
def test_what_cannot_be_edited_is_named(call, words):
    with pytest.raises(edit.EditError, match=words):
        call(_files(B1))
