"""Scoring a unit's facts under a scheme, with every point explained.

The flow for one unit:
1. ``prepare`` computes every derived measure exactly and lays out one flat
   fact per clause (and one for the scheme's grade vetoes) for the matcher;
2. a ``Matcher`` (durable-rules in production, the oracle in tests) says which
   conditions hold;
3. ``assemble`` turns the fired conditions into points with exact decimals,
   applies caps, floors, vetoes and pools, and writes the trace.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from . import expressions as ex
from .facts import applicable, applies, not_applicable, validate_facts
from .model import BONUS, DEDUCTION, Category, Clause, Rule, Scheme
from .numbers import CONTEXT, ZERO, clamp, measure_words, plain, to_match_precision
from .program import SCHEME_GROUP


class Matcher(Protocol):
    """Evaluates a scheme's match conditions against prepared facts."""

    def match(self, scheme: Scheme, batch: Sequence[Sequence[dict]]) -> list[set]:
        """For each unit's list of group facts, the set of match keys that hold."""


# --- results ------------------------------------------------------------------


class _Words(Protocol):
    _explanation: str | None
    _write: Callable | None


class _Worded:
    """``explanation`` is written on first access: scoring a batch computes the
    numbers and the structured trace; the sentences cost nothing until read."""

    TEXT = ("explanation",)
    __slots__ = ()
    # fields of each subclass (a slotted dataclass), declared here for the type checker
    _explanation: str | None
    _write: Callable | None

    @property
    def explanation(self) -> str:
        # the slots are the subclass's: written through the protocol, which the checker
        # does not hold to this class's empty __slots__
        state: _Words = self
        text = state._explanation
        if text is None:
            # the writer is given the object, not bound to it: no reference cycle, so a result
            # nobody reads is freed at once instead of waiting for the garbage collector
            text = state._explanation = self._write(self) if self._write is not None else ""
            state._write = None
        return text

    @explanation.setter
    def explanation(self, text: str) -> None:
        state: _Words = self
        state._explanation, state._write = text, None


@dataclass(slots=True)
class RuleOutcome(_Worded):
    rule: str
    kind: str
    title: str
    fired: bool
    amount: Decimal = ZERO
    raw: Decimal | None = None  # before the rule's own cap
    capped: bool = False
    facts: dict = field(default_factory=dict)
    band: int | None = None
    note: str = ""
    _explanation: str | None = field(default=None, repr=False, compare=False)
    _write: Callable | None = field(default=None, repr=False, compare=False)


@dataclass(slots=True)
class VetoOutcome:
    id: str
    fired: bool
    condition: str
    reason: str
    facts: dict = field(default_factory=dict)


@dataclass(slots=True)
class ClauseResult(_Worded):
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
    _explanation: str | None = field(default=None, repr=False, compare=False)
    _write: Callable | None = field(default=None, repr=False, compare=False)


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
        absent = [
            n for n in dict.fromkeys(ex.names(veto.when)) if values.get(n) is None and n not in idle
        ]
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


# --- step 1: facts for the matcher ------------------------------------------------


def _measure(expr: ex.Expr, values: Mapping) -> Decimal:
    return ex.evaluate(expr, values)


def prepare(scheme: Scheme, values: Mapping) -> list[dict]:
    """One flat fact per clause (and one for grade vetoes), operands only.

    Numbers are cut to the matchers' 15 significant digits; an operand whose
    fact is missing, or whose measure is undefined, is left out, so no test on
    it can hold.
    """
    values = applicable(scheme, values)
    groups = [(c.id, c.operands, c.derived) for c in scheme.clauses.values()]
    if scheme.grade_operands:
        groups.append((SCHEME_GROUP, scheme.grade_operands, scheme.grade_derived))
    out = []
    for group, operands, derived in groups:
        fact: dict = {"group": group}
        for key in operands:
            if key in derived:
                try:
                    value = _measure(derived[key], values)
                except ex.Undefined:
                    continue
                if abs(value) > Decimal("1e12"):
                    continue  # out of the engine's exact range: treated as undefined
                fact[key] = to_match_precision(value)
            elif key in values:
                value = values[key]
                fact[key] = to_match_precision(value) if isinstance(value, Decimal) else value
        out.append(fact)
    return out


