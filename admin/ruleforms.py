"""The form of one clause: its fields, facts, rules (a form for each building block) and test
cases, read from the clause file and written back through ``service.rulefiles.edit``.

The contract with the editor's pages
------------------------------------
``clause_form(files, clause_id, errors_by_line={}) -> dict``
    The template context of one clause's form, rendered by ``admin/_clause_form.html`` (a Jinja
    include, placed INSIDE the editor's ``<form>``; it has no ``<form>`` tag of its own). Pass
    the context as ``form`` (``{% with form = ctx %}{% include … %}{% endwith %}``).
    ``files`` is the scheme's files ({path inside the scheme folder: text}); ``errors_by_line``
    maps ``(file, line)`` (line from 1; file the path inside the folder, or with the folder in
    front, as the loader prints it) to messages. Each message is attached to the field whose
    YAML node is at that line or, failing that, to the nearest enclosing row (band, rule, fact,
    test case) or field; the ones nothing claims are in ``context["errors"]``.
    ``context["fields"]`` maps every field's name to its ``Field`` (label, value, file, line,
    errors) so that the editor can put an ``EditError.field`` beside its field, or show again
    what was typed (set ``value``). The rest of the context: ``header`` (the clause's fields),
    ``facts``, ``vetoes`` and ``tests`` (``Table``s of ``Row``s of cells; a fact's row has
    ``uses``: the test cases its removal will change, as ``Removal.touched`` names them),
    ``rules`` (``RuleForm``s: the rule's fields, its tables, panel and reviewer bounds).

``apply_clause_form(files, clause_id, form) -> Applied``
    ``form``: the posted werkzeug ``MultiDict``. Applies every field whose posted value differs
    from the value the form shows for the current files (a field not posted is left alone), each
    through one ``edit`` operation, then the posted ``action``, if any. Returns the new files: an
    ``Applied`` (a dict of files) that also says, in Chinese, what it changed (``changes``, for
    the journal) and which test cases a removal changed (``touched``). A form posted unchanged
    returns files equal to ``files``, byte for byte. A value that cannot be written (a malformed
    number, a required field left empty) raises ``edit.EditError`` with ``.field`` the form
    field's name and a message naming it ("第2档上限应为数字，收到“abc”").

Structural actions: submit buttons are ``<button name="action" value="…">``; the editor's own
save button posts no ``action`` (or ``action=save``). The values (``apply_clause_form`` handles
them all; unknown ones are an EditError):

    add_fact                      a fact from new_fact.name / new_fact.type / new_fact.label
    remove_fact:<fact>            the fact, and its values in every test case (``touched``)
    add_rule                      a rule of kind new_rule.kind (id new_rule.id, or the next rN)
    remove_rule:<rule id>         the rule, and its id in the test cases' expectations
    add_row:<list>:<rule id>      a band / level / part (list: bands, levels, parts), at the end
    remove_row:<list>:<n>:<rule id>  the n-th (from 1)
    add_veto / remove_veto:<veto id>
    add_test / remove_test:<n>    a test case (n-th from 1, as the table shows them)

Field names: ``c.<key>`` clause fields (``c.tasks``: one task a line, 工作任务 | 落实时限 |
部门、部门), ``f.<fact>.<key>`` facts (type, label, unit, min, max,
help, choices one a line, required, applies_when), ``r.<rule>.<key>`` rule keys,
``r.<rule>.<list>.<n>.<key>`` band/level/part cells (a range is four cells: ``lo_closed``,
``lo``, ``hi``, ``hi_closed``), ``r.<rule>.panel.<reviewers|highest|lowest>``,
``v.<veto>.<key>``, ``t.<n>.<key>`` (``t.<n>.marks``: one reviewer a line, 评审人 | 分数 |
理由; ``t.<n>.note``) and ``t.<n>.fact.<fact>`` test cells. A list of tasks or marks whose text
holds a separator is shown, not posted (it is edited in the text view).

Every widget follows from the declarations: a rule's fields are its block's ``keys`` (their
``type`` chooses the widget, ``label`` and ``doc`` the words), its tables the spec's BAND,
LEVEL and PART objects; adding a block kind needs nothing here. Numbers go from the form's
text to the file as exact decimals, never through a float.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from service.domain.blocks import BLOCKS
from service.rulefiles import edit
from service.rulefiles.edit import EditError, Files
from service.rulefiles.reader import Id, Number, Range
from service.rulefiles.spec import BAND, COMMON_RULE_FIELDS, FACT_TYPES, LEVEL, PART

# --- what the template shows -------------------------------------------------------------------


@dataclass
class Field:
    """One input of the form: its name, its words, the value it shows and where it is written."""

    name: str
    label: str
    value: str
    input: str  # text | number | textarea | lines | expression | select | whole
    file: str
    line: int  # of its YAML node, from 1 (0: not written yet)
    options: list[tuple[str, str]] = field(default_factory=list)
    hint: str = ""
    required: bool = False
    errors: list[str] = field(default_factory=list)
    path: tuple = ()
    # how a changed value is written: (files, posted text) -> files
    write: Callable[[Files, str], Files] | None = field(default=None, repr=False)
    last: bool = False  # written after the others (a test case's name: the others find it by it)
    # the fields that are one value in the file (a range's four cells, a panel's three numbers)
    group: dict | None = field(default=None, repr=False)
    # what the label is of, for the journal's sentence ("规则“r2”的"): the form shows the label
    scope: str = ""

    def changed(self, posted: str) -> bool:
        if self.input == "lines":
            return _lines(posted) != _lines(self.value)
        if self.input == "textarea":
            return posted != self.value
        return posted.strip() != self.value.strip()


@dataclass
class Row:
    """A band, level, part, fact, rule, veto or test case: its cells and the errors at it."""

    key: str
    title: str
    file: str
    line: int
    cells: dict[str, Field] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    remove: str = ""  # the ``action`` value of its remove button
    note: str = ""  # e.g. which test cases a removal will change
    uses: list[str] = field(default_factory=list)  # a fact's: the test cases that give it
    path: tuple = ()


@dataclass
class Table:
    key: str
    title: str
    columns: list[tuple[str, str]]  # (cell key, heading)
    rows: list[Row]
    add: str = ""  # the ``action`` of its add button
    add_label: str = ""


@dataclass
class RuleForm:
    id: str
    kind: str
    kind_title: str
    row: Row
    fields: list[Field]
    tables: list[Table]
    panel: list[Field]
    bounds: list[Field]  # an assessed rule's reviewer bounds: its value fact's min and max


class Applied(dict):
    """Files after a form was applied (a plain dict of files), with what was changed."""

    def __init__(self, files: Files, changes: list[str], touched: list[str]):
        super().__init__(files)
        self.changes = changes
        self.touched = touched


# --- reading the files -------------------------------------------------------------------------

_SAFE = threading.local()
_HEADS: dict[str, Any] = {}


def _head(files: Files) -> Any:
    """scheme.yaml's data (categories, facts), parsed once per text: the form only reads it."""
    text = files.get("scheme.yaml", "")
    if text not in _HEADS:
        from ruamel.yaml import YAML

        if not hasattr(_SAFE, "yaml"):
            _SAFE.yaml = YAML(typ="safe")
        try:
            data = _SAFE.yaml.load(text)
        except Exception:  # a broken header is the loader's to report; the clause form goes on
            data = None
        if len(_HEADS) > 32:
            _HEADS.clear()
        _HEADS[text] = data if isinstance(data, dict) else {}
    return _HEADS[text]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _list(value: Any) -> list:
    """A list the form walks: what is not a list (a draft broken in the text view) is none."""
    return value if isinstance(value, list) else []


