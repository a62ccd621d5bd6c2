"""The clause forms (admin.ruleforms and admin/_clause_form.html): on every shipped scheme and
the fixture schemes, every clause's form posted back as a browser would post it changes no byte;
one value changed per kind of field changes that one file and no other, and the loader then loads
the scheme or names the error the change causes; errors are shown beside their fields; numbers
are exact decimals; the structural actions (rows, rules, facts, vetoes, test cases) work."""

from __future__ import annotations

import difflib
import html as html_lib
import re
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import jinja2
import pytest
from werkzeug.datastructures import MultiDict

from admin import ruleforms
from service.rulefiles import edit
from service.rulefiles.loader import find_schemes, snapshot

from ..conftest import FIXTURES, RULES

TEMPLATES = Path(__file__).resolve().parents[2] / "admin" / "templates"
SCHEMES = sorted(find_schemes(RULES)) + [
    FIXTURES / name
    for name in (
        "panel",
        "clause_bonus",
        "applies",
        "round_walk",
        "minimal",
        "lowering",
        "weighted",
    )
]
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES)),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


SHUANGTAIZI_ = RULES / "shuangtaizi" / "2016-2017"


def _files(folder) -> dict[str, str]:
    return {rel: data.decode("utf-8") for rel, data in snapshot(folder).items()}


def _ids(folder) -> str:
    return str(folder.relative_to(folder.parents[1]))


def render(ctx: dict) -> str:
    return _ENV.get_template("admin/_clause_form.html").render(form=ctx)