# --- step 3: points and trace -----------------------------------------------------


def _signed(amount: Decimal, u: str = "分") -> str:
    if amount < 0:
        return f"扣{plain(-amount)}{u}"
    return f"得{plain(amount)}{u}"


def _facts_of(expr: ex.Expr | None, values: Mapping, extra: Sequence[str] = ()) -> dict:
    names = ex.names(expr) if expr is not None else []
    return {n: values.get(n) for n in [*names, *extra]}


def value_words(value, missing: str = "（缺）") -> str:
    """A fact's value as a person reads it: 是/否, exact digits, or the text; ``missing`` if absent."""
    if value is None:
        return missing
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, Decimal):
        return plain(value)
    return str(value)


def facts_text(facts: Mapping, scheme: Scheme) -> str:
    return "，".join(
        f"{scheme.facts[n].label}={value_words(v)}{scheme.facts[n].unit if v is not None else ''}"
        for n, v in facts.items()
        if n in scheme.facts
    )


def _cap(raw: Decimal, cap: Decimal | None) -> tuple[Decimal, bool]:
    if cap is None or abs(raw) <= cap:
        return raw, False
    return (cap if raw > 0 else -cap), True


_T = TypeVar("_T")


def _given(value: _T | None) -> _T:
    """A rule's field that its kind requires (the loader refuses the rule without it)."""
    if value is None:  # pragma: no cover - the loader admits no such rule
        raise ValueError("a rule lacks a field its kind requires")
    return value


def _label(rule: Rule, scheme: Scheme) -> str:
    if rule.measure_label:
        return rule.measure_label
    if isinstance(rule.measure, ex.Name):
        return scheme.facts[rule.measure.name].label
    return rule.measure_text


def _unit_of(rule: Rule, scheme: Scheme) -> str:
    if isinstance(rule.measure, ex.Name):
        return scheme.facts[rule.measure.name].unit
    return ""