def _lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.replace("\r\n", "\n").split("\n") if ln.strip()]


def _line(owner: Any, key: Any) -> int:
    """The line (from 1) of a mapping's key or a list's item; 0 if it is not written."""
    try:
        if isinstance(key, int):
            return owner.lc.item(key)[0] + 1
        if key in owner:
            return owner.lc.key(key)[0] + 1
    except (AttributeError, KeyError, IndexError, TypeError):
        pass
    return 0


def _spans(node: Any, path: tuple, start: int, end: int, out: dict) -> None:
    """Each node's lines (first, last), from its key's line to the line before its sibling's."""
    out[path] = (start, end)
    if isinstance(node, dict):
        keys = list(node)
        lines = [_line(node, k) for k in keys]
    elif isinstance(node, list):
        keys = list(range(len(node)))
        lines = [_line(node, i) for i in keys]
    else:
        return
    for i, k in enumerate(keys):
        s = lines[i] or start
        e = max(s, lines[i + 1] - 1) if i + 1 < len(keys) and lines[i + 1] else end
        _spans(node[k], path + (k,), s, min(e, end) if e >= s else s, out)


# --- numbers and values from the form ----------------------------------------------------------


def _decimal(text: str, what: str, name: str) -> Decimal:
    t = text.strip().replace("，", "").replace(",", "")
    try:
        value = Decimal(t)
    except InvalidOperation:
        raise EditError(f"{what}应为数字，收到“{text.strip()}”", field=name) from None
    if not value.is_finite():
        raise EditError(f"{what}应为数字，收到“{text.strip()}”", field=name)
    return value


def _whole(text: str, what: str, name: str) -> int:
    value = _decimal(text, what, name)
    if value != value.to_integral_value():
        raise EditError(f"{what}应为整数，收到“{text.strip()}”", field=name)
    return int(value)


def _typed(kind: str, text: str, what: str, name: str, required: bool) -> Any:
    """A posted value as the file holds it (None: not written); ``kind`` is a Key type."""
    t = text.replace("\r\n", "\n") if kind == "textarea" else text.strip()
    if not t.strip():
        if required:
            raise EditError(f"{what}必须填写", field=name)
        return None
    if kind in ("number", "positive"):
        return _decimal(t, what, name)
    if kind == "whole":
        return _whole(t, what, name)
    if kind == "flag":
        if t not in ("true", "false"):
            raise EditError(f"{what}应为“是”或“否”，收到“{t}”", field=name)
        return t == "true"
    return t


def _fact_value(t: str, fact_type: str | None, what: str, name: str) -> Any:
    """A test case's fact as the file holds it, by the fact's type."""
    t = t.strip()
    if fact_type in ("number", "integer", "percent"):
        return _decimal(t, what, name)
    if fact_type == "boolean" or (fact_type is None and t in ("true", "false")):
        if t in ("true", "是"):
            return True
        if t in ("false", "否"):
            return False
        raise EditError(f"{what}应为“是”或“否”，收到“{t}”", field=name)
    if fact_type is None:
        try:
            return _decimal(t, what, name)
        except EditError:
            return t
    return t


# --- ranges ------------------------------------------------------------------------------------

_RANGE = re.compile(r"^\s*([\[(])\s*(\S*?)\s*,\s*(\S*?)\s*([\])])\s*$")


def _range_parts(text: str) -> tuple[str, str, str, str]:
    """(lo_closed, lo, hi, hi_closed) as the cells show them: "[" or "(", "" for infinite."""
    m = _RANGE.match(text or "")
    if not m:
        return "[", "", "", ")"
    left, lo, hi, right = m.groups()
    return left, "" if lo == "-inf" else lo, "" if hi == "inf" else hi, right


#: what a range's cell may say for "no bound" besides nothing
_UNBOUNDED = ("", "inf", "-inf", "+inf", "∞", "-∞", "不限", "无")


def _range_text(left: str, lo: str, hi: str, right: str, what: str, names: list[str]) -> str:
    """The range the four cells say, in the format's words: "[1.2, inf)"."""
    out = []
    for t, inf, name, end in ((lo, "-inf", names[1], "下限"), (hi, "inf", names[2], "上限")):
        if t.strip().lower() in _UNBOUNDED:
            out.append(inf)
        else:
            out.append(format(_decimal(t, what + end, name), "f"))
    if left not in ("[", "("):
        raise EditError(f"{what}下限应选“含”或“不含”", field=names[0])
    if right not in ("]", ")"):
        raise EditError(f"{what}上限应选“含”或“不含”", field=names[3])
    return f"{left}{out[0]}, {out[1]}{right}"


# --- building the form -------------------------------------------------------------------------

#: How a key's type is shown: the widget, and the Key type the posted text is read as.
WIDGETS = {
    "expression": "expression",
    "number": "number",
    "positive": "number",
    "flag": "select",
    "fact": "select",
    "text": "text",
}
#: A rule's keys that hold lists, shown as tables: the spec object of one item.
LIST_ITEMS = {"bands": BAND, "levels": LEVEL, "parts": PART}
#: A table cell's heading (the spec's docs are sentences).
CELL_WORDS = {
    "points": "分值",
    "label": "名称",
    "text": "原文描述",
    "fact": "事实",
    "weight": "权重",
}
_ITEM_WORD = {"bands": "档", "levels": "档", "parts": "部分"}
FLAG_OPTIONS = [("", "（不写）"), ("true", "是"), ("false", "否")]
STATUS_OPTIONS = [
    ("", "（不检查）"),
    ("scored", "已计分"),
    ("incomplete", "缺事实"),
    ("vetoed", "否决"),
]
FACT_TYPE_WORDS = {
    "number": "数值",
    "integer": "整数",
    "percent": "百分比",
    "boolean": "是/否",
    "text": "文字",
    "choice": "选项",
}


