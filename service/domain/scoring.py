"""Scoring a unit's facts under a scheme, with every point explained.

The flow for one unit:
1. ``prepare`` computes every derived measure exactly and lays out one flat
   fact per clause (and one for the scheme's grade vetoes) for the matcher;
2. a ``Matcher`` (durable-rules in production, the oracle in tests) says which
   conditions hold;
3. ``assemble`` turns the fired conditions into points with exact decimals,
   applies caps, floors, vetoes and pools, and writes the trace.

A matcher in another process (``Remote``: the contained engine) is asked first,
and the units are scored from Python's own check of the conditions while it
works; each unit is then compared with its answer, which is what counts
(``_while_matching``).
"""

from __future__ import annotations

import functools
import gc
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from . import expressions as ex
from .blocks import BLOCKS
from .blocks.base import Block, guard_words
from .conditions import holds
from .facts import applicable, applies, not_applicable, validate_facts
from .grading import grade_alone
from .model import BONUS, DEDUCTION, Category, Clause, Scheme
from .numbers import (
    MAX_MAGNITUDE,
    PLAIN,
    POINTS_WORDS,
    ZERO,
    clamp,
    plain,
    points_words,
    to_match_precision,
)
from .outcome import PanelOutcome, RuleOutcome, _Worded
from .panel import Mark, with_marks
from .program import SCHEME_GROUP
from .trace import fixed_data
from .wording import cap as _cap
from .wording import facts_text, value_words

__all__ = ["RuleOutcome", "facts_text", "value_words"]  # re-exported: their old home


class Matcher(Protocol):
    """Evaluates a scheme's match conditions against prepared facts."""

    def match(self, scheme: Scheme, batch: Sequence[Sequence[dict]]) -> list[set]:
        """For each unit's list of group facts, the set of match keys that hold."""


class Matching(Protocol):
    """A matching under way elsewhere (``Remote.start``), its answer not yet read."""

    def result(self) -> list[set]:
        """The matcher's answer (waiting for it): ``Matcher.match``'s."""

    def discard(self) -> None:
        """The answer is not wanted after all (the caller failed meanwhile): read and dropped."""

    def disagreed(self, position: int, guessed: set, fired: set) -> None:
        """The conditions this module found to hold for unit ``position`` were not the
        matcher's: the matcher's answer was used; the matcher records the difference."""


class Remote(Matcher, Protocol):
    """A matcher that runs in another process, and so can work while its caller does."""

    def start(self, scheme: Scheme, batch: Sequence[Sequence[dict]]) -> Matching:
        """Send the facts and return at once; ``result()`` then waits for the answer."""


# --- results ------------------------------------------------------------------


@dataclass(slots=True)
class VetoOutcome:
    id: str
    fired: bool
    condition: str
    reason: str
    facts: dict = field(default_factory=dict)


@dataclass(slots=True)
class ClauseResult(_Worded):
    #: the fields copied from the clause, the same for every unit: ``trace.fixed_data``, written
    #: once per clause (its plan) and held in ``_fixed``.  Text and numbers only: a list in it
    #: (``offices``) would be one object shared by every unit's data, which a reader may change
    FIXED = (
        "id",
        "title",
        "category",
        "kind",
        "maximum",
        "start",
        "source",
        "file",
        "note",
        "bonus_cap",
    )

    id: str
    title: str
    category: str
    kind: str
    maximum: Decimal
    points: Decimal
    status: str  # "scored" | "incomplete" | "vetoed"
    start: Decimal
    raw: Decimal
    rules: list
    vetoes: list
    missing: list
    facts: dict
    source: str
    clamped: str = ""
    file: str = ""
    offices: tuple = ()
    note: str = ""
    #: a clause with a bonus (``Clause.bonus_cap``): its base points (clamped to ``maximum``) and
    #: its bonus points (clamped to ``bonus_cap``), apart; ``points`` is their sum
    base: Decimal = ZERO
    bonus: Decimal = ZERO
    bonus_raw: Decimal = ZERO
    bonus_cap: Decimal | None = None
    _explanation: str | None = field(default=None, repr=False, compare=False)
    _write: Callable | None = field(default=None, repr=False, compare=False)
    _fixed: dict | None = field(default=None, init=False, repr=False, compare=False)


