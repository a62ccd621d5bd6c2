"""The clause forms (admin.ruleforms and admin/_clause_form.html): on every shipped scheme and
the fixture schemes, every clause's form posted back as a browser would post it changes no byte;
one value changed per kind of field changes that one file and no other, and the loader then loads
the scheme or names the error the change causes; errors are shown beside their fields; numbers
are exact decimals; the structural actions (rows, rules, facts, vetoes, test cases) work."""

from __future__ import annotations

import difflib
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
    FIXTURES / name for name in ("panel", "clause_bonus", "applies", "round_walk")
]
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES)),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def _files(folder) -> dict[str, str]:
    return {rel: data.decode("utf-8") for rel, data in snapshot(folder).items()}


def _ids(folder) -> str:
    return str(folder.relative_to(folder.parents[1]))


def render(ctx: dict) -> str:
    return _ENV.get_template("admin/_clause_form.html").render(form=ctx)


class _Form(HTMLParser):
    """What a browser posts for a form: inputs, textareas (their first newline dropped, as
    HTML parsing drops it, lines ending CRLF as browsers send them) and selected options."""

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
            self.fields.append((a["name"], a.get("value") or ""))
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
        html = render(ruleforms.clause_form(files, cid))
        after = ruleforms.apply_clause_form(files, cid, posted(html))
        assert after == files, (cid, list(changed_lines(files, after)))
        assert after.changes == []


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
    for row in ctx["facts"].rows[:1]:
        yield row.cells["label"], "改过的事实名称", True
        yield row.cells["help"], "改过的填报说明", True
        if row.cells["max"].value:
            yield row.cells["max"], _bumped(row.cells["max"].value), False
    for rf in ctx["rules"]:
        yield rf.fields[0], "改过的规则说明", True  # title
        for fld in rf.fields:
            if fld.input == "expression" and fld.value:
                yield fld, f"({fld.value})", True  # the same condition, written otherwise
            if fld.input == "select" and fld.name.endswith(".bonus") and not fld.value:
                yield fld, "false", True
        for table in rf.tables:
            for cell in ("points", "weight", "label"):
                if cell in table.rows[0].cells and table.rows[0].cells[cell].value:
                    c = table.rows[0].cells[cell]
                    yield c, (_bumped(c.value) if cell != "label" else "改过的档名"), False
            lo = table.rows[-1].cells.get("lo")
            if lo is not None:
                yield lo, "-12345", False  # overlaps: the loader names the band
    for row in ctx["tests"].rows[:1]:
        if Decimal(row.cells["points"].value) != 0:
            yield row.cells["points"], "0", True  # within every clause's range
        yield row.cells["fired"], "无", True
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
