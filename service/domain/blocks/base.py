"""What every building block of the rule format provides, and the parts several share.

A block owns one ``kind`` of rule from end to end: the keys a rule of that kind is written
with (``keys``, plain data the rule-file reader interprets), the checks on a rule as written
(``check``, through the ``RuleReading`` the loader hands it), the conditions the rule compiles
to (``conditions``), its points (``score``), the sentence saying how they came about
(``words``, from the outcome alone) and how the admin pages describe the rule (``describe``).
Adding a kind is one module here and one line in ``BLOCKS``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from .. import expressions as ex
from ..conditions import AllOf, Condition, compile_condition
from ..facts import applies
from ..model import Clause, FactSpec, Interval, Panel, Part, Rule, Scheme
from ..numbers import ZERO, points_words
from ..outcome import RuleOutcome

if TYPE_CHECKING:
    from ..program import Group

#: ``RuleOutcome._why`` of a rule not judged because a fact its condition reads is missing
ABSENT = "absent"


@dataclass(frozen=True)
class Key:
    """One key a rule of some kind may be written with.

    ``type`` names what the key holds, in the reader's vocabulary: "expression", "number",
    "positive" (a number above 0), "flag", "fact" (a fact name), "bands", "levels"."""

    name: str
    type: str
    required: bool
    doc: str
    #: the key's name in a comparison's sentence ("上限"); the key itself if empty
    label: str = ""
    #: the key holds points (a comparison says "3分", not "3")
    in_points: bool = False
    #: (forms) the fact the key names has a min and max that bound the points given by hand,
    #: the reviewer's bounds: a rule's form edits them beside the rule
    bounds: bool = False


# keys several kinds share, declared once: each kind that uses one reads and documents it alike
WHEN = Key("when", "expression", False, "条件表达式", "条件")
CAP = Key("cap", "positive", False, "本规则最多加或扣的分数", "上限", True)
MEASURE = Key("measure", "expression", True, "bands/steps：被衡量的数值表达式", "衡量数值")
MEASURE_LABEL = Key("measure_label", "text", False, "被衡量数值的中文名称", "衡量数值的名称")
EACH = Key("each", "number", True, "per_unit/steps：每件或每档的分值，扣分写负数", "每项分值", True)
VALUE = Key("value", "fact", True, "scaled/assessed/maturity：读取的事实名", "读取的事实")


class RuleReading(Protocol):
    """A rule as written, as the loader shows it to a block's checks: the values of its keys,
    and a way to report a problem at a key (the loader adds file, line and column)."""

    @property
    def points(self) -> Decimal:
        """The clause's points."""

    @property
    def facts(self) -> Mapping[str, FactSpec]:
        """The facts the clause may read."""

    def __contains__(self, key: str) -> bool: ...
    def __getitem__(self, key: str) -> Any: ...
    def get(self, key: str, default: Any = None) -> Any: ...
    def error(self, key: str, message: str) -> None: ...
    def expression(self, key: str, numeric: bool) -> tuple[ex.Expr, str] | None: ...
    def contiguous(self, key: str, what: str) -> bool: ...
    def undeclared(self, name: str) -> str:
        """What to say of a fact the rule names that the clause may not read (declared in
        another clause, or nowhere)."""


@dataclass(frozen=True)
class Description:
    """What the admin pages have worked out about a rule before its block describes it."""

    condition: str  # "当…时，" or ""
    measure: str  # the measure in words
    cap: str  # "，最多3分" or ""
    unit: str  # the scheme's point unit
    label: Callable[[str], str]  # a fact's label by its name
    signed: Callable[[Decimal], str]  # "得2分" / "扣2分"