@dataclass(slots=True)
class CategoryResult:
    id: str
    title: str
    kind: str
    maximum: Decimal | None
    points: Decimal
    raw: Decimal
    cap: Decimal | None
    capped: bool
    explanation: str
    parent: str | None


@dataclass(slots=True)
class GradeVetoResult:
    id: str
    effect: str
    grade: str
    reason: str
    condition: str
    facts: dict
    facts_text: str = ""


@dataclass(slots=True)
class GradePending:
    """A grade veto that did not fire because a fact it reads is missing: not decided either way."""

    id: str
    effect: str
    grade: str
    reason: str
    condition: str
    missing: list
    missing_text: str = ""


def pending_grade_vetoes(scheme: Scheme, values: Mapping, fired_ids, idle=()) -> list:
    """The scheme's grade vetoes that did not fire (``fired_ids``) and read a missing fact
    (``idle``: the facts that do not apply, which are not missing).

    Missing is not "no" (rules/README.md §4): such a veto might have held, so what it could
    take away is 待定 rather than awarded.  Also run on a stored trace's facts (the ranking)."""
    out = []
    for veto in scheme.grading.vetoes:
        if veto.id in fired_ids:
            continue
        # a fact that does not apply (``idle``) is not missing: nothing waits for it
        absent = [n for n in veto.when_names if values.get(n) is None and n not in idle]
        if absent:
            labels = "、".join(scheme.facts[n].label if n in scheme.facts else n for n in absent)
            out.append(
                GradePending(
                    veto.id, veto.effect, veto.grade, veto.reason, veto.when_text, absent, labels
                )
            )
    return out


@dataclass
class ScoreResult:
    scheme: str
    scheme_title: str
    version: str
    unit: str
    total: Decimal
    maximum: Decimal
    point_unit: str
    complete: bool
    categories: list
    clauses: list
    grade_vetoes: list
    grade: str | None
    distinctions: list
    grade_explanation: str
    missing: list
    facts: dict
    matcher: str
    bonus: Decimal = ZERO
    deduction: Decimal = ZERO
    standard: Decimal = ZERO
    #: grade vetoes undecided for missing facts (``GradePending``), and what they leave 待定
    grade_pending_vetoes: list = field(default_factory=list)
    grade_pending: bool = False
    pending_distinctions: list = field(default_factory=list)
    #: facts whose applies_when does not hold: neither asked for nor missing
    not_applicable: list = field(default_factory=list)
    #: the parts computed only when the units are ranked (``relative.RelativePoints``): 排名时计算
    #: while scored alone, worked out by ``grading.rank_units``
    relative: list = field(default_factory=list)


# --- step 1: facts for the matcher ------------------------------------------------


def prepare(scheme: Scheme, values: Mapping) -> list[dict]:
    """One flat fact per clause (and one for grade vetoes), operands only.

    Numbers are cut to the matchers' 15 significant digits; an operand whose
    fact is missing, or whose measure is undefined, is left out, so no test on
    it can hold.
    """
    values = applicable(scheme, values)
    out = []
    for group, operands in _plan(scheme).groups:
        fact: dict = {"group": group}
        for key, derived, reads in operands:
            if derived is None:
                if key in values:
                    value = values[key]
                    fact[key] = to_match_precision(value) if isinstance(value, Decimal) else value
                continue
            # the measure's facts, known from the plan: one missing makes it Undefined, as
            # ``ex.evaluate`` says, without the tree asked for its names (hashed) every unit
            for name in reads:
                if name not in values or values[name] is None:
                    break
            else:
                try:
                    value = ex.evaluate_present(derived, values)
                except ex.Undefined:  # a division by 0
                    continue
                if abs(value) > MAX_MAGNITUDE:
                    continue  # out of the engine's exact range: treated as undefined
                fact[key] = to_match_precision(value)
        out.append(fact)
    return out


# --- step 2, here: the conditions checked in Python ----------------------------------