class _Form(HTMLParser):
    """What a browser posts for a form: inputs (without line breaks, as browsers sanitize
    them), textareas (their first newline dropped, as HTML parsing drops it, lines ending CRLF
    as browsers send them) and selected options."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.fields: list[tuple[str, str]] = []
        self._textarea: str | None = None
        self._text: list[str] = []
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "input" and a.get("type", "text") in ("text", "hidden"):
            # a browser strips line breaks from a text input's value (HTML's value sanitization)
            value = (a.get("value") or "").replace("\r", "").replace("\n", "")
            self.fields.append((a["name"], value))
        elif tag == "textarea":
            self._textarea, self._text = a["name"], []
        elif tag == "select":
            self._select, self._options = a["name"], []
        elif tag == "option" and self._select is not None:
            self._options.append((a.get("value", ""), "selected" in a))

    def handle_data(self, data):
        if self._textarea is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "textarea" and self._textarea is not None:
            text = "".join(self._text)
            text = text[1:] if text.startswith("\n") else text
            self.fields.append((self._textarea, text.replace("\n", "\r\n")))
            self._textarea = None
        elif tag == "select" and self._select is not None:
            chosen = [v for v, sel in self._options if sel] or [v for v, _ in self._options[:1]]
            self.fields.append((self._select, chosen[0] if chosen else ""))
            self._select = None


def posted(html: str, **changes) -> MultiDict:
    parser = _Form()
    parser.feed(html)
    names = [n for n, _ in parser.fields]
    assert len(names) == len(set(names)), "two inputs share a name"
    data = dict(parser.fields)
    for name, value in changes.items():
        assert name in data, name
        data[name] = value
    return MultiDict(list(data.items()))


def clause_ids(files: dict) -> list[str]:
    out = []
    for rel in edit.clause_files(files):
        out.append(str(edit.document(files, rel)["id"]))
    return out


def changed_lines(before: dict, after: dict) -> dict[str, tuple[list[str], list[str]]]:
    out = {}
    for rel in sorted(set(before) | set(after)):
        a, b = before.get(rel, "").splitlines(), after.get(rel, "").splitlines()
        if before.get(rel) == after.get(rel):
            continue
        removed, added = [], []
        for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
            if op != "equal":
                removed += a[i1:i2]
                added += b[j1:j2]
        out[rel] = (removed, added)
    return out


# --- every shipped scheme: posted unchanged is byte-identical ----------------------------------


@pytest.mark.parametrize("folder", SCHEMES, ids=_ids)
def test_every_clause_form_posted_as_rendered_changes_no_byte(folder):
    files = _files(folder)
    for cid in clause_ids(files):
        ctx = ruleforms.clause_form(files, cid)
        html = render(ctx)
        # every fact's choices, required and applies_when are fields of the form, posted too
        for row in ctx["facts"].rows:
            for key in ("choices", "required", "applies_when"):
                assert f'name="{row.cells[key].name}"' in html, (cid, row.key, key)
        # the clause's tasks, and every test case's marks and note, are fields posted too
        assert 'name="c.tasks"' in html, cid
        for row in ctx["tests"].rows:
            for key in ("marks", "note"):
                assert f'name="{row.cells[key].name}"' in html, (cid, row.key, key)
        after = ruleforms.apply_clause_form(files, cid, posted(html))
        assert after == files, (cid, list(changed_lines(files, after)))
        assert after.changes == []


def test_the_shipped_choices_required_and_applies_when_are_shown_as_written():
    """The unchanged posts above cover a written value of each of the three, not only blanks."""
    shuangtaizi = ruleforms.clause_form(_files(SHUANGTAIZI_), "30")
    cells = {r.title: r.cells for r in shuangtaizi["facts"].rows}
    choice = next(c for c in cells.values() if c["type"].value == "choice")
    assert choice["choices"].input == "lines" and choice["choices"].value.split("\n") == [
        "按规定组织或参与了调查处理",
        "年度内无需调查处理的工程质量事故或质量问题",
        "未按规定组织或参与调查处理",
    ]
    applies = ruleforms.clause_form(_files(FIXTURES / "applies"), "8")
    cells = {r.title: r.cells for r in applies["facts"].rows}
    assert cells["chair_is_principal"]["applies_when"].value == "committee_established"
    assert cells["chair_is_principal"]["applies_when"].input == "expression"
    assert cells["chair_is_principal"]["required"].value == ""  # not written: required
    assert [v for v, _ in cells["chair_is_principal"]["required"].options] == ["", "true", "false"]


# --- every shipped scheme: one value changed per kind of field ---------------------------------


def _bumped(value: str) -> str:
    return format(Decimal(value) + 1, "f")


def _kinds_of_change(ctx: dict):
    """(field, new text, whether the scheme must still load) for one field of each kind."""
    f = ctx["fields"]
    yield f["c.title"], "改过的条款名称", True
    yield f["c.source"], f["c.source"].value + "\n新增的一段原文", True
    yield f["c.note"], "新的解读说明", True
    yield f["c.deadline"], "2031年12月底", True
    yield f["c.offices"], f["c.offices"].value + "\n新的责任部门", True
    yield f["c.points"], _bumped(f["c.points"].value), False  # the subtotal no longer adds up
    yield f["c.category"], "没有这一类", False
    if f["c.tasks"].value:  # a task renamed: its one line; its deadline changed: that line
        first, _, rest = f["c.tasks"].value.partition("\n")
        task, *more = first.split(" | ")
        yield f["c.tasks"], "\n".join(filter(None, [" | ".join([task + "改"] + more), rest])), True
    yield f["c.tasks"], f["c.tasks"].value + "\n新增的工作任务 | 全年 | 营商办、市场所", True
    for row in ctx["facts"].rows[:1]:
        yield row.cells["label"], "改过的事实名称", True
        yield row.cells["help"], "改过的填报说明", True
        # not required: a case that leaves it out is then scored, not incomplete (may fail)
        flag = row.cells["required"]
        yield flag, "false" if flag.value != "false" else "true", False
        yield row.cells["applies_when"], "not_declared_anywhere", False  # the loader names it
    for row in ctx["facts"].rows:
        if row.cells["choices"].value:  # a choice renamed: its one line (cases giving it fail)
            first, _, rest = row.cells["choices"].value.partition("\n")
            yield row.cells["choices"], "\n".join(filter(None, [first + "改", rest])), False
        if row.cells["max"].value:
            yield row.cells["max"], _bumped(row.cells["max"].value), False
    for rf in ctx["rules"]:
        yield rf.fields[0], "改过的规则说明", True  # title
        for fld in rf.fields:
            if fld.input == "expression" and fld.value:
                yield fld, f"({fld.value})", True  # the same condition, written otherwise
            if fld.input == "select" and fld.name.endswith(".bonus") and not fld.value:
                yield fld, "false", True
        for fld in rf.panel[:1]:
            if fld.value:  # a panel written: its number of reviewers
                yield fld, str(int(fld.value) + 2), False
        for table in rf.tables:
            for cell in ("points", "weight", "label"):
                if cell in table.rows[0].cells and table.rows[0].cells[cell].value:
                    c = table.rows[0].cells[cell]
                    yield c, (_bumped(c.value) if cell != "label" else "改过的档名"), False
            lo = table.rows[-1].cells.get("lo")
            if lo is not None:
                yield lo, "-12345", False  # overlaps: the loader names the band
    for row in ctx["vetoes"].rows[:1]:
        yield row.cells["reason"], "改过的否决依据", True
        yield row.cells["when"], f"({row.cells['when'].value})", True
    for row in ctx["tests"].rows[:1]:
        if Decimal(row.cells["points"].value) != 0:
            yield row.cells["points"], "0", True  # within every clause's range
        yield row.cells["fired"], "无", True
        yield row.cells["note"], "新的用例说明", True
        if row.cells["marks"].value:  # a reviewer's points changed: that mark's line only
            first, _, rest = row.cells["marks"].value.partition("\n")
            reviewer, points, *reason = first.split(" | ")
            line = " | ".join([reviewer, _bumped(points) if Decimal(points) < 1 else "1", *reason])
            yield row.cells["marks"], "\n".join(filter(None, [line, rest])), False
        for key, cell in row.cells.items():
            if key.startswith("fact.") and cell.value and cell.input == "text":
                try:  # may leave the fact's range: the loader then says so at the case
                    yield cell, _bumped(cell.value), False
                except ArithmeticError:
                    yield cell, cell.value + "改", False
                break


def _kind(name: str) -> str:
    """A field's name without the ids in it: "r.*.bands.*.points"."""
    return re.sub(r"\.\d+\.", ".*.", re.sub(r"^([frvt])\.[^.]+\.", r"\1.*.", name))


