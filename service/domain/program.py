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
from .model import Clause, MatchRule, Scheme

SCHEME_GROUP = "$scheme"

# --- what durable-rules 2.0.28 can run -------------------------------------------------------
# Every limit of the engine a scheme must keep, in one place.  The loader refuses a scheme that
# exceeds any of them (``engine_problems``), so that a scheme that loads is one every evaluation
# of which the engine completes.  Measured on this machine (see shared/notes/durable-rules.md and
# tools/fuzz_rules.py's history); each limit keeps well clear of where the engine fails.

#: Clauses in one scheme: each clause is one group-equality test at the engine's first level,
#: and durable-rules loops forever past 511 distinct first-level tests.
MAX_CLAUSES = 400
#: Conditions of one clause that may hold at once (bands and levels of one rule are exclusive,
#: so count once): durable-rules reports error 303 and fires nothing past 64 matches of one fact.
MAX_SIMULTANEOUS_MATCHES = 60
#: Properties of one clause's fact (facts read plus derived measures): the engine allows 255 per
#: fact, of which the session, id and group take three.
MAX_OPERANDS = 200
#: Tests in one condition (every comparison of its and/or/not, bands' two edges and a guard
#: included): an ``or`` of 512 alternatives makes create_ruleset loop forever holding the GIL
#: (511 works), an ``and`` of 250 tests on one fact killed the process with SIGSEGV (230 works).
MAX_CONDITION_TESTS = 200
#: Match rules (bands, levels, rules, vetoes) in one clause: all of them test one group, and 512
#: distinct tests under one first-level test loop forever.
MAX_CLAUSE_MATCHES = 400
#: Match rules in one scheme: 4,000 compiled (in 0.8 s), 4,800 made create_ruleset fail with
#: error 106 (as does 8,000), however few tests each had; 16,000 tests in 400 rules compiled.
MAX_SCHEME_MATCHES = 4000


@dataclass(frozen=True)
class EngineProblem:
    group: str  # the clause's id, or SCHEME_GROUP
    key: str | None  # the match rule's key, or None for the clause as a whole
    message: str


def engine_problems(scheme: Scheme) -> list[EngineProblem]:
    """What in a built scheme (``build``) durable-rules could not run, in words."""
    out: list[EngineProblem] = []
    groups = [(c.id, c.matches, c.operands) for c in scheme.clauses.values()]
    scheme_matches = tuple(m for m in scheme.matches if m.group == SCHEME_GROUP)
    groups.append((SCHEME_GROUP, scheme_matches, scheme.grade_operands))
    for group, matches, read in groups:
        where = "等级否决" if group == SCHEME_GROUP else "本条款"
        if len(read) > MAX_OPERANDS:
            out.append(
                EngineProblem(
                    group,
                    None,
                    f"{where}读取的事实与计算值共{len(read)}个，规则引擎一次最多{MAX_OPERANDS}个，请拆分条款",
                )
            )
        if len(matches) > MAX_CLAUSE_MATCHES:
            out.append(
                EngineProblem(
                    group,
                    None,
                    f"{where}的规则、档与否决共{len(matches)}个，规则引擎最多{MAX_CLAUSE_MATCHES}个，请拆分条款",
                )
            )
        for m in matches:
            tests = size(m.condition)
            if tests > MAX_CONDITION_TESTS:
                out.append(
                    EngineProblem(
                        group,
                        m.key,
                        f"条件过于复杂：含{tests}个比较，规则引擎最多{MAX_CONDITION_TESTS}个"
                        "（or 的每一项、and 的每一项各算一个），请拆分规则",
                    )
                )
    if len(scheme.matches) > MAX_SCHEME_MATCHES:
        out.append(
            EngineProblem(
                SCHEME_GROUP,
                None,
                f"整套细则的规则、档与否决共{len(scheme.matches)}个，规则引擎最多{MAX_SCHEME_MATCHES}个",
            )
        )
    return out


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


def simultaneous(clause: Clause) -> int:
    """How many of a clause's conditions could hold at once (bands count once)."""
    return len(clause.rules) + len(clause.vetoes)


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
