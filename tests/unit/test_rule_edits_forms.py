"""The edits the clause forms add to service.rulefiles.edit: keys set, added where the format
lists them and removed; list items (bands, levels, parts) added in their neighbour's style and
removed; rules, facts, vetoes and test cases added and removed. Each changes only its node; on
every shipped scheme a value set to itself is byte-identical and an addition undone by its
removal gives back the files."""

from __future__ import annotations

from decimal import Decimal

import pytest
from ruamel.yaml import YAML

from service.rulefiles import edit
from service.rulefiles.loader import find_schemes

from ..conftest import RULES
from .test_rule_edits import CLAUSE, _changes, _files, _ids

SCHEMES = sorted(find_schemes(RULES))
REL = "clauses/07-x.yaml"
FILES = {REL: CLAUSE}


def _data(text: str):
    return YAML(typ="safe").load(text)


def _lines(after: dict, before: dict = FILES) -> tuple[list[str], list[str]]:
    changes = _changes(before, after)
    assert list(changes) == [REL], changes
    return changes[REL]


# --- clause keys -------------------------------------------------------------------------------


def test_a_clause_key_is_added_where_the_format_lists_it_and_removed_when_empty():
    after = edit.set_clause_key(FILES, "7", "deadline", "2023年底")
    assert _lines(after) == ([], ["deadline: 2023年底"])
    # after source (the format's order: …, source, offices, deadline, …), before facts
    assert "    原文第二段\ndeadline: 2023年底\nfacts:\n" in after[REL]
    after = edit.set_clause_key(after, "7", "offices", ["甲", "乙"])
    assert "    原文第二段\noffices: [甲, 乙]\ndeadline: 2023年底\n" in after[REL]
    assert edit.set_clause_key(after, "7", "offices", ["甲", "乙"]) == after
    again = edit.set_clause_key(after, "7", "offices", ["甲", "丙", "丁"])
    assert _lines(again, after) == (["offices: [甲, 乙]"], ["offices: [甲, 丙, 丁]"])
    back = edit.set_clause_key(
        edit.set_clause_key(again, "7", "offices", []), "7", "deadline", None
    )
    assert back == FILES
    with pytest.raises(edit.EditError, match="没有可在表单中修改的字段 source"):
        edit.set_clause_key(FILES, "7", "source", "x")


def test_a_block_list_keeps_its_style_and_the_clause_bonus_cap():
    text = CLAUSE.replace("facts:\n", "evidence:\n  - 记录一\n  - 记录二  # 原表\nfacts:\n")
    files = {REL: text}
    after = edit.set_clause_key(files, "7", "evidence", ["记录一", "记录三"])
    assert "evidence:\n  - 记录一\n  - 记录三  # 原表\nfacts:\n" in after[REL]
    capped = edit.set_clause_key(files, "7", "bonus", Decimal("1.5"))
    assert _lines(capped, files) == ([], ["bonus:", "  cap: 1.5"])
    changed = edit.set_clause_key(capped, "7", "bonus", Decimal(2))
    assert _lines(changed, capped) == (["  cap: 1.5"], ["  cap: 2"])
    assert edit.set_clause_key(changed, "7", "bonus", None) == files


# --- rule keys, panels and list items ----------------------------------------------------------


def test_a_rule_key_is_set_added_in_its_blocks_order_and_removed():
    after = edit.set_rule_key(FILES, "7", "r2", "when", "n > 0")
    assert _lines(after) == ([], ["    when: n > 0"])
    after = edit.set_rule_key(after, "7", "r2", "title", "按件数分档")
    # title after kind; when after the bands (the block's order: measure, bands, measure_label, when)
    assert "  - id: r2\n    kind: bands\n    title: 按件数分档\n    measure: n\n" in after[REL]
    assert "        points: 0\n    when: n > 0\n" in after[REL]
    flow = edit.set_rule_key(FILES, "7", "r1", "cap", None)
    assert _lines(flow) == (
        ["  - {id: r1, kind: per_unit, count: n, each: 1, cap: 3}"],
        ["  - {id: r1, kind: per_unit, count: n, each: 1}"],
    )
    assert (
        edit.set_rule_key(edit.set_rule_key(FILES, "7", "r2", "when", "n"), "7", "r2", "when", None)
        == FILES
    )
    for call, words in (
        (lambda: edit.set_rule_key(FILES, "7", "r1", "each", None), "each 必须填写"),
        (lambda: edit.set_rule_key(FILES, "7", "r1", "step", 1), "没有可写的键 step"),
        (lambda: edit.set_rule_key(FILES, "7", "r2", "bands", 1), "不是单个值"),
        (lambda: edit.set_rule_key(FILES, "7", "r2", "kind", "fixed"), "kind 不能"),
    ):
        with pytest.raises(edit.EditError, match=words):
            call()