def match_here(scheme: Scheme, batch: Sequence[Sequence[dict]]) -> list[set]:
    """The match keys whose conditions hold, checked here in Python (``conditions.holds``): the
    test oracle durable-rules is compared with, and the guess ``score_units`` scores with while
    the engine works (the engine's answer is what counts)."""
    conditions = _plan(scheme).conditions
    out = []
    for facts in batch:
        fired = set()
        for fact in facts:
            for key, condition in conditions.get(fact["group"], ()):
                if holds(condition, fact):
                    fired.add(key)
        out.append(fired)
    return out


# --- step 3: points and trace -----------------------------------------------------


class _ClausePlan:
    """What scoring a clause needs that depends on the scheme version alone, worked out once
    (``_plan``) instead of for every unit: the facts it needs, its rules' blocks, match keys and
    guards, its bounds, the fixed words of its sentence."""

    __slots__ = (
        "start",
        "required",
        "needed",
        "conditional",
        "rules",
        "base_words",
        "verb",
        "tail",
        "data",
        "low",
        "high",
        "deduction",
    )

    def __init__(self, scheme: Scheme, clause: Clause):
        u = scheme.unit
        self.start = clause.points if clause.start == "full" else ZERO
        self.required = tuple(n for n in clause.reads if scheme.facts[n].required)
        self.needed = frozenset(self.required)
        # a fact with an applies_when may not be missing although absent (``facts.applies``; its
        # applies_when's facts are never dropped, so asking again on the values left gives the
        # same answer)
        self.conditional = any(scheme.facts[n].applies_when is not None for n in self.required)
        # each rule with its block, the class and fixed data of its outcome, its match key, the
        # words of its condition (``Block.words``), and whether it has none (scored and written
        # without ``Block.score``'s and ``Block.words``' calls, ``_rule_outcomes``)
        self.rules = tuple(
            (
                rule,
                BLOCKS[rule.kind],
                *_rule_data(rule),
                f"{clause.id}/{rule.id}",
                guard_words(rule),
                _direct(rule, BLOCKS[rule.kind]),
            )
            for rule in clause.rules
        )
        self.low, self.high = clause.low, clause.high
        self.deduction = clause.kind == DEDUCTION
        self.data = fixed_data(
            ClauseResult,
            id=clause.id,
            title=clause.title,
            category=clause.category,
            kind=clause.kind,
            maximum=clause.points,
            start=self.start,
            source=clause.source.text,
            file=clause.file,
            note=clause.note,
            bonus_cap=clause.bonus_cap,
        )
        self.base_words = f"起始{plain(self.start)}{u}；" if clause.start == "full" else ""
        most = plain(clause.points)
        if clause.kind == DEDUCTION:
            self.verb, self.tail = "本项扣", f"{u}（最多扣{most}{u}）"
        elif clause.kind == BONUS:
            self.verb, self.tail = "本项加", f"{u}（最多加{most}{u}）"
        else:
            self.verb, self.tail = "本项得", f"{u}（满分{most}{u}）"


def _direct(rule, block: Block) -> bool:
    """A rule without a condition, of a block that keeps ``Block.score`` and ``Block.words``:
    for it these come straight to the block's ``points`` and ``sentence``."""
    kind = type(block)
    return rule.when is None and kind.score is Block.score and kind.words is Block.words


def _rule_data(rule) -> tuple:
    """The class of the rule's outcome (``Block.score``) and the data of its fixed fields."""
    kind = RuleOutcome if rule.panel is None else PanelOutcome
    return kind, fixed_data(kind, rule=rule.id, kind=rule.kind, title=rule.title, note=rule.note)


class _Plan:
    """A scheme version's clause plans (also in the scheme's order, with each clause), the order
    of its categories and its groups of operands for the matcher (``prepare``)."""

    __slots__ = ("clauses", "ordered", "category_order", "groups", "conditions")

    def __init__(self, scheme: Scheme):
        self.clauses = {cid: _ClausePlan(scheme, c) for cid, c in scheme.clauses.items()}
        self.ordered = [(cid, c, self.clauses[cid]) for cid, c in scheme.clauses.items()]
        self.category_order = {cid: i for i, cid in enumerate(scheme.category_index())}
        #: group -> its operands for ``prepare``: (name, its measure's expression or None for
        #: a fact, the facts the measure reads)
        self.groups = [(c.id, _operands(c.operands, c.derived)) for c in scheme.clauses.values()]
        if scheme.grade_operands:
            self.groups.append(
                (SCHEME_GROUP, _operands(scheme.grade_operands, scheme.grade_derived))
            )
        #: group -> its (match key, condition) pairs: what ``match_here`` tests a group's fact on
        self.conditions: dict[str, list] = {}
        for m in scheme.matches:
            self.conditions.setdefault(m.group, []).append((m.key, m.condition))


