"""The rule editor's pages (issue 10): drafts and releases of a scheme, edited without YAML.

- ``/admin/rules`` lists the drafts and releases by state (``views._rules_page`` asks
  ``drafts_section`` here) and offers 复制为新年度草稿, 上传规则包 and 从磁盘目录建立草稿;
- ``/admin/rules/drafts/<id>``: a draft's state and check result (every error at
  ``file:line:column`` linked to its line in the text view, every failing case beside its case with
  the words ``scoring test`` prints), forms for the header, the category tree, the grading, the
  scheme's test cases and the clause list (add, remove with its facts taken out of the tests,
  move up or down), and the cycle's buttons: 检查, 比较, 影响预览, 提交审批, 批准 / 退回, 撤回,
  下载规则包;
- ``…/clauses/<clause_id>``: one clause, in the form helper "blockforms" renders
  (``admin/_clause_form.html`` inside this page's form; ``ruleforms.apply_clause_form`` saves);
- ``…/files/<path>``: one file as text, numbered, each error at its line, editable as a whole.

Every change goes through ``service.releases`` (edit: a change of the files, checked by the
strict loader and every test case; the journal says who did what). A form is parsed here into
edits of ``service.rulefiles.edit`` (and ``edit_grading``) and tried on the files first, so an
edit that names nothing the files have is shown beside its field without a round trip. Someone
else having saved meanwhile (a stale ``lock``) shows their version and keeps what was typed.

The parsing and the outline of a scheme's files are plain functions of a files dict (tested
without a database); the views are thin.
"""

from __future__ import annotations

import copy
import functools
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, url_for
from ruamel.yaml import YAML

from service import releases, rounds
from service.access import check
from service.domain.blocks import BLOCKS
from service.errors import status_of
from service.exceptions import Conflict, Invalid, NotFound, ServiceError
from service.rulefiles import edit
from service.rulefiles import edit_grading as eg
from service.rulefiles.edit import EditError, Files

from . import export
from .auth import ctx, current_actor, current_person
from .views import bp

STATES = {"draft": "草稿", "proposed": "待批准", "published": "已发布", "withdrawn": "已撤回"}
STATE_BADGES = {"draft": "blue", "proposed": "warn", "published": "ok", "withdrawn": ""}
ORIGINS = {"copy": "复制", "upload": "上传", "disk": "磁盘目录"}
#: the kinds a new clause may start with, as the blocks declare them (``Block.starts``)
KINDS = {k: f"{b.title}（{k}）" for k, b in BLOCKS.items() if b.starts is not None}
METHOD_WORDS = {"none": "不评级", "thresholds": "按分数线", "rank": "按名次"}
EFFECT_WORDS = {"force": "直接定为", "bar": "不得评", "lower": "降一级"}
_ZIP = "application/zip"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_CLAUSE_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.-]*")

Change = Callable[[Files], Files]


# --- the outline of a scheme's files (plain, no Flask) ---------------------------------------------


@dataclass
class Outline:
    """What the draft page shows of a scheme's files, as written (exact text of every number)."""

    header: dict = field(default_factory=dict)
    categories: list[dict] = field(default_factory=list)
    grading: dict = field(default_factory=dict)
    tests: list[dict] = field(default_factory=list)
    ranking_tests: list[dict] = field(default_factory=list)
    clauses: list[dict] = field(default_factory=list)
    fields: dict[int, str] = field(default_factory=dict)  # scheme.yaml's line -> form field
    problem: str = ""  # scheme.yaml cannot be read as a map: the text view is the way in