@pytest.mark.parametrize("folder", SCHEMES, ids=_ids)
def test_one_changed_value_changes_that_value_only(folder):
    """Every clause's title, and each kind of field in the first two clauses that have it
    (each post writes the file the round-trip way: tens of milliseconds)."""
    files = _files(folder)
    prefix = _ids(folder)
    tried: dict[str, int] = {}
    checked_kinds = set()
    for cid in clause_ids(files):
        ctx = ruleforms.clause_form(files, cid)
        html = render(ctx)
        rel = ctx["file"]
        for fld, value, must_load in _kinds_of_change(ctx):
            kind = _kind(fld.name)
            if value == fld.value or (tried.get(kind, 0) >= 2 and kind != "c.title"):
                continue
            tried[kind] = tried.get(kind, 0) + 1
            after = ruleforms.apply_clause_form(files, cid, posted(html, **{fld.name: value}))
            changes = changed_lines(files, after)
            assert list(changes) == [rel], (fld.name, changes)
            removed, added = changes[rel]
            if fld.input not in ("textarea", "lines"):
                assert len(removed) <= 1 and len(added) == 1, (fld.name, removed, added)
            assert after.changes and fld.label in after.changes[0]
            if kind in checked_kinds:  # the loader reads the whole scheme: once per kind
                continue
            checked_kinds.add(kind)
            checked = edit.check(after, prefix)
            if must_load:
                assert checked.ok, (fld.name, value, str(checked.error))
            elif not checked.ok:  # the error is at a line of a file of the scheme
                assert all(e.file.startswith(prefix + "/") for e in checked.error.errors)
    assert {"c.title", "c.source", "c.offices", "c.points", "c.category"} <= checked_kinds
    assert {"t.*.points", "f.*.label", "r.*.title"} <= checked_kinds
    assert {"f.*.required", "f.*.applies_when"} <= checked_kinds
    if folder == SHUANGTAIZI_:  # the one shipped choice fact: a choice renamed
        assert "f.*.choices" in checked_kinds
    assert {"c.tasks", "t.*.note"} <= checked_kinds
    if folder.name in ("panel", "round_walk"):  # the schemes with marks written
        assert "t.*.marks" in checked_kinds


# --- errors beside their fields ----------------------------------------------------------------


def _errors_by_line(error) -> dict:
    out: dict = {}
    for e in error.errors:
        out.setdefault((e.file, e.line), []).append(e.message)
    return out


SHUANGTAIZI = RULES / "shuangtaizi" / "2016-2017"
GUMEILU = RULES / "minhang-gumeilu" / "2022"


def test_an_overlapping_band_is_reported_beside_its_row():
    files = _files(SHUANGTAIZI)
    html = render(ruleforms.clause_form(files, "3"))
    # band 2 now starts at 1.5: it overlaps band 1 ([1.2, inf)) and leaves [1, 1.2) uncovered
    after = ruleforms.apply_clause_form(files, "3", posted(html, **{"r.ratio.bands.2.lo": "1.5"}))
    assert '      - {range: "[1.5, 1.2)", points: 3' in after["clauses/03-quality-incentives.yaml"]
    checked = edit.check(after, "shuangtaizi/2016-2017")
    assert not checked.ok
    line = checked.error.errors[0].line
    ctx = ruleforms.clause_form(after, "3", _errors_by_line(checked.error))
    band = ctx["rules"][1].tables[0].rows[1]
    assert band.line == line and band.errors == [checked.error.errors[0].message]
    assert ctx["errors"] == []
    # on the page: the message in the row after the band's
    page = render(ctx)
    row = page.index('id="cf-r-ratio-bands-2"')
    assert page.index(checked.error.errors[0].message) > row
    assert page.index(checked.error.errors[0].message) < page.index('id="cf-r-ratio-bands-3"')


def test_an_error_at_a_block_style_key_is_beside_that_field_and_others_are_listed():
    files = _files(GUMEILU)
    html = render(ruleforms.clause_form(files, "13"))
    after = ruleforms.apply_clause_form(files, "13", posted(html, **{"r.r2.cap": "0"}))
    checked = edit.check(after, "minhang-gumeilu/2022")
    assert not checked.ok
    (error,) = [e for e in checked.error.errors if "13-equipment" in e.file]
    ctx = ruleforms.clause_form(
        after,
        "13",
        {
            (error.file, error.line): [error.message],
            ("clauses/13-equipment-accidents.yaml", 1000): ["文件末尾之后的错误"],
            ("scheme.yaml", 3): ["另一个文件的错误"],
        },
    )
    assert ctx["fields"]["r.r2.cap"].errors == [error.message]
    assert ctx["errors"] == ["文件末尾之后的错误"]  # another file's errors are not this form's
    assert 'class="field has-error"' in render(ctx)


def test_an_error_inside_a_multi_line_value_goes_to_the_enclosing_field():
    files = _files(SHUANGTAIZI)
    ctx = ruleforms.clause_form(files, "3")
    source = ctx["fields"]["c.source"]
    ctx = ruleforms.clause_form(
        files, "3", {("x/clauses/03-quality-incentives.yaml", source.line + 2): ["原文有误"]}
    )
    assert ctx["fields"]["c.source"].errors == ["原文有误"]


# --- numbers -----------------------------------------------------------------------------------


def test_numbers_go_from_the_form_to_the_file_as_exact_decimals():
    files = _files(GUMEILU)
    html = render(ruleforms.clause_form(files, "13"))
    rel = "clauses/13-equipment-accidents.yaml"
    for text, written in (
        ("0.1", "0.1"),
        ("2.10", "2.10"),
        (" 3.333333333333333333 ", "3.333333333333333333"),
        ("1E+1", "10"),
    ):
        after = ruleforms.apply_clause_form(files, "13", posted(html, **{"r.r2.cap": text}))
        assert f"    cap: {written}\n" in after[rel], text
    for name, text, words in (
        ("r.r2.cap", "三", "规则“r2”的上限应为数字，收到“三”"),
        ("r.r2.each", "1/2", "规则“r2”的每项分值应为数字，收到“1/2”"),
        ("c.points", "NaN", "分值应为数字"),
        ("t.2.points", "-1分", "期望得分应为数字"),
        ("f.equipment_accident_deaths.max", "0.1.2", "最大值应为数字"),
    ):
        with pytest.raises(edit.EditError, match=words) as caught:
            ruleforms.apply_clause_form(files, "13", posted(html, **{name: text}))
        assert caught.value.field == name