def _operands(operands, derived: Mapping) -> tuple:
    return tuple(
        (key, derived[key], tuple(ex.names(derived[key]))) if key in derived else (key, None, ())
        for key in operands
    )


_PLANS: dict[int, tuple] = {}  # id(scheme) -> (a weak reference to it, its _Plan)


def _plan(scheme: Scheme) -> _Plan:
    """The scheme's plan, made at its first unit and dropped with the scheme (a scheme version
    is never changed once loaded: a changed file is a new version, a new ``Scheme``)."""
    entry = _PLANS.get(id(scheme))
    if entry is not None and entry[0]() is scheme:
        return entry[1]
    plan = _Plan(scheme)
    key = id(scheme)
    _PLANS[key] = (weakref.ref(scheme, lambda _ref: _PLANS.pop(key, None)), plan)
    return plan


def score_clause(
    scheme: Scheme,
    clause: Clause,
    fired: set,
    values: Mapping,
    explain: bool = False,
    panels: Mapping | None = None,
) -> ClauseResult:
    return _score_clause(
        scheme, clause, _plan(scheme).clauses[clause.id], fired, values, explain, panels
    )


def _score_clause(
    scheme: Scheme,
    clause: Clause,
    plan: _ClausePlan,
    fired: set,
    values: Mapping,
    explain: bool,
    panels: Mapping | None,
) -> ClauseResult:
    # every clause of every unit comes through here (plain loops: a comprehension is a call)
    outcomes, base_sum, bonus_raw, said = _rule_outcomes(
        scheme, clause, plan, fired, values, explain, panels
    )
    vetoes = _veto_outcomes(clause, fired, values) if clause.vetoes else []
    facts, missing = {}, []
    for n in clause.reads:  # the clause's facts, and those it needs that are missing
        if (value := values.get(n)) is None and n in plan.needed:
            missing.append(n)
        facts[n] = value
    if missing and plan.conditional:
        missing = [n for n in missing if applies(scheme.facts[n], values) is not False]
    raw = plan.start + base_sum
    if vetoes and any(v.fired for v in vetoes):
        status, points, base, bonus, clamped = "vetoed", ZERO, ZERO, ZERO, ""
    elif missing:
        status, points, base, bonus, clamped = "incomplete", ZERO, ZERO, ZERO, ""
    elif clause.bonus_cap is None and plan.low <= raw <= plan.high:  # most: no _scored call
        status, points, base, bonus, clamped = "scored", raw + ZERO, raw, ZERO, ""
    else:
        status = "scored"
        points, base, bonus, clamped = _scored(scheme, clause, plan, raw, bonus_raw)
    # positional, in the fields' order: a call with 22 keywords cost more than the fields
    result = ClauseResult(
        clause.id, clause.title, clause.category, clause.kind, clause.points, points, status,
        plan.start, raw, outcomes, vetoes, missing, facts, clause.source.text, clamped, clause.file,
        clause.offices, clause.note, base, bonus, bonus_raw, clause.bonus_cap,
    )  # fmt: skip
    result._fixed = plan.data
    # the sentence: now if the caller reads every one (an API answer), else when it is read
    if not explain:
        result._write = functools.partial(_clause_words, scheme, clause)
    elif status != "scored" or clause.bonus_cap is not None:
        result._explanation = _clause_words(scheme, clause, result, plan)
    else:  # the most common sentence, from the fired rules' sentences gathered on the way
        result._explanation = (
            f"{plan.base_words}{'；'.join(said) or '无规则适用'}{f'；{clamped}' if clamped else ''}"
            f"。{plan.verb}{POINTS_WORDS[-points if plan.deduction else points]}{plan.tail}"
        )
    return result