def _text(value: Any) -> str:
    """A scalar as the form shows it: the number's own digits, true/false, or the text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format(Decimal(repr(value)).normalize(), "f")
    return str(value)


def _reader() -> YAML:
    y = YAML()  # round trip: the line of every test case is known (failing cases name it)
    y.preserve_quotes = True
    return y


def _top(text: str, key: str) -> str:
    found = re.search(rf"^{key}:[ \t]*(.*?)[ \t]*(?:#.*)?$", text, re.M)
    if not found:
        return ""
    value = found.group(1)
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return value


def outline(files: Files) -> Outline:
    """The header, category tree, grading, scheme tests and clause list of a scheme's files. A
    clause file is read by its top-level lines only (id, title, category, points): the list is
    shown even when a clause file is broken, and quickly."""
    out = Outline(**_scheme_outline(files.get("scheme.yaml", "")))
    out.clauses = [
        {
            "id": _top(files[rel], "id"),
            "title": _top(files[rel], "title"),
            "category": _top(files[rel], "category"),
            "points": _top(files[rel], "points"),
            "file": rel,
        }
        for rel in edit.clause_files(files)
    ]
    return out


_OUTLINES: dict[str, dict] = {}  # scheme.yaml's text -> its outline (a page is read more often
# than it is saved: the round-trip parse of 448 lines was 90 % of the draft page's time)
_OUTLINES_LOCK = threading.Lock()


def _scheme_outline(text: str) -> dict:
    with _OUTLINES_LOCK:
        found = _OUTLINES.get(text)
    if found is None:
        found = _read_scheme(text)
        with _OUTLINES_LOCK:
            if len(_OUTLINES) > 64:
                _OUTLINES.clear()
            _OUTLINES[text] = found
    return copy.deepcopy(found)  # the views may add to what they are given


def _read_scheme(text: str) -> dict:
    try:
        doc = _reader().load(text)
    except Exception as err:  # a file broken in the text view: its errors are the loader's
        return {"problem": f"scheme.yaml 不是有效的YAML（{str(err).splitlines()[0][:200]}）"}
    if not isinstance(doc, dict):
        return {"problem": "scheme.yaml 不是细则文件的格式"}
    source = doc.get("source") if isinstance(doc.get("source"), dict) else {}
    header = {k: _text(doc.get(k)) for k in ("id", "title", "year", "issuer", "total")}
    header.update({f"source_{k}": _text(source.get(k)) for k in ("document", "ref", "text")})
    grading = doc.get("grading") if isinstance(doc.get("grading"), dict) else {}
    return {
        "fields": _field_lines(doc, source, grading),
        "header": header,
        "categories": list(_categories(doc.get("categories"), 0)),
        "grading": {
            "method": _text(grading.get("method")) or "none",
            "tiers": _rows(grading.get("tiers"), eg.TIER_FIELDS),
            "distinctions": _rows(grading.get("distinctions"), eg.DISTINCTION_FIELDS),
            "vetoes": _rows(grading.get("vetoes"), ("id", *eg.VETO_FIELDS)),
        },
        "tests": [
            {
                "number": n,
                "name": _text(case.get("name")),
                "total": _text(case.get("total")),
                "grade": _text(case.get("grade")),
                "line": _line(case),
            }
            for n, case in enumerate(_list(doc.get("tests")), 1)
            if isinstance(case, dict)
        ],
        "ranking_tests": [
            {"name": _text(case.get("name")), "line": _line(case)}
            for case in _list(doc.get("ranking_tests"))
            if isinstance(case, dict)
        ],
    }


def _line(node: Any) -> int:
    return node.lc.line + 1 if hasattr(node, "lc") else 0


def _key_line(node: Any, key: str) -> int:
    """The line of ``key`` in a mapping as written (0: not written, or not known)."""
    try:
        return node.lc.key(key)[0] + 1 if key in node else 0
    except (AttributeError, KeyError, TypeError):
        return 0


def _field_lines(doc: Any, source: Any, grading: Any) -> dict[int, str]:
    """{line of scheme.yaml: the draft page's field written there}: an error the loader reports
    at that line is shown beside that field (a category's subtotal, a test's total, …)."""
    at: dict[int, str] = {}

    def put(line: int, name: str) -> None:
        if line:
            at.setdefault(line, name)

    for key in ("title", "year", "issuer", "total"):
        put(_key_line(doc, key), f"h.{key}")
    for key in ("document", "text"):
        put(_key_line(source, key), f"h.source_{key}")
    stack = list(_list(doc.get("categories")))
    while stack:
        cat = stack.pop()
        if not isinstance(cat, dict):
            continue
        cid = _text(cat.get("id"))
        for key in ("points", "cap", "title"):
            put(_key_line(cat, key), f"c.{cid}.{key}")
        put(_line(cat), f"c.{cid}.title")
        stack.extend(_list(cat.get("categories")))
    put(_key_line(grading, "method"), "g.method")
    for prefix, key in (("t", "tiers"), ("d", "distinctions")):
        for n, item in enumerate(_list(grading.get(key)), 1):
            put(_line(item), f"{prefix}.{n}.{'grade' if prefix == 't' else 'name'}")
    for veto in _list(grading.get("vetoes")):
        if isinstance(veto, dict):
            vid = _text(veto.get("id"))
            for key in eg.VETO_FIELDS:
                put(_key_line(veto, key), f"v.{vid}.{key}")
    for n, case in enumerate(_list(doc.get("tests")), 1):
        if isinstance(case, dict):
            put(_key_line(case, "total"), f"s.{n}.total")
            put(_key_line(case, "grade"), f"s.{n}.grade")
    return at


def _list(value: Any) -> list:
    return list(value) if isinstance(value, list) else []


def _rows(items: Any, keys: tuple) -> list[dict]:
    return [
        {"number": n, **{k: _text(item.get(k)) for k in keys}}
        for n, item in enumerate(_list(items), 1)
        if isinstance(item, dict)
    ]


def _categories(items: Any, depth: int):
    for cat in _list(items):
        if not isinstance(cat, dict):
            continue
        yield {
            "id": _text(cat.get("id")),
            "title": _text(cat.get("title")),
            "points": _text(cat.get("points")),
            "cap": _text(cat.get("cap")),
            "kind": _text(cat.get("kind")) or "standard",
            "depth": depth,
        }
        yield from _categories(cat.get("categories"), depth + 1)


# --- the check result, by file and line --------------------------------------------------------


def relative(folder: str, file: str) -> str:
    """A file as the loader names it (``minhang-gumeilu/2023/clauses/04-x.yaml``) inside the
    draft (``clauses/04-x.yaml``)."""
    prefix = folder.rstrip("/") + "/"
    return file[len(prefix) :] if folder and file.startswith(prefix) else file


def placed(checked: dict, folder: str) -> dict:
    """The last check's errors and failing cases keyed where they belong: ``by_file`` {file inside
    the draft: {line: [messages]}} (the text view's lines), ``cases`` {(file, line): failing case}
    (beside each case) and ``errors`` (every error, with its file inside the draft)."""
    by_file: dict[str, dict[int, list[str]]] = {}
    errors = []
    for e in checked.get("errors") or []:
        rel = relative(folder, e.get("file", ""))
        errors.append(dict(e, rel=rel))
        by_file.setdefault(rel, {}).setdefault(int(e.get("line") or 1), []).append(e["message"])
    cases = {}
    for c in checked.get("failing") or []:
        rel = relative(folder, c.get("file", ""))
        cases[(rel, int(c.get("line") or 0))] = dict(c, rel=rel)
        by_file.setdefault(rel, {}).setdefault(int(c.get("line") or 1), []).extend(
            c.get("text", "").splitlines()
        )
    return {"by_file": by_file, "cases": cases, "errors": errors}


def errors_by_line(checked: dict, folder: str) -> dict[tuple[str, int], list[str]]:
    """{(file, line): [messages]} for blockforms' clause form: every error of the last check, and
    every failing case's lines as ``scoring test`` prints them (beside its test in the table).
    Files are named as the loader names them (with the draft's folder)."""
    out: dict[tuple[str, int], list[str]] = {}
    for e in checked.get("errors") or []:
        out.setdefault((e["file"], int(e.get("line") or 1)), []).append(e["message"])
    for c in checked.get("failing") or []:
        out.setdefault((c["file"], int(c.get("line") or 1)), []).extend(
            c.get("text", "").splitlines()
        )
    return out


# --- forms into edits (plain, no Flask) ------------------------------------------------------------


class FormProblems(EditError):
    """Fields a form cannot take as typed: {field name: [message]} (an ``EditError``: raised
    inside ``releases.edit`` it is refused like any edit that cannot be made)."""

    def __init__(self, fields: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


@dataclass
class Edits:
    """A form's edits, each with the field it came from (an ``EditError`` is shown there)."""

    steps: list[tuple[str, Change]] = field(default_factory=list)
    problems: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, change: Change) -> None:
        self.steps.append((name, change))

    def bad(self, name: str, message: str) -> None:
        self.problems.setdefault(name, []).append(message)

    def apply(self, files: Files) -> Files:
        """Every edit in turn; raises ``FormProblems`` naming the field of the first that fails
        (or every field the form could not read)."""
        if self.problems:
            raise FormProblems(self.problems)
        for name, change in self.steps:
            try:
                files = change(files)
            except EditError as err:
                raise FormProblems({name: [str(err)]}) from err
        return files


def number(text: str) -> Decimal:
    """A number as typed (全角 digits and spaces forgiven); ValueError with the words to show."""
    cleaned = (text or "").strip().translate(_FULL_WIDTH).replace(",", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"“{text[:30]}”不是数字") from None
    if not value.is_finite():
        raise ValueError(f"“{text[:30]}”不是有限的数字")
    return value


_FULL_WIDTH = str.maketrans("０１２３４５６７８９．－＋　", "0123456789.-+ ")


def fact_value(text: str) -> Any:
    """A test case's fact as typed: 是/否 (true/false), a number, or text."""
    t = (text or "").strip()
    if t.lower() in ("true", "是", "yes"):
        return True
    if t.lower() in ("false", "否", "no"):
        return False
    try:
        return number(t)
    except ValueError:
        return t


def _num_field(edits: Edits, name: str, typed: str | None, current: str, set_: Callable) -> None:
    """A number field: absent or unchanged is no edit; empty is refused (a form cannot drop a
    key)."""
    if typed is None:
        return
    typed = typed.strip()
    if typed == current:
        return
    if not typed:
        if current:
            edits.bad(name, "不能为空")
        return
    try:
        value = number(typed)
    except ValueError as err:
        edits.bad(name, str(err))
        return
    edits.add(name, lambda f: set_(f, value))


def _text_field(edits: Edits, name: str, typed: str | None, current: str, set_: Callable) -> None:
    if typed is None:
        return
    typed = typed.replace("\r\n", "\n").strip()
    if typed == current.strip():
        return
    if not typed:
        edits.bad(name, "不能为空")
        return
    edits.add(name, lambda f: set_(f, typed))


def header_edits(form, now: Outline) -> Edits:
    """细则基本信息: title, year, issuer, source (document, text), total."""
    edits = Edits()
    h = now.header
    for key in ("title", "issuer"):
        _text_field(
            edits, f"h.{key}", form.get(f"h.{key}"), h.get(key, ""),
            lambda f, v, k=key: edit.set_scheme_field(f, k, v),
        )  # fmt: skip
    year = (form.get("h.year") or "").strip()
    if "h.year" in form and year != h.get("year", ""):
        if not re.fullmatch(r"\d{4}(-\d{4})?", year):
            edits.bad("h.year", "年度应为四位数字，如 2023（跨年写 2016-2017）")
        else:
            edits.add("h.year", lambda f: edit.set_scheme_field(f, "year", year))
    _num_field(edits, "h.total", form.get("h.total"), h.get("total", ""),
               lambda f, v: edit.set_scheme_field(f, "total", v))  # fmt: skip
    for key in ("document", "text"):
        _text_field(
            edits, f"h.source_{key}", form.get(f"h.source_{key}"), h.get(f"source_{key}", ""),
            lambda f, v, k=key: eg.set_scheme_source(f, k, v),
        )  # fmt: skip
    return edits


def category_edits(form, now: Outline) -> Edits:
    """类别: each category's title, points (subtotal) and cap (加分、扣分总计上限)."""
    edits = Edits()
    for cat in now.categories:
        cid = cat["id"]
        key = f"c.{cid}"
        _text_field(edits, f"{key}.title", form.get(f"{key}.title"), cat["title"],
                    lambda f, v, c=cid: edit.set_category_field(f, c, "title", v))  # fmt: skip
        if f"{key}.points" in form:
            _num_field(edits, f"{key}.points", form.get(f"{key}.points"), cat["points"],
                       lambda f, v, c=cid: edit.set_category_field(f, c, "points", v))  # fmt: skip
        typed_cap = (form.get(f"{key}.cap") or "").strip()
        if f"{key}.cap" in form and not typed_cap and cat["cap"]:
            # an emptied cap is no cap: its line goes (edit.set_category_field with None)
            edits.add(f"{key}.cap", lambda f, c=cid: edit.set_category_field(f, c, "cap", None))
        elif f"{key}.cap" in form:
            _num_field(edits, f"{key}.cap", typed_cap, cat["cap"],
                       lambda f, v, c=cid: edit.set_category_field(f, c, "cap", v))  # fmt: skip
    return edits


def _optional_number(edits: Edits, name: str, typed: str) -> Decimal | None:
    typed = (typed or "").strip()
    if not typed:
        return None
    try:
        return number(typed)
    except ValueError as err:
        edits.bad(name, str(err))
        return None


def grading_edits(form, now: Outline) -> Edits:
    """评级办法: the method, each tier (grade, 分数线 min or 名次 top, title), each distinction, each
    grade veto; a row ticked 删除 goes; a filled ``new`` row is added after the others."""
    edits = Edits()
    g = now.grading
    method = form.get("g.method", g.get("method", "none"))
    if method != g.get("method"):
        edits.add("g.method", lambda f: eg.set_grading_method(f, method))
    _rows_edits(edits, form, "t", g.get("tiers", []), eg.TIER_FIELDS, ("min", "top"),
                eg.set_tier_field, eg.remove_tier)  # fmt: skip
    _rows_edits(edits, form, "d", g.get("distinctions", []), eg.DISTINCTION_FIELDS,
                ("min", "top"), eg.set_distinction_field, eg.remove_distinction)  # fmt: skip
    for row in g.get("vetoes", []):
        vid, key = row["id"], f"v.{row['id']}"
        if form.get(f"{key}.remove"):
            edits.add(f"{key}.remove", lambda f, v=vid: eg.remove_grade_veto(f, v))
            continue
        for name in eg.VETO_FIELDS:
            typed = (form.get(f"{key}.{name}") or "").strip()
            if f"{key}.{name}" in form and typed != row[name].strip():
                edits.add(f"{key}.{name}",
                          lambda f, v=vid, n=name, t=typed: eg.set_grade_veto_field(
                              f, v, n, t or None))  # fmt: skip
    _new_rows(edits, form)
    return edits


def _rows_edits(edits, form, prefix, rows, keys, numbers, set_, remove) -> None:
    # removals last and from the bottom up: the numbers of the rows above stay what the form said
    removals = []
    for row in rows:
        n = row["number"]
        key = f"{prefix}.{n}"
        if form.get(f"{key}.remove"):
            removals.append((f"{key}.remove", n))
            continue
        for name in keys:
            typed = form.get(f"{key}.{name}")
            if typed is None or typed.strip() == row[name].strip():
                continue
            if name in numbers:
                value = _optional_number(edits, f"{key}.{name}", typed)
                if value is None and typed.strip():
                    continue
            else:
                value = typed.strip() or None
            edits.add(f"{key}.{name}", lambda f, n=n, k=name, v=value: set_(f, n, k, v))
    for name, n in sorted(removals, key=lambda r: -r[1]):
        edits.add(name, lambda f, n=n: remove(f, n))


def _new_rows(edits: Edits, form) -> None:
    grade = (form.get("t.new.grade") or "").strip()
    if grade:
        tier: dict = {"grade": grade}
        for k in ("min", "top"):
            v = _optional_number(edits, f"t.new.{k}", form.get(f"t.new.{k}", ""))
            if v is not None:
                tier[k] = int(v) if k == "top" else v
        if (form.get("t.new.title") or "").strip():
            tier["title"] = form["t.new.title"].strip()
        edits.add("t.new.grade", lambda f: eg.add_tier(f, tier))
    name = (form.get("d.new.name") or "").strip()
    if name:
        item: dict = {"name": name, "grade": (form.get("d.new.grade") or "").strip()}
        for k in ("top", "min"):
            v = _optional_number(edits, f"d.new.{k}", form.get(f"d.new.{k}", ""))
            if v is not None:
                item[k] = int(v) if k == "top" else v
        edits.add("d.new.name", lambda f: eg.add_distinction(f, item))
    vid = (form.get("v.new.id") or "").strip()
    if vid:
        veto = {k: (form.get(f"v.new.{k}") or "").strip() for k in ("when", "effect", "reason")}
        veto["id"] = vid
        if (form.get("v.new.grade") or "").strip():
            veto["grade"] = form["v.new.grade"].strip()
        edits.add("v.new.id", lambda f: eg.add_grade_veto(f, veto))


def test_edits(form, now: Outline) -> Edits:
    """细则测试用例: each case's expected total and grade, and one fact given to one case."""
    edits = Edits()
    for case in now.tests:
        key, name = f"s.{case['number']}", case["name"]
        if f"{key}.total" in form:
            _num_field(edits, f"{key}.total", form.get(f"{key}.total"), case["total"],
                       lambda f, v, t=name: edit.set_scheme_test_field(f, t, "total", v))  # fmt: skip
        grade = (form.get(f"{key}.grade") or "").strip()
        if grade and grade != case["grade"]:
            edits.add(f"{key}.grade", lambda f, t=name, g=grade:
                      edit.set_scheme_test_field(f, t, "grade", g))  # fmt: skip
    fact = (form.get("s.fact.name") or "").strip()
    if fact:
        chosen = form.getlist("s.fact.case") if hasattr(form, "getlist") else []
        cases = [c for c in now.tests if str(c["number"]) in chosen]
        if not cases:
            edits.bad("s.fact.case", "请选择测试用例（可选多个）")
        elif not _NAME.fullmatch(fact):
            edits.bad("s.fact.name", "事实名只能用英文字母、数字和下划线，以字母开头")
        else:
            value = fact_value(form.get("s.fact.value", ""))
            for case in cases:
                edits.add("s.fact.name", lambda f, t=case["name"]: edit.set_scheme_test_fact(
                    f, t, fact, value))  # fmt: skip
    return edits


def new_clause(form, now: Outline) -> tuple[dict, str, dict[str, list[str]]]:
    """The clause the 新增条款 form describes: (clause dict for ``edit.add_clause``, file name,
    problems by field). A first rule of the chosen kind (fixed: a 是/否 fact gives the points;
    per_unit: a count times points each, up to a cap) and one test case."""
    p: dict[str, list[str]] = {}
    get = lambda k: (form.get(f"n.{k}") or "").strip()  # noqa: E731
    cid, title, category, kind, fact = (get(k) for k in ("id", "title", "category", "kind", "fact"))
    if not _CLAUSE_ID.fullmatch(cid):
        p["n.id"] = ["条款编号必填，用原文序号，如 19"]
    elif any(c["id"] == cid for c in now.clauses):
        p["n.id"] = [f"已有编号为 {cid} 的条款"]
    if not title:
        p["n.title"] = ["条款名称必填"]
    if category not in {c["id"] for c in now.categories}:
        p["n.category"] = ["请选择条款所属的类别"]
    if kind not in KINDS:
        p["n.kind"] = ["请选择计分方式"]
    if not _NAME.fullmatch(fact):
        p["n.fact"] = ["事实名必填：英文字母、数字和下划线，以字母开头，如 quality_month_event"]
    values = {}
    for k, words in (("points", "分值"), ("test_points", "期望得分")):
        try:
            values[k] = number(get(k))
        except ValueError as err:
            p[f"n.{k}"] = [f"{words}：{err}"]
    amounts = {}
    for k, words, required in BLOCKS[kind].starts or () if kind in KINDS else ():
        if get(k) or required:
            try:
                amounts[k] = number(get(k))
            except ValueError as err:
                p[f"n.{k}"] = [f"{words}：{err}"]
    if not get("source"):
        p["n.source"] = ["请照录原文"]
    if not get("test_name"):
        p["n.test_name"] = ["测试用例名称必填"]
    if p:
        return {}, "", p
    spec, first = BLOCKS[kind].starter(fact, title, values["points"], amounts)
    # written in the order a fact is read: its name, type and label, then its bounds and unit
    spec = {
        "name": spec.pop("name"),
        "type": spec.pop("type"),
        "label": get("label") or title,
        **spec,
    }
    if get("unit") and spec.get("type") != "boolean":
        spec["unit"] = get("unit")
    rule = {"id": "r1", **first}
    source = {"document": now.header.get("source_document") or "原文", "text": get("source")}
    if get("ref"):
        source["ref"] = get("ref")
    clause = {
        "id": cid,
        "title": title,
        "category": category,
        "points": values["points"],
        "source": source,
        "facts": [spec],
        "rules": [rule],
        "tests": [
            {
                "name": get("test_name"),
                "facts": {fact: fact_value(get("test_value"))},
                "points": values["test_points"],
            }
        ],
    }
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", fact.replace("_", "-")).strip("-")
    return clause, stem, {}


def moved(now: Outline, clause_id: str, direction: str) -> list[str]:
    """The clause order after moving one clause up or down (unchanged at either end)."""
    order = [c["id"] for c in now.clauses]
    if clause_id not in order:
        raise FormProblems({"move": [f"没有编号为 {clause_id} 的条款"]})
    i = order.index(clause_id)
    j = i - 1 if direction == "up" else i + 1
    if 0 <= j < len(order):
        order[i], order[j] = order[j], order[i]
    return order


# --- the pages ----------------------------------------------------------------------------------


def _needs(permission: str):
    """The role is checked before anything of the form is read (a reviewer learns nothing from a
    form's errors; the denial is journaled as the API's are)."""

    def wrap(view):
        @functools.wraps(view)
        def checked(*args, **kwargs):
            target = f"rule_draft:{kwargs['draft_id']}" if "draft_id" in kwargs else "rule_drafts"
            check(ctx().db, current_actor(), permission, target)
            return view(*args, **kwargs)

        return checked

    return wrap


def _lock() -> int:
    text = (request.form.get("lock") or "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise Invalid("invalid_lock", "页面缺少版本标记，请刷新后再提交", {"lock": ["无效"]})
    return int(text)


def drafts_section() -> dict:
    """What the rules page shows of drafts and releases (for who may read them)."""
    me = current_person()
    if not me.can("rules.read"):
        return {"drafts": None}
    views = releases.list_drafts(ctx(), me.actor)
    by_state = {state: [d for d in views if d.state == state] for state in STATES}
    try:
        disk = releases.disk_status(ctx(), me.actor)
    except ServiceError:  # the page shows the drafts without the disk's word
        disk = []
    return {
        "drafts": by_state,
        "draft_states": STATES,
        "draft_badges": STATE_BADGES,
        "origins": ORIGINS,
        "disk": disk,
        "may_draft": me.can("rules.draft"),
    }


def _in_force(view) -> str | None:
    """The version a draft is compared with by default: its scheme's version in force, else the
    version it started from."""
    served = ctx().registry.schemes().get(view.scheme_id)
    return served.version if served is not None else view.base_version


def _me_proposed(view) -> bool:
    return view.proposed_by == current_person().actor.username  # DraftView names users so


def draft_page(draft_id: int, notice=None, problems=None, typed=None, status=200, view=None,
               theirs=False):  # fmt: skip
    me = current_person()
    view = view or releases.read_draft(ctx(), me.actor, draft_id)
    now = outline(view.files)
    checked = view.checked or {}
    where = placed(checked, view.folder)
    failing_by_clause: dict[str, list] = {}
    for (rel, _line), case in where["cases"].items():
        cid = next((c["id"] for c in now.clauses if c["file"] == rel), None)
        if cid is not None:
            failing_by_clause.setdefault(cid, []).append(case)
    editable = view.state == "draft" and me.can("rules.draft")
    # the check's errors in scheme.yaml beside the field written at their line
    checked_at: dict[str, list[str]] = {}
    case_lines = {line for rel, line in where["cases"] if rel == "scheme.yaml"}  # shown apart
    for line, messages in where["by_file"].get("scheme.yaml", {}).items():
        name = now.fields.get(line)
        if name is not None and line not in case_lines:
            checked_at.setdefault(name, []).extend(messages)
    return render_template(
        "admin/rule_draft.html",
        d=view,
        o=now,
        checked=checked,
        where=where,
        failing_by_clause=failing_by_clause,
        states=STATES,
        badges=STATE_BADGES,
        origins=ORIGINS,
        kinds=KINDS,
        methods=METHOD_WORDS,
        effects=EFFECT_WORDS,
        editable=editable,
        may_approve=view.state == "proposed" and me.can("rules.approve") and not _me_proposed(view),
        proposer_is_me=_me_proposed(view),
        may_draft=me.can("rules.draft"),
        versions=_versions(),
        in_force=_in_force(view),
        # the rounds an approval may re-pin: this scheme's, still open
        rounds=[r for r in rounds.list_rounds(ctx(), me.actor, view.scheme_id) if r.stage == "open"]
        if me.can("rules.approve") and view.state == "proposed"
        else [],
        notice=notice,
        problems=problems or {},
        typed=typed or {},
        theirs=theirs,
        checked_at=checked_at,
        chosen_cases=request.form.getlist("s.fact.case") if request.method == "POST" else [],
    ), status


def _versions() -> list[dict]:
    from service import operations as ops

    return list(reversed(ops.rule_versions(ctx(), current_actor())))


@bp.get("/rules/drafts/<int(max=2147483647):draft_id>")
def rule_draft(draft_id):
    return draft_page(draft_id)


class _Kept:
    """A change as ``releases.edit`` runs it, keeping the ``EditError`` it raised (with its field,
    which releases turns into a plain 422) and what it returned: the form is applied once."""

    def __init__(self, change: Change):
        self.change, self.error, self.result = change, None, None

    def __call__(self, files: Files) -> Files:
        try:
            self.result = self.change(files)
        except EditError as err:
            self.error = err
            raise
        return self.result


def _outline(draft_id: int):
    """The draft's files as the scheme-level forms read them (what a post is compared with)."""
    return outline(releases.read_draft(ctx(), current_actor(), draft_id).files)


def _save(draft_id: int, edits: Edits | Change, what: str, anchor: str):
    """Apply a form's edits to the draft through releases.edit (an edit that cannot be made is
    shown beside its field, nothing stored), back to the page at ``anchor``. A stale lock: the
    page again with the other editor's version and what was typed."""
    actor = current_actor()
    typed = request.form.to_dict()
    if isinstance(edits, Edits) and edits.problems:  # unreadable values: no need to ask releases
        return draft_page(draft_id, "有内容不能保存，请按提示修改（其余内容没有保存）：",
                          edits.problems, typed, 422)  # fmt: skip
    kept = _Kept(edits.apply if isinstance(edits, Edits) else edits)
    try:
        releases.edit(ctx(), actor, draft_id, _lock(), kept, what)
    except Conflict as err:
        return _conflict(draft_id, err, typed)
    except Invalid as err:
        if isinstance(kept.error, FormProblems):
            return draft_page(draft_id, "有内容不能保存，请按提示修改（其余内容没有保存）：",
                              kept.error.fields, typed, 422)  # fmt: skip
        return draft_page(draft_id, err.message, err.fields, typed, status_of(err))
    flash(f"已保存：{what}。检查结果见下。", "ok")
    return redirect(url_for("admin_web.rule_draft", draft_id=draft_id) + anchor)


def _conflict(draft_id: int, err: Conflict, typed: dict):
    view = releases.read_draft(ctx(), current_actor(), draft_id)
    stale = str(view.lock) != str(typed.get("lock"))
    if stale:
        who = view.updated_by or "其他人"
        message = (f"{who}在您打开页面之后保存了这份草稿（{_when(view.updated_at)}）：页面显示的是"
                   "他们保存的内容，您填写的内容保留在表单中，核对后再保存一次即可。")  # fmt: skip
        return draft_page(draft_id, message, {}, typed, 409, view, theirs=True)
    return draft_page(draft_id, err.message, err.fields, typed, status_of(err), view)


def _when(value) -> str:
    from .present import when

    return when(value)


@bp.post("/rules/drafts/<int(max=2147483647):draft_id>/header")
@_needs("rules.draft")
def rule_draft_header(draft_id):
    now = _outline(draft_id)
    return _save(draft_id, header_edits(request.form, now), "修改细则基本信息", "#header")


@bp.post("/rules/drafts/<int(max=2147483647):draft_id>/categories")
@_needs("rules.draft")
def rule_draft_categories(draft_id):
    now = _outline(draft_id)
    return _save(draft_id, category_edits(request.form, now), "修改类别", "#categories")


@bp.post("/rules/drafts/<int(max=2147483647):draft_id>/grading")
@_needs("rules.draft")
def rule_draft_grading(draft_id):
    now = _outline(draft_id)
    return _save(draft_id, grading_edits(request.form, now), "修改评级办法", "#grading")


@bp.post("/rules/drafts/<int(max=2147483647):draft_id>/tests")
@_needs("rules.draft")
def rule_draft_tests(draft_id):
    now = _outline(draft_id)
    return _save(draft_id, test_edits(request.form, now), "修改细则测试用例", "#tests")


@bp.post("/rules/drafts/<int(max=2147483647):draft_id>/clauses")
@_needs("rules.draft")
def rule_draft_add_clause(draft_id):
    now = _outline(draft_id)
    clause, stem, problems = new_clause(request.form, now)
    edits = Edits(problems=problems)
    if clause:
        edits.add("n.id", lambda f: edit.add_clause(f, clause, stem))
    return _save(draft_id, edits, f"新增第{clause.get('id', '')}条", "#clauses")


def removal_preview(files: Files, clause_id: str) -> dict:
    """What removing one clause will do, computed on the files without saving: its facts (name
    and label) and the test cases ``edit.remove_clause`` will change, as it names them."""
    rel = edit.clause_file(files, clause_id)
    doc = edit.document(files, rel)
    facts = [
        {"name": _text(f.get("name")), "label": _text(f.get("label"))}
        for f in (doc.get("facts") or [])
        if isinstance(f, dict)
    ]
    return {
        "id": clause_id,
        "title": _top(files[rel], "title"),
        "file": rel,
        "facts": facts,
        "touched": edit.remove_clause(files, clause_id).touched,
    }


def _removal_page(draft_id: int, clause_id: str, notice=None, status=200):
    me = current_person()
    view = releases.read_draft(ctx(), me.actor, draft_id)
    try:
        preview = removal_preview(view.files, clause_id)
    except EditError:
        abort(404)
    editable = view.state == "draft" and me.can("rules.draft")
    return render_template("admin/rule_remove.html", d=view, c=preview, editable=editable,
                           notice=notice), status  # fmt: skip


@bp.get("/rules/drafts/<int(max=2147483647):draft_id>/clauses/<clause_id>/remove")
@_needs("rules.draft")
def rule_draft_remove_clause_confirm(draft_id, clause_id):
    """删除条款 asks first: the clause's facts and the test cases its removal will change, with
    确认删除 (the draft's lock of this page) and 取消; nothing changes until it is confirmed."""
    return _removal_page(draft_id, clause_id)


@bp.post("/rules/drafts/<int(max=2147483647):draft_id>/clauses/<clause_id>/remove")
@_needs("rules.draft")
def rule_draft_remove_clause(draft_id, clause_id):
    """确认删除: the clause's file goes, its facts leave every scheme test (and ranking test)
    that gave them; the page says which tests changed."""
    actor = current_actor()
    typed = request.form.to_dict()
    if request.form.get("confirm") != "yes":
        return _removal_page(draft_id, clause_id, "删除条款须在本页点“确认删除”。", 422)
    touched: list[str] = []

    def change(files: Files) -> Files:
        removal = edit.remove_clause(files, clause_id)
        touched[:] = removal.touched
        return removal.files

    try:
        releases.edit(ctx(), actor, draft_id, _lock(), change, f"删除第{clause_id}条")
    except Conflict as err:
        return _conflict(draft_id, err, typed)
    except Invalid as err:
        return draft_page(draft_id, err.message, err.fields, typed, status_of(err))
    said = "、".join(touched) if touched else "没有测试用例用到它的事实"
    flash(f"已删除第{clause_id}条。它的事实已从这些测试用例中去掉：{said}。", "ok")
    return redirect(url_for("admin_web.rule_draft", draft_id=draft_id) + "#clauses")


@bp.post("/rules/drafts/<int(max=2147483647):draft_id>/clauses/<clause_id>/move")
@_needs("rules.draft")
def rule_draft_move_clause(draft_id, clause_id):
    direction = request.form.get("direction")
    if direction not in ("up", "down"):
        abort(400)
    word = "上移" if direction == "up" else "下移"

    def change(files: Files) -> Files:
        return edit.reorder_clauses(files, moved(outline(files), clause_id, direction))

    return _save(draft_id, change, f"第{clause_id}条{word}", "#clauses")


# --- the cycle's steps ------------------------------------------------------------------------


def _step(draft_id: int, call: Callable, words: str, anchor: str = ""):
    typed = request.form.to_dict()
    try:
        view = call(_lock())
    except Conflict as err:
        return _conflict(draft_id, err, typed)
    except Invalid as err:
        return draft_page(draft_id, err.message, err.fields, typed, status_of(err))
    flash(words, "ok")
    return redirect(url_for("admin_web.rule_draft", draft_id=view.id) + anchor)


@bp.post("/rules/drafts/<int(max=2147483647):draft_id>/check")
@_needs("rules.draft")
def rule_draft_check(draft_id):
    view = releases.check_draft(ctx(), current_actor(), draft_id)
    checked = view.checked or {}
    if checked.get("ok"):
        flash(f"检查通过：规则文件无误，{checked.get('cases', 0)} 个测试用例全部通过。", "ok")
    else:
        flash("检查未通过：错误和未通过的测试用例见下。", "bad")
    return redirect(url_for("admin_web.rule_draft", draft_id=draft_id) + "#check")


@bp.post("/rules/drafts/<int(max=2147483647):draft_id>/propose")
@_needs("rules.draft")
def rule_draft_propose(draft_id):
    note = request.form.get("note", "")
    return _step(draft_id, lambda lock: releases.propose(ctx(), current_actor(), draft_id, lock,
                 note), "已提交审批：须由另一位管理员批准。")  # fmt: skip


@bp.post("/rules/drafts/<int(max=2147483647):draft_id>/approve")
@_needs("rules.approve")
def rule_draft_approve(draft_id):
    typed = request.form.to_dict()
    year_text = (request.form.get("effective_year") or "").strip()
    round_text = (request.form.get("round_id") or "").strip()
    problems = {}
    if not re.fullmatch(r"\d{4}", year_text):
        problems["effective_year"] = ["生效年度应为四位数字，如 2023"]
    if round_text and not (round_text.isascii() and round_text.isdigit() and len(round_text) < 10):
        problems["round_id"] = ["请选择考核轮次"]
    if problems:
        return draft_page(draft_id, "批准的信息有误：", problems, typed, 422)
    year, round_id = int(year_text), int(round_text) if round_text else None
    return _step(
        draft_id,
        lambda lock: releases.approve(ctx(), current_actor(), draft_id, lock, year, round_id),
        f"已批准发布：自{year}年度起生效。",
    )


@bp.post("/rules/drafts/<int(max=2147483647):draft_id>/return")
@_needs("rules.approve")
def rule_draft_return(draft_id):
    reason = request.form.get("reason", "")
    return _step(draft_id, lambda lock: releases.return_draft(ctx(), current_actor(), draft_id,
                 lock, reason), "已退回：提交人可以修改后再提交。")  # fmt: skip


@bp.post("/rules/drafts/<int(max=2147483647):draft_id>/withdraw")
@_needs("rules.draft")
def rule_draft_withdraw(draft_id):
    reason = request.form.get("reason", "")
    return _step(draft_id, lambda lock: releases.withdraw(ctx(), current_actor(), draft_id, lock,
                 reason), "已撤回。")  # fmt: skip


@bp.post("/rules/drafts/<int(max=2147483647):draft_id>/compare")
@_needs("rules.read")
def rule_draft_compare(draft_id):
    """比较: the draft's files archived as a version, then the rules page's comparison of it with
    the version chosen (by default the one in force)."""
    old = request.form.get("from", "")
    if not re.fullmatch(r"[0-9a-f]{64}", old):
        flash("请选择要比较的版本。", "bad")
        return redirect(url_for("admin_web.rule_draft", draft_id=draft_id) + "#compare")
    try:
        new = releases.draft_version(ctx(), current_actor(), draft_id)
    except Invalid as err:  # a draft that does not load has no version to compare
        flash(err.message, "bad")
        return redirect(url_for("admin_web.rule_draft", draft_id=draft_id) + "#check")
    return redirect(url_for("admin_web.rules_compare", **{"from": old, "to": new}) + "#compare")


@bp.get("/rules/drafts/<int(max=2147483647):draft_id>/download")
def rule_draft_zip(draft_id):
    name, data = releases.draft_zip(ctx(), current_actor(), draft_id)
    return _zip(name, data)


def _zip(name: str, data: bytes) -> Response:
    response = Response(data, mimetype=_ZIP)
    response.headers["Content-Disposition"] = export.attachment(name)
    return response


# --- starting a draft -------------------------------------------------------------------------


def _started(view, words: str):
    flash(f"{words}：草稿“{view.title}”（{view.year}）。", "ok")
    return redirect(url_for("admin_web.rule_draft", draft_id=view.id))


def _refused_start(err, anchor: str = "#drafts"):
    flash(err.message + "".join(f"（{'；'.join(m)}）" for m in err.fields.values()), "bad")
    return redirect(url_for("admin_web.rules") + anchor)


@bp.post("/rules/drafts/copy")
@_needs("rules.draft")
def rule_draft_copy():
    """复制为新年度草稿: any version, a year (its digits rewrite the id and title), a title."""
    version = request.form.get("version", "")
    year = (request.form.get("year") or "").strip()
    if not re.fullmatch(r"[0-9a-f]{64}", version) or not re.fullmatch(r"\d{4}(-\d{4})?", year):
        flash("请选择要复制的版本，并填写新草稿的年度（如 2023）。", "bad")
        return redirect(url_for("admin_web.rules") + "#drafts")
    title = (request.form.get("title") or "").strip() or None
    try:
        view = releases.copy_version(ctx(), current_actor(), version, year, title=title)
    except (Invalid, Conflict, NotFound) as err:
        return _refused_start(err)
    return _started(view, "已复制为新年度草稿")


@bp.post("/rules/drafts/upload")
@_needs("rules.draft")
def rule_draft_upload():
    """上传规则包: a zip of one scheme folder."""
    upload = request.files.get("file")
    data = upload.read() if upload is not None else b""
    if not data:
        flash("请选择要上传的规则包（zip 文件）。", "bad")
        return redirect(url_for("admin_web.rules") + "#drafts")
    try:
        view = releases.upload_draft(ctx(), current_actor(), data)
    except (Invalid, Conflict) as err:
        return _refused_start(err)
    return _started(view, "已上传规则包")


@bp.post("/rules/drafts/disk")
@_needs("rules.draft")
def rule_draft_disk():
    """从磁盘目录建立草稿: the rules directory's copy of a scheme."""
    scheme_id = (request.form.get("scheme") or "").strip()
    try:
        view = releases.draft_from_disk(ctx(), current_actor(), scheme_id)
    except (Invalid, Conflict, NotFound) as err:
        return _refused_start(err)
    return _started(view, "已从磁盘目录建立草稿")


# --- one clause, in blockforms' form -------------------------------------------------------------


def clause_page(
    draft_id: int,
    clause_id: str,
    view=None,
    files=None,
    notice=None,
    status=200,
    theirs=None,
    form=None,
    field_errors=None,
):
    """One clause in blockforms' form. ``files``: what the form shows (the user's edit put on
    the current files after a stale save); ``form``: the posted form, re-shown as typed (every
    field keeps what was typed); ``field_errors``: {field: [message]} beside their fields."""
    from . import ruleforms

    me = current_person()
    view = view or releases.read_draft(ctx(), me.actor, draft_id)
    shown = files if files is not None else view.files
    try:
        rel = edit.clause_file(shown, clause_id)
    except EditError:
        abort(404)
    checked = view.checked or {}
    context = ruleforms.clause_form(shown, clause_id, errors_by_line(checked, view.folder))
    unclaimed = set(context.get("errors") or [])
    # what no field claims is listed at the top with file:line:column and a link to its line
    loose = [
        e
        for e in placed(checked, view.folder)["errors"]
        if e["rel"] != rel or e["message"] in unclaimed
    ]
    context["errors"] = []
    loose_cases = [
        c for c in checked.get("failing") or [] if relative(view.folder, c.get("file", "")) != rel
    ]
    fields = context.get("fields") or {}
    for name, posted in (form or {}).items():
        if name in fields and isinstance(posted, str):
            fields[name].value = posted.replace("\r\n", "\n")
    unplaced = {}
    for name, messages in (field_errors or {}).items():
        if name in fields:
            fields[name].errors += [m for m in messages if m not in fields[name].errors]
        else:
            unplaced[name] = messages
    return render_template(
        "admin/rule_clause.html",
        d=view,
        clause_id=clause_id,
        rel=rel,
        form=context,
        loose=loose,
        loose_cases=loose_cases,
        unplaced=unplaced,
        editable=view.state == "draft" and me.can("rules.draft"),
        notice=notice,
        theirs=theirs,
    ), status


@bp.get("/rules/drafts/<int(max=2147483647):draft_id>/clauses/<clause_id>")
def rule_clause(draft_id, clause_id):
    return clause_page(draft_id, clause_id)


def _field_of(err: EditError) -> str:
    return getattr(err, "field", None) or "files"


@bp.post("/rules/drafts/<int(max=2147483647):draft_id>/clauses/<clause_id>")
@_needs("rules.draft")
def rule_clause_save(draft_id, clause_id):
    """保存并检查 (or a structural button: add a fact, a rule, a band, a test…): blockforms'
    ``apply_clause_form`` on the draft's files through ``releases.edit``."""
    from . import ruleforms

    actor = current_actor()
    form = request.form
    typed = {k: v for k, v in form.items() if k not in ("csrf_token", "lock", "action")}
    action = (form.get("action") or "").strip()
    kept = _Kept(lambda f: ruleforms.apply_clause_form(f, clause_id, form))
    what = f"修改第{clause_id}条" + (f"（{action}）" if action and action != "save" else "")
    current = releases.read_draft(ctx(), actor, draft_id)
    if str(current.lock) == form.get("lock"):
        # what the form changes, in words, for the journal (blockforms keeps the result: the
        # same form on the same files inside releases.edit costs nothing more)
        try:
            changes = ruleforms.apply_clause_form(current.files, clause_id, form).changes
        except EditError:
            changes = []  # raised again inside releases.edit, and shown at its field
        if changes:
            what = f"修改第{clause_id}条：" + "；".join(changes)[:180]
    try:
        releases.edit(ctx(), actor, draft_id, _lock(), kept, what)
    except Invalid as err:
        view = releases.read_draft(ctx(), actor, draft_id)
        if kept.error is not None:  # a value that cannot be written: beside its field
            message = str(kept.error)
            return clause_page(
                draft_id, clause_id, view, notice=f"没有保存：{message}", status=422, form=typed,
                field_errors={_field_of(kept.error): [message]},
            )  # fmt: skip
        return clause_page(draft_id, clause_id, view, notice=err.message,
                           status=status_of(err), form=typed, field_errors=err.fields)  # fmt: skip
    except Conflict as err:
        view = releases.read_draft(ctx(), actor, draft_id)
        if str(view.lock) == form.get("lock"):
            return clause_page(draft_id, clause_id, view, notice=err.message,
                               status=status_of(err), form=typed)  # fmt: skip
        # someone else saved: their version at the end, what was typed put on top of it
        try:
            mine = ruleforms.apply_clause_form(view.files, clause_id, form)
            edit.clause_file(mine, clause_id)
        except EditError:
            mine = None
        rel = edit.clause_file(view.files, clause_id)
        who = view.updated_by or "其他人"
        return clause_page(
            draft_id, clause_id, view, mine,
            f"{who}在您打开页面之后保存了这份草稿（{_when(view.updated_at)}）：下面的表单是您填写的"
            "内容（已放在他们保存的版本上），他们保存的这个条款文件列在页末。核对后再保存一次即可。",
            409, view.files.get(rel, ""), form=typed if mine is None else None,
        )  # fmt: skip
    saved = releases.read_draft(ctx(), actor, draft_id)
    applied = kept.result
    said = "；".join(getattr(applied, "changes", None) or [])[:300]
    touched = getattr(applied, "touched", None) or []
    words = f"已保存第{clause_id}条" + (f"（{said}）" if said else "")
    if touched:
        words += f"；这些测试用例也随之修改：{'、'.join(touched)}"
    ok = (saved.checked or {}).get("ok")
    flash(words + ("。检查通过。" if ok else "。检查未通过：问题标在所在字段旁。"),
          "ok" if ok else "warn")  # fmt: skip
    try:
        edit.clause_file(saved.files, clause_id)
    except EditError:  # the clause's id itself was changed: back to the draft's clause list
        return redirect(url_for("admin_web.rule_draft", draft_id=draft_id) + "#clauses")
    return redirect(url_for("admin_web.rule_clause", draft_id=draft_id, clause_id=clause_id))


# --- one file as text ---------------------------------------------------------------------------


def file_page(draft_id: int, rel: str, view=None, typed=None, notice=None, status=200,
              theirs=False):  # fmt: skip
    me = current_person()
    view = view or releases.read_draft(ctx(), me.actor, draft_id)
    if rel not in view.files:
        abort(404)
    text = view.files[rel]
    marks = placed(view.checked or {}, view.folder)["by_file"].get(rel, {})
    rows = text.split("\n")
    if len(rows) > 1 and rows[-1] == "":
        rows.pop()  # the file's last line end, not a line of its own
    lines = [(n, line, marks.get(n, [])) for n, line in enumerate(rows, 1)]
    beyond = [(n, m) for n, m in marks.items() if n > len(lines)]
    return render_template(
        "admin/rule_file.html",
        d=view,
        rel=rel,
        lines=lines,
        beyond=beyond,
        text=typed if typed is not None else text,
        editable=view.state == "draft" and me.can("rules.draft"),
        notice=notice,
        theirs=theirs,
        files=sorted(view.files),
    ), status


@bp.get("/rules/drafts/<int(max=2147483647):draft_id>/files/<path:rel>")
def rule_file(draft_id, rel):
    return file_page(draft_id, rel)


@bp.post("/rules/drafts/<int(max=2147483647):draft_id>/files/<path:rel>")
@_needs("rules.draft")
def rule_file_save(draft_id, rel):
    actor = current_actor()
    text = request.form.get("text", "").replace("\r\n", "\n")
    try:
        lock = _lock()
        view = releases.read_draft(ctx(), actor, draft_id)
        if rel not in view.files:
            abort(404)
        files = dict(view.files)
        files[rel] = text
        releases.save_files(ctx(), actor, draft_id, lock, files, f"在文本视图中修改{rel}")
    except Conflict as err:
        view = releases.read_draft(ctx(), actor, draft_id)
        if str(view.lock) == request.form.get("lock"):
            return file_page(draft_id, rel, view, text, err.message, status_of(err))
        who = view.updated_by or "其他人"
        return file_page(
            draft_id, rel, view, text,
            f"{who}在您打开页面之后保存了这份草稿（{_when(view.updated_at)}）：左侧带行号的是他们"
            "保存的内容，文本框里仍是您填写的内容。核对后再保存一次即可。",
            409, theirs=True,
        )  # fmt: skip
    except Invalid as err:
        return file_page(draft_id, rel, None, text, err.message, status_of(err))
    view = releases.read_draft(ctx(), actor, draft_id)
    if (view.checked or {}).get("ok"):
        flash(f"已保存 {rel}：检查通过。", "ok")
    else:
        flash(f"已保存 {rel}：检查未通过，错误标在所在行。", "warn")
    return redirect(url_for("admin_web.rule_file", draft_id=draft_id, rel=rel))
