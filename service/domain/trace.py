"""The trace of a score: structured data for machines, Chinese text for people."""

from __future__ import annotations

import dataclasses
import gc
from decimal import Decimal

from .numbers import PLAIN, ZERO, display, plain

STATUS_WORDS = {"scored": "已计分", "incomplete": "缺少事实", "vetoed": "被否决"}
KIND_WORDS = {"standard": "基本分", "bonus": "加分", "deduction": "扣分"}


_WRITERS: dict = {}  # class -> a function writing one of its objects as a dict (made once per class)
# a set, not a tuple: most values tested against it are not plain (decimals, lists, results),
# and a set answers that with one hash lookup instead of five comparisons
_PLAIN = frozenset({str, int, bool, float, type(None)})
_SEQUENCES = frozenset({list, tuple, set})


def _field_value(name: str, hint: str) -> str:
    """The expression writing field ``name`` of ``v``, by its annotation: the type the field
    holds is tested first (one identity test), anything else goes through ``to_data``, so a
    value of another type than declared is written exactly as ``to_data`` writes it.  Decimals
    are read from ``PLAIN`` (no call).  (A dict or list field: ``_container``.)"""
    read = f"(x := v.{name})"
    # an optional field's None is written as itself here rather than by a call to ``to_data``
    optional = hint.endswith(" | None")
    other = "None if x is None else to_data(x)" if optional else "to_data(x)"
    hint = hint.removesuffix(" | None")
    if hint in ("str", "bool"):
        return f"x if {read}.__class__ is {hint} else {other}"
    if hint == "int":
        return f"x if {read} is None or x.__class__ is int else to_data(x)"
    if hint == "Decimal":  # most of a trace's numbers: points, maxima, amounts
        # the one 0 (``numbers.ZERO``: the points of a rule that did not fire, a clause's bonus
        # without one) known by identity, without comparing it with the cache's 0
        return f'"0" if {read} is ZERO else PLAIN[x] if x.__class__ is Decimal else {other}'
    return f"to_data(v.{name})"


#: how ``_dict`` and ``_list`` write one value ``y``, written out in a writer's loops
_ITEM = "y if y.__class__ in PLAINS else PLAIN[y] if y.__class__ is Decimal else "
_CONTAINERS = {
    # facts: their values are plain or decimals
    "dict": (
        "    if (x := v.{name}).__class__ is dict:\n        {to} = {{}}\n"
        "        for k, y in x.items():\n"
        "            {to}[k if k.__class__ is str else str(k)] = " + _ITEM + "to_data(y)\n"
        "    else:\n        {to} = to_data(x)\n"
    ),
    # most of a clause's lists (vetoes, missing) are empty; a list of results (a clause's
    # rules) goes straight to their class's writer
    "list": (
        "    if (x := v.{name}).__class__ in SEQUENCES:\n        {to} = []\n"
        "        for y in x:\n            {to}.append(" + _ITEM + "w(y)"
        " if (w := WRITERS.get(y.__class__)) is not None else to_data(y))\n"
        "    else:\n        {to} = to_data(x)\n"
    ),
}
_CONTAINERS["tuple"] = _CONTAINERS["list"]