def _outcome(
    scheme: Scheme, clause: Clause, rule: Rule, fired: set, values: Mapping, words: bool = False
) -> RuleOutcome:
    """The rule's points and structured trace; its sentence too when ``words``."""
    key = f"{clause.id}/{rule.id}"
    u = scheme.unit
    out = RuleOutcome(rule.id, rule.kind, rule.title, False, note=rule.note)
    guard = ""
    if rule.when is not None:
        out.facts.update(_facts_of(rule.when, values))
        guard = f"条件“{rule.when_text}”"
    absent = [n for n, v in out.facts.items() if v is None]
    if absent and key not in fired:
        if words:
            out.explanation = _absent_words(scheme, guard, absent, values)
        return out
    if rule.kind == "fixed":
        out.fired = key in fired
        if out.fired:
            out.amount = points = _given(rule.points)
            if words:
                out.explanation = f"{guard or '本项'}成立（{facts_text(out.facts, scheme)}），{_signed(points, u)}"
        else:
            if words:
                out.explanation = f"{guard}不成立（{facts_text(out.facts, scheme)}），不计分"
        return out

    if rule.kind in ("bands", "per_unit", "steps"):
        measure = rule.measure
        if measure is None:  # pragma: no cover - the loader admits no such rule
            raise ValueError("a rule lacks its measure")
        out.facts.update(_facts_of(measure, values))
        label = _label(rule, scheme)
        try:
            m = _measure(measure, values)
        except ex.Undefined as why:
            if words:
                out.explanation = f"{label}无法计算（{why.reason}），不计分"
            return out
        unit = _unit_of(rule, scheme)
        shown = f"{label}为{measure_words(m)}{unit}"
        if rule.kind == "bands":
            hit = [i for i in range(1, len(rule.bands) + 1) if f"{key}/{i}" in fired]
            if not hit:
                missed = f"，{guard}不成立" if guard else "，不在任何档内"
                if words:
                    out.explanation = f"{shown}{missed}，不计分"
                return out
            band = rule.bands[hit[0] - 1]
            out.fired, out.band, out.amount = True, hit[0], band.points
            name = f"“{band.label}”" if band.label else ""
            if words:
                out.explanation = f"{shown}，落在{band.range.text}档{name}（{band.range.words()}），{_signed(band.points, u)}"
            return out
        out.fired = key in fired
        if not out.fired:
            if rule.kind == "per_unit":
                reason = f"{guard}不成立" if guard and m > 0 else "为0"
                if words:
                    out.explanation = (
                        f"{shown}，{reason}，不计分" if reason != "为0" else f"{shown}，不计分"
                    )
            else:
                threshold = f"不足{plain(rule.step)}{unit}" if rule.whole_steps else "未超过0"
                if words:
                    out.explanation = f"{shown}，{threshold if not (guard and m > 0) else guard + '不成立'}，不计分"
            return out
        each = _given(rule.each)
        if rule.kind == "per_unit":
            raw = CONTEXT.multiply(m, each)
            text = f"{shown}，每{unit or '项'}{_signed(each, u)}，计{plain(raw)}{u}"
        elif rule.whole_steps:
            step = _given(rule.step)
            steps = CONTEXT.divide_int(m, step)
            raw = CONTEXT.multiply(steps, each)
            text = (
                f"{shown}，每满{plain(step)}{unit}{_signed(each, u)}，"
                f"满{plain(steps)}个整档，计{plain(raw)}{u}"
            )
        else:
            step = _given(rule.step)
            raw = CONTEXT.multiply(CONTEXT.divide(m, step), each)
            text = f"{shown}，每{plain(step)}{unit}{_signed(each, u)}，按比例计{plain(raw)}{u}"
        out.raw = raw
        out.amount, out.capped = _cap(raw, rule.cap)
        if out.capped:
            text += f"，超过本规则上限{plain(rule.cap)}{u}，按{plain(out.amount)}{u}计"
        out.fired = True
        if words:
            out.explanation = text
        return out

    # scaled, assessed, maturity read one value fact
    spec = scheme.facts[rule.value]
    v = values.get(rule.value)
    out.facts[rule.value] = v
    if rule.kind == "assessed" and rule.reason:
        out.facts[rule.reason] = values.get(rule.reason)
    if v is None:
        if words:
            out.explanation = f"{spec.label}缺失，不计分"
        return out
    if rule.kind == "maturity":
        hit = [i for i in range(1, len(rule.levels) + 1) if f"{key}/{i}" in fired]
        if not hit:
            if words:
                out.explanation = f"{spec.label}为{plain(v)}%，{guard + '不成立' if guard else '不在任何成熟度档内'}，不计分"
            return out
        level = rule.levels[hit[0] - 1]
        amount = CONTEXT.divide(CONTEXT.multiply(clause.points, v), Decimal(100))
        out.fired, out.band, out.amount = True, hit[0], amount
        text = f"：{level.text}" if level.text else ""
        if words:
            out.explanation = (
                f"{spec.label}为{plain(v)}%，属“{level.label}”档{text}；"
                f"{plain(clause.points)}×{plain(v)}%={plain(amount)}{u}"
            )
        return out
    out.fired = key in fired
    if not out.fired:
        if words:
            out.explanation = (
                f"{guard}不成立，不计分" if guard else f"{spec.label}不在可用范围内，不计分"
            )
        return out
    if rule.kind == "scaled":
        amount = CONTEXT.divide(CONTEXT.multiply(v, _given(rule.scale_to)), _given(rule.scale_from))
        out.amount = amount
        if words:
            out.explanation = (
                f"{spec.label}为{plain(v)}（满分{plain(rule.scale_from)}），"
                f"折算：{plain(v)}×{plain(rule.scale_to)}÷{plain(rule.scale_from)}={plain(amount)}{u}"
            )
    else:
        out.amount = v
        given = values.get(rule.reason) if rule.reason else None
        if words:
            out.explanation = f"评审给分{plain(v)}{u}" + (f"，理由：{given}" if given else "")
    out.fired = True
    return out