def test_a_malformed_band_edge_names_the_band_in_chinese():
    files = _files(SHUANGTAIZI)
    html = render(ruleforms.clause_form(files, "3"))
    with pytest.raises(edit.EditError, match="^第2档上限应为数字，收到“1.2x”$") as caught:
        ruleforms.apply_clause_form(files, "3", posted(html, **{"r.ratio.bands.2.hi": "1.2x"}))
    assert caught.value.field == "r.ratio.bands.2.hi"


def test_a_required_field_left_empty_is_named():
    files = _files(GUMEILU)
    html = render(ruleforms.clause_form(files, "13"))
    with pytest.raises(edit.EditError, match="条款名称必须填写") as caught:
        ruleforms.apply_clause_form(files, "13", posted(html, **{"c.title": "  "}))
    assert caught.value.field == "c.title"


def test_several_changes_in_one_post_and_a_renamed_test_case():
    files = _files(GUMEILU)
    html = render(ruleforms.clause_form(files, "13"))
    after = ruleforms.apply_clause_form(
        files,
        "13",
        posted(
            html,
            **{
                "t.2.name": "一起无死亡事故",
                "t.2.points": "-1.5",
                "t.2.fact.equipment_accident_deaths": "",
                "t.2.fired": "r1、r2",
                "c.offices": "甲\r\n乙\r\n",
                "c.evidence": "",
            },
        ),
    )
    text = after["clauses/13-equipment-accidents.yaml"]
    assert (
        "  - name: 一起无死亡事故\n    facts: {nonfatal_equipment_accidents: 1}\n    points: -1.5\n    fired: [r1, r2]\n"
        in text
    )
    assert "offices: [甲, 乙]\n" in text and "evidence" not in text
    assert len(after.changes) == 6


# --- rows, rules, facts, vetoes and test cases added and removed -------------------------------


def _unchanged_round_trip(files: dict, cid: str) -> None:
    html = render(ruleforms.clause_form(files, cid))
    assert ruleforms.apply_clause_form(files, cid, posted(html)) == files


def _post(files, cid, action, **fields):
    html = render(ruleforms.clause_form(files, cid))
    form = posted(html, **fields)
    form.add("action", action)
    return ruleforms.apply_clause_form(files, cid, form)


def test_adding_and_removing_a_band_row():
    files = _files(SHUANGTAIZI)
    rel = "clauses/03-quality-incentives.yaml"
    added = _post(files, "3", "add_row:bands:ratio")
    removed, lines = changed_lines(files, added)[rel]
    assert removed == [] and lines == ['      - {range: "[0, inf)", points: 0}']
    _unchanged_round_trip(added, "3")
    ctx = ruleforms.clause_form(added, "3")
    assert len(ctx["rules"][1].tables[0].rows) == 5
    gone = _post(added, "3", "remove_row:bands:5:ratio")
    assert gone == files
    gone = _post(files, "3", "remove_row:bands:2:ratio")
    assert changed_lines(files, gone)[rel] == (
        ['      - {range: "[1, 1.2)", points: 3, label: 达到全市平均值}'],
        [],
    )


def test_adding_and_removing_a_maturity_level_and_a_weighted_part():
    files = _files(RULES / "baoshan" / "2022-c1")
    rel = "clauses/03-2.1-report.yaml"
    added = _post(files, "2.1", "add_row:levels:r1")
    assert changed_lines(files, added)[rel] == (
        [],
        ['      - range: "[0, inf)"', "        label: 新的一档"],
    )
    assert _post(added, "2.1", "remove_row:levels:5:r1") == files
    files = _files(FIXTURES / "weighted")
    added = _post(files, "2", "add_row:parts:r1")
    assert changed_lines(files, added)["clauses/02-extra.yaml"][1] == [
        "      - {fact: award_score, weight: 1}"
    ]
    with pytest.raises(edit.EditError, match="至少要有一部分"):
        _post(files, "2", "remove_row:parts:1:r1")


def test_adding_a_fact_and_removing_one_from_every_test_that_gives_it():
    files = _files(GUMEILU)
    rel = "clauses/13-equipment-accidents.yaml"
    ctx = ruleforms.clause_form(files, "13")
    deaths = next(r for r in ctx["facts"].rows if r.title == "equipment_accident_deaths")
    # the form says, before anything is removed, which test cases give the fact
    assert deaths.note.startswith(
        "删去时也从15个测试用例中删去：本条款用例“无事故”、本条款用例“1起"
    )
    assert deaths.note.endswith("细则用例“什么都没做”")
    added = _post(
        files,
        "13",
        "add_fact",
        **{
            "new_fact.name": "serious_accidents",
            "new_fact.label": "较大事故起数",
            "new_fact.type": "integer",
        },
    )
    assert changed_lines(files, added)[rel] == (
        [],
        ["  - name: serious_accidents", "    type: integer", "    label: 较大事故起数"],
    )
    assert added.changes == ["添加事实“serious_accidents”"]
    _unchanged_round_trip(added, "13")
    with pytest.raises(edit.EditError, match="事实名应由英文字母") as caught:
        _post(files, "13", "add_fact", **{"new_fact.name": "较大事故"})
    assert caught.value.field == "new_fact.name"
    removed = _post(files, "13", "remove_fact:equipment_accident_deaths")
    assert removed.touched == deaths.uses
    assert len([n for n in deaths.uses if n.startswith("scheme.yaml：")]) == 5
    assert "equipment_accident_deaths" not in "".join(
        line for line in removed[rel].splitlines() if "facts:" in line
    )
    checked = edit.check(removed, "gumeilu")  # rule r2 still reads it: the loader says where
    assert not checked.ok and "equipment_accident_deaths" in str(checked.error)


