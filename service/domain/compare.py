"""What changed between two versions of a scheme, in plain Chinese, grouped by clause.

``compare(old, new)`` reads two loaded schemes and says, clause by clause, what a policy
officer would want to know before approving the new one: "第4条分值由4分改为5分".  Each
difference carries its kind, the clause it concerns and the exact values before and after;
the sentence rounds numbers to 2 decimals, the data never does.  What a rule's kind means
is its building block's to say (``Block.differences``), so a new kind brings its own words.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .blocks import BLOCKS
from .blocks.base import value_words
from .model import Category, Clause, FactSpec, Scheme
from .numbers import points_words

#: headings of the groups that are not one clause's
SCHEME, CATEGORIES, GRADING, FACTS = "细则", "分类与分值", "等级评定", "全局事实"
RELATIVE = "排名赋分"


@dataclass(frozen=True)
class Difference:
    kind: str  # what changed: "clause_points", "band_high", "fact_added", …
    clause: str  # the clause's id (in the new version if it has one there), "" if none
    sentence: str
    before: Any = None
    after: Any = None


@dataclass(frozen=True)
class Group:
    """The differences of one clause (``clause`` its id), or of a part of the scheme."""

    clause: str
    heading: str
    differences: tuple


def compare(old: Scheme, new: Scheme) -> list[Group]:
    """The differences from ``old`` to ``new``, grouped: the scheme's header, its categories,
    its grading, its scheme-level facts, then each clause (new order; removed ones last)."""
    groups = [
        Group("", SCHEME, tuple(_header(old, new))),
        Group("", CATEGORIES, tuple(_categories(old, new))),
        Group("", GRADING, tuple(_grading(old, new))),
        Group("", RELATIVE, tuple(_relative(old, new))),
        Group("", FACTS, tuple(_facts(old, new, ""))),
    ]
    pairs, added, removed = match_clauses(old, new)
    back = {b.id: a for a, b in pairs}
    for c in new.clauses.values():
        if c.id in added:
            groups.append(Group(c.id, _heading(c), tuple(_added(c, new))))
        else:
            groups.append(Group(c.id, _heading(c), tuple(_clause(back[c.id], c, old, new))))
    for c in removed:
        groups.append(Group(c.id, _heading(c), tuple(_removed(c, old))))
    return [g for g in groups if g.differences]


def match_clauses(old: Scheme, new: Scheme) -> tuple[list, set, list]:
    """(old, new) clause pairs, ids of new clauses with no old one, old clauses with no new one.

    Matched by id; what is left, by the same title, then by the same source text (a clause
    renumbered keeps its title or its text)."""
    pairs = [(old.clauses[i], c) for i, c in new.clauses.items() if i in old.clauses]
    left_old = [c for i, c in old.clauses.items() if i not in new.clauses]
    left_new = [c for i, c in new.clauses.items() if i not in old.clauses]
    for same in (lambda c: c.title, lambda c: c.source.text):
        for b in list(left_new):
            a = next((a for a in left_old if same(a) == same(b)), None)
            if a is not None:
                pairs.append((a, b))
                left_old.remove(a)
                left_new.remove(b)
    return pairs, {c.id for c in left_new}, left_old


def _heading(c: Clause) -> str:
    return f"{_name(c.id)} {c.title}"


def _name(clause_id: str) -> str:
    return f"第{clause_id}条"


def _pts(value: Decimal | None, unit: str) -> str:
    return "不限" if value is None else points_words(value) + unit


def _changed(kind, clause, what, before, after, shown=value_words) -> list[Difference]:
    if before == after:
        return []
    return [Difference(kind, clause, f"{what}由{shown(before)}改为{shown(after)}", before, after)]


# --- header ---------------------------------------------------------------------------------


def _header(old: Scheme, new: Scheme) -> list[Difference]:
    unit = new.unit
    out = _changed("scheme_title", "", "细则标题", old.title, new.title)
    out += _changed("scheme_year", "", "年度", old.year, new.year)
    out += _changed("scheme_issuer", "", "发布单位", old.issuer, new.issuer)
    out += _changed("scheme_total", "", "总分", old.total, new.total, lambda v: _pts(v, unit))
    out += _text("scheme_source", "", "细则原文", old.source.text, new.source.text)
    return out


# --- categories -----------------------------------------------------------------------------

_KINDS = {"standard": "基本分", "bonus": "加分", "deduction": "扣分"}


def _categories(old: Scheme, new: Scheme) -> list[Difference]:
    a, b, unit = old.category_index(), new.category_index(), new.unit
    out = []
    for cid, c in b.items():
        if cid not in a:
            out.append(Difference("category_added", "", f"新增分类“{c.title}”", None, cid))
            continue
        o, title = a[cid], c.title
        out += _changed("category_title", "", f"分类“{o.title}”名称", o.title, c.title)
        out += _changed(
            "category_points", "", f"{title}分值", o.points, c.points, lambda v: _pts(v, unit)
        )
        out += _changed(
            "category_cap", "", f"{title}总计上限", o.cap, c.cap, lambda v: _pts(v, unit)
        )
        out += _changed(
            "category_kind", "", f"{title}类别", o.kind, c.kind, lambda v: _KINDS.get(v, v)
        )
        out += _changed(
            "category_parent", "", f"{title}所属分类", o.parent, c.parent, lambda v: _cat(v, b, a)
        )
    for cid, o in a.items():
        if cid not in b:
            out.append(Difference("category_removed", "", f"删除分类“{o.title}”", cid, None))
    return out


def _cat(cid: str | None, *indexes: dict) -> str:
    if cid is None:
        return "无（顶层）"
    found: Category | None = next((i[cid] for i in indexes if cid in i), None)
    return f"“{found.title}”" if found else f"“{cid}”"


# --- grading --------------------------------------------------------------------------------


def _grading(old: Scheme, new: Scheme) -> list[Difference]:
    a, b, unit = old.grading, new.grading, new.unit
    out = _changed("grading_method", "", "评定方式", a.method, b.method)
    out += _keyed(
        "tier",
        {t.grade: t for t in a.tiers},
        {t.grade: t for t in b.tiers},
        lambda g: f"“{g}”等级",
        (
            ("min", "最低分", lambda v: _pts(v, unit)),
            ("top", "名额", _count),
            ("title", "名称", value_words),
        ),
    )
    out += _keyed(
        "distinction",
        {d.name: d for d in a.distinctions},
        {d.name: d for d in b.distinctions},
        lambda n: f"“{n}”称号",
        (
            ("grade", "所需等级", value_words),
            ("top", "名额", _count),
            ("min", "最低分", lambda v: _pts(v, unit)),
        ),
    )
    out += _keyed(
        "grade_veto",
        {v.id: v for v in a.vetoes},
        {v.id: v for v in b.vetoes},
        lambda i: f"等级否决“{i}”",
        (
            ("when_text", "条件", value_words),
            ("effect", "效果", lambda v: _EFFECTS.get(v, v)),
            ("grade", "等级", value_words),
            ("reason", "理由", value_words),
        ),
    )
    return out


_EFFECTS = {"force": "直接定为该等级", "bar": "不得评为该等级", "lower": "降一等"}


def _count(value: int | None) -> str:
    return "不限" if value is None else f"{value}名"


def _keyed(kind, old: dict, new: dict, name, fields, clause: str = "") -> list[Difference]:
    """Items matched by their key: added, removed, and each field that changed."""
    out = []
    for key, item in new.items():
        if key not in old:
            out.append(Difference(f"{kind}_added", clause, f"新增{name(key)}", None, key))
            continue
        for attr, label, shown in fields:
            before, after = getattr(old[key], attr), getattr(item, attr)
            out += _changed(f"{kind}_{attr}", clause, f"{name(key)}{label}", before, after, shown)
    for key in old:
        if key not in new:
            out.append(Difference(f"{kind}_removed", clause, f"删除{name(key)}", key, None))
    return out


# --- points by place among the units --------------------------------------------------------


def _relative(old: Scheme, new: Scheme) -> list[Difference]:
    unit = new.unit
    methods = {"rank": "按名次赋分", "ratio": "按与第一名之比赋分"}
    out = _keyed(
        "relative",
        {p.id: p for p in old.relative.parts},
        {p.id: p for p in new.relative.parts},
        lambda i: f"排名赋分“{i}”",
        (
            ("title", "名称", value_words),
            ("method", "方式", lambda v: methods.get(v, v)),
            ("points", "分值", lambda v: _pts(v, unit)),
            (
                "per_place",
                "每降一名扣减",
                lambda v: "无" if v is None else points_words(v * 100) + "%",
            ),
            ("rankings", "排名依据", _rankings),
        ),
    )
    a, b = old.relative.convert, new.relative.convert
    return out + _changed(
        "relative_convert",
        "",
        "总分折算",
        a.scale if a else None,
        b.scale if b else None,
        lambda v: "不折算" if v is None else f"按第一名折算为{_pts(v, unit)}",
    )


def _rankings(rankings: tuple) -> str:
    return "、".join(
        f"“{r.label}”（{'越低越好' if r.better == 'lower' else '越高越好'}）" for r in rankings
    )


# --- facts ----------------------------------------------------------------------------------


def _facts(old: Scheme, new: Scheme, owner: str, old_owner: str | None = None) -> list[Difference]:
    """The facts ``owner`` declares (a clause id, "" for the scheme's own), compared."""
    was = owner if old_owner is None else old_owner
    a = {n: f for n, f in old.facts.items() if f.owner == was}
    b = {n: f for n, f in new.facts.items() if f.owner == owner}
    out = []
    for name, f in b.items():
        if name not in a:
            out.append(
                Difference(
                    "fact_added", owner, f"新增事实“{f.label}”（{name}，{_type(f)}）", None, name
                )
            )
            continue
        o, label = a[name], f"事实“{f.label}”"
        out += _changed("fact_type", owner, f"{label}类型", _type(o), _type(f), str)
        out += _changed("fact_range", owner, f"{label}取值范围", _range(o), _range(f), _range_words)
        out += _changed("fact_label", owner, f"事实{name}名称", o.label, f.label)
        out += _changed("fact_unit", owner, f"{label}单位", o.unit, f.unit)
        out += _changed("fact_help", owner, f"{label}填写说明", o.help, f.help)
        out += _changed("fact_choices", owner, f"{label}选项", o.choices, f.choices, _choices)
        out += _changed(
            "fact_applies_when", owner, f"{label}适用条件", o.applies_when_text, f.applies_when_text
        )
        out += _changed("fact_required", owner, f"{label}必填", o.required, f.required)
    for name, o in a.items():
        if name not in b:
            out.append(
                Difference("fact_removed", owner, f"删除事实“{o.label}”（{name}）", name, None)
            )
    return out


_TYPES = {
    "number": "数值",
    "integer": "整数",
    "percent": "百分比",
    "boolean": "是否",
    "text": "文字",
    "choice": "选项",
}


def _type(f: FactSpec) -> str:
    return _TYPES.get(f.type, f.type)


def _range(f: FactSpec) -> tuple:
    return (f.minimum, f.maximum)


def _range_words(r: tuple) -> str:
    low, high = r
    if low is None and high is None:
        return "不限"
    return f"{'不限' if low is None else points_words(low)}至{'不限' if high is None else points_words(high)}"


def _choices(c: tuple) -> str:
    return "、".join(f"“{x}”" for x in c) or "无"


# --- clauses --------------------------------------------------------------------------------


def _added(c: Clause, new: Scheme) -> list[Difference]:
    cats = new.category_index()
    words = f"新增{_name(c.id)}“{c.title}”（{_cat(c.category, cats)}，{_pts(c.points, new.unit)}）"
    return [Difference("clause_added", c.id, words, None, c.id)] + _facts_of_new(c, new)


def _facts_of_new(c: Clause, new: Scheme) -> list[Difference]:
    return [
        Difference("fact_added", c.id, f"新增事实“{f.label}”（{f.name}，{_type(f)}）", None, f.name)
        for f in c.facts
    ]


def _removed(c: Clause, old: Scheme) -> list[Difference]:
    words = f"删除{_name(c.id)}“{c.title}”（原{_pts(c.points, old.unit)}）"
    gone = [
        Difference("fact_removed", c.id, f"删除事实“{f.label}”（{f.name}）", f.name, None)
        for f in c.facts
    ]
    return [Difference("clause_removed", c.id, words, c.id, None)] + gone


def _clause(a: Clause, b: Clause, old: Scheme, new: Scheme) -> list[Difference]:
    unit, cid, me = new.unit, b.id, _name(b.id)
    out = _changed("clause_id", cid, f"{_name(a.id)}“{a.title}”编号", a.id, b.id, _name)
    out += _changed("clause_title", cid, f"{me}标题", a.title, b.title)
    if a.category != b.category:
        where = lambda v: _cat(v, new.category_index(), old.category_index())  # noqa: E731
        out += _changed("clause_category", cid, f"{me}所属分类", a.category, b.category, where)
    out += _changed("clause_points", cid, f"{me}分值", a.points, b.points, lambda v: _pts(v, unit))
    out += _changed("clause_kind", cid, f"{me}类别", a.kind, b.kind, lambda v: _KINDS.get(v, v))
    start = {"zero": "从0分起算", "full": "从满分起扣"}
    out += _changed(
        "clause_start", cid, f"{me}计分起点", a.start, b.start, lambda v: start.get(v, v)
    )
    out += _changed(
        "clause_bonus_cap", cid, f"{me}加分上限", a.bonus_cap, b.bonus_cap, lambda v: _pts(v, unit)
    )
    out += _changed("clause_offices", cid, f"{me}责任部门", a.offices, b.offices, _list)
    out += _changed("clause_deadline", cid, f"{me}完成时限", a.deadline, b.deadline)
    out += _changed("clause_evidence", cid, f"{me}佐证材料", a.evidence, b.evidence, _choices)
    out += _text("clause_source", cid, f"{me}原文", a.source.text, b.source.text)
    out += _rules(a, b, unit)
    out += _keyed(
        "veto",
        {v.id: v for v in a.vetoes},
        {v.id: v for v in b.vetoes},
        lambda i: f"{me}否决项“{i}”",
        (("when_text", "条件", value_words), ("reason", "理由", value_words)),
        cid,
    )
    out += _facts(old, new, b.id, a.id)
    return out


def _list(items: tuple) -> str:
    return "、".join(items) or "无"


def _rules(a: Clause, b: Clause, unit: str) -> list[Difference]:
    olds, news = {r.id: r for r in a.rules}, {r.id: r for r in b.rules}
    many = len(olds) > 1 or len(news) > 1
    me = _name(b.id)

    def ref(rid: str) -> str:
        # a clause of one rule is spoken of as the clause ("第1条第3档上限…")
        return f"{me}规则“{rid}”" if many else me

    out = []
    for rid, r in news.items():
        block = BLOCKS[r.kind]
        if rid not in olds:
            words = f"{me}新增规则“{rid}”（{block.title}）"
            out.append(Difference("rule_added", b.id, words, None, rid))
            continue
        o = olds[rid]
        if o.kind != r.kind:
            words = f"{ref(rid)}计分方式由{BLOCKS[o.kind].title}改为{block.title}"
            out.append(Difference("rule_kind", b.id, words, o.kind, r.kind))
            continue
        for change in block.differences(o, r, unit):
            sep = "" if change.words.startswith("第") else "的"
            words = f"{ref(rid)}{sep if many else ''}{change.words}"
            out.append(Difference(change.kind, b.id, words, change.before, change.after))
        out += _changed(
            "rule_bonus", b.id, f"{ref(rid)}{'的' if many else ''}计为加分", o.bonus, r.bonus
        )
        out += _changed(
            "rule_title", b.id, f"{ref(rid)}{'的' if many else ''}名称", o.title, r.title
        )
    for rid, o in olds.items():
        if rid not in news:
            words = f"{me}删除规则“{rid}”（{BLOCKS[o.kind].title}）"
            out.append(Difference("rule_removed", b.id, words, rid, None))
    return out


# --- source text ----------------------------------------------------------------------------

# a word of Chinese text: a number, a Latin word, a run of spaces, or one character
_TOKEN = re.compile(r"[0-9]+(?:\.[0-9]+)?|[A-Za-z]+|\s+|.", re.S)
#: characters of unchanged text shown before a change, so the reader finds the place
CONTEXT_CHARS = 6


def text_changes(before: str, after: str) -> list[str]:
    """The word-level changes from ``before`` to ``after``: "“…目标值”后删去“5”、加入“4”"."""
    a, b = _TOKEN.findall(before), _TOKEN.findall(after)
    out = []
    for _op, i1, i2, j1, j2 in _changes(a, b):
        lead = "".join(a[:i1])
        tail = lead.rsplit("\n", 1)[-1][-CONTEXT_CHARS:].strip()
        where = f"“{tail}”后" if tail else ("开头" if not lead.strip() else "另起一行处")
        parts = []
        if i2 > i1:
            parts.append(f"删去“{_shown(a[i1:i2])}”")
        if j2 > j1:
            parts.append(f"加入“{_shown(b[j1:j2])}”")
        out.append(where + "、".join(parts))
    return out


def _changes(a: list, b: list) -> list[tuple]:
    """difflib's changes, two joined into one where a single unchanged character lies between:
    a rewritten sentence reads as one change, not as a scatter of characters that happen to
    recur ("的", "，")."""
    out: list[list] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        last = out[-1] if out else None
        if last is not None and i1 - last[2] <= 1 and j1 - last[4] <= 1:
            last[2], last[4] = i2, j2
        else:
            out.append([op, i1, i2, j1, j2])
    return [tuple(c) for c in out]


def _shown(tokens: list) -> str:
    return "".join(tokens).replace("\n", "（换行）")


def _text(kind: str, clause: str, what: str, before: str, after: str) -> list[Difference]:
    if before == after:
        return []
    words = f"{what}修改：{'；'.join(text_changes(before, after))}"
    return [Difference(kind, clause, words, before, after)]
