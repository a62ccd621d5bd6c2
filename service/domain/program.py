"""From a scheme's rules to the conditions a matcher evaluates.

Each rule (each band of a banded rule, each maturity level, each veto)
becomes one ``MatchRule`` keyed ``clause/rule[/n]``; clause vetoes are keyed
``clause/!veto`` and grade vetoes ``$scheme/!veto``.  A numeric expression
that is not a plain fact becomes a derived measure ``_dN`` of its group: the
core computes it exactly, the matcher only compares it.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import expressions as ex
from .blocks import BLOCKS
from .conditions import Condition, compile_condition, operands, size
from .model import MatchRule, Scheme

SCHEME_GROUP = "$scheme"

# --- sizes a matcher must cope with ------------------------------------------------------------
# The core knows nothing of any engine's limits; it reports the sizes of what it built, and the
# engine adapter's limits (service/engine/limits.py) are checked against them at load time.


@dataclass(frozen=True)
class GroupSize:
    """The size of one group's part of the program (a clause's, or the grade vetoes')."""

    group: str  # the clause's id, or SCHEME_GROUP
    operands: int  # facts read plus derived measures: properties of the group's one fact
    matches: int  # match rules (bands and levels one each)
    tests: tuple[tuple[str, int], ...]  # (match key, comparisons in its condition)


def sizes(scheme: Scheme) -> list[GroupSize]:
    """The size of each group of a built scheme (``build``): the clauses', then the scheme's."""
    groups = [(c.id, c.matches, c.operands) for c in scheme.clauses.values()]
    scheme_matches = tuple(m for m in scheme.matches if m.group == SCHEME_GROUP)
    groups.append((SCHEME_GROUP, scheme_matches, scheme.grade_operands))
    return [
        GroupSize(
            group, len(read), len(matches), tuple([(m.key, size(m.condition)) for m in matches])
        )
        for group, matches, read in groups
    ]


class Group:
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
        for operand in operands(condition):
            if operand not in self.operands:
                self.operands.append(operand)


def measure_key(group: Group, expr: ex.Expr) -> str:
    return group.derive(expr)


def build(scheme: Scheme) -> None:
    """Fill in each clause's and the scheme's match rules, operands and derived measures."""
    everything: list[MatchRule] = []
    for clause in scheme.clauses.values():
        group = Group(clause.id)
        for rule in clause.rules:
            BLOCKS[rule.kind].conditions(group, clause, rule, scheme.facts)
        for veto in clause.vetoes:
            group.add(f"{clause.id}/!{veto.id}", compile_condition(veto.when, group.derive))
        clause.derived = group.derived
        clause.matches = tuple(group.matches)
        clause.operands = tuple(group.operands)
        everything.extend(group.matches)
    group = Group(SCHEME_GROUP)
    for veto in scheme.grading.vetoes:
        group.add(f"{SCHEME_GROUP}/!{veto.id}", compile_condition(veto.when, group.derive))
    scheme.grade_derived = group.derived
    scheme.grade_operands = tuple(group.operands)
    everything.extend(group.matches)
    scheme.matches = tuple(everything)