class _Builder:
    def __init__(self, files: Files, clause_id: str):
        self.files = files
        self.cid = str(clause_id)
        self.rel = edit.clause_file(files, self.cid)
        self.doc = edit.document(files, self.rel)
        self.fields: dict[str, Field] = {}
        self.targets: dict[tuple, Field | Row] = {}
        head = _head(files)
        self.scheme_facts = {
            str(f.get("name")): f for f in head.get("facts") or [] if isinstance(f, dict)
        }
        self.facts = {
            str(f.get("name")): f for f in _list(self.doc.get("facts")) if isinstance(f, dict)
        }

    # one field
    def add(
        self,
        name: str,
        label: str,
        owner: Any,
        key: Any,
        input: str,
        path: tuple,
        write: Callable[[Files, str], Files],
        value: str | None = None,
        **extra: Any,
    ) -> Field:
        if value is None:
            value = _text(owner.get(key)) if isinstance(owner, dict) else ""
        line = _line(owner, key) if isinstance(owner, dict) and key in owner else 0
        if input in ("text", "expression") and "\n" in value:
            input = "textarea"  # a text input cannot hold a line break: a browser drops it
        f = Field(name, label, value, input, self.rel, line, path=path, write=write, **extra)
        self.fields[name] = f
        if line:
            self.targets.setdefault(path, f)
        return f

    def row(self, key: str, title: str, owner: Any, index: int, path: tuple, **extra) -> Row:
        r = Row(key, title, self.rel, _line(owner, index), path=path, **extra)
        self.targets[path] = r
        return r

    def fact_type(self, name: str) -> str | None:
        spec = self.facts.get(name) or self.scheme_facts.get(name)
        return str(spec.get("type")) if spec else None

    def fact_label(self, name: str) -> str:
        spec = self.facts.get(name) or self.scheme_facts.get(name)
        return str(spec.get("label") or name) if spec else name

    def fact_options(self, current: str) -> list[tuple[str, str]]:
        names = list(self.facts) + [n for n in self.scheme_facts if n not in self.facts]
        options = [("", "（不写）")] + [(n, f"{n}（{self.fact_label(n)}）") for n in names]
        if current and current not in names:
            options.append((current, f"{current}（未声明）"))
        return options


#: The clause's own fields: (key, label, widget, how the text is read, required, hint). The
#: source's text is the one written under another key (source.text); bonus is bonus.cap.
CLAUSE_FIELDS = (
    ("title", "条款名称", "text", "text", True, ""),
    ("source", "原文（逐字照录）", "textarea", "textarea", True, ""),
    ("points", "分值", "number", "number", True, "加分项、扣分项为最多加或扣的分数"),
    ("category", "所属类别", "select", "text", True, ""),
    ("start", "计分方式", "select", "text", False, ""),
    ("offices", "责任部门", "lines", "lines", False, "每行一个部门"),
    ("deadline", "落实时限", "text", "text", False, ""),
    (
        "tasks",
        "工作任务",
        "lines",
        "tasks",
        False,
        "每行一项：工作任务 | 落实时限 | 部门、部门（后两栏可不写）",
    ),
    ("evidence", "佐证材料", "lines", "lines", False, "每行一项"),
    ("note", "解读说明", "textarea", "textarea", False, ""),
    (
        "bonus",
        "加分项上限",
        "number",
        "positive",
        False,
        "本条款标为加分的规则在条款分值之外最多加的分数；不设加分项则留空",
    ),
)
START_OPTIONS = [("", "从0分加起（默认）"), ("zero", "从0分加起"), ("full", "从满分扣起")]


def _clause_fields(b: _Builder) -> list[Field]:
    d = b.doc
    options = {"category": _category_options(b), "start": START_OPTIONS}
    out = []
    for key, label, widget, kind, required, hint in CLAUSE_FIELDS:
        owner, at, path = d, key, (key,)
        value = None
        if key == "source":  # the verbatim text, under source
            owner, at, path = (
                d.get(key) if isinstance(d.get(key), dict) else {},
                "text",
                (key, "text"),
            )
        elif key == "bonus":  # the cap of the clause's bonus rules, under bonus
            owner, at, path = (
                d.get(key) if isinstance(d.get(key), dict) else {},
                "cap",
                (key, "cap"),
            )
        elif kind == "tasks":
            value = "\n".join(_task_line(x) for x in _list(d.get(key)))
            if not _reads_back(_tasks, value, d.get(key)):  # shown, not posted: nothing is lost
                widget, hint = "static", LIST_IN_TEXT_VIEW
        elif widget == "lines":
            value = "\n".join(_text(x) for x in _list(d.get(key)))
        out.append(
            b.add(
                f"c.{key}",
                label,
                owner,
                at,
                widget,
                path,
                _clause_writer(b.cid, key, kind, label, required),
                value=value,
                options=options.get(key, []),
                required=required,
                hint=hint,
            )  # fmt: skip
        )
    return out


LIST_IN_TEXT_VIEW = "有一项的文字含有分隔符（| 或顿号、逗号），表单无法逐行读回，请在文本视图中修改"


def _reads_back(read: Callable[[str, str, str], list[dict]], text: str, written: Any) -> bool:
    """Whether the lines a list of mappings is shown as read back as the same items: a text
    holding a | (or an office a 、) would be split otherwise, so such a list is not offered."""
    try:
        got = read(text, "", "")
    except EditError:
        return False

    def canon(items: Any) -> list:
        out = []
        for item in _list(items):
            if not isinstance(item, dict):
                return [object()]  # not a mapping: the text view's
            out.append(
                {
                    str(k): [_text(x) for x in v] if isinstance(v, list) else _canon_text(v)
                    for k, v in item.items()
                    if v is not None
                }
            )
        return out

    return canon(got) == canon(written)


def _canon_text(value: Any) -> str:
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return format(Decimal(str(value)).normalize(), "f")
    return _text(value)


def _parts(line: str) -> list[str]:
    """One line of a list of mappings, its columns split at | (a full-width ｜ too)."""
    return [p.strip() for p in re.split(r"[|｜]", line)]


def _task_line(task: Any) -> str:
    """A task as one line of the field: 工作任务 | 落实时限 | 部门、部门 (empty columns left off)."""
    if not isinstance(task, dict):
        return _text(task)
    parts = [_text(task.get("task")), _text(task.get("deadline"))]
    parts.append("、".join(_text(o) for o in _list(task.get("offices"))))
    while len(parts) > 1 and not parts[-1]:
        parts.pop()
    return " | ".join(parts)


def _tasks(text: str, what: str, name: str) -> list[dict]:
    tasks = []
    for n, line in enumerate(_lines(text), 1):
        parts = _parts(line)
        if len(parts) > 3:
            raise EditError(
                f"{what}第{n}行最多三栏（工作任务 | 落实时限 | 部门），收到“{line}”", field=name
            )
        parts += [""] * (3 - len(parts))
        if not parts[0]:
            raise EditError(f"{what}第{n}行没有写工作任务", field=name)
        offices = [o for o in re.split(r"[、,，]+", parts[2]) if o.strip()]
        tasks.append({"task": parts[0], "deadline": parts[1] or None, "offices": offices or None})
    return tasks