@pytest.mark.parametrize("kind", sorted(ruleforms.BLOCKS))
def test_a_rule_of_each_kind_is_added_shown_and_removed(kind):
    files = _files(GUMEILU)
    rel = "clauses/13-equipment-accidents.yaml"
    added = _post(files, "13", "add_rule", **{"new_rule.kind": kind})
    assert added.changes == [f"添加规则“r3”（{ruleforms.BLOCKS[kind].title}）"]
    removed, lines = changed_lines(files, added)[rel]
    assert removed == [] and lines[:2] == ["  - id: r3", f"    kind: {kind}"]
    _unchanged_round_trip(added, "13")
    ctx = ruleforms.clause_form(added, "13")
    new = ctx["rules"][-1]
    required = [k for k in ruleforms.BLOCKS[kind].keys if k.required]
    shown = {f.name for f in new.fields} | {t.key for t in new.tables}
    assert all(f"r.r3.{k.name}" in shown for k in required)
    # whatever the loader says of the new rule is shown at it (or listed), never lost
    checked = edit.check(added, "gumeilu")
    if not checked.ok:
        ctx = ruleforms.clause_form(added, "13", _errors_by_line(checked.error))
        mine = [e.message for e in checked.error.errors if e.file.endswith(rel)]
        shown = (
            [m for f in ctx["fields"].values() for m in f.errors] + new_errors(ctx) + ctx["errors"]
        )
        assert sorted(mine) == sorted(shown)
    assert _post(added, "13", "remove_rule:r3") == files


def new_errors(ctx: dict) -> list[str]:
    rows = [rf.row for rf in ctx["rules"]] + ctx["facts"].rows + ctx["tests"].rows
    rows += [r for rf in ctx["rules"] for t in rf.tables for r in t.rows]
    return [m for r in rows for m in r.errors]


def test_removing_a_rule_takes_it_out_of_the_expected_rules():
    files = _files(GUMEILU)
    removed = _post(files, "13", "remove_rule:r1")
    rel = "clauses/13-equipment-accidents.yaml"
    assert "1起无死亡事故" in " ".join(removed.touched)
    assert "fired: [r1" not in removed[rel] and "r1]" not in removed[rel]
    with pytest.raises(edit.EditError, match="至少要有一条规则"):
        _post(_files(FIXTURES / "weighted"), "2", "remove_rule:r1")


def test_adding_and_removing_a_veto_and_a_test_case():
    files = _files(GUMEILU)
    rel = "clauses/13-equipment-accidents.yaml"
    added = _post(files, "13", "add_veto")
    assert changed_lines(files, added)[rel][0] == []
    assert "vetoes:\n  - id: v1\n" in added[rel]
    _unchanged_round_trip(added, "13")
    edited = _post(
        added,
        "13",
        "save",
        **{
            "v.v1.reason": "原文：发生重大事故的不得分",
            "v.v1.when": "equipment_accident_deaths >= 3",
        },
    )
    assert (
        "    when: equipment_accident_deaths >= 3\n    reason: 原文：发生重大事故的不得分\n"
        in edited[rel]
    )
    assert _post(edited, "13", "remove_veto:v1") == files
    added = _post(files, "13", "add_test")
    assert changed_lines(files, added)[rel] == (
        [],
        ["  - name: 新用例12", "    facts: {}", "    points: 0"],
    )
    filled = _post(
        added,
        "13",
        "save",
        **{"t.12.fact.equipment_accident_deaths": "3", "t.12.points": "-3", "t.12.fired": "r2"},
    )
    assert (
        "  - name: 新用例12\n    facts: {equipment_accident_deaths: 3}\n    points: -3\n    fired: [r2]\n"
        in filled[rel]
    )
    assert _post(filled, "13", "remove_test:12") == files


def test_an_unknown_action_is_refused():
    files = _files(GUMEILU)
    with pytest.raises(edit.EditError, match="无法识别的操作 launch"):
        _post(files, "13", "launch")
    assert _post(files, "13", "save") == files


def test_a_clause_broken_in_the_text_view_still_gets_a_form_and_the_loader_has_the_word():
    broken = (
        'id: "7"\ntitle: 标题\nfacts: 不是列表\nrules:\n  - 不是映射\n  - id: r2\n    kind: bands\n'
        "    bands: [1, {range: '[0, 1)', points: x}]\nvetoes: [1]\ntests: [1, {name: a, facts: [1]}]\n"
    )
    files = {"clauses/07-x.yaml": broken, "scheme.yaml": "categories: 不是列表\n"}
    ctx = ruleforms.clause_form(files, "7", {("clauses/07-x.yaml", 5): ["规则应为映射"]})
    assert [rf.id for rf in ctx["rules"]] == ["r2"]
    assert ctx["fields"]["r.r2.bands.2.points"].value == "x"
    # the rule that is not a mapping has no form: its error is listed, not lost
    assert ctx["errors"] == ["规则应为映射"] and ctx["tests"].rows[0].title == "a"
    html = render(ctx)
    assert ruleforms.apply_clause_form(files, "7", posted(html)) == files


