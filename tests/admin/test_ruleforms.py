"""The clause forms (admin.ruleforms and admin/_clause_form.html): on every shipped scheme and
the fixture schemes, every clause's form posted back as a browser would post it changes no byte;
one value changed per kind of field changes that one file and no other, and the loader then loads
the scheme or names the error the change causes; errors are shown beside their fields; numbers
are exact decimals; the structural actions (rows, rules, facts, vetoes, test cases) work."""

from __future__ import annotations

import difflib
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