def _clause_writer(cid: str, key: str, kind: str, label: str, required: bool):
    def write(files: Files, text: str) -> Files:
        if kind == "tasks":
            return edit.set_clause_key(files, cid, key, _tasks(text, label, f"c.{key}"))
        if kind == "lines":
            return edit.set_clause_key(files, cid, key, _lines(text))
        value = _typed(kind, text, label, f"c.{key}", required)
        if key == "source":
            return edit.set_clause_field(files, cid, "source", value)
        return edit.set_clause_key(files, cid, key, value)

    return write


def _category_options(b: _Builder) -> list[tuple[str, str]]:
    cats = [("", "（未选）")] + _categories(_head(b.files).get("categories"), 0)
    current = _text(b.doc.get("category"))
    if current and current not in [c for c, _ in cats]:
        cats.append((current, f"{current}（细则中没有这一类别）"))
    return cats


def _categories(cats: Any, depth: int) -> list[tuple[str, str]]:
    out = []
    for cat in cats or []:
        if isinstance(cat, dict):
            out.append(
                (_text(cat.get("id")), "　" * depth + f"{cat.get('id')} {cat.get('title', '')}")
            )
            out += _categories(cat.get("categories"), depth + 1)
    return out


FACT_COLUMNS = [
    ("name", "事实名"),
    ("type", "类型"),
    ("label", "中文名称"),
    ("unit", "单位"),
    ("min", "最小值"),
    ("max", "最大值"),
    ("help", "填报说明"),
    ("choices", "可选值"),
    ("required", "必填"),
    ("applies_when", "适用条件"),
]
#: A fact's ``required`` as the form offers it: not written means required (the format's default).
REQUIRED_OPTIONS = [("", "（不写：必填）"), ("true", "是"), ("false", "否")]
#: How a fact's cell is shown and read: (widget, the Key type the posted text is read as).
FACT_CELLS = {
    "type": ("select", "text"),
    "min": ("number", "number"),
    "max": ("number", "number"),
    "choices": ("lines", "lines"),
    "required": ("select", "flag"),
    "applies_when": ("expression", "expression"),
}
FACT_HINTS = {
    "choices": "choice 类型的可选值，每行一个",
    "applies_when": "只在该条件成立时需要填报（读取其他事实），如 committee_established",
}


def _fact_table(b: _Builder, uses: dict[str, list[str]]) -> Table:
    rows = []
    facts = _list(b.doc.get("facts"))
    for i, spec in enumerate(facts):
        if not isinstance(spec, dict):
            continue
        name = _text(spec.get("name"))
        path = ("facts", i)
        # as remove_fact will say it took the fact out of them ("file：name")
        used = [f"{b.rel}：{t}" for t in uses.get(name, [])]
        used += [f"scheme.yaml：{t}" for t in _scheme_uses(b.files, name)]
        words = [f"本条款用例“{t}”" for t in uses.get(name, [])]
        words += [f"细则用例“{t}”" for t in _scheme_uses(b.files, name)]
        note = f"删去时也从{len(words)}个测试用例中删去：{'、'.join(words)}" if words else ""
        r = b.row(f"f.{name}", name, facts, i, path, remove=f"remove_fact:{name}", note=note)
        r.uses = used
        r.cells["name"] = Field(f"f.{name}.name", "事实名", name, "static", b.rel, r.line)
        for key, words in FACT_COLUMNS[1:]:
            widget, kind = FACT_CELLS.get(key, ("text", "text"))
            required = key in ("type", "label")
            opts = {
                "type": [(t, f"{t}（{FACT_TYPE_WORDS[t]}）") for t in FACT_TYPES],
                "required": REQUIRED_OPTIONS,
            }.get(key, [])
            value = None
            if widget == "lines":  # a list, one item a line (choices)
                value = "\n".join(_text(x) for x in _list(spec.get(key)))
            r.cells[key] = b.add(
                f"f.{name}.{key}",
                f"事实“{name}”的{words}",
                spec,
                key,
                widget,
                path + (key,),
                _fact_writer(b.cid, name, key, kind, words, required),
                value=value,
                options=opts,
                required=required,
                hint=FACT_HINTS.get(key, ""),
            )
        rows.append(r)
    return Table("facts", "事实", FACT_COLUMNS, rows, "add_fact", "添加事实")


def _scheme_uses(files: Files, fact: str) -> list[str]:
    """The scheme's test cases (and ranking tests) that give a fact, as remove_fact takes it out."""
    head = _head(files)
    out = [
        _text(case.get("name"))
        for case in head.get("tests") or []
        if isinstance(case, dict) and fact in (case.get("facts") or {})
    ]
    for case in head.get("ranking_tests") or []:
        units = case.get("units") if isinstance(case, dict) else None
        if isinstance(units, dict) and any(
            fact in ((u or {}).get("facts") or {}) for u in units.values() if isinstance(u, dict)
        ):
            out.append(_text(case.get("name")))
    return out


def _fact_writer(cid: str, fact: str, key: str, kind: str, words: str, required: bool):
    def write(files: Files, text: str) -> Files:
        if kind == "lines":  # choices: none left takes the key out
            return edit.set_fact_key(files, cid, fact, key, _lines(text) or None)
        value = _typed(kind, text, f"事实“{fact}”的{words}", f"f.{fact}.{key}", required)
        return edit.set_fact_key(files, cid, fact, key, value)

    return write


def _rule_form(b: _Builder, rules: Any, i: int) -> RuleForm:
    rule = rules[i]
    rid = _text(rule.get("id"))
    kind = _text(rule.get("kind"))
    block = BLOCKS.get(kind)
    path = ("rules", i)
    row = b.row(f"r.{rid}", rid, rules, i, path, remove=f"remove_rule:{rid}")
    before = set(b.fields)
    fields = [_rule_key(b, rule, rid, path, "title", "text", "规则说明", False)]
    tables, panel, bounds = [], [], []
    for key in block.keys if block else ():
        if key.type in LIST_ITEMS:
            tables.append(_item_table(b, rule, rid, path, key.name, key.label or key.name))
        elif key.type == "panel":
            panel = _panel_fields(b, rule, rid, path)
        elif key.type in WIDGETS:
            fields.append(
                _rule_key(
                    b,
                    rule,
                    rid,
                    path,
                    key.name,
                    key.type,
                    key.label or key.name,
                    key.required,
                    key.doc,
                )
            )
    fields.append(_rule_key(b, rule, rid, path, "note", "textarea", "解读说明", False))
    fields.append(
        _rule_key(
            b, rule, rid, path, "bonus", "flag", "加分规则", False, COMMON_RULE_FIELDS["bonus"].doc
        )
    )
    for key in block.keys if block else ():
        if key.bounds:  # the reviewer's bounds: the min and max of the fact the key names
            bounds += _bounds(b, _text(rule.get(key.name)), rid)
    for name in set(b.fields) - before:
        if not b.fields[name].label.startswith("规则"):
            b.fields[name].scope = f"规则“{rid}”的"
    return RuleForm(rid, kind, block.title if block else kind, row, fields, tables, panel, bounds)