def test_a_failing_case_is_shown_at_its_row_and_a_block_case_at_its_name():
    files = _files(SHUANGTAIZI)
    ctx = ruleforms.clause_form(files, "3")
    flow = ctx["tests"].rows[2]
    ctx = ruleforms.clause_form(files, "3", {(flow.file, flow.line): ["期望3分，实际得2分"]})
    assert ctx["tests"].rows[2].errors == ["期望3分，实际得2分"]
    files = _files(GUMEILU)
    ctx = ruleforms.clause_form(files, "13")
    block = ctx["tests"].rows[1]
    ctx = ruleforms.clause_form(files, "13", {(block.file, block.line): ["期望-1分，实际得0分"]})
    assert ctx["fields"]["t.2.name"].errors == ["期望-1分，实际得0分"]
    # a line inside a block case, no field at it: the case's row
    ctx = ruleforms.clause_form(files, "13", {(block.file, block.line + 3): ["第四行"]})
    assert ctx["fields"]["t.2.fired"].errors == ["第四行"]
    page = render(ctx)
    assert page.index("第四行") > page.index('id="cf-t-2"')


def test_an_assessed_rule_edits_its_reviewer_bounds_as_its_block_declares():
    # the assessed block declares its value key ``bounds``: the fact's min and max are the
    # reviewer's bounds, edited with the rule (no kind is named in admin/ruleforms.py)
    assert [k.name for k in ruleforms.BLOCKS["assessed"].keys if k.bounds] == ["value"]
    files = _files(GUMEILU)
    ctx = ruleforms.clause_form(files, "6")
    (rule,) = ctx["rules"]
    assert [(f.name, f.value) for f in rule.bounds] == [
        ("r.r1.bounds.min", "0"),
        ("r.r1.bounds.max", "6"),
    ]
    after = ruleforms.apply_clause_form(files, "6", posted(render(ctx), **{"r.r1.bounds.max": "5"}))
    assert changed_lines(files, after) == {
        "clauses/06-brand-building.yaml": (["    max: 6"], ["    max: 5"])
    }
    assert after.changes == ["规则“r1”的评审给分上限改为“5”"]
    checked = edit.check(after, "gumeilu")  # a reviewer's 6 in a test case is now out of bounds
    assert not checked.ok and "brand_building_score" in str(checked.error)


def test_the_same_form_applied_twice_to_the_same_files_gives_equal_results_apart():
    files = _files(GUMEILU)
    form = posted(render(ruleforms.clause_form(files, "13")), **{"r.r2.cap": "4"})
    first = ruleforms.apply_clause_form(files, "13", form)
    second = ruleforms.apply_clause_form(files, "13", form)
    assert first == second and first is not second and first.changes == second.changes
    first.changes.append("x")
    first["scheme.yaml"] = ""
    assert ruleforms.apply_clause_form(files, "13", form) == second
    assert second.changes == ["规则“r2”的上限改为“4”"]


def test_a_value_written_over_several_lines_is_shown_in_a_textarea_and_kept():
    # a text input cannot hold a line break (a browser drops it): such a value gets a textarea
    files = _files(GUMEILU)
    rel = "clauses/13-equipment-accidents.yaml"
    text = files[rel].replace(
        "    help: 有人员死亡的事故不计入本数，另填死亡人数。\n",
        "    help: |-\n      有人员死亡的事故不计入本数，\n      另填死亡人数。\n",
    )
    files = {**files, rel: text}
    ctx = ruleforms.clause_form(files, "13")
    html = render(ctx)
    assert ruleforms.apply_clause_form(files, "13", posted(html)) == files
    assert ctx["fields"]["f.nonfatal_equipment_accidents.help"].input == "textarea"
    after = ruleforms.apply_clause_form(
        files, "13", posted(html, **{"f.nonfatal_equipment_accidents.help": "第一行\r\n第二行"})
    )
    assert "    help: |-\n      第一行\n      第二行\n" in after[rel]


# --- in a real browser -------------------------------------------------------------------------


@pytest.mark.e2e
def test_in_chromium_posted_unchanged_is_byte_identical_and_a_typed_value_is_written():
    """Debian's Chromium posts the forms (what a browser does to inputs, textareas and
    selects is the browser's, not an emulation): every clause of 双台子 and the clauses with a
    panel, maturity levels and weighted parts; then a typed band edge and a clicked button."""
    from flask import Flask, render_template_string, request

    from tools.browser import CHROMIUM, chromium, serve

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing")
    pytest.importorskip("playwright.sync_api")
    schemes = {
        "s": _files(SHUANGTAIZI),
        "c1": _files(RULES / "baoshan" / "2022-c1"),
        "panel": _files(FIXTURES / "panel"),
        "weighted": _files(FIXTURES / "weighted"),
    }
    results: dict = {}
    app = Flask(__name__, template_folder=str(TEMPLATES))
    page_html = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"></head><body>'
        '<form method="post">{% include "admin/_clause_form.html" %}'
        '<button type="submit" id="save">保存</button></form></body></html>'
    )

    @app.get("/<scheme>/<cid>")
    def show(scheme, cid):
        return render_template_string(page_html, form=ruleforms.clause_form(schemes[scheme], cid))

    @app.post("/<scheme>/<cid>")
    def save(scheme, cid):
        results[(scheme, cid)] = ruleforms.apply_clause_form(schemes[scheme], cid, request.form)
        return "ok"

    clauses = [("s", cid) for cid in clause_ids(schemes["s"])]
    clauses += [("c1", "2.1"), ("panel", "2"), ("weighted", "1")]
    with serve(app) as base, chromium() as context:
        page = context.new_page()
        for scheme, cid in clauses:
            page.goto(f"{base}/{scheme}/{cid}")
            page.click("#save")
            page.wait_for_load_state()
            assert results[(scheme, cid)] == schemes[scheme], (scheme, cid)
        page.goto(f"{base}/s/3")
        page.fill('[name="r.ratio.bands.2.lo"]', "1.1")
        page.select_option('[name="r.ratio.bands.2.lo_closed"]', "(")
        page.click("#save")
        page.wait_for_load_state()
        rel = "clauses/03-quality-incentives.yaml"
        assert changed_lines(schemes["s"], results[("s", "3")]) == {
            rel: (
                ['      - {range: "[1, 1.2)", points: 3, label: 达到全市平均值}'],
                ['      - {range: "(1.1, 1.2)", points: 3, label: 达到全市平均值}'],
            )
        }
        page.goto(f"{base}/s/3")
        page.click('button[value="add_row:bands:ratio"]')
        page.wait_for_load_state()
        assert changed_lines(schemes["s"], results[("s", "3")])[rel][1] == [
            '      - {range: "[0, inf)", points: 0}'
        ]