def _scored(
    scheme: Scheme, clause: Clause, plan: _ClausePlan, raw: Decimal, bonus_raw: Decimal
) -> tuple[Decimal, Decimal, Decimal, str]:
    """The points, base and bonus points of a clause scored, and why its points are not the sum
    of its rules' (or ""): the base rules clamped to the clause's points, and its bonus, if
    any, to its bonus cap."""
    low, high = plan.low, plan.high
    base = low if raw < low else high if raw > high else raw
    clamped = _clamped_words(clause, raw, base, scheme.unit) if base != raw else ""
    if clause.bonus_cap is None:
        return base + ZERO, base, ZERO, clamped
    bonus = clamp(bonus_raw, ZERO, clause.bonus_cap)
    return base + bonus, base, bonus, clamped


def _veto_outcomes(clause: Clause, fired: set, values: Mapping) -> list[VetoOutcome]:
    return [
        VetoOutcome(
            veto.id,
            f"{clause.id}/!{veto.id}" in fired,
            veto.when_text,
            veto.reason,
            {n: values.get(n) for n in veto.when_names},
        )
        for veto in clause.vetoes
    ]


def _rule_outcomes(
    scheme: Scheme,
    clause: Clause,
    plan: _ClausePlan,
    fired: set,
    values: Mapping,
    explain: bool,
    panels: Mapping | None = None,
) -> tuple[list[RuleOutcome], Decimal, Decimal, list[str]]:
    """Each rule's outcome from its building block (a panel's result kept with its rule's), the
    sums of the base rules' and of the bonus rules' points (bonus rules count beyond the
    clause's points, up to its own bonus cap: never clamped with the base rules, else
    "该项设有加分项(最多加5分)" would vanish into the clause's 5 points), and (``explain``) the
    sentences of the base rules that fired, which the clause's sentence lists."""
    outcomes = []
    said = []
    # added up in the rules' order from 0, as ``sum`` did: the same decimals to the last digit
    base = bonus = ZERO
    for rule, block, made, data, key, guard, direct in plan.rules:
        if direct:  # most rules: ``Block.score``'s work without its call (positional fields)
            outcome = made(rule.id, rule.kind, rule.title, False, ZERO, None, False, {}, None, rule.note)  # fmt: skip
            block.points(outcome, scheme, clause, rule, key, fired, values)
        else:
            outcome = block.score(scheme, clause, rule, fired, values, key, made)
        outcome._fixed = data
        if rule.panel is not None:
            outcome.panel = (panels or {}).get(clause.id)
        # the sentence is written from the outcome: now if ``explain``, else when it is read
        if explain:
            # without a condition no fact of it is missing: ``Block.words`` comes to ``sentence``
            words = outcome._explanation = (
                block.sentence(scheme, clause, rule, outcome, guard)
                if direct
                else block.words(scheme, clause, rule, outcome, guard)
            )
            if outcome.fired and not rule.bonus:
                said.append(words)
        else:
            outcome._write = functools.partial(block.words, scheme, clause, rule)
        outcomes.append(outcome)
        if rule.bonus:
            bonus += outcome.amount
        else:
            base += outcome.amount
    return outcomes, base, bonus, said


def _clamped_words(clause: Clause, raw: Decimal, points: Decimal, u: str) -> str:
    """Why a clause's points are not the sum of its rules'."""
    total, counted = points_words(raw), points_words(points)
    if clause.kind == DEDUCTION:
        return f"合计{total}{u}，超过本项最多扣{plain(clause.points)}{u}，按{counted}{u}计"
    if raw < clause.low:
        return f"合计{total}{u}，扣完为止，按{counted}{u}计"
    return f"合计{total}{u}，超过本项上限{plain(clause.points)}{u}，按{counted}{u}计"