def test_a_panel_is_added_changed_and_removed():
    files = {REL: CLAUSE.replace("  - {id: r1, kind: per_unit", "  - {id: r1, kind: assessed")}
    after = edit.set_rule_panel(files, "7", "r2", {"reviewers": 5, "highest": 1, "lowest": 1})
    assert _lines(after, files)[1] == [
        "    panel:",
        "      reviewers: 5",
        "      drop: {highest: 1, lowest: 1}",
    ]
    fewer = edit.set_rule_panel(after, "7", "r2", {"reviewers": 3, "highest": 0, "lowest": 1})
    assert _lines(fewer, after) == (
        ["      reviewers: 5", "      drop: {highest: 1, lowest: 1}"],
        ["      reviewers: 3", "      drop: {lowest: 1}"],
    )
    assert edit.set_rule_panel(fewer, "7", "r2", None) == files


def test_a_band_field_is_added_and_removed_and_a_band_inserted_like_its_neighbour():
    after = edit.set_rule_item(FILES, "7", "r2", "bands", 2, "label", "不足10件")
    assert _lines(after) == ([], ["        label: 不足10件"])
    assert edit.set_rule_item(after, "7", "r2", "bands", 2, "label", None) == FILES
    first = edit.add_rule_item(
        FILES, "7", "r2", "bands", {"range": "[20, inf)", "points": Decimal(2)}, 1
    )
    assert _lines(first) == ([], ['      - {range: "[20, inf)", points: 2}'])
    assert first[REL].index("[20, inf)") < first[REL].index("[10, inf)")
    last = edit.add_rule_item(
        FILES, "7", "r2", "bands", {"range": "(-inf, 0)", "points": Decimal(0)}
    )
    assert _lines(last) == ([], ["      - range: '(-inf, 0)'", "        points: 0"])
    assert edit.remove_rule_item(last, "7", "r2", "bands", 3) == FILES
    assert edit.remove_rule_item(first, "7", "r2", "bands", 1) == FILES
    for call, words in (
        (lambda: edit.remove_rule_item(FILES, "7", "r2", "bands", 3), "没有第3档"),
        (lambda: edit.set_rule_item(FILES, "7", "r2", "bands", 1, "weight", 1), "没有字段 weight"),
        (lambda: edit.add_rule_item(FILES, "7", "r1", "bands", {}), "没有 bands"),
        (lambda: edit.add_rule_item(FILES, "7", "r2", "steps", {}), "没有可逐项修改的列表 steps"),
    ):
        with pytest.raises(edit.EditError, match=words):
            call()
    one = edit.remove_rule_item(FILES, "7", "r2", "bands", 2)
    with pytest.raises(edit.EditError, match="至少要有一档"):
        edit.remove_rule_item(one, "7", "r2", "bands", 1)


# --- rules, facts, vetoes, test cases ----------------------------------------------------------


def test_a_rule_is_added_and_removed_with_its_id_in_the_tests():
    rule = {"id": "r3", "kind": "fixed", "when": "n >= 50", "points": Decimal("0.5")}
    after = edit.add_rule(FILES, "7", rule)
    # written like the rule before it (block style)
    assert _lines(after) == (
        [],
        ["  - id: r3", "    kind: fixed", "    when: n >= 50", "    points: 0.5"],
    )
    with pytest.raises(edit.EditError, match="已有编号为 r3 的规则"):
        edit.add_rule(after, "7", rule)
    expecting = edit.set_clause_test_key(after, "7", "无", "fired", ["r1", "r3"])
    removal = edit.remove_rule(expecting, "7", "r3")
    assert removal.touched == [f"{REL}：无"]
    assert "fired: [r1]" in removal.files[REL]
    assert edit.remove_rule(after, "7", "r3").files == FILES