def _rule_key(
    b: _Builder,
    rule: Any,
    rid: str,
    path: tuple,
    key: str,
    kind: str,
    words: str,
    required: bool,
    doc: str = "",
) -> Field:
    what = f"规则“{rid}”的{words}"
    name = f"r.{rid}.{key}"
    value = _text(rule.get(key))
    input = "textarea" if kind == "textarea" else WIDGETS.get(kind, "text")
    options: list[tuple[str, str]] = []
    if kind == "flag":
        options = FLAG_OPTIONS
    elif kind == "fact":
        options = b.fact_options(value)

    def write(files: Files, text: str) -> Files:
        return edit.set_rule_key(files, b.cid, rid, key, _typed(kind, text, what, name, required))

    hint = doc.split("：", 1)[-1] if doc else ""
    return b.add(
        name,
        words,
        rule,
        key,
        input,
        path + (key,),
        write,
        options=options,
        required=required,
        hint=hint,
    )


def _item_table(b: _Builder, rule: Any, rid: str, path: tuple, key: str, words: str) -> Table:
    spec = LIST_ITEMS[key]
    items = rule.get(key) if isinstance(rule.get(key), list) else []
    columns: list[tuple[str, str]] = []
    for name in spec.fields:
        if name == "range":
            columns += [("lo_closed", "下限"), ("lo", ""), ("hi", "上限"), ("hi_closed", "")]
        else:
            columns.append((name, CELL_WORDS.get(name, name)))
    rows = []
    for n, item in enumerate(items, 1):
        if not isinstance(item, dict):
            continue
        ipath = path + (key, n - 1)
        what = f"第{n}{_ITEM_WORD[key]}"
        r = b.row(
            f"r.{rid}.{key}.{n}",
            what,
            items,
            n - 1,
            ipath,
            remove=f"remove_row:{key}:{n}:{rid}" if len(items) > 1 else "",
        )
        for name, field_spec in spec.fields.items():
            if name == "range":
                r.cells.update(_range_cells(b, item, rid, key, n, ipath, what))
                continue
            kind = {"points": "number", "weight": "positive", "fact": "fact"}.get(name, "text")
            required = field_spec.required
            fname = f"r.{rid}.{key}.{n}.{name}"
            label = f"{what}{CELL_WORDS.get(name, name)}"
            r.cells[name] = b.add(
                fname,
                label,
                item,
                name,
                WIDGETS.get(kind, "text"),
                ipath + (name,),
                _item_writer(b.cid, rid, key, n, name, kind, label, fname, required),
                options=b.fact_options(_text(item.get(name))) if kind == "fact" else [],
                required=required,
            )
        rows.append(r)
    return Table(
        f"r.{rid}.{key}", words, columns, rows, f"add_row:{key}:{rid}", f"添加一{_ITEM_WORD[key]}"
    )


def _item_writer(cid, rid, key, n, name, kind, label, fname, required):
    def write(files: Files, text: str) -> Files:
        value = _typed(kind, text, label, fname, required)
        return edit.set_rule_item(files, cid, rid, key, n, name, value)

    return write


def _range_cells(b: _Builder, item: Any, rid: str, key: str, n: int, path: tuple, what: str):
    text = _text(item.get("range"))
    parts = _range_parts(text)
    names = [f"r.{rid}.{key}.{n}.{c}" for c in ("lo_closed", "lo", "hi", "hi_closed")]
    shared: dict = {}

    def write_part(index: int):
        def write(files: Files, posted: str) -> Files:
            # the four cells are one range: the posted cells as they stand now (the form's)
            cells = list(shared.get("posted") or parts)
            cells[index] = posted.strip()
            new = _range_text(*cells, what, names)
            return edit.set_rule_item(files, b.cid, rid, key, n, "range", new)

        return write

    out = {}
    opts = {
        "lo_closed": [("[", "含"), ("(", "不含")],
        "hi_closed": [("]", "含"), (")", "不含")],
    }
    labels = {"lo_closed": "下限含否", "lo": "下限", "hi": "上限", "hi_closed": "上限含否"}
    for i, c in enumerate(("lo_closed", "lo", "hi", "hi_closed")):
        f = b.add(
            names[i],
            what + labels[c],
            item,
            "range",
            "select" if c in opts else "number",
            path + ("range",),
            write_part(i),
            value=parts[i],
            options=opts.get(c, []),
            hint="留空为不限" if c in ("lo", "hi") else "",
        )
        f.group = shared
        out[c] = f
    return out


def _panel_fields(b: _Builder, rule: Any, rid: str, path: tuple) -> list[Field]:
    panel = rule.get("panel") if isinstance(rule.get("panel"), dict) else None
    drop = panel.get("drop") if panel and isinstance(panel.get("drop"), dict) else {}
    values = {
        "reviewers": _text(panel.get("reviewers")) if panel else "",
        "highest": _text(drop.get("highest")) if drop else "",
        "lowest": _text(drop.get("lowest")) if drop else "",
    }
    words = {"reviewers": "评审人数", "highest": "去掉最高分个数", "lowest": "去掉最低分个数"}
    shared: dict = {}

    def writer(which: str):
        def write(files: Files, posted: str) -> Files:
            posted_all = shared.get("posted")
            now = dict(zip(values, posted_all, strict=True)) if posted_all else dict(values)
            now[which] = posted
            n = {
                k: _typed("whole", now[k], f"规则“{rid}”的{words[k]}", f"r.{rid}.panel.{k}", False)
                for k in now
            }
            if n["reviewers"] is None:
                return edit.set_rule_panel(files, b.cid, rid, None)
            return edit.set_rule_panel(files, b.cid, rid, n)

        return write

    out = []
    for k in ("reviewers", "highest", "lowest"):
        owner = panel if k == "reviewers" else drop
        f = b.add(
            f"r.{rid}.panel.{k}",
            words[k],
            owner or {},
            k if k == "reviewers" else k,
            "whole",
            path + ("panel",) + (() if k == "reviewers" else ("drop",)) + (k,),
            writer(k),
            value=values[k],
            hint="留空：由一名评审给分" if k == "reviewers" else "",
        )
        f.group = shared
        out.append(f)
    return out