def _clause_words(
    scheme: Scheme, clause: Clause, result: ClauseResult, plan: _ClausePlan | None = None
) -> str:
    u = scheme.unit
    if result.status == "vetoed":
        words = "；".join(
            f"否决条件“{v.condition}”成立（{facts_text(v.facts, scheme)}）：{v.reason}"
            for v in result.vetoes
            if v.fired
        )
        return f"{words}。本项不得分，计0{u}"
    if result.status == "incomplete":
        labels = "、".join(scheme.facts[n].label for n in result.missing)
        return f"缺少事实：{labels}（缺失不等于0{_marks_in(result)}），本项暂计0{u}"
    if clause.bonus_cap is not None:
        return _bonus_clause_words(scheme, clause, result)
    if plan is None:
        plan = _plan(scheme).clauses[clause.id]
    # a sentence already written (explain) read from its slot, without the property's call
    fired = [
        o._explanation if o._explanation is not None else o.explanation
        for o, (r, *_) in zip(result.rules, plan.rules)
        if o.fired and not r.bonus
    ]
    fired_words = "；".join(fired) or "无规则适用"
    points = result.points
    shown = points_words(-points if clause.kind == DEDUCTION else points)
    clamped = f"；{result.clamped}" if result.clamped else ""
    return f"{plan.base_words}{fired_words}{clamped}。{plan.verb}{shown}{plan.tail}"


def _bonus_clause_words(scheme: Scheme, clause: Clause, result: ClauseResult) -> str:
    """A clause with its own bonus beyond its points: base and bonus said apart."""
    u = scheme.unit
    points, most = result.points, clause.bonus_cap
    if most is None:  # pragma: no cover - only a clause with a bonus cap is written here
        raise ValueError("a clause without a bonus cap")
    base = f"起始{plain(result.start)}{u}；" if clause.start == "full" else ""
    fired_words = (
        "；".join(
            o.explanation for o, r in zip(result.rules, clause.rules) if o.fired and not r.bonus
        )
        or "无规则适用"
    )
    bonus_words = (
        "；".join(o.explanation for o, r in zip(result.rules, clause.rules) if o.fired and r.bonus)
        or "无加分规则适用"
    )
    cap = plain(most)
    over = (
        f"，加分合计{points_words(result.bonus_raw)}{u}，超过加分上限{cap}{u}"
        if result.bonus_raw > most
        else ""
    )
    return (
        f"{base}{fired_words}"
        + (f"；{result.clamped}" if result.clamped else "")
        + f"。基本分{points_words(result.base)}{u}（满分{plain(clause.points)}{u}）"
        + f"；加分：{bonus_words}{over}，加{points_words(result.bonus)}{u}（最多加{cap}{u}）"
        + f"。本项共得{points_words(points)}{u}"
    )


def _marks_in(result: ClauseResult) -> str:
    """How many of a panel's marks are in, where the clause waits for them."""
    for outcome in result.rules:
        panel = getattr(outcome, "panel", None)
        if panel is not None and panel.mean is None:
            return f"；评审打分已收到{panel.entered}份，共需{panel.reviewers}份"
    return ""


def _categories(scheme: Scheme, clause_results: dict) -> list:
    out: list[CategoryResult] = []
    for top in scheme.categories:
        _walk(top, clause_results, out, scheme.unit)
    order = _plan(scheme).category_order
    out.sort(key=lambda r: order[r.id])
    return out


def _walk(cat: Category, clause_results: dict, out: list, u: str) -> Decimal:
    # a function of the module, not a closure of ``_categories``: a recursive closure refers to
    # itself through its cell, a reference cycle that kept the unit's clause results (held by
    # the same cell) alive until the cyclic collector came by
    # added in the same order from 0 as ``sum`` did: the same decimals to the last digit
    raw = inner = ZERO
    for c in cat.clauses:
        raw += clause_results[c].points
    for child in cat.children:
        inner += _walk(child, clause_results, out, u)
    raw += inner
    points, capped = _cap(raw, cat.cap) if cat.cap is not None else (raw, False)
    if cat.kind == DEDUCTION and cat.cap is not None:
        points, capped = (max(raw, -cat.cap), raw < -cat.cap)
    if capped:
        expl = f"{cat.title}合计{POINTS_WORDS[raw]}{u}，超过总计上限{PLAIN[cat.cap]}{u}，按{POINTS_WORDS[points]}{u}计"
    elif cat.points is not None:
        expl = f"{cat.title}合计{POINTS_WORDS[points]}{u}（满分{PLAIN[cat.points]}{u}）"
    else:
        expl = f"{cat.title}合计{POINTS_WORDS[points]}{u}"
    out.append(
        CategoryResult(
            cat.id,
            cat.title,
            cat.kind,
            cat.points,
            points,
            raw,
            cat.cap,
            capped,
            expl,
            cat.parent,
        )
    )
    return points