def test_a_fact_is_added_like_its_neighbour_and_its_keys_set_and_removed():
    after = edit.add_fact(FILES, "7", {"name": "m", "type": "boolean", "label": "是否"})
    assert _lines(after) == ([], ["  - {name: m, type: boolean, label: 是否}"])
    with pytest.raises(edit.EditError, match="已有事实 m"):
        edit.add_fact(after, "7", {"name": "m", "type": "boolean", "label": "是否"})
    unit = edit.set_fact_key(FILES, "7", "n", "unit", "件")
    assert _lines(unit)[1] == [
        "  - {name: n, type: integer, label: 数量, unit: 件, min: 0, max: 100}"
    ]
    assert edit.set_fact_key(unit, "7", "n", "unit", None) == FILES
    no_max = edit.set_fact_key(FILES, "7", "n", "max", None)
    assert "  - {name: n, type: integer, label: 数量, min: 0}\n" in no_max[REL]


def test_a_veto_is_added_edited_and_removed_with_its_reference_in_the_tests():
    after = edit.add_veto(FILES, "7", {"id": "v1", "when": "n > 99", "reason": "原文"})
    # after the rules, before the tests (the format's order)
    assert "vetoes:\n  - id: v1\n    when: n > 99\n    reason: 原文\ntests:\n" in after[REL]
    noted = edit.set_veto_field(after, "7", "v1", "note", "读法")
    assert _lines(noted, after) == ([], ["    note: 读法"])
    with pytest.raises(edit.EditError, match="when 必须填写"):
        edit.set_veto_field(after, "7", "v1", "when", None)
    expecting = edit.set_clause_test_key(after, "7", "无", "fired", ["!v1"])
    removal = edit.remove_veto(expecting, "7", "v1")
    assert removal.touched == [f"{REL}：无"] and "fired: []" in removal.files[REL]
    assert edit.remove_veto(after, "7", "v1").files == FILES


def test_a_test_case_is_added_filled_in_and_removed():
    after = edit.add_clause_test(FILES, "7", {"name": "十件", "facts": {}, "points": Decimal(0)})
    assert _lines(after) == ([], ["  - {name: 十件, facts: {}, points: 0}"])
    filled = edit.set_clause_test_fact(after, "7", "十件", "n", Decimal(10))
    # the empty flow mapping takes its first fact on its one line
    assert _lines(filled, after) == (
        ["  - {name: 十件, facts: {}, points: 0}"],
        ["  - {name: 十件, facts: {n: 10}, points: 0}"],
    )
    filled = edit.set_clause_test_key(filled, "7", "十件", "fired", ["r2"])
    filled = edit.set_clause_test_key(filled, "7", "十件", "points", Decimal(1))
    assert "  - {name: 十件, facts: {n: 10}, points: 1, fired: [r2]}\n" in filled[REL]
    assert edit.set_clause_test_key(filled, "7", "十件", "fired", None) != filled
    emptied = edit.remove_clause_test_fact(filled, "7", "十件", "n")
    assert "  - {name: 十件, facts: {}, points: 1, fired: [r2]}\n" in emptied[REL]
    assert edit.remove_clause_test(after, "7", "十件") == FILES
    with pytest.raises(edit.EditError, match="至少要有一个测试用例"):
        edit.remove_clause_test(FILES, "7", "无")
    with pytest.raises(edit.EditError, match="已有名为“无”的测试用例"):
        edit.add_clause_test(FILES, "7", {"name": "无", "facts": {}, "points": 0})


def test_the_first_fact_given_to_an_empty_flow_mapping_stays_on_its_line():
    files = {REL: CLAUSE.replace("facts: {n: 0}", "facts: {}")}
    after = edit.set_clause_test_fact(files, "7", "无", "n", Decimal(0))
    assert after == FILES


# --- every shipped scheme ----------------------------------------------------------------------