def _bounds(b: _Builder, fact: str, rid: str) -> list[Field]:
    """An assessed rule's reviewer bounds: the min and max of the fact it reads, edited here."""
    facts = _list(b.doc.get("facts"))
    at = next(
        (i for i, f in enumerate(facts) if isinstance(f, dict) and _text(f.get("name")) == fact),
        None,
    )
    if at is None:
        return []
    spec = facts[at]
    out = []
    for key, words in (("min", "评审给分下限"), ("max", "评审给分上限")):
        out.append(
            b.add(
                f"r.{rid}.bounds.{key}",
                words,
                spec,
                key,
                "number",
                ("facts", at, key),
                _fact_writer(b.cid, fact, key, "number", words, False),
                hint=f"即事实“{fact}”的{'最小值' if key == 'min' else '最大值'}",
            )
        )
    return out


def _veto_rows(b: _Builder) -> Table:
    vetoes = b.doc.get("vetoes") if isinstance(b.doc.get("vetoes"), list) else []
    rows = []
    for i, veto in enumerate(vetoes):
        if not isinstance(veto, dict):
            continue
        vid = _text(veto.get("id"))
        path = ("vetoes", i)
        r = b.row(f"v.{vid}", vid, vetoes, i, path, remove=f"remove_veto:{vid}")
        r.cells["id"] = Field(f"v.{vid}.id", "编号", vid, "static", b.rel, r.line)
        for key, words, kind, input in (
            ("when", "否决条件", "expression", "expression"),
            ("reason", "原文依据", "text", "text"),
            ("note", "解读说明", "text", "text"),
        ):
            required = key != "note"
            what = f"否决“{vid}”的{words}"

            def write(files, text, key=key, kind=kind, what=what, required=required, vid=vid):
                value = _typed(kind, text, what, f"v.{vid}.{key}", required)
                return edit.set_veto_field(files, b.cid, vid, key, value)

            r.cells[key] = b.add(
                f"v.{vid}.{key}", what, veto, key, input, path + (key,), write, required=required
            )
        rows.append(r)
    columns = [("id", "编号"), ("when", "否决条件"), ("reason", "原文依据"), ("note", "解读说明")]
    return Table("vetoes", "否决（不得分）条件", columns, rows, "add_veto", "添加否决条件")


#: A test case's own cells besides its facts: (key, heading, widget, how the text is read).
TEST_CELLS = (
    ("points", "期望得分", "number", "number"),
    ("fired", "期望触发的规则", "text", "fired"),
    ("status", "期望状态", "select", "text"),
    ("marks", "评审打分", "lines", "marks"),
    ("note", "说明", "text", "text"),
)
MARKS_HINT = "设评审组的条款：每行一位评审，评审人 | 分数 | 理由（理由可不写）"
FIRED_HINT = "规则编号用顿号或逗号分隔；否决写 !编号；“无”：期望一条也不触发；留空：不检查"


def _test_table(b: _Builder) -> tuple[Table, dict[str, list[str]]]:
    """The test cases as a table: a column for each fact any case gives (the clause's first),
    then the expected points, rules and status; and which cases give each fact."""
    cases = _list(b.doc.get("tests"))
    names = list(b.facts)
    for case in cases:
        given = case.get("facts") if isinstance(case, dict) else None
        names += [str(k) for k in (given if isinstance(given, dict) else {}) if str(k) not in names]
    uses: dict[str, list[str]] = {}
    columns = [("name", "用例名称")] + [(f"fact.{n}", b.fact_label(n)) for n in names]
    columns += [(key, words) for key, words, _, _ in TEST_CELLS]
    rows = [
        _test_row(b, cases, i, names, uses) for i in range(len(cases)) if isinstance(cases[i], dict)
    ]
    return Table("tests", "测试用例", columns, rows, "add_test", "添加测试用例"), uses


def _test_row(b: _Builder, cases: list, i: int, names: list[str], uses: dict) -> Row:
    case, n, path = cases[i], i + 1, ("tests", i)
    tname = _text(case.get("name"))
    remove = f"remove_test:{n}" if len(cases) > 1 else ""
    r = b.row(f"t.{n}", tname, cases, i, path, remove=remove)
    r.cells["name"] = b.add(
        f"t.{n}.name", f"第{n}个用例的名称", case, "name", "text", path + ("name",),
        _test_writer(b.cid, tname, "name", "text", f"第{n}个用例的名称", f"t.{n}.name"),
        required=True, last=True,
    )  # fmt: skip
    facts = case.get("facts") if isinstance(case.get("facts"), dict) else {}
    for fact in names:
        if fact in facts:
            uses.setdefault(fact, []).append(tname)
        ftype = b.fact_type(fact)
        what, fname = f"用例“{tname}”的{b.fact_label(fact)}", f"t.{n}.fact.{fact}"
        opts = [("", "（不给）"), ("true", "是"), ("false", "否")] if ftype == "boolean" else []
        r.cells[f"fact.{fact}"] = b.add(
            fname, what, facts, fact, "select" if opts else "text", path + ("facts", fact),
            _test_fact_writer(b.cid, tname, fact, ftype, what, fname),
            value=_text(facts.get(fact)) if fact in facts else "", options=opts,
        )  # fmt: skip
    hints = {"fired": FIRED_HINT, "marks": MARKS_HINT}
    for key, words, widget, kind in TEST_CELLS:
        fired = case.get("fired")
        value = None
        if key == "fired":  # [] is "none fired", no key is "not checked"
            value = "无" if fired == [] else "、".join(map(_text, _list(fired)))
        elif key == "marks":
            value = "\n".join(_mark_line(m) for m in _list(case.get("marks")))
            if not _reads_back(_marks, value, case.get("marks")):
                widget = "static"  # shown, not posted: nothing is lost
        what = f"用例“{tname}”的{words}"
        r.cells[key] = b.add(
            f"t.{n}.{key}", what, case, key, widget, path + (key,),
            _test_writer(b.cid, tname, key, kind, what, f"t.{n}.{key}"),
            value=value, required=key == "points",
            hint=LIST_IN_TEXT_VIEW if widget == "static" else hints.get(key, ""),
            options=STATUS_OPTIONS if key == "status" else [],
        )  # fmt: skip
    return r


def _test_writer(cid: str, test: str, key: str, kind: str, what: str, name: str):
    def write(files: Files, text: str) -> Files:
        value: Any
        if kind == "marks":
            value = _marks(text, what, name) or None
        elif kind == "fired":
            t = text.strip()
            value = None if not t else ([] if t == "无" else re.split(r"[\s,，、]+", t))
        else:
            value = _typed(kind, text, what, name, key in ("name", "points"))
        return edit.set_clause_test_key(files, cid, test, key, value)

    return write