#: the kinds of the scheme's top categories, each totalled apart
_KINDS = ("standard", BONUS, DEDUCTION)


def assemble(
    scheme: Scheme,
    unit: str,
    values: Mapping,
    fired: set,
    matcher: str,
    explain: bool = False,
    panels: Mapping | None = None,
) -> ScoreResult:
    """The score of one unit from the rules that fired.  ``explain``: the caller will read every
    sentence of the trace (an API answer, a stored score), so write them now, in the same pass.
    ``panels``: see ``_clause_results``."""
    values, not_applying, clause_results = _clause_results(scheme, values, fired, explain, panels)
    categories = _categories(scheme, clause_results)
    total, by_kind = ZERO, dict.fromkeys(_KINDS, ZERO)  # the tops added in order from 0, as sum did
    for r in categories:
        if r.parent is None:
            total += r.points
            if r.kind in by_kind:
                by_kind[r.kind] += r.points
    vetoes = _grade_vetoes(scheme, values, fired)
    missing = sorted({n for r in clause_results.values() for n in r.missing})
    result = ScoreResult(
        scheme=scheme.id,
        scheme_title=scheme.title,
        version=scheme.version,
        unit=unit,
        total=total,
        maximum=scheme.total,
        point_unit=scheme.unit,
        complete=not missing,
        categories=categories,
        clauses=list(clause_results.values()),
        grade_vetoes=vetoes,
        grade=None,
        distinctions=[],
        grade_explanation="",
        missing=missing,
        facts=dict(values),
        matcher=matcher,
        standard=by_kind["standard"],
        bonus=by_kind[BONUS],
        deduction=by_kind[DEDUCTION],
        grade_pending_vetoes=pending_grade_vetoes(
            scheme, values, {v.id for v in vetoes}, set(not_applying)
        ),
        not_applicable=not_applying,
    )
    grade_alone(scheme, result)
    return result


def _clause_results(
    scheme: Scheme, values: Mapping, fired: set, explain: bool, panels: Mapping | None
) -> tuple[Mapping, list, dict]:
    """The facts that apply, those that do not, and each clause's result.

    A scheme with panels of reviewers: ``values`` and ``panels`` are what ``panel.with_marks``
    gave for the facts the matcher saw; without ``panels`` no mark is in (each panel clause is
    incomplete, whatever the facts say of its value)."""
    if scheme.panels and panels is None:
        values, panels = with_marks(scheme, values, None)
    not_applying = sorted(not_applicable(scheme, values))
    values = applicable(scheme, values)
    results = {
        cid: _score_clause(scheme, c, plan, fired, values, explain, panels)
        for cid, c, plan in _plan(scheme).ordered
    }
    return values, not_applying, results


def _grade_vetoes(scheme: Scheme, values: Mapping, fired: set) -> list[GradeVetoResult]:
    out = []
    for veto in scheme.grading.vetoes:
        if f"{SCHEME_GROUP}/!{veto.id}" in fired:
            facts = {n: values.get(n) for n in veto.when_names}
            out.append(
                GradeVetoResult(
                    veto.id,
                    veto.effect,
                    veto.grade,
                    veto.reason,
                    veto.when_text,
                    facts,
                    facts_text(facts, scheme),
                )
            )
    return out


def fired_rules(result: ScoreResult) -> dict:
    """clause id -> ids of the rules (and vetoes, as "!id") that fired."""
    return {
        c.id: [o.rule for o in c.rules if o.fired] + [f"!{v.id}" for v in c.vetoes if v.fired]
        for c in result.clauses
    }


#: from this many units a batch's objects are moved to the collector's oldest generation (see
#: ``score_units``); a what-if answer's few hundred are not worth it
SETTLE_AT = 50