@pytest.mark.parametrize("folder", SCHEMES, ids=_ids)
def test_on_every_scheme_new_edits_to_the_same_value_are_byte_identical_and_undo(folder):
    files = _files(folder)
    now = dict(files)
    for rel in edit.clause_files(files):
        clause = _data(files[rel])
        cid = str(clause["id"])
        for key in ("offices", "evidence", "deadline"):
            if key in clause:
                now = edit.set_clause_key(now, cid, key, clause[key])
        for rule in clause["rules"]:
            if "title" in rule:
                now = edit.set_rule_key(now, cid, str(rule["id"]), "title", rule["title"])
            for n, band in enumerate(rule.get("bands") or [], 1):
                if "label" in band:
                    now = edit.set_rule_item(
                        now, cid, str(rule["id"]), "bands", n, "label", band["label"]
                    )
        case = clause["tests"][0]
        if "fired" in case:
            now = edit.set_clause_test_key(now, cid, str(case["name"]), "fired", case["fired"])
    assert now == files
    # an addition undone by its removal gives back the files, for one clause with each
    rel = edit.clause_files(files)[0]
    cid = str(_data(files[rel])["id"])
    rid = str(_data(files[rel])["rules"][0]["id"])
    added = edit.add_rule(files, cid, {"id": "zz", "kind": "fixed", "points": Decimal(0)})
    assert edit.remove_rule(added, cid, "zz").files == files
    added = edit.add_clause_test(files, cid, {"name": "新用例", "facts": {}, "points": Decimal(0)})
    assert edit.remove_clause_test(added, cid, "新用例") == files
    added = edit.add_fact(files, cid, {"name": "zz_fact", "type": "number", "label": "新事实"})
    assert edit.remove_fact(added, cid, "zz_fact").files == files
    panel = edit.set_rule_panel(files, cid, rid, {"reviewers": 3})
    assert edit.set_rule_panel(panel, cid, rid, None) == files


def test_a_whole_number_given_as_an_int_is_written_as_it_is():
    # format(3, "f") is "3.000000": an int went through it, where a Decimal did not
    after = edit.set_clause_test_fact(FILES, "7", "无", "n", 3)
    assert "  - {name: 无, facts: {n: 3}, points: 0}\n" in after[REL]


def test_a_key_the_format_requires_is_not_removed():
    for call, words in (
        (lambda: edit.set_clause_key(FILES, "7", "title", None), "条款的 title 必须填写"),
        (lambda: edit.set_clause_key(FILES, "7", "points", None), "条款的 points 必须填写"),
        (lambda: edit.set_fact_key(FILES, "7", "n", "type", None), "事实的 type 必须填写"),
        (lambda: edit.set_fact_key(FILES, "7", "n", "label", None), "事实的 label 必须填写"),
    ):
        with pytest.raises(edit.EditError, match=words):
            call()


# --- a fact's choices: added, removed and renamed, each on its own line -----------------------

CHOICES = """\
id: "9"
facts:
  - name: level
    type: choice
    label: 等级
    choices:
      - 优秀  # the top one
      - 良好
      - 合格  # the last one
    # the fact's required follows
    required: false
  - {name: kind, type: choice, label: 类别, choices: [甲, 乙, 丙]}
"""
CHOICE_FILES = {"clauses/09-c.yaml": CHOICES}


def _choice_lines(after: dict) -> tuple[list[str], list[str]]:
    changes = _changes(CHOICE_FILES, after)
    assert list(changes) == ["clauses/09-c.yaml"], changes
    return changes["clauses/09-c.yaml"]


def test_a_choice_is_added_removed_and_renamed_on_its_own_line_keeping_the_comments():
    def set_to(values):
        return edit.set_fact_key(CHOICE_FILES, "9", "level", "choices", values)

    # the same list is no change at all
    assert set_to(["优秀", "良好", "合格"]) == CHOICE_FILES
    # renamed: that line only, its neighbours' comments stay with them
    assert _choice_lines(set_to(["优秀", "较好", "合格"])) == (["      - 良好"], ["      - 较好"])
    # removed from the middle: that line only (not every later item rewritten one up)
    assert _choice_lines(set_to(["优秀", "合格"])) == (["      - 良好"], [])
    # removed first: the next item keeps no comment it did not have
    assert _choice_lines(set_to(["良好", "合格"])) == (["      - 优秀  # the top one"], [])
    # removed last: the comment lines after it stay where they were
    assert _choice_lines(set_to(["优秀", "良好"])) == (["      - 合格  # the last one"], [])
    # added in the middle and at the end
    assert _choice_lines(set_to(["优秀", "良好", "尚可", "合格", "不合格"])) == (
        [],
        ["      - 尚可", "      - 不合格"],
    )
    # a flow list stays a flow list on its line
    flow = edit.set_fact_key(CHOICE_FILES, "9", "kind", "choices", ["甲", "丙"])
    assert _choice_lines(flow)[1] == [
        "  - {name: kind, type: choice, label: 类别, choices: [甲, 丙]}"
    ]
    # none left: the key goes (the format refuses an empty list), and nothing else
    assert _choice_lines(edit.set_fact_key(CHOICE_FILES, "9", "kind", "choices", []))[1] == [
        "  - {name: kind, type: choice, label: 类别}"
    ]