def _mark_line(mark: Any) -> str:
    """A mark as one line of the field: 评审人 | 分数 | 理由 (no reason: two columns)."""
    if not isinstance(mark, dict):
        return _text(mark)
    parts = [_text(mark.get("reviewer")), _text(mark.get("points"))]
    if mark.get("reason") is not None:
        parts.append(_text(mark.get("reason")))
    return " | ".join(parts)


def _marks(text: str, what: str, name: str) -> list[dict]:
    marks = []
    for n, line in enumerate(_lines(text), 1):
        parts = _parts(line)
        if len(parts) < 2 or not parts[0]:
            raise EditError(f"{what}第{n}行应写“评审人 | 分数 | 理由”，收到“{line}”", field=name)
        reason = " | ".join(parts[2:]) or None  # a reason may itself hold a |
        points = _decimal(parts[1], f"{what}第{n}行的分数", name)
        marks.append({"reviewer": parts[0], "points": points, "reason": reason})
    return marks


def _test_fact_writer(cid: str, test: str, fact: str, ftype: str | None, what: str, fname: str):
    def write(files: Files, text: str) -> Files:
        if not text.strip():
            return edit.remove_clause_test_fact(files, cid, test, fact)
        return edit.set_clause_test_fact(
            files, cid, test, fact, _fact_value(text, ftype, what, fname)
        )

    return write


def _attach(b: _Builder, errors_by_line: dict) -> list[str]:
    """Put each error beside the field at its line, or the nearest enclosing row or field."""
    spans: dict = {}
    total = b.files[b.rel].count("\n") + 1
    _spans(b.doc, (), 1, total, spans)
    unclaimed = []
    for (file, line), messages in errors_by_line.items():
        if not (file == b.rel or str(file).endswith("/" + b.rel)):
            continue
        target = _target(b, spans, int(line))
        if target is None:
            unclaimed += list(messages)
        else:
            target.errors += [m for m in messages if m not in target.errors]
    return unclaimed


def _target(b: _Builder, spans: dict, line: int) -> Field | Row | None:
    exact = [p for p, t in b.targets.items() if isinstance(t, Field) and t.line == line]
    if len(exact) == 1:
        return b.targets[exact[0]]
    inside = [p for p in spans if spans[p][0] <= line <= spans[p][1] and p in b.targets]
    if exact:  # several fields on one line (a flow mapping): their row
        common = _common(exact)
        inside = [p for p in inside if len(p) <= len(common) and p == common[: len(p)]]
    if not inside:
        return None
    return b.targets[max(inside, key=len)]


def _common(paths: list[tuple]) -> tuple:
    first = paths[0]
    n = 0
    while n < len(first) and all(len(p) > n and p[n] == first[n] for p in paths):
        n += 1
    return first[:n]


def _build(files: Files, clause_id: str) -> tuple[_Builder, dict]:
    b = _Builder(files, clause_id)
    header = _clause_fields(b)
    tests, uses = _test_table(b)
    facts = _fact_table(b, uses)
    rules_node = b.doc.get("rules") if isinstance(b.doc.get("rules"), list) else []
    # a rule that is not a mapping (a draft broken in the text view) has no form: the loader
    # names it, and the text view is where it is mended
    rules = [
        _rule_form(b, rules_node, i)
        for i in range(len(rules_node))
        if isinstance(rules_node[i], dict)
    ]
    vetoes = _veto_rows(b)
    ctx = {
        "clause_id": b.cid,
        "file": b.rel,
        "title": _text(b.doc.get("title")),
        "header": header,
        "facts": facts,
        "rules": rules,
        "vetoes": vetoes,
        "tests": tests,
        "kinds": [(k, blk.title) for k, blk in BLOCKS.items()],
        "fact_types": [(t, f"{t}（{FACT_TYPE_WORDS[t]}）") for t in FACT_TYPES],
        "new_rule_id": _next_id([r.id for r in rules], "r"),
        "fields": b.fields,
        "errors": [],
    }
    return b, ctx


def clause_form(files: Files, clause_id: str, errors_by_line: dict | None = None) -> dict:
    """The template context of one clause's form (see the module's docstring)."""
    b, ctx = _build(files, clause_id)
    ctx["errors"] = _attach(b, errors_by_line or {})
    return ctx


# --- applying a posted form --------------------------------------------------------------------


def _posted(form: Any, name: str) -> str | None:
    value = form.get(name)
    return None if value is None else str(value).replace("\r\n", "\n")


#: the last forms applied: (clause, files, form) -> the result. A save applies the same form to
#: the same files twice (once to say what changed, once inside the draft's optimistic lock), and
#: each edit writes its file the round-trip way (tens of milliseconds a value)
_APPLIED: dict[tuple, Applied] = {}
_APPLIED_LOCK = threading.Lock()


def _form_items(form: Any) -> tuple:
    try:
        return tuple(form.items(multi=True))
    except TypeError:  # a plain mapping
        return tuple(form.items())


def apply_clause_form(files: Files, clause_id: str, form: Any) -> Applied:
    """Write what the posted form changed (see the module's docstring)."""
    key = (str(clause_id), tuple(files.items()), _form_items(form))
    try:
        done = _APPLIED.get(key)
    except TypeError:  # a value that cannot be a key (an upload): nothing remembered
        return _apply(files, clause_id, form)
    if done is None:
        done = _apply(files, clause_id, form)
        with _APPLIED_LOCK:
            if len(_APPLIED) > 8:
                _APPLIED.clear()
            _APPLIED[key] = done
    return Applied(done, list(done.changes), list(done.touched))


def _apply(files: Files, clause_id: str, form: Any) -> Applied:
    b, ctx = _build(files, clause_id)
    changes: list[str] = []
    touched: list[str] = []
    # a range's four cells and a panel's three are one value each: write it once, from all
    groups_done: set[int] = set()
    ordered = sorted(b.fields.values(), key=lambda f: f.last)
    new = dict(files)
    for f in ordered:
        posted = _posted(form, f.name)
        if posted is None or f.write is None or not f.changed(posted):
            continue
        group = getattr(f, "group", None)
        if group is not None:
            if id(group) in groups_done:
                continue
            groups_done.add(id(group))
            members = [g for g in b.fields.values() if getattr(g, "group", None) is group]
            group["posted"] = [
                (_posted(form, g.name) if _posted(form, g.name) is not None else g.value).strip()
                for g in members
            ]
            posted = group["posted"][members.index(f)]
        before, new = new, f.write(new, posted)
        if new == before:  # the same value written otherwise ("4.0" for 4): nothing to say
            continue
        what = f.scope + f.label
        changes.append(f"{what}改为“{posted.strip()}”" if posted.strip() else f"{what}清空")
    action = (form.get("action") or "").strip()
    if action and action != "save":
        new, said, gone = _act(new, b, ctx, action, form)
        changes += said
        touched += gone
    return Applied(new, changes, touched)