class Block:
    kind: ClassVar[str]
    #: the kind's name on the admin pages
    title: ClassVar[str]
    #: the editor's 新增条款 may start a clause with one rule of this kind reading one new fact:
    #: the amounts its form asks for, (key, words, required); None: not offered (such a rule is
    #: written in the clause's own form once the clause exists)
    starts: ClassVar[tuple[tuple[str, str, bool], ...] | None] = None
    keys: ClassVar[tuple[Key, ...]]
    #: gives only points above 0, so a deduction clause cannot use it
    positive_only: ClassVar[bool] = False

    #: the key whose value is the rule's own maximum (``most``), where a check points at it
    most_key: ClassVar[str] = ""

    def starter(
        self, fact: str, title: str, points: Decimal, amounts: Mapping[str, Decimal]
    ) -> tuple[dict, dict]:
        """A new clause's fact (its spec without label) and first rule (without id), as written
        in a clause file, for a kind whose ``starts`` is not None."""
        raise NotImplementedError

    def check(self, rule: RuleReading, base: dict) -> Rule | None:
        """The rule as the core holds it, or None after reporting what is wrong with it."""
        raise NotImplementedError

    def most(self, rule: Rule) -> Decimal | None:
        """The most the rule can give on its own, when its file says so exactly (else None):
        the loader's check that a base rule can pay in full within its clause's points."""
        return None

    def conditions(self, group: Group, clause: Clause, rule: Rule, facts: Mapping) -> None:
        """Add to ``group`` the match rules this rule compiles to."""
        raise NotImplementedError

    def score(
        self,
        scheme: Scheme,
        clause: Clause,
        rule: Rule,
        fired: set,
        values: Mapping,
        key: str,
        made: type[RuleOutcome],
    ) -> RuleOutcome:
        """The rule's points and structured trace (no sentence: ``words`` writes it): an outcome
        of class ``made`` (``PanelOutcome`` for a rule with a panel, so the traces of other rules
        have no ``panel`` key); ``key`` is the rule's match key, "clause id/rule id".

        This runs for every rule of every unit: what can be worked out once is on the rule
        (``Rule.when_names``) or in the scheme's plan (``key``, ``made``), and nothing is called
        here that a test can spare."""
        # positional, in the fields' order: rule, kind, title, fired, amount, raw, capped,
        # facts, band, note (keywords cost more)
        out = made(rule.id, rule.kind, rule.title, False, ZERO, None, False, {}, None, rule.note)
        if rule.when is not None:
            facts = out.facts
            absent = []
            for n in rule.when_names:
                v = facts[n] = values.get(n)
                if v is None:
                    absent.append(n)
            if absent and key not in fired:
                # a fact that does not apply (applies_when) is not missing: the sentence says which
                idle = [n for n in absent if applies(scheme.facts[n], values) is False]
                out._why = (ABSENT, absent, idle)
                return out
        self.points(out, scheme, clause, rule, key, fired, values)
        return out

    def points(
        self,
        out: RuleOutcome,
        scheme: Scheme,
        clause: Clause,
        rule: Rule,
        key: str,
        fired: set,
        values: Mapping,
    ) -> None:
        raise NotImplementedError

    def words(
        self, scheme: Scheme, clause: Clause, rule: Rule, out: RuleOutcome, guard: str | None = None
    ) -> str:
        """The sentence of an outcome ``score`` gave; ``guard``: the rule's ``guard_words``, if
        the caller has them (the scheme's plan)."""
        if guard is None:
            guard = guard_words(rule)
        # ``is``: the marker is this very string, and ``==`` against a measure (a Decimal)
        # would take Decimal's slow path through the numbers ABCs
        if out._why and out._why[0] is ABSENT:
            # the condition's text names facts; the missing ones are named by label, apart
            _, absent, idle = out._why
            if idle and len(idle) == len(absent):
                labels = "、".join(f"“{scheme.facts[n].label}”" for n in idle)
                return f"{guard}：读取的事实{labels}不适用，不计分"
            labels = "、".join(f"“{scheme.facts[n].label}”" for n in absent)
            return f"{guard}：缺少事实{labels}，未判断，不计分"
        return self.sentence(scheme, clause, rule, out, guard)

    def sentence(
        self, scheme: Scheme, clause: Clause, rule: Rule, out: RuleOutcome, guard: str
    ) -> str:
        raise NotImplementedError

    def describe(self, rule: Rule, clause: Any, d: Description) -> str:
        """One sentence saying what the rule does, for the admin pages."""
        raise NotImplementedError

    def differences(self, old: Rule, new: Rule, unit: str) -> list[Change]:
        """What changed between two versions of a rule of this kind (``domain.compare`` asks):
        by default each declared key compared as a whole; a block whose key holds a list
        (bands, levels) says item by item what moved."""
        return self.key_differences(old, new, unit)

    def key_differences(self, old: Rule, new: Rule, unit: str, skip: tuple = ()) -> list[Change]:
        out = []
        for key in self.keys:
            if key.name in skip:
                continue
            attr = key.name
            if key.type == "expression":  # the text as written, not the parsed tree
                attr = "when_text" if key.name == "when" else "measure_text"
            before, after = getattr(old, attr, None), getattr(new, attr, None)
            if before != after:
                u = unit if key.in_points else ""
                words = (
                    f"{key.label or key.name}由{value_words(before, u)}改为{value_words(after, u)}"
                )
                out.append(Change(f"rule_{key.name}", words, before, after))
        return out