def _writer(kind):
    """A function that writes a dataclass's public fields, then its sentences (``TEXT``), as a dict.

    A trace has some 90 objects a unit and this runs over every one of them on every API answer,
    so each class gets a function of its own, written once from its fields (``exec``): its dicts
    and lists (facts, results) written first by loops in place (Python 3.11 makes a comprehension
    a call of its own), then one dict display reading each other field and writing it by its
    declared type, no call per field but for the values that need one."""
    hints = {f.name: f.type if isinstance(f.type, str) else "" for f in dataclasses.fields(kind)}
    names = [n for n in hints if not n.startswith("_")]
    first = ""  # the statements writing the dicts and lists, each to a local of its own
    written = []
    for i, n in enumerate(names):
        if hints[n] in _CONTAINERS:
            first += _CONTAINERS[hints[n]].format(name=n, to=f"c{i}")
            written.append((n, f"c{i}"))
        else:
            written.append((n, _field_value(n, hints[n])))
    # a sentence already written (``_Worded``: most of them, on an API answer) read from its slot,
    # without the property's call; else through the property, which writes it
    written += [
        (n, f"x if (x := v._{n}) is not None else v.{n}")
        if f"_{n}" in hints
        else (n, _field_value(n, "str"))
        for n in getattr(kind, "TEXT", ())
    ]
    display = "{" + ", ".join(f"{n!r}: {e}" for n, e in written) + "}"
    fixed = getattr(kind, "FIXED", ())
    if fixed:
        # an object made with its fixed fields already written (``fixed_data``): a copy of them,
        # and only the fields that vary written over it, in place (the keys' order is kept)
        source = (
            f"def write(v):\n{first}    d = v._fixed\n    if d is None:\n"
            f"        return {display}\n    d = d.copy()\n"
            + "".join(f"    d[{n!r}] = {e}\n" for n, e in written if n not in fixed)
            + "    return d\n"
        )
    else:
        source = f"def write(v):\n{first}    return {display}\n"
    scope = {
        "to_data": _data,
        "PLAIN": PLAIN,
        "ZERO": ZERO,
        "PLAINS": _PLAIN,
        "WRITERS": _WRITERS,
        "Decimal": Decimal,
        "SEQUENCES": _SEQUENCES,
    }
    exec(compile(source, f"<to_data of {kind.__name__}>", "exec"), scope)  # noqa: S102 - our own fields' names
    return scope["write"]


def fixed_data(cls, /, **fixed) -> dict:
    """The data of the fields of a dataclass ``cls`` named in its ``FIXED`` that are the same
    for every object made from one rule or clause, written once: a template in the order of all
    its fields, the others left None.  An object holding it as ``_fixed`` is written as a copy
    of it with the other fields written over (the fixed ones must then not change)."""
    assert set(fixed) == set(cls.FIXED), (set(fixed), cls.FIXED)
    # shared by every object made from it: values no reader can change in place
    assert all(type(v) in _PLAIN or type(v) is Decimal for v in fixed.values()), fixed
    names = [f.name for f in dataclasses.fields(cls) if not f.name.startswith("_")]
    names += list(getattr(cls, "TEXT", ()))
    return {n: _data(fixed[n]) if n in fixed else None for n in names}


def _dict(value: dict) -> dict:
    # a trace's dicts are facts: their decimals (a few hundred a unit) written here rather than
    # through another call each
    return {
        k if k.__class__ is str else str(k): v
        if v.__class__ in _PLAIN
        else PLAIN[v]
        if v.__class__ is Decimal
        else _data(v)
        for k, v in value.items()
    }


def _list(value) -> list:
    # a list of results (a clause's rules) goes straight to their class's writer
    return [
        v
        if v.__class__ in _PLAIN
        else PLAIN[v]
        if v.__class__ is Decimal
        else w(v)
        if (w := _WRITERS.get(v.__class__)) is not None
        else _data(v)
        for v in value
    ]


def to_data(value):
    """Dataclasses, decimals and collections as JSON-ready data (decimals as exact strings).

    This runs over every value of a trace on every API answer, so the common
    types are tested first, and leaves are written inline, without a call each.
    The cyclic garbage collector waits meanwhile: the data holds no cycle for it to find, and
    its lists made it walk the objects the process holds once every few answers.
    """
    if not gc.isenabled():
        return _data(value)
    gc.disable()
    try:
        return _data(value)
    finally:
        gc.enable()


def _data(value):
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is Decimal:
        return PLAIN[value]
    if kind is dict:
        return _dict(value)
    if kind is list or kind is tuple or kind is set:
        return _list(value)
    write = _WRITERS.get(kind)
    if write is None:
        if dataclasses.is_dataclass(kind):
            write = _WRITERS[kind] = _writer(kind)
        else:
            write = _WRITERS[kind] = _other
    return write(value)


def _other(value):
    if isinstance(value, Decimal):
        return plain(value)
    if isinstance(value, dict):
        return {str(k): _data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_data(v) for v in value]
    return value


