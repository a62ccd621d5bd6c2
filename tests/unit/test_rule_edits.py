"""Structured edits of rule files (service.rulefiles.edit): on every shipped scheme an edit changes
exactly the lines it edits and nothing else, a no-op is byte-identical, comments survive, and the
古美路 2022 → 2023 changes of issue 10 made through the edits give a scheme that loads and passes
its cases."""

from __future__ import annotations

import difflib
import re
from decimal import Decimal

import pytest
from ruamel.yaml import YAML

from service.casebook import run_cases
from service.rulefiles import edit
from service.rulefiles.loader import find_schemes, snapshot

from ..conftest import FIXTURES, RULES

SCHEMES = sorted(find_schemes(RULES))
SCALAR_RULE_KEYS = ("points", "cap", "each", "step")


def _files(folder) -> dict[str, str]:
    return {rel: data.decode("utf-8") for rel, data in snapshot(folder).items()}


def _data(text: str):
    return YAML(typ="safe").load(text)


def _changes(before: dict, after: dict) -> dict[str, tuple[list[str], list[str]]]:
    """Per file that differs: (lines removed, lines added)."""
    out = {}
    for rel in sorted(set(before) | set(after)):
        a = before.get(rel, "").splitlines()
        b = after.get(rel, "").splitlines()
        if a == b and (rel in before) == (rel in after):
            continue
        removed, added = [], []
        for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
            if op != "equal":
                removed += a[i1:i2]
                added += b[j1:j2]
        out[rel] = (removed, added)
    return out


def _one_line(before: dict, after: dict, rel: str, written: str) -> None:
    """Exactly one line of one file changed, and the new line carries the value written."""
    changes = _changes(before, after)
    assert list(changes) == [rel], changes
    removed, added = changes[rel]
    assert len(removed) == 1 and len(added) == 1, changes
    assert written in added[0], (written, added[0])