# --- a fact's choices, required and applies_when through the clause page (Flask test client) ---

LEADING = "clauses/01-leading-group.yaml"


def _cell(page_html: str, name: str) -> tuple[int, list[str]]:
    """The line a field's cell shows (data-line) and the errors beside it, as the page has them."""
    found = re.search(
        r'<td class="[^"]*" data-line="(\d+)">(?:(?!</td>).)*?name="'
        + re.escape(name)
        + r'"(?:(?!</td>).)*</td>',
        page_html,
        re.S,
    )
    assert found, name
    errors = re.findall(r'<p class="field-error" role="alert">([^<]*)</p>', found.group(0))
    return int(found.group(1)), [html_lib.unescape(e) for e in errors]


def _clause_form(app, year: str, clause: str, file: str):
    """An editor's copy of the rules for ``year``, at clause ``clause``'s page: the editor's
    client, the draft's id, the page's URL, ``file`` as copied, and ``save(data)``, which posts
    the page's form (it must be taken) and returns the draft then and the page after."""
    from .test_rule_pages import _copy, _draft, _post, _signed_in

    editor = _signed_in(app, "editor")
    draft_id = _copy(editor, year)
    url = f"/admin/rules/drafts/{draft_id}/clauses/{clause}"

    def save(data: dict):
        r = _post(editor, draft_id, f"/clauses/{clause}", data, editor.get(url))
        assert r.status_code == 302, r.get_data(as_text=True)[:2000]
        return _draft(app, draft_id), editor.get(url).get_data(as_text=True)

    return editor, draft_id, url, _draft(app, draft_id).files[file], save


def test_a_facts_choices_required_and_applies_when_are_edited_in_the_clause_page(app):
    from .test_rule_pages import _draft, _post

    editor, draft_id, url, original, save = _clause_form(app, "2031", "1", LEADING)

    # required and applies_when: two lines added where the format lists them; the check passes
    view, page = save(
        {
            "f.special_funds.required": "false",
            "f.special_funds.applies_when": "leading_group_document",
        }
    )
    text = view.files[LEADING]
    assert changed_lines({LEADING: original}, {LEADING: text})[LEADING] == (
        [],
        ["    required: false", "    applies_when: leading_group_document"],
    )
    assert view.checked["ok"], view.checked
    assert 'value="leading_group_document"' in page

    # an applies_when that does not load: stored with the draft, its error beside the field at
    # its line, in the words `scoring check` prints
    view, page = save({"f.special_funds.applies_when": "no_such_fact"})
    text = view.files[LEADING]
    assert "    applies_when: no_such_fact\n" in text
    line = text.split("\n").index("    applies_when: no_such_fact") + 1
    checked = edit.check(view.files, view.folder)
    said = [e.message for e in checked.error.errors if e.line == line]
    assert said and "no_such_fact" in said[0]
    at, errors = _cell(page, "f.special_funds.applies_when")
    assert at == line and said[0] in errors[0], (at, errors)

    # both taken out again: the file is what it was, byte for byte
    view, _ = save({"f.special_funds.required": "", "f.special_funds.applies_when": ""})
    assert view.files[LEADING] == original and view.checked["ok"]

    # a choice fact: added without choices (the loader's error beside its row), then its
    # choices given, one renamed and one removed, each its own line
    r = _post(editor, draft_id, "/clauses/1", {"action": "add_fact", "new_fact.name": "funds_source",
              "new_fact.type": "choice", "new_fact.label": "经费来源"}, editor.get(url))  # fmt: skip
    assert r.status_code == 302
    page = editor.get(url).get_data(as_text=True)
    row = page.split('id="cf-f-funds_source"')[1].split("</tr>", 2)
    assert "须列出 choices" in html_lib.unescape(row[0] + row[1])
    view, page = save({"f.funds_source.choices": "区级\r\n街道\r\n社区"})
    text = view.files[LEADING]
    fact_line = next(ln for ln in text.split("\n") if "funds_source" in ln)
    assert fact_line.endswith("choices: [区级, 街道, 社区]}"), fact_line
    assert "须列出 choices" not in str(edit.check(view.files, view.folder).error)
    assert '<textarea id="cf-f-funds_source-choices" name="f.funds_source.choices"' in page
    before = text
    view, _ = save({"f.funds_source.choices": "区级\r\n镇级\r\n社区"})
    removed, added = changed_lines({LEADING: before}, view.files)[LEADING]
    assert removed == [fact_line] and added == [fact_line.replace("街道", "镇级")]
    view, _ = save({"f.funds_source.choices": "区级\r\n社区"})
    assert "choices: [区级, 社区]}" in view.files[LEADING]
    # and the fact removed: the clause is as it was, and loads
    r = _post(
        editor, draft_id, "/clauses/1", {"action": "remove_fact:funds_source"}, editor.get(url)
    )
    assert r.status_code == 302
    view = _draft(app, draft_id)
    assert view.files[LEADING] == original and view.checked["ok"]