def _pts(value) -> str:
    if value is None:
        return "—"
    return display(value if isinstance(value, Decimal) else Decimal(str(value)))


class _Data:
    """Attribute access over stored trace data, so a stored trace renders like a fresh one."""

    def __init__(self, data: dict):
        for key, value in data.items():
            setattr(self, key, _wrap(value))


def _wrap(value):
    if isinstance(value, dict):
        return _Data(value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def render_data(trace: dict) -> str:
    """The readable text of a stored trace (as ``to_data`` wrote it)."""
    return render(_Data(trace))


def render(result, ranking_entry=None) -> str:
    """A score as readable Chinese text: every clause, every rule, the arithmetic."""
    lines = [
        f"{result.scheme_title}",
        f"被考核单位：{result.unit}",
        f"细则版本：{result.version[:16]}　计算引擎：{result.matcher}",
        "",
    ]
    _Layout(result, lines).write()
    lines.append("")
    lines.extend(_totals(result, ranking_entry))
    return "\n".join(lines)


class _Layout:
    """The category tree of a trace, each group and clause where its text first comes."""

    def __init__(self, result, lines: list[str]):
        self.lines = lines
        self.position = {c.id: i for i, c in enumerate(result.clauses)}
        self.clauses_of: dict[str, list] = {}
        for clause in result.clauses:
            self.clauses_of.setdefault(clause.category, []).append(clause)
        self.children: dict = {}
        for cat in result.categories:
            self.children.setdefault(cat.parent, []).append(cat)
        self.earliest: dict = {}

    def write(self) -> None:
        for top in sorted(self.children.get(None, []), key=self.first):
            self.category(top, 0)

    def first(self, item) -> int:
        """Where an item's first clause comes in the scheme: the order of the text."""
        if hasattr(item, "rules"):
            return self.position[item.id]
        if item.id not in self.earliest:
            own = [self.position[c.id] for c in self.clauses_of.get(item.id, [])]
            inner = [self.first(ch) for ch in self.children.get(item.id, [])]
            self.earliest[item.id] = min(own + inner, default=len(self.position))
        return self.earliest[item.id]

    def category(self, cat, depth: int) -> None:
        indent = "  " * depth
        maximum = f"/{_pts(cat.maximum)}" if cat.maximum is not None else ""
        cap = f"（总计上限{_pts(cat.cap)}）" if cat.cap is not None else ""
        # many schemes name a group by its title alone: "【质量目标】", not "【质量目标 质量目标】"
        name = cat.title if cat.id == cat.title else f"{cat.id} {cat.title}"
        self.lines.append(
            f"{indent}【{name}】{KIND_WORDS[cat.kind]} {_pts(cat.points)}{maximum}{cap}"
        )
        if cat.capped:
            self.lines.append(f"{indent}  ※ {cat.explanation}")
        items = self.clauses_of.get(cat.id, []) + self.children.get(cat.id, [])
        for item in sorted(items, key=self.first):
            if hasattr(item, "rules"):
                self.lines.extend(_clause_lines(item, indent + "  "))
            else:
                self.category(item, depth + 1)


def clause_text(clause) -> str:
    """One clause's explanation as the text trace writes it (the impact preview shows a clause's
    under both versions side by side)."""
    return "\n".join(_clause_lines(clause, ""))


def _clause_lines(clause, indent: str) -> list[str]:
    bound = {"deduction": "最多扣", "bonus": "最多加"}.get(clause.kind, "满分")
    lines = [
        f"{indent}▶ {clause.id} {clause.title}：{_pts(clause.points)}（{bound}{_pts(clause.maximum)}，"
        f"{STATUS_WORDS[clause.status]}）"
    ]
    if clause.offices:
        lines.append(f"{indent}  责任部门：{'、'.join(clause.offices)}")
    lines.append(f"{indent}  原文：{_short(clause.source)}")
    if clause.note:
        lines.append(f"{indent}  解读：{_short(_unheaded(clause.note), 200)}")
    for rule in clause.rules:
        mark = "✓" if rule.fired else "·"
        title = f"{rule.title}：" if rule.title else ""
        lines.append(f"{indent}  {mark} [{rule.rule}] {title}{rule.explanation}")
        lines.extend(_panel_lines(getattr(rule, "panel", None), indent + "      "))
        if rule.note:
            lines.append(f"{indent}      解读：{_unheaded(rule.note)}")
    for veto in clause.vetoes:
        if veto.fired:
            lines.append(f"{indent}  ✗ 否决[{veto.id}] “{veto.condition}”成立：{veto.reason}")
    if clause.missing:
        lines.append(f"{indent}  ! 缺少事实：{'、'.join(clause.missing)}")
    lines.append(f"{indent}  = {clause.explanation}")
    return lines


_DROPPED = {"highest": "（最高分，去掉）", "lowest": "（最低分，去掉）"}


def _panel_lines(panel, indent: str) -> list[str]:
    """Each reviewer's mark of a panel rule with their reason, one line each (a fresh result or a
    stored one alike)."""
    if panel is None:
        return []
    return [
        f"{indent}评审 {m.reviewer}：{_pts(m.points)}{_DROPPED.get(m.dropped, '')}"
        + (f"　理由：{_short(m.reason)}" if m.reason else "")
        for m in panel.marks
    ]


def _totals(result, ranking_entry) -> list[str]:
    u = result.point_unit
    # the three blocks of the scheme; deductions inside a standard item are already in its points
    lines = [
        f"基本分类别合计 {_pts(result.standard)}{u}　加分项合计 {_pts(result.bonus)}{u}　"
        f"扣分项合计 {_pts(result.deduction)}{u}",
        f"总分：{_pts(result.total)}{u}（基本分满分{_pts(result.maximum)}{u}）",
    ]
    if not result.complete:
        lines.append(f"注意：缺少事实 {'、'.join(result.missing)}，相关条款暂计0分，结果不完整。")
    for name in getattr(result, "not_applicable", None) or []:
        lines.append(f"不适用的事实：{name}（适用条件不成立，不必填报，不计分也不算缺少）")
    for part in getattr(result, "relative", None) or []:
        lines.append(f"排名计分[{part.title}]：{_pts(part.points)}　{part.explanation}")
    for veto in result.grade_vetoes:
        lines.append(
            f"等级否决[{veto.id}]：{veto.facts_text or veto.condition}；依据：{veto.reason}"
        )
    for pending in getattr(result, "grade_pending_vetoes", None) or []:
        lines.append(
            f"等级否决[{pending.id}]待定：缺少事实{pending.missing_text}；依据：{pending.reason}"
        )
    grade = "待定" if getattr(result, "grade_pending", False) else (result.grade or "—")
    extra = f"（{'、'.join(result.distinctions)}）" if result.distinctions else ""
    held = getattr(result, "pending_distinctions", None)
    if held:
        extra += f"（{'、'.join(held)}待定）"
    if getattr(ranking_entry, "relative", None) or getattr(ranking_entry, "converted", None):
        lines.append(f"排名时总分：{_pts(ranking_entry.total)}{u}（含排名计分，按此排名）")
    rank = f"　名次：{ranking_entry.rank}" if ranking_entry is not None else ""
    lines.append(f"等级：{grade}{extra}{rank}　{result.grade_explanation}")
    return lines


def _unheaded(note: str) -> str:
    """A note without its own "解读：" heading: the trace writes that heading itself."""
    text = note.lstrip()
    for heading in ("解读：", "解读:"):
        if text.startswith(heading):
            return text[len(heading) :].lstrip()
    return note


def _short(text: str, limit: int = 120) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[:limit] + "……"


def render_ranking(entries) -> str:
    lines = ["名次  单位  总分  等级  说明"]
    for e in entries:
        extra = f"（{'、'.join(e.distinctions)}）" if e.distinctions else ""
        if e.pending_distinctions:
            extra += f"（{'、'.join(e.pending_distinctions)}待定）"
        grade = "待定" if e.grade_pending else (e.grade or "—")
        lines.append(f"{e.rank:>3}  {e.unit}  {display(e.total)}  {grade}{extra}  {e.explanation}")
    return "\n".join(lines)