def _absent_words(scheme: Scheme, guard: str, absent: list, values: Mapping) -> str:
    # a fact that does not apply (applies_when) is not "missing": say which it is
    idle = [n for n in absent if applies(scheme.facts[n], values) is False]
    if idle and len(idle) == len(absent):
        labels = "、".join(scheme.facts[n].label for n in idle)
        return f"{guard}读取的事实{labels}不适用，不计分"
    return f"{guard}缺少事实{'、'.join(scheme.facts[n].label for n in absent)}，未判断，不计分"


def _missing_for(clause: Clause, scheme: Scheme, values: Mapping) -> list:
    # a fact that does not apply is not missing (applies_when's facts are never dropped, so
    # asking again on the values left gives the same answer)
    return [
        n
        for n in clause.reads
        if scheme.facts[n].required
        and values.get(n) is None
        and applies(scheme.facts[n], values) is not False
    ]


def score_clause(
    scheme: Scheme, clause: Clause, fired: set, values: Mapping, explain: bool = False
) -> ClauseResult:
    u = scheme.unit
    start = clause.points if clause.start == "full" else ZERO
    facts = {n: values.get(n) for n in clause.reads}
    missing = _missing_for(clause, scheme, values)
    vetoes = []
    for veto in clause.vetoes:
        hit = f"{clause.id}/!{veto.id}" in fired
        vetoes.append(
            VetoOutcome(veto.id, hit, veto.when_text, veto.reason, _facts_of(veto.when, values))
        )
    outcomes = []
    for rule in clause.rules:
        if explain:  # the sentence with the numbers, in one pass
            outcome = _outcome(scheme, clause, rule, fired, values, words=True)
        else:  # the sentence only if it is read, by working the rule out again then
            outcome = _outcome(scheme, clause, rule, fired, values)
            outcome._write = functools.partial(_rule_words, scheme, clause, rule, fired, values)
        outcomes.append(outcome)
    raw = start + sum((o.amount for o in outcomes), ZERO)
    common: dict[str, Any] = {
        "id": clause.id,
        "title": clause.title,
        "category": clause.category,
        "kind": clause.kind,
        "maximum": clause.points,
        "start": start,
        "raw": raw,
        "rules": outcomes,
        "vetoes": vetoes,
        "missing": missing,
        "facts": facts,
        "source": clause.source.text,
        "file": clause.file,
        "offices": clause.offices,
        "note": clause.note,
    }
    fired_vetoes = [v for v in vetoes if v.fired]
    if fired_vetoes:
        result = ClauseResult(points=ZERO, status="vetoed", **common)
    elif missing:
        result = ClauseResult(points=ZERO, status="incomplete", **common)
    else:
        points = clamp(raw, clause.low, clause.high)
        clamped = ""
        if points != raw:
            if clause.kind == DEDUCTION:
                clamped = f"合计{plain(raw)}{u}，超过本项最多扣{plain(clause.points)}{u}，按{plain(points)}{u}计"
            elif raw < clause.low:
                clamped = f"合计{plain(raw)}{u}，扣完为止，按{plain(points)}{u}计"
            else:
                clamped = f"合计{plain(raw)}{u}，超过本项上限{plain(clause.points)}{u}，按{plain(points)}{u}计"
        result = ClauseResult(points=points, status="scored", clamped=clamped, **common)
    result._write = functools.partial(_clause_words, scheme, clause)
    return result


def _rule_words(
    scheme: Scheme, clause: Clause, rule: Rule, fired: set, values: Mapping, _asking=None
) -> str:
    return _outcome(scheme, clause, rule, fired, values, words=True).explanation