# --- a clause's tasks, and a test case's marks and note, through the clause page ----------------

BRAND = "clauses/06-brand-building.yaml"


def test_a_clauses_tasks_are_edited_in_the_clause_page(app):
    from .test_rule_pages import _draft, _post

    editor, draft_id, url, original, save_page = _clause_form(app, "2032", "6", BRAND)
    page = editor.get(url).get_data(as_text=True)
    shown = "制定培育计划、名单 | 7月 | 营商办\n企业品牌建设主题活动 | 9月 | 营商办"
    assert 'name="c.tasks"' in page and html_lib.escape(shown, quote=False) in page

    def save(data: dict):
        return save_page(data)[0]

    # the second task's deadline and offices changed, a third added: only those lines change
    view = save(
        {
            "c.tasks": "制定培育计划、名单 | 7月 | 营商办\r\n"
            "企业品牌建设主题活动 | 10月 | 营商办、市场所\r\n"
            "“企业质量开放日” | 全年"
        }
    )
    assert changed_lines({BRAND: original}, view.files)[BRAND] == (
        ["    deadline: 9月", "    offices: [营商办]"],
        [
            "    deadline: 10月",
            "    offices: [营商办, 市场所]",
            "  - task: “企业质量开放日”",
            "    deadline: 全年",
        ],
    )
    assert view.checked["ok"], view.checked
    # a line without its task: refused, naming the field, and nothing stored
    before = view.files[BRAND]
    r = _post(editor, draft_id, "/clauses/6", {"c.tasks": " | 7月 | 营商办"}, editor.get(url))
    assert r.status_code == 422 and "工作任务第1行没有写工作任务" in html_lib.unescape(r.text)
    assert _draft(app, draft_id).files[BRAND] == before
    # back as it was: the file is what it was, byte for byte; all taken out: the key goes
    view = save({"c.tasks": shown})
    assert view.files[BRAND] == original
    view = save({"c.tasks": ""})
    assert "tasks:" not in view.files[BRAND] and view.checked["ok"], view.checked


def test_a_test_cases_marks_and_note_are_edited_in_the_clause_page(app):
    from .test_rule_pages import _draft, _post

    editor, draft_id, url, original, save = _clause_form(app, "2033", "1", LEADING)

    # a note: one line added after the case's expectations
    view, page = save({"t.1.note": "四件都做到才得满分"})
    assert changed_lines({LEADING: original}, view.files)[LEADING] == (
        [],
        ["    note: 四件都做到才得满分"],
    )
    assert view.checked["ok"], view.checked
    # marks on a clause without a panel do not load: stored with the draft, the check's error
    # beside the marks field at its line
    view, page = save({"t.1.marks": "专家甲 | 1.5 | 材料齐全\r\n专家乙 | 2"})
    text = view.files[LEADING]
    assert "      - {reviewer: 专家甲, points: 1.5, reason: 材料齐全}\n" in text
    assert "      - {reviewer: 专家乙, points: 2}\n" in text
    checked = edit.check(view.files, view.folder)
    assert not checked.ok and not view.checked["ok"]
    marks_line = text.split("\n").index("    marks:") + 1
    said = [e.message for e in checked.error.errors if e.file.endswith(LEADING)]
    at, errors = _cell(page, "t.1.marks")
    assert at == marks_line and errors and any(s in errors[0] for s in said), (at, errors, said)
    # a mark whose points are not a number: refused, naming the field and the line; nothing stored
    r = _post(editor, draft_id, "/clauses/1", {"t.1.marks": "专家甲 | 很好"}, editor.get(url))
    assert r.status_code == 422 and "第1行的分数应为数字，收到“很好”" in html_lib.unescape(r.text)
    assert _draft(app, draft_id).files[LEADING] == text
    # both taken out: the file is what it was, byte for byte, and loads
    view, _ = save({"t.1.marks": "", "t.1.note": ""})
    assert view.files[LEADING] == original and view.checked["ok"]


def test_a_panel_clauses_marks_are_shown_one_reviewer_a_line():
    ctx = ruleforms.clause_form(_files(FIXTURES / "round_walk"), "2")
    marks = ctx["tests"].rows[0].cells["marks"]
    assert marks.input == "lines"
    assert marks.value == "评审甲 | 9 | 现场资料齐全\n评审乙 | 7 | 部分台账不全"


def test_a_task_or_mark_whose_text_holds_a_separator_is_shown_for_the_text_view_not_posted():
    """ "a|b" would read back as two columns: such a list is shown, not offered as a field, so a
    post of the form cannot split it."""
    files = _files(FIXTURES / "round_walk")
    rel = edit.clause_file(files, "2")
    files[rel] = files[rel].replace("reason: 现场资料齐全", "reason: 现场|资料齐全")
    files = edit.set_clause_key(files, "2", "tasks", [{"task": "甲|乙", "deadline": "7月"}])
    ctx = ruleforms.clause_form(files, "2")
    html = render(ctx)
    for name in ("c.tasks", "t.1.marks"):
        assert ctx["fields"][name].input == "static", name
        assert f'name="{name}"' not in html and ruleforms.LIST_IN_TEXT_VIEW in html
    assert ruleforms.apply_clause_form(files, "2", posted(html)) == files
    # without the separator the same marks are a field
    plain = ruleforms.clause_form(_files(FIXTURES / "round_walk"), "2")
    assert plain["fields"]["t.1.marks"].input == "lines"