def test_a_facts_required_and_applies_when_are_added_changed_and_removed():
    when = edit.set_fact_key(CHOICE_FILES, "9", "level", "applies_when", 'kind == "甲"')
    assert _choice_lines(when) == ([], ['    applies_when: kind == "甲"'])
    assert _data(when["clauses/09-c.yaml"])["facts"][0]["applies_when"] == 'kind == "甲"'
    assert edit.set_fact_key(when, "9", "level", "applies_when", None) == CHOICE_FILES
    flag = edit.set_fact_key(CHOICE_FILES, "9", "level", "required", True)
    assert _choice_lines(flag) == (["    required: false"], ["    required: true"])
    assert edit.set_fact_key(CHOICE_FILES, "9", "level", "required", None)["clauses/09-c.yaml"] == (
        CHOICES.replace("    required: false\n", "")
    )


# --- a clause's tasks and a test case's marks: each item changed on its own lines -------------

TASKS = """\
id: "9"
tasks:
  - task: 一  # the first
    deadline: 7月
    offices: [营商办]
  - task: 二
    offices: [营商办, 市场所]
evidence: [x]
tests:
  - name: a
    facts: {}
    marks:
      - {reviewer: 评审甲, points: 9, reason: 齐全}
      - {reviewer: 评审乙, points: 7}
    points: 8
  - name: b
    facts: {}
    points: 8
"""
TASK_FILES = {"clauses/09-c.yaml": TASKS}
ONE = {"task": "一", "deadline": "7月", "offices": ["营商办"]}
TWO = {"task": "二", "offices": ["营商办", "市场所"]}


def _task_lines(after: dict) -> tuple[list[str], list[str]]:
    changes = _changes(TASK_FILES, after)
    assert list(changes) == ["clauses/09-c.yaml"], changes
    return changes["clauses/09-c.yaml"]


def test_a_clauses_tasks_are_changed_added_and_removed_on_their_own_lines():
    def set_to(values):
        return edit.set_clause_key(TASK_FILES, "9", "tasks", values)

    assert set_to([ONE, TWO]) == TASK_FILES
    assert _task_lines(set_to([ONE, {**TWO, "deadline": "8月"}])) == ([], ["    deadline: 8月"])
    assert _task_lines(set_to([ONE, {"task": "二", "offices": ["营商办"]}])) == (
        ["    offices: [营商办, 市场所]"],
        ["    offices: [营商办]"],
    )
    assert _task_lines(set_to([ONE, TWO, {"task": "三"}])) == ([], ["  - task: 三"])
    assert _task_lines(set_to([TWO])) == (
        ["  - task: 一  # the first", "    deadline: 7月", "    offices: [营商办]"],
        [],
    )
    gone = set_to([])["clauses/09-c.yaml"]
    assert "tasks" not in _data(gone) and "evidence: [x]" in gone


def test_a_test_cases_marks_are_changed_added_and_removed_on_their_own_lines():
    def set_to(test, values):
        return edit.set_clause_test_key(TASK_FILES, "9", test, "marks", values)

    a = {"reviewer": "评审甲", "points": Decimal(9), "reason": "齐全"}
    b = {"reviewer": "评审乙", "points": Decimal("7.0")}
    assert set_to("a", [a, b]) == TASK_FILES
    assert _task_lines(set_to("a", [a, {**b, "points": Decimal(6)}])) == (
        ["      - {reviewer: 评审乙, points: 7}"],
        ["      - {reviewer: 评审乙, points: 6}"],
    )
    assert _task_lines(set_to("a", [b])) == (
        ["      - {reviewer: 评审甲, points: 9, reason: 齐全}"],
        [],
    )
    assert _task_lines(set_to("b", [a])) == (
        [],
        ["    marks:", "      - {reviewer: 评审甲, points: 9, reason: 齐全}"],
    )
    assert "marks" not in _data(set_to("a", None)["clauses/09-c.yaml"])["tests"][0]
