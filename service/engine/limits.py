"""What durable-rules 2.0.28 can run: every limit of the engine a scheme must keep, in one place.

The loader refuses a scheme that exceeds any of them (``engine_problems``), so that a scheme
that loads is one every evaluation of which the engine completes.  Measured on this machine
(see shared/notes/durable-rules.md and tools/fuzz_rules.py's history); each limit keeps well
clear of where the engine fails.  The scoring core knows none of these numbers: it reports the
sizes of what it built (``program.sizes``), and they are checked here.

This module imports nothing of durable-rules, so the rule-file loader may read it (the one
import across the adapters' layer that .importlinter allows).
"""

from __future__ import annotations

from dataclasses import dataclass

from service.domain.model import Clause, Scheme
from service.domain.program import SCHEME_GROUP, sizes

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


def simultaneous(clause: Clause) -> int:
    """How many of a clause's conditions could hold at once (bands and levels count once)."""
    return len(clause.rules) + len(clause.vetoes)


def engine_problems(scheme: Scheme) -> list[EngineProblem]:
    """What in a built scheme (``program.build``) durable-rules could not run, in words."""
    out: list[EngineProblem] = []
    for size in sizes(scheme):
        group = size.group
        where = "等级否决" if group == SCHEME_GROUP else "本条款"
        if size.operands > MAX_OPERANDS:
            out.append(
                EngineProblem(
                    group,
                    None,
                    f"{where}读取的事实与计算值共{size.operands}个，规则引擎一次最多{MAX_OPERANDS}个，请拆分条款",
                )
            )
        if size.matches > MAX_CLAUSE_MATCHES:
            out.append(
                EngineProblem(
                    group,
                    None,
                    f"{where}的规则、档与否决共{size.matches}个，规则引擎最多{MAX_CLAUSE_MATCHES}个，请拆分条款",
                )
            )
        for key, tests in size.tests:
            if tests > MAX_CONDITION_TESTS:
                out.append(
                    EngineProblem(
                        group,
                        key,
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