def _clause_words(scheme: Scheme, clause: Clause, result: ClauseResult) -> str:
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
        return f"缺少事实：{labels}（缺失不等于0），本项暂计0{u}"
    points = result.points
    base = f"起始{plain(result.start)}{u}；" if clause.start == "full" else ""
    fired_words = "；".join(o.explanation for o in result.rules if o.fired) or "无规则适用"
    if clause.kind == DEDUCTION:
        outcome = f"本项扣{plain(-points)}{u}（最多扣{plain(clause.points)}{u}）"
    elif clause.kind == BONUS:
        outcome = f"本项加{plain(points)}{u}（最多加{plain(clause.points)}{u}）"
    else:
        outcome = f"本项得{plain(points)}{u}（满分{plain(clause.points)}{u}）"
    return (
        f"{base}{fired_words}" + (f"；{result.clamped}" if result.clamped else "") + f"。{outcome}"
    )


def _categories(scheme: Scheme, clause_results: dict) -> list:
    out: list[CategoryResult] = []
    u = scheme.unit

    def walk(cat: Category) -> Decimal:
        raw = sum((clause_results[c].points for c in cat.clauses), ZERO)
        raw += sum((walk(child) for child in cat.children), ZERO)
        points, capped = _cap(raw, cat.cap) if cat.cap is not None else (raw, False)
        if cat.kind == DEDUCTION and cat.cap is not None:
            points, capped = (max(raw, -cat.cap), raw < -cat.cap)
        if capped:
            expl = f"{cat.title}合计{plain(raw)}{u}，超过总计上限{plain(cat.cap)}{u}，按{plain(points)}{u}计"
        else:
            expl = f"{cat.title}合计{plain(points)}{u}" + (
                f"（满分{plain(cat.points)}{u}）" if cat.points is not None else ""
            )
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

    for top in scheme.categories:
        walk(top)
    order = list(scheme.category_index())
    out.sort(key=lambda r: order.index(r.id))
    return out


def assemble(
    scheme: Scheme, unit: str, values: Mapping, fired: set, matcher: str, explain: bool = False
) -> ScoreResult:
    """The score of one unit from the rules that fired.  ``explain``: the caller will read every
    sentence of the trace (an API answer, a stored score), so write them now, in the same pass."""
    from .grading import grade_alone

    not_applying = sorted(not_applicable(scheme, values))
    values = applicable(scheme, values)
    clause_results = {
        cid: score_clause(scheme, c, fired, values, explain) for cid, c in scheme.clauses.items()
    }
    categories = _categories(scheme, clause_results)
    tops = [r for r in categories if r.parent is None]
    total = sum((r.points for r in tops), ZERO)
    by_kind = {
        k: sum((r.points for r in tops if r.kind == k), ZERO)
        for k in ("standard", BONUS, DEDUCTION)
    }
    vetoes = []
    for veto in scheme.grading.vetoes:
        if f"{SCHEME_GROUP}/!{veto.id}" in fired:
            facts = _facts_of(veto.when, values)
            vetoes.append(
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


def fired_rules(result: ScoreResult) -> dict:
    """clause id -> ids of the rules (and vetoes, as "!id") that fired."""
    return {
        c.id: [o.rule for o in c.rules if o.fired] + [f"!{v.id}" for v in c.vetoes if v.fired]
        for c in result.clauses
    }


def score_units(
    scheme: Scheme,
    units: Mapping[str, Mapping],
    matcher: Matcher,
    matcher_name: str,
    explain: bool = False,
) -> list:
    """Check, match and score several units in one matcher call (``explain``: see ``assemble``)."""
    checked = {unit: validate_facts(scheme, facts) for unit, facts in units.items()}
    batch = [prepare(scheme, values) for values in checked.values()]
    fired = matcher.match(scheme, batch)
    # a result is some 650 small objects that all stay alive: for 1,000 units the cyclic garbage
    # collector would walk them again and again as they pile up (a third of the time, measured),
    # and there is nothing for it to find, so it waits until the batch is built
    collecting = gc.isenabled()
    gc.disable()
    try:
        return [
            assemble(scheme, unit, values, hits, matcher_name, explain)
            for (unit, values), hits in zip(checked.items(), fired)
        ]
    finally:
        if collecting:
            gc.enable()


def score_unit(
    scheme: Scheme, unit: str, facts: Mapping, matcher: Matcher, matcher_name: str
) -> ScoreResult:
    return score_units(scheme, {unit: facts}, matcher, matcher_name)[0]
