"""From a scheme's rules to the conditions a matcher evaluates.

Each rule (each band of a banded rule, each maturity level, each veto)
becomes one ``MatchRule`` keyed ``clause/rule[/n]``; clause vetoes are keyed
``clause/!veto`` and grade vetoes ``$scheme/!veto``.  A numeric expression
that is not a plain fact becomes a derived measure ``_dN`` of its group: the
core computes it exactly, the matcher only compares it.
"""

from __future__ import annotations

from decimal import Decimal

from . import expressions as ex
from .conditions import ALWAYS, AllOf, Comparison, Condition, compile_condition
from .model import Clause, MatchRule, Rule, Scheme

SCHEME_GROUP = "$scheme"
#: Bands and levels are exclusive; everything else may fire together.
#: durable-rules reports error 303 and fires nothing past 64 matches of one fact.
MAX_SIMULTANEOUS_MATCHES = 60
MAX_OPERANDS = 200  # durable-rules allows 255 properties per fact


class _Group:
    def __init__(self, name: str):
        self.name = name
        self.derived: dict[str, ex.Expr] = {}
        self._by_text: dict[ex.Expr, str] = {}
        self.matches: list[MatchRule] = []
        self.operands: list[str] = []

    def derive(self, expr: ex.Expr) -> str:
        if isinstance(expr, ex.Name):
            return expr.name
        key = self._by_text.get(expr)
        if key is None:
            key = f"_d{len(self.derived) + 1}"
            self._by_text[expr] = key
            self.derived[key] = expr
        return key

    def add(self, key: str, condition: Condition):
        self.matches.append(MatchRule(key, self.name, condition))
        from .conditions import operands

        for operand in operands(condition):
            if operand not in self.operands:
                self.operands.append(operand)


def measure_key(group: _Group, expr: ex.Expr) -> str:
    return group.derive(expr)


def _with_guard(group: _Group, rule: Rule, condition: Condition) -> Condition:
    if rule.when is None:
        return condition
    return AllOf((compile_condition(rule.when, group.derive), condition))


def _rule_matches(group: _Group, clause: Clause, rule: Rule, facts: dict):
    base = f"{clause.id}/{rule.id}"
    if rule.kind == "fixed":
        group.add(
            base, compile_condition(rule.when, group.derive) if rule.when is not None else ALWAYS
        )
    elif rule.kind == "bands":
        operand = group.derive(rule.measure)
        for i, band in enumerate(rule.bands, 1):
            group.add(f"{base}/{i}", _with_guard(group, rule, band.range.condition(operand)))
    elif rule.kind == "per_unit":
        operand = group.derive(rule.measure)
        group.add(base, _with_guard(group, rule, Comparison(operand, ">", Decimal(0))))
    elif rule.kind == "steps":
        operand = group.derive(rule.measure)
        test = (
            Comparison(operand, ">=", rule.step)
            if rule.whole_steps
            else Comparison(operand, ">", Decimal(0))
        )
        group.add(base, _with_guard(group, rule, test))
    elif rule.kind in ("scaled", "assessed"):
        spec = facts[rule.value]
        floor = spec.minimum if spec.minimum is not None else Decimal("-1e12")
        group.add(base, _with_guard(group, rule, Comparison(rule.value, ">=", floor)))
    elif rule.kind == "maturity":
        for i, level in enumerate(rule.levels, 1):
            group.add(f"{base}/{i}", _with_guard(group, rule, level.range.condition(rule.value)))
    else:  # pragma: no cover - the loader admits no other kind
        raise ValueError(rule.kind)


def simultaneous(clause: Clause) -> int:
    """How many of a clause's conditions could hold at once (bands count once)."""
    return len(clause.rules) + len(clause.vetoes)


def build(scheme: Scheme) -> None:
    """Fill in each clause's and the scheme's match rules, operands and derived measures."""
    everything: list[MatchRule] = []
    for clause in scheme.clauses.values():
        group = _Group(clause.id)
        for rule in clause.rules:
            _rule_matches(group, clause, rule, scheme.facts)
        for veto in clause.vetoes:
            group.add(f"{clause.id}/!{veto.id}", compile_condition(veto.when, group.derive))
        clause.derived = group.derived
        clause.matches = tuple(group.matches)
        clause.operands = tuple(group.operands)
        everything.extend(group.matches)
    group = _Group(SCHEME_GROUP)
    for veto in scheme.grading.vetoes:
        group.add(f"{SCHEME_GROUP}/!{veto.id}", compile_condition(veto.when, group.derive))
    scheme.grade_derived = group.derived
    scheme.grade_operands = tuple(group.operands)
    everything.extend(group.matches)
    scheme.matches = tuple(everything)