def _names(fact: str, line: str) -> bool:
    """Whether a line names the fact (as a whole name: ``rate`` is not in ``pass_rate``)."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(fact)}(?![A-Za-z0-9_])", line) is not None


def _ids(folder) -> str:
    return str(folder.relative_to(RULES))


def _number(value) -> Decimal:
    return Decimal(str(value))


def _scalar_rules(files: dict):
    """(clause id, rule id, key, value) of every scalar points/cap/each/step of every rule."""
    for rel in edit.clause_files(files):
        clause = _data(files[rel])
        for rule in clause.get("rules") or []:
            for key in SCALAR_RULE_KEYS:
                if isinstance(rule.get(key), int | float) and not isinstance(rule[key], bool):
                    yield str(clause["id"]), str(rule["id"]), key, rule[key]


def _bands(files: dict):
    for rel in edit.clause_files(files):
        clause = _data(files[rel])
        for rule in clause.get("rules") or []:
            for n, band in enumerate(rule.get("bands") or [], 1):
                yield str(clause["id"]), str(rule["id"]), n, band


def _categories(cats):
    for cat in cats or []:
        yield cat
        yield from _categories(cat.get("categories"))


def _some_categories(head) -> list:
    """Every third category, first and last included: each edit of scheme.yaml reads and writes
    its whole text (baoshan's 700 lines take a tenth of a second), and the categories are alike."""
    every = list(_categories(head.get("categories")))
    return every[::3] + every[-1:]


# --- every shipped scheme ----------------------------------------------------------------------


@pytest.mark.parametrize("folder", SCHEMES, ids=_ids)
def test_setting_every_value_to_itself_is_byte_identical(folder):
    files = _files(folder)
    head = _data(files["scheme.yaml"])
    now = dict(files)
    for name in ("title", "year", "issuer", "total"):
        if name in head:
            value = head[name]
            now = edit.set_scheme_field(now, name, _number(value) if name == "total" else value)
    for cat in _some_categories(head):
        for name in ("title", "points", "cap"):
            if name in cat:
                value = cat[name] if name == "title" else _number(cat[name])
                now = edit.set_category_field(now, str(cat["id"]), name, value)
    for rel in edit.clause_files(files):
        clause = _data(files[rel])
        cid = str(clause["id"])
        now = edit.set_clause_field(now, cid, "title", clause["title"])
        now = edit.set_clause_field(now, cid, "points", _number(clause["points"]))
        now = edit.set_clause_field(now, cid, "category", clause["category"])
        now = edit.set_clause_field(now, cid, "source", clause["source"]["text"])
    for cid, rid, key, value in _scalar_rules(files):
        now = edit.set_rule_field(now, cid, rid, key, _number(value))
    for cid, rid, n, band in _bands(files):
        now = edit.set_band(now, cid, rid, n, range=band["range"], points=_number(band["points"]))
    assert now == files


@pytest.mark.parametrize("folder", SCHEMES, ids=_ids)
def test_each_header_category_and_clause_edit_changes_its_one_line(folder):
    files = _files(folder)
    head = _data(files["scheme.yaml"])
    _one_line(
        files,
        edit.set_scheme_field(files, "title", "改过的细则标题"),
        "scheme.yaml",
        "改过的细则标题",
    )
    _one_line(files, edit.set_scheme_field(files, "year", "2031"), "scheme.yaml", "2031")
    _one_line(
        files, edit.set_scheme_field(files, "total", Decimal("123.5")), "scheme.yaml", "123.5"
    )
    for cat in _some_categories(head):
        if "points" in cat:
            new = _number(cat["points"]) + 1
            after = edit.set_category_field(files, str(cat["id"]), "points", new)
            _one_line(files, after, "scheme.yaml", f"points: {new}")
    for rel in edit.clause_files(files):
        clause = _data(files[rel])
        cid = str(clause["id"])
        new = _number(clause["points"]) + Decimal("0.5")
        _one_line(files, edit.set_clause_field(files, cid, "points", new), rel, f"points: {new}")
        _one_line(
            files, edit.set_clause_field(files, cid, "title", "新的条款标题"), rel, "新的条款标题"
        )
        _one_line(files, edit.set_clause_field(files, cid, "category", "另一类"), rel, "另一类")


@pytest.mark.parametrize("folder", SCHEMES, ids=_ids)
def test_clearing_a_category_cap_takes_out_its_one_line_and_nothing_else(folder):
    files = _files(folder)
    head = _data(files["scheme.yaml"])
    cats = list(_categories(head.get("categories")))
    for cat in (c for c in cats if "cap" in c):  # every cap written: its line goes, no other
        after = edit.set_category_field(files, str(cat["id"]), "cap", None)
        assert _changes(files, after) == {"scheme.yaml": ([f"    cap: {cat['cap']}"], [])}
        assert "cap" not in next(
            c
            for c in _categories(_data(after["scheme.yaml"]).get("categories"))
            if c["id"] == cat["id"]
        )
    for cat in (c for c in cats if c.get("kind", "standard") != "standard" and "cap" not in c):
        cid = str(cat["id"])  # a cap added and cleared again: the file as it was, byte for byte
        added = edit.set_category_field(files, cid, "cap", Decimal("7"))
        assert added != files
        assert edit.set_category_field(added, cid, "cap", None) == files
        assert edit.set_category_field(files, cid, "cap", None) == files  # no cap: nothing to do
    for cat in _some_categories(head):
        for name in ("title", "points"):  # what the format requires is not removed
            with pytest.raises(edit.EditError, match=f"{name} 必须填写"):
                edit.set_category_field(files, str(cat["id"]), name, None)


def test_clearing_a_cap_keeps_the_comments_and_blank_lines_around_it():
    text = (
        "categories:\n"
        "  - id: a\n    title: A  # t\n    kind: bonus\n    cap: 5  # 总计不超5分\n"
        "    # 下一行是原文\n    source: x\n"
        "  - id: b\n    title: B\n    kind: bonus\n    cap: 3\n    # 结尾的注释\n\n"
        "  - id: c\n    title: C\n    kind: bonus\n    cap: 4\n"
    )
    files = {"scheme.yaml": text}
    for cid, line in (("a", "    cap: 5  # 总计不超5分"), ("b", "    cap: 3"), ("c", "    cap: 4")):
        after = edit.set_category_field(files, cid, "cap", None)
        assert after["scheme.yaml"] == text.replace(line + "\n", "", 1), cid
    with pytest.raises(edit.EditError, match="没有编号为 z 的类别"):
        edit.set_category_field(files, "z", "cap", None)


@pytest.mark.parametrize("folder", SCHEMES, ids=_ids)
def test_each_rule_key_and_band_edit_changes_its_one_line(folder):
    files = _files(folder)
    for cid, rid, key, value in _scalar_rules(files):
        new = _number(value) + Decimal("0.25")
        after = edit.set_rule_field(files, cid, rid, key, new)
        _one_line(files, after, edit.clause_file(files, cid), f"{key}: {new}")
    for cid, rid, n, band in _bands(files):
        rel = edit.clause_file(files, cid)
        new = _number(band["points"]) + 7
        _one_line(files, edit.set_band(files, cid, rid, n, points=new), rel, f"points: {new}")
        _one_line(files, edit.set_band(files, cid, rid, n, range="[0, 99)"), rel, '"[0, 99)"')


@pytest.mark.parametrize("folder", SCHEMES, ids=_ids)
def test_a_source_text_edit_changes_only_the_text_lines(folder):
    files = _files(folder)
    rel = edit.clause_files(files)[0]
    clause = _data(files[rel])
    old = clause["source"]["text"]
    after = edit.set_clause_field(files, str(clause["id"]), "source", old + "\n新增的一段原文")
    changes = _changes(files, after)
    assert list(changes) == [rel]
    removed, added = changes[rel]
    # only the text's own lines change (a text written plain over several lines becomes a block)
    text_lines = _value_lines(files[rel], "  text:")
    assert all(line in text_lines for line in removed), removed
    assert all(line in _value_lines(after[rel], "  text:") for line in added)
    assert "新增的一段原文" in added[-1]
    assert _data(after[rel])["source"]["text"] == old + "\n新增的一段原文"


@pytest.mark.parametrize("folder", SCHEMES, ids=_ids)
def test_removing_a_fact_removes_it_from_its_clause_and_every_test_that_gives_it(folder):
    files = _files(folder)
    rel = next(r for r in edit.clause_files(files) if _data(files[r]).get("facts"))
    clause = _data(files[rel])
    fact = clause["facts"][-1]["name"]
    gives = [
        f"{where}：{case['name']}"
        for where, cases in ((rel, clause.get("tests")), ("scheme.yaml", _head_tests(files)))
        for case in cases or []
        if fact in (case.get("facts") or {})
    ]
    removal = edit.remove_fact(files, str(clause["id"]), fact)
    assert removal.touched == gives
    for where, (removed, added) in _changes(files, removal.files).items():
        assert where in (rel, "scheme.yaml")
        # every line added is a flow-style test's facts rewritten without the fact
        assert not any(_names(fact, line) for line in added)
        assert len(added) <= sum(_names(fact, line) for line in removed) + ("facts: []" in added)
        # every line removed names the fact or is part of its entry in the clause's facts
        entry = _value_lines(files[rel], f"  - name: {fact}") if where == rel else []
        if "facts: []" in added:  # its only fact gone, the list is written empty
            entry.append("facts:")
        assert all(_names(fact, line) or line in entry for line in removed), removed
    for case in _data(removal.files[rel]).get("tests") or []:
        assert fact not in (case.get("facts") or {})
    for case in _head_tests(removal.files):
        assert fact not in (case.get("facts") or {})
    assert fact not in [f["name"] for f in _data(removal.files[rel])["facts"]]


def _value_lines(text: str, start: str) -> list[str]:
    """The lines of a value, from its key to the next line no deeper than the key."""
    lines = text.splitlines()
    at = next((i for i, line in enumerate(lines) if line.startswith(start)), None)
    if at is None:
        return []
    depth = len(start) - len(start.lstrip())
    out = [lines[at]]
    for line in lines[at + 1 :]:
        if line.strip() and len(line) - len(line.lstrip()) <= depth:
            break
        out.append(line)
    return out


def _head_tests(files: dict) -> list:
    return _data(files["scheme.yaml"]).get("tests") or []


@pytest.mark.parametrize("folder", SCHEMES, ids=_ids)
def test_removing_a_clause_takes_its_facts_out_of_every_scheme_test(folder):
    files = _files(folder)
    rel = edit.clause_files(files)[-1]
    clause = _data(files[rel])
    facts = {f["name"] for f in clause.get("facts") or []}
    gives = [
        f"scheme.yaml：{case['name']}"
        for case in _head_tests(files)
        if facts & set(case.get("facts") or {})
        or any(str(m.get("clause")) == str(clause["id"]) for m in case.get("marks") or [])
    ]
    removal = edit.remove_clause(files, str(clause["id"]))
    assert removal.touched == gives
    assert rel not in removal.files
    changes = _changes(files, removal.files)
    assert set(changes) <= {rel, "scheme.yaml"}
    if "scheme.yaml" in changes:
        removed, added = changes["scheme.yaml"]
        assert all(any(_names(n, line) for n in facts) or "clause" in line for line in removed)
        assert not any(_names(n, line) for n in facts for line in added)
    for case in _head_tests(removal.files):
        assert not facts & set(case.get("facts") or {})


@pytest.mark.parametrize("folder", SCHEMES, ids=_ids)
def test_reordering_renumbers_the_files_and_keeps_their_text(folder):
    files = _files(folder)
    ids = [str(_data(files[rel])["id"]) for rel in edit.clause_files(files)]
    after = edit.reorder_clauses(files, ids[::-1])
    assert sorted(after.values()) == sorted(files.values())
    assert [str(_data(after[rel])["id"]) for rel in edit.clause_files(after)] == ids[::-1]
    checked = edit.check(after, _ids(folder))
    assert checked.ok, checked.error
    assert list(checked.scheme.clauses) == ids[::-1]


@pytest.mark.parametrize("folder", SCHEMES, ids=_ids)
def test_comments_survive_an_edit(folder):
    files = _files(folder)
    comments = {rel: [ln for ln in text.splitlines() if "#" in ln] for rel, text in files.items()}
    after = edit.set_scheme_field(files, "title", "改过的细则标题")
    for rel in edit.clause_files(files):
        clause = _data(files[rel])
        after = edit.set_clause_field(after, str(clause["id"]), "title", "新的条款标题")
    for rel, lines in comments.items():
        kept = after[rel].splitlines()
        assert [ln for ln in lines if ln in kept or "title" in ln] == lines


# --- style kept, errors ------------------------------------------------------------------------

CLAUSE = """\
id: "7"   # 序号7
title: 标题
category: 甲
points: 4  # 原表4分
source:
  text: |-
    原文第一段
    原文第二段
facts:
  - {name: n, type: integer, label: 数量, min: 0, max: 100}
rules:
  # 每件1分，封顶3分
  - {id: r1, kind: per_unit, count: n, each: 1, cap: 3}
  - id: r2
    kind: bands
    measure: n
    bands:
      - {range: "[10, inf)", points: 1}   # 10件以上
      - range: '[0, 10)'
        points: 0
tests:
  - {name: 无, facts: {n: 0}, points: 0}
"""


def test_an_inline_comment_quotes_and_flow_style_survive_their_value_changing():
    files = {"clauses/07-x.yaml": CLAUSE}
    after = edit.set_clause_field(files, "7", "points", Decimal("4.5"))
    # the comment keeps its column where the longer value leaves room, else one space
    assert "points: 4.5 # 原表4分\n" in after["clauses/07-x.yaml"]
    after = edit.set_rule_field(after, "7", "r1", "cap", Decimal(2))
    assert "  - {id: r1, kind: per_unit, count: n, each: 1, cap: 2}\n" in after["clauses/07-x.yaml"]
    after = edit.set_band(after, "7", "r2", 1, range="[12, inf)")
    after = edit.set_band(after, "7", "r2", 2, range="[0, 12)")
    text = after["clauses/07-x.yaml"]
    assert '      - {range: "[12, inf)", points: 1}   # 10件以上\n' in text
    assert "      - range: '[0, 12)'\n" in text
    assert len(_changes(files, after)["clauses/07-x.yaml"][0]) == 4
    assert 'id: "7"   # 序号7\n' in text and "  # 每件1分，封顶3分\n" in text


def test_what_does_not_exist_is_named_in_the_error():
    files = {"clauses/07-x.yaml": CLAUSE, "scheme.yaml": "title: 细则\ncategories: []\n"}
    cases = [
        (lambda: edit.set_clause_field(files, "8", "points", 1), "没有编号为 8 的条款"),
        (lambda: edit.set_rule_field(files, "7", "r9", "points", 1), "没有编号为 r9 的规则"),
        (lambda: edit.set_rule_field(files, "7", "r1", "step", 1), "规则 r1 没有 step"),
        (lambda: edit.set_rule_field(files, "7", "r1", "kind", "fixed"), "kind 不能"),
        (lambda: edit.set_band(files, "7", "r2", 3, points=1), "只有2档，没有第3档"),
        (lambda: edit.set_band(files, "7", "r1", 1, points=1), "没有分档"),
        (
            lambda: edit.set_clause_field(files, "7", "offices", "x"),
            "没有可在表单中修改的字段 offices",
        ),
        (lambda: edit.set_category_field(files, "乙", "points", 1), "没有编号为 乙 的类别"),
        (lambda: edit.remove_fact(files, "7", "m"), "没有事实 m"),
        (lambda: edit.set_clause_field(files, "7", "points", "四"), "points应为数字"),
        (
            lambda: edit.set_clause_test_field(files, "7", "有", "points", 1),
            "没有名为“有”的测试用例",
        ),
        (lambda: edit.reorder_clauses(files, []), "恰好列出一次"),
        (lambda: edit.add_clause(files, {"id": "7"}), "已有编号为 7 的条款"),
    ]
    for call, words in cases:
        with pytest.raises(edit.EditError, match=words):
            call()


def test_a_file_the_round_trip_would_reformat_is_refused_not_rewritten():
    odd = CLAUSE.replace("  text: |-\n    原文第一段\n    原文第二段\n", "    text: 原文\n")
    files = {"clauses/07-x.yaml": odd}
    with pytest.raises(edit.EditError, match="无法在表单中原样保留"):
        edit.set_clause_field(files, "7", "points", 5)


def test_a_broken_edit_returns_the_loaders_error_as_is():
    files = _files(RULES / "minhang-gumeilu" / "2022")
    after = edit.set_clause_field(files, "4", "points", Decimal(5))
    checked = edit.check(after, "gumeilu")
    assert not checked.ok and checked.scheme is None
    assert "gumeilu/scheme.yaml:33:17: 类别“组织领导 一、组织领导”的分值为14分" in str(
        checked.error
    )


# --- 古美路 2022 → 2023 (issue 10) ----------------------------------------------------------------

NEW_CLAUSE = {
    "id": "19",
    "title": "质量月活动",
    "category": "加分项",
    "points": Decimal(1),
    "source": {
        "document": "2023年度细则",
        "ref": "六 加分项 序号19",
        "text": "19、组织开展质量月活动的加1分。",
    },
    "facts": [
        {"name": "quality_month_event", "type": "boolean", "label": "是否组织开展质量月活动"}
    ],
    "rules": [
        {
            "id": "r1",
            "kind": "fixed",
            "title": "组织开展质量月活动",
            "when": "quality_month_event",
            "points": Decimal(1),
        }
    ],
    "tests": [
        {
            "name": "开展质量月活动",
            "facts": {"quality_month_event": True},
            "points": 1,
            "fired": ["r1"],
        },
        {"name": "未开展", "facts": {"quality_month_event": False}, "points": 0, "fired": []},
    ],
}


def _gumeilu_2023(files: dict) -> tuple[dict, list[str]]:
    e, d = edit, Decimal
    f = e.set_scheme_field(files, "id", "gumeilu-2023")
    f = e.set_scheme_field(f, "year", "2023")
    f = e.set_scheme_field(f, "title", "2023年度古美路街道质量管理绩效评估考核细则任务分解表")
    # two clauses' points, with their categories' subtotals: 4 分 4 → 5, 6 分 6 → 5
    f = e.set_clause_field(f, "4", "points", d(5))
    f = e.set_rule_field(f, "4", "r2", "points", d(3))
    f = e.set_category_field(f, "组织领导", "points", d(15))
    f = e.set_clause_field(f, "6", "points", d(5))
    f = e.set_fact_field(f, "6", "brand_building_score", "max", d(5))
    f = e.set_category_field(f, "质量发展", "points", d(25))
    f = e.set_clause_test_fact(f, "6", "满分", "brand_building_score", d(5))
    f = e.set_clause_test_field(f, "6", "满分", "points", d(5))
    # a threshold moved: work information 10 → 12 a year
    f = e.set_rule_field(f, "4", "r1", "when", "work_info_reports >= 12")
    f = e.set_rule_field(f, "4", "r1", "title", "质量工作信息全年不少于12篇")
    f = e.set_clause_test_fact(f, "4", "10篇与1篇，刚好达到", "work_info_reports", d(12))
    f = e.set_clause_test_field(f, "4", "10篇与1篇，刚好达到", "name", "12篇与1篇，刚好达到")
    f = e.set_clause_test_field(f, "4", "12篇与1篇，刚好达到", "points", d(5))
    f = e.set_clause_test_field(f, "4", "工作信息9篇", "points", d(3))
    # a cap changed: the deaths part of 13 is capped at 4 (the clause at 7)
    f = e.set_rule_field(f, "13", "r2", "cap", d(4))
    f = e.set_clause_field(f, "13", "points", d(7))
    for name in ("死亡2人扣3分", "死亡5人仍扣3分"):
        f = e.set_clause_test_field(f, "13", name, "points", d(-4))
    for name in ("两部分都到上限，扣6分", "两部分都超上限，仍扣6分"):
        f = e.set_clause_test_field(f, "13", name, "points", d(-7))
    # a clause removed (16, its facts out of every scheme test), a clause added with its cases
    removal = e.remove_clause(f, "16")
    f = e.add_clause(removal.files, NEW_CLAUSE, "quality-month")
    # the scheme tests follow: full marks need 12 reports and 5 for brand building
    for case in _head_tests(f):
        if case["facts"].get("work_info_reports") == 10:
            f = e.set_scheme_test_fact(f, case["name"], "work_info_reports", d(12))
        if case["facts"].get("brand_building_score") == 6:
            f = e.set_scheme_test_fact(f, case["name"], "brand_building_score", d(5))
    for name in ("各加分项都到封顶、无扣分：加分项不设总计上限", "各加分项封顶且扣分项扣满"):
        f = e.set_scheme_test_fact(f, name, "quality_month_event", True)
    # +1 (clause 4) −0.5 (clause 16's one report gone)
    f = e.set_scheme_test_field(f, "有加分有扣分", "total", d("92.175"))
    # 各加分项都到封顶 stays 112: +1 (4) −1 (6) −1 (16) +1 (19); with deductions full, also
    # −1 (the deaths part now costs 4): 105
    f = e.set_scheme_test_field(f, "各加分项封顶且扣分项扣满", "total", d(105))
    return f, removal.touched


def test_gumeilu_2022_to_2023_through_the_edits_loads_and_passes_its_cases(oracle):
    before = _files(RULES / "minhang-gumeilu" / "2022")
    gone = {"special_reports", "media_reports"}
    after, touched = _gumeilu_2023(before)
    assert touched == [f"scheme.yaml：{case['name']}" for case in _head_tests(before)]
    assert len(touched) == 5
    checked = edit.check(after, "gumeilu-2023")
    assert checked.ok, checked.error
    scheme = checked.scheme
    assert scheme.id == "gumeilu-2023" and "16" not in scheme.clauses and "19" in scheme.clauses
    failed = [r.lines() for r in run_cases(scheme, oracle) if not r.ok]
    assert failed == []
    assert sum(1 for r in run_cases(scheme, oracle) if r.name.startswith("19 ")) == 2
    for case in _head_tests(after):
        assert not gone & set(case["facts"])
    # the edits touched only what they edit: the unchanged clause files are byte-identical
    kept = set(before) - {
        "scheme.yaml",
        "clauses/04-information.yaml",
        "clauses/06-brand-building.yaml",
        "clauses/13-equipment-accidents.yaml",
        "clauses/16-reports-and-media.yaml",
    }
    assert {rel: after[rel] for rel in kept} == {rel: before[rel] for rel in kept}
    assert set(after) - set(before) == {"clauses/20-quality-month.yaml"}
    removed, added = _changes(before, after)["scheme.yaml"]
    # header 3, subtotals 2, facts of 16 in five tests 10, reports 10 → 12 in 3, brand 6 → 5 in 3,
    # totals 2; added: the same less the 10 removed, and quality_month_event in two tests
    assert len(removed) == 3 + 2 + 10 + 3 + 3 + 2
    assert len(added) == 3 + 2 + 3 + 3 + 2 + 2


def test_a_decimal_is_written_in_plain_notation_and_a_float_is_refused():
    files = {"clauses/07-x.yaml": CLAUSE}
    after = edit.set_clause_field(files, "7", "points", Decimal("1E+1"))
    assert "\npoints: 10 # 原表4分\n" in after["clauses/07-x.yaml"]
    after = edit.set_rule_field(files, "7", "r1", "each", Decimal("-0.50"))
    assert "each: -0.50," in after["clauses/07-x.yaml"]
    for value in (0.1, Decimal("NaN"), Decimal("Infinity")):
        with pytest.raises(edit.EditError, match="points"):
            edit.set_clause_field(files, "7", "points", value)
    with pytest.raises(edit.EditError, match="浮点数"):
        edit.set_clause_test_fact(files, "7", "无", "n", 0.5)


def test_a_scheme_level_fact_leaves_the_scheme_tests_and_the_ranking_tests_too():
    files = _files(RULES / "baoshan" / "2022-b1")
    fact = "major_quality_incident"
    head = _data(files["scheme.yaml"])
    gives = [f"scheme.yaml：{c['name']}" for c in head["tests"] if fact in c["facts"]] + [
        f"scheme.yaml：{c['name']}"
        for c in head["ranking_tests"]
        if any(fact in (u.get("facts") or {}) for u in c["units"].values())
    ]
    removal = edit.remove_fact(files, None, fact)
    assert removal.touched == gives and len(gives) > 2
    assert list(_changes(files, removal.files)) == ["scheme.yaml"]
    after = removal.files["scheme.yaml"]
    # left only where the grade veto and the notes read it: the loader says the veto reads a
    # fact no longer declared
    assert [ln for ln in after.splitlines() if _names(fact, ln)] == [
        ln
        for ln in files["scheme.yaml"].splitlines()[:139]
        if _names(fact, ln) and "name:" not in ln
    ]
    checked = edit.check(removal.files, "b1")
    assert not checked.ok and "major_quality_incident" in str(checked.error)
    with pytest.raises(edit.EditError, match="细则没有事实 nothing"):
        edit.remove_fact(files, None, "nothing")


def test_removing_a_panel_clause_takes_its_reviewers_marks_out_of_the_scheme_tests():
    files = _files(FIXTURES / "round_walk")
    removal = edit.remove_clause(files, "2")
    assert removal.touched == ["scheme.yaml：计划完成、会议2次、两位评审各打9分和7分"]
    assert "clauses/02-experts.yaml" not in removal.files
    removed, added = _changes(files, removal.files)["scheme.yaml"]
    assert removed == [
        "    marks:",
        '      - {clause: "2", reviewer: 评审甲, points: 9}',
        '      - {clause: "2", reviewer: 评审乙, points: 7}',
    ]
    assert added == []
    assert "marks" not in _head_tests(removal.files)[0]


def test_a_file_not_shaped_as_a_rule_file_is_an_edit_error_not_a_crash():
    files = {
        "clauses/07-x.yaml": 'id: "7"\nrules: 不是列表\ntests: [1, 2]\n',
        "scheme.yaml": "- 1\n",
    }
    for call in (
        lambda: edit.set_rule_field(files, "7", "r1", "points", 1),
        lambda: edit.set_clause_test_field(files, "7", "无", "points", 1),
        lambda: edit.set_scheme_field(files, "title", "x"),
    ):
        with pytest.raises(edit.EditError, match="文本视图"):
            call()


def test_edits_in_several_threads_at_once_give_what_one_thread_gives():
    from concurrent.futures import ThreadPoolExecutor

    files = _files(RULES / "minhang-gumeilu" / "2022")

    ids = [str(_data(files[rel])["id"]) for rel in edit.clause_files(files)]

    def one(n: int) -> dict:
        return edit.set_clause_field(files, ids[n % len(ids)], "title", f"标题{n}")

    alone = [one(n) for n in range(40)]
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(one, range(40))) == alone