def guard_words(rule: Rule) -> str:
    """How a rule's sentence names its condition: "条件“…”", or "" for a rule without one."""
    return f"条件“{rule.when_text}”" if rule.when is not None else ""


@dataclass(frozen=True)
class Change:
    """One difference within a rule: ``kind`` names it, ``words`` says it after the rule's
    name ("上限由3分改为4分"), ``before`` and ``after`` are the exact values."""

    kind: str
    words: str
    before: Any
    after: Any


def value_words(value: Any, unit: str = "") -> str:
    """A rule's value as a comparison's sentence shows it (2 decimals at most)."""
    if value is None and unit:
        return "不限"  # a cap or amount in points not written
    if value is None or value == "" or value == ():
        return "无"
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, Decimal):
        return points_words(value) + unit
    if isinstance(value, str):
        return f"“{value}”"
    if isinstance(value, Panel):
        dropped = (
            f"（去掉最高分{value.drop_highest}个、最低分{value.drop_lowest}个）"
            if value.drop_highest or value.drop_lowest
            else ""
        )
        return f"{value.reviewers}名评审{dropped}"
    if isinstance(value, tuple) and all(isinstance(p, Part) for p in value):
        return "＋".join(f"{p.fact}×{points_words(p.weight)}" for p in value)
    return str(value)


def range_differences(old: tuple, new: tuple, what: str, unit: str) -> list[Change]:
    """Bands or levels compared by position: each one's boundaries, points and name."""
    out = []
    if len(old) != len(new):
        out.append(
            Change(f"{what}_count", f"档数由{len(old)}档改为{len(new)}档", len(old), len(new))
        )
    for i, (a, b) in enumerate(zip(old, new, strict=False), 1):
        out += _edges(i, a.range, b.range, what)
        pa, pb = getattr(a, "points", None), getattr(b, "points", None)
        if pa != pb:
            words = f"第{i}档分值由{value_words(pa, unit)}改为{value_words(pb, unit)}"
            out.append(Change(f"{what}_points", words, pa, pb))
        if a.label != b.label:
            words = f"第{i}档名称由{value_words(a.label)}改为{value_words(b.label)}"
            out.append(Change(f"{what}_label", words, a.label, b.label))
        ta, tb = getattr(a, "text", ""), getattr(b, "text", "")
        if ta != tb:
            words = f"第{i}档说明由{value_words(ta)}改为{value_words(tb)}"
            out.append(Change(f"{what}_text", words, ta, tb))
    for i, b in enumerate(new[len(old) :], len(old) + 1):
        out.append(Change(f"{what}_added", f"加入第{i}档{_item(b, unit)}", None, b.range.text))
    for i, a in enumerate(old[len(new) :], len(new) + 1):
        out.append(Change(f"{what}_removed", f"删去第{i}档{_item(a, unit)}", a.range.text, None))
    return out


def _item(item: Any, unit: str) -> str:
    points = getattr(item, "points", None)
    shown = f"，{value_words(points, unit)}" if points is not None else ""
    return f"（{item.range.text}{shown}）"


def _edges(i: int, a: Interval, b: Interval, what: str) -> list[Change]:
    out = []
    for end, name, va, ca, vb, cb in (
        ("low", "下限", a.low, a.low_closed, b.low, b.low_closed),
        ("high", "上限", a.high, a.high_closed, b.high, b.high_closed),
    ):
        if va == vb and (ca == cb or va is None):
            continue
        # the closure is named only when it changed, so "由5改为4" stays short
        named = ca != cb and va is not None and vb is not None
        words = f"第{i}档{name}由{_edge(va, ca, named)}改为{_edge(vb, cb, named)}"
        out.append(Change(f"{what}_{end}", words, _exact(va, ca), _exact(vb, cb)))
    return out


def _edge(value: Decimal | None, closed: bool, named: bool) -> str:
    if value is None:
        return "不限"
    return points_words(value) + (("（含）" if closed else "（不含）") if named else "")


def _exact(value: Decimal | None, closed: bool) -> dict:
    return {"value": value, "closed": closed}


def guarded(group: Group, rule: Rule, condition: Condition) -> Condition:
    """``condition`` and the rule's own ``when``, if it has one."""
    if rule.when is None:
        return condition
    return AllOf((compile_condition(rule.when, group.derive), condition))


def given(value: Any) -> Any:
    """A rule's field that its kind requires (the loader refuses the rule without it)."""
    if value is None:  # pragma: no cover - the loader admits no such rule
        raise ValueError("a rule lacks a field its kind requires")
    return value