def _next_id(ids: list[str], prefix: str) -> str:
    n = 1
    while f"{prefix}{n}" in ids:
        n += 1
    return f"{prefix}{n}"


def _act(files: Files, b: _Builder, ctx: dict, action: str, form: Any):
    """The posted ``action`` (a structural button): (files, what it did, test cases touched)."""
    verb, _, arg = action.partition(":")
    handler = ACTIONS.get(verb)
    if handler is None:
        raise EditError(f"无法识别的操作 {action}")
    return handler(files, b, ctx, arg, form)


def _add_fact(files: Files, b: _Builder, ctx: dict, arg: str, form: Any):
    name = (form.get("new_fact.name") or "").strip()
    ftype = (form.get("new_fact.type") or "number").strip()
    label = (form.get("new_fact.label") or "").strip() or name
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise EditError(
            "新事实的事实名应由英文字母、数字和下划线组成，且不以数字开头", field="new_fact.name"
        )
    if ftype not in FACT_TYPES:
        raise EditError(f"新事实的类型“{ftype}”不是可选的类型", field="new_fact.type")
    fact = {"name": name, "type": ftype, "label": label}
    return edit.add_fact(files, b.cid, fact), [f"添加事实“{name}”"], []


def _add_rule(files: Files, b: _Builder, ctx: dict, arg: str, form: Any):
    kind = (form.get("new_rule.kind") or "").strip()
    if kind not in BLOCKS:
        raise EditError(f"请选择新规则的积木类型（收到“{kind}”）", field="new_rule.kind")
    rid = (form.get("new_rule.id") or "").strip() or ctx["new_rule_id"]
    if "/" in rid or rid.startswith(("!", "$")):
        raise EditError(f"规则编号“{rid}”不能含有“/”，也不能以“!”或“$”开头", field="new_rule.id")
    said = f"添加规则“{rid}”（{BLOCKS[kind].title}）"
    return edit.add_rule(files, b.cid, _starter(b, rid, kind)), [said], []


def _add_row(files: Files, b: _Builder, ctx: dict, arg: str, form: Any):
    key, _, rid = arg.partition(":")
    if key not in LIST_ITEMS:
        raise EditError(f"没有可添加行的表格 {key}")
    said = f"规则“{rid}”添加一{_ITEM_WORD[key]}"
    return edit.add_rule_item(files, b.cid, rid, key, _starter_item(b, key)), [said], []


def _remove_row(files: Files, b: _Builder, ctx: dict, arg: str, form: Any):
    key, n, rid = (arg.split(":", 2) + ["", ""])[:3]
    if key not in LIST_ITEMS or not n.isdigit():
        raise EditError(f"无法识别的操作 remove_row:{arg}")
    said = f"规则“{rid}”删去第{n}{_ITEM_WORD[key]}"
    return edit.remove_rule_item(files, b.cid, rid, key, int(n)), [said], []


def _add_veto(files: Files, b: _Builder, ctx: dict, arg: str, form: Any):
    vid = _next_id([r.title for r in ctx["vetoes"].rows], "v")
    veto = {"id": vid, "when": next(iter(b.facts), "false"), "reason": "（请填写原文依据）"}
    return edit.add_veto(files, b.cid, veto), [f"添加否决“{vid}”"], []


def _add_test(files: Files, b: _Builder, ctx: dict, arg: str, form: Any):
    names = [r.title for r in ctx["tests"].rows]
    n = len(names) + 1
    while f"新用例{n}" in names:
        n += 1
    case = {"name": f"新用例{n}", "facts": {}, "points": Decimal(0)}
    return edit.add_clause_test(files, b.cid, case), [f"添加测试用例“新用例{n}”"], []


def _remove_test(files: Files, b: _Builder, ctx: dict, arg: str, form: Any):
    if not arg.isdigit() or not 1 <= int(arg) <= len(ctx["tests"].rows):
        raise EditError(f"没有第{arg}个测试用例")
    # the name as the form's fields left it (a rename in the same post is already written)
    name = _current_test_name(files, b, int(arg))
    return edit.remove_clause_test(files, b.cid, name), [f"删去测试用例“{name}”"], []


def _removal(remove: Callable[..., edit.Removal], words: str):
    """A removal that may change test cases (a fact, a rule, a veto), named by its id."""

    def handler(files: Files, b: _Builder, ctx: dict, arg: str, form: Any):
        removal = remove(files, b.cid, arg)
        return removal.files, [f"删去{words}“{arg}”"], removal.touched

    return handler


#: the posted ``action``'s verb -> what it does (the module's docstring lists them)
ACTIONS = {
    "add_fact": _add_fact,
    "remove_fact": _removal(edit.remove_fact, "事实"),
    "add_rule": _add_rule,
    "remove_rule": _removal(edit.remove_rule, "规则"),
    "add_row": _add_row,
    "remove_row": _remove_row,
    "add_veto": _add_veto,
    "remove_veto": _removal(edit.remove_veto, "否决"),
    "add_test": _add_test,
    "remove_test": _remove_test,
}


def _current_test_name(files: Files, b: _Builder, n: int) -> str:
    doc = edit.document(files, b.rel)
    return _text((doc.get("tests") or [])[n - 1].get("name"))


_STARTERS = {
    "expression": lambda b: next(iter(b.facts), "0"),
    "number": lambda b: Decimal(0),
    "positive": lambda b: Decimal(1),
    "flag": lambda b: True,
    "fact": lambda b: next(iter(b.facts), ""),
    "text": lambda b: "",
}


def _starter(b: _Builder, rid: str, kind: str) -> dict:
    """A new rule of ``kind`` with its required keys given a first value (the form then shows
    it, and the loader says what still needs changing)."""
    rule: dict = {"id": rid, "kind": kind}
    for key in BLOCKS[kind].keys:
        if not key.required:
            continue
        if key.type in LIST_ITEMS:
            rule[key.name] = [_starter_item(b, key.name)]
        elif key.type in _STARTERS:
            rule[key.name] = _STARTERS[key.type](b)
    return rule


def _starter_item(b: _Builder, key: str) -> dict:
    """A new band, level or part: its required fields, each given a first value by what the
    spec says it holds (the officer then edits the row; the loader says what still clashes)."""
    out: dict = {}
    for name, spec in LIST_ITEMS[key].fields.items():
        if not spec.required:
            continue
        if isinstance(spec.spec, Range):
            out[name] = "[0, inf)"
        elif isinstance(spec.spec, Number):
            out[name] = Decimal(1 if spec.spec.positive else 0)
        elif isinstance(spec.spec, Id):
            out[name] = next(iter(b.facts), "")
        else:
            out[name] = "新的一" + _ITEM_WORD[key]
    return out


__all__ = ["Applied", "Field", "Row", "RuleForm", "Table", "apply_clause_form", "clause_form"]