def score_units(
    scheme: Scheme,
    units: Mapping[str, Mapping],
    matcher: Matcher,
    matcher_name: str,
    explain: bool = False,
    marks: Mapping[str, Mapping[str, Sequence[Mark]]] | None = None,
    withheld: bool = False,
) -> list:
    """Check, match and score several units in one matcher call (``explain``: see ``assemble``).

    ``marks``: unit -> clause id -> the reviewers' marks of its panel clauses (``domain.panel``);
    a panel clause of a unit without all its marks is incomplete; ``withheld``: see
    ``panel.with_marks``."""
    # a result is some 650 small objects that all stay alive: for 1,000 units the cyclic garbage
    # collector would walk them again and again as they pile up (a third of the time, measured),
    # and there is nothing for it to find, so it waits until the batch is built.  It waits from
    # the facts' checking on: one unit's checking and matching made it walk the objects the
    # process holds some 0.4 times a unit (66-130 us of a what-if answer, measured)
    collecting = gc.isenabled()
    gc.disable()
    try:
        results = _score_units(scheme, units, matcher, matcher_name, explain, marks, withheld)
    except BaseException:
        if collecting:
            gc.enable()
        raise
    if collecting:
        # switched back on, the collector would find every object of the batch in its youngest
        # generation and walk them all, then again as it promotes them: some 400 objects a
        # unit, 0.17-0.37 s of 1,000 units scored and ranked (a third of it).  freeze-then-
        # unfreeze moves the young objects to the oldest generation in one step (two list
        # splices, no walk), where only a full collection visits them.  Safe because a batch
        # leaves no reference cycle (``_walk``): its objects are freed when let go, never left
        # for a full collection.  Not after an error (its traceback may hold cycles), nor when
        # the process froze objects of its own (a server after its fork): unfreezing would
        # undo that
        if len(units) >= SETTLE_AT and not gc.get_freeze_count():
            gc.freeze()
            gc.unfreeze()
        gc.enable()
    return results


def _score_units(
    scheme: Scheme,
    units: Mapping[str, Mapping],
    matcher: Matcher,
    matcher_name: str,
    explain: bool,
    marks: Mapping[str, Mapping[str, Sequence[Mark]]] | None,
    withheld: bool,
) -> list:
    checked = {unit: validate_facts(scheme, facts) for unit, facts in units.items()}
    panels: dict = {}
    if scheme.panels:
        for unit, values in checked.items():
            checked[unit], panels[unit] = with_marks(
                scheme, values, (marks or {}).get(unit), withheld
            )
    batch = [prepare(scheme, values) for values in checked.values()]
    start = getattr(matcher, "start", None)
    if start is None:
        fired = matcher.match(scheme, batch)
        return [
            assemble(scheme, unit, values, hits, matcher_name, explain, panels.get(unit))
            for (unit, values), hits in zip(checked.items(), fired)
        ]
    return _while_matching(
        scheme, checked, start(scheme, batch), batch, matcher_name, explain, panels
    )


def _while_matching(
    scheme: Scheme,
    checked: Mapping[str, Mapping],
    matching: Matching,
    batch: list,
    matcher_name: str,
    explain: bool,
    panels: Mapping,
) -> list:
    """Score the units while the matcher, in its own process, works on ``batch``.

    The matcher's answer is what every score is built from.  But a contained engine's answer
    comes back a few hundred microseconds later, most of it the other process's time, and this
    process would sit idle meanwhile: so the units are scored now from the conditions this
    module itself finds to hold (``match_here``, the oracle the engine is tested against), and
    when the answer comes each unit's guess is compared with it.  A unit whose guess was the
    answer keeps its score (built from the very set the engine gave); any other is scored again
    from the answer, and the matcher records the difference.  The engine's failure is the call's
    failure, as without the guess: no score is given."""
    try:
        guesses = match_here(scheme, batch)
        results = [
            assemble(scheme, unit, values, guess, matcher_name, explain, panels.get(unit))
            for (unit, values), guess in zip(checked.items(), guesses)
        ]
    except BaseException:
        matching.discard()
        raise
    fired = matching.result()
    for i, ((unit, values), guess, hits) in enumerate(zip(checked.items(), guesses, fired)):
        if guess != hits:
            matching.disagreed(i, guess, hits)
            results[i] = assemble(
                scheme, unit, values, hits, matcher_name, explain, panels.get(unit)
            )
    return results


def score_unit(
    scheme: Scheme, unit: str, facts: Mapping, matcher: Matcher, matcher_name: str
) -> ScoreResult:
    return score_units(scheme, {unit: facts}, matcher, matcher_name)[0]
