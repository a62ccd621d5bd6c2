"""Running the test cases a scheme's rule files carry, and checking a rule set.

Each clause file lists cases (facts in, points and fired rules out); the
scheme file may list whole-scheme cases (total, grade) and ranking cases.
``run_cases`` scores every case through the given matcher and reports each
failure in words a policy officer can act on, at the file and line of the case.

``check_rules`` is what 检查 means everywhere (the CLI's ``scoring check``, the
API's validate and reload, the admin rules page, a start): the strict loader,
then every case of every scheme through the matcher. A rule set is good only
if both pass.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from service.domain import expressions as ex
from service.domain.facts import not_applicable
from service.domain.grading import competition_ranks, decision
from service.domain.model import Scheme
from service.domain.numbers import plain
from service.domain.panel import with_marks
from service.domain.program import SCHEME_GROUP
from service.domain.relative import standings
from service.domain.scoring import (
    GradeVetoResult,
    assemble,
    facts_text,
    fired_rules,
    pending_grade_vetoes,
    prepare,
)
from service.rulefiles.errors import RuleFileError, RuleSetError


@dataclass
class CaseResult:
    scheme: str
    where: str  # file of the case
    name: str
    ok: bool
    problems: list
    line: int = 0  # where the case starts in its file (0: not known)

    @property
    def at(self) -> str:
        """``file:line`` of the case, as an editor opens it."""
        return f"{self.where}:{self.line}" if self.line else self.where

    def lines(self) -> list[str]:
        """The case as ``scoring test`` lists a failure: where and which case, then what differed
        (the same words in the CLI, the API and the admin pages)."""
        return [f"✗ {self.at}：{self.name}"] + [f"    {p}" for p in self.problems]


def _clause_case(scheme: Scheme, clause, case, fired_sets, values, panels) -> list:
    # a clause case gives only that clause's facts: judge that clause alone
    result = assemble(scheme, case.name, values, fired_sets, "", panels=panels)
    got = next(r for r in result.clauses if r.id == clause.id)
    problems = []
    if got.points != case.points:
        problems.append(
            f"期望{plain(case.points)}分，实得{plain(got.points)}分（{got.explanation}）"
        )
    if case.fired is not None:
        fired = fired_rules(result)[clause.id]
        if sorted(fired) != sorted(case.fired):
            problems.append(f"期望触发 {_ids(case.fired)}，实际触发 {_ids(fired)}")
    for rid, wanted in case.bands.items():
        outcome = next(o for o in got.rules if o.rule == rid)
        rule = next(r for r in clause.rules if r.id == rid)
        chosen = (rule.bands or rule.levels)[outcome.band - 1] if outcome.band else None
        label = chosen.label if chosen else None
        if chosen is None or wanted not in (chosen.label, chosen.range.text):
            problems.append(
                f"规则{rid}期望落在“{wanted}”档，实际{'落在“' + (label or chosen.range.text) + '”档' if chosen else '没有落在任何档'}"
            )
    if case.status is not None and got.status != case.status:
        problems.append(f"期望状态 {case.status}，实际 {got.status}")
    return problems


def _ids(ids) -> str:
    return "、".join(sorted(ids)) if ids else "（无）"


def _shown(value) -> str:
    if value is None:
        return "（无）"
    if isinstance(value, tuple):
        return "、".join(value) if value else "（无）"
    return str(value)


def run_cases(scheme: Scheme, matcher) -> list[CaseResult]:
    jobs = []  # (file, line, name, facts, check(fired) -> problems)
    for clause in scheme.clauses.values():
        for case in clause.tests:
            # a panel clause's case gives its reviewers' marks: they make its value, as in scoring
            values, panels = with_marks(scheme, case.facts, {clause.id: case.marks})
            jobs.append(
                (
                    clause.file,
                    case.line,
                    f"{clause.id} {case.name}",
                    values,
                    lambda fired, clause=clause, case=case, values=values, panels=panels: (
                        _clause_case(scheme, clause, case, fired, values, panels)
                    ),
                )
            )
    sfile = scheme.files[0] if scheme.files else "scheme.yaml"
    for case in scheme.tests:
        # a whole-scheme case's marks, by clause (a panel clause without them is incomplete)
        values, panels = with_marks(scheme, case.facts, case.marks)

        def check(fired, case=case, values=values, panels=panels):
            result = assemble(scheme, case.name, values, fired, "", panels=panels)
            problems = []
            if result.total != case.total:
                problems.append(f"期望总分{plain(case.total)}，实得{plain(result.total)}")
            # a grade left undecided by a missing grade-veto fact is written `grade: 待定`
            graded = "待定" if result.grade_pending else result.grade
            if case.grade is not None and graded != case.grade:
                problems.append(f"期望等级{case.grade}，实得{graded}（{result.grade_explanation}）")
            return problems

        jobs.append((sfile, case.line, case.name, values, check))
    facts_sets = [prepare(scheme, facts) for _, _, _, facts, _ in jobs]
    fired = matcher.match(scheme, facts_sets) if jobs else []
    out = [
        CaseResult(scheme.id, file, name, not (p := check(hits)), p, line)
        for (file, line, name, _, check), hits in zip(jobs, fired)
    ]
    out += _ranking_cases(scheme, matcher, sfile)
    return out


def _relative_problems(unit: str, want: dict, standing) -> list[str]:
    """What a ranking case expects of the parts computed in ranking, and of the total with them."""
    problems = []
    if want.get("total") is not None and want["total"] != standing.total:
        problems.append(
            f"{unit}：期望排名时总分{plain(want['total'])}，实得{plain(standing.total)}"
        )
    got = {p.id: p for p in standing.relative}
    for pid, points in (want.get("relative") or {}).items():
        part = got[pid]
        if part.points != points:
            shown = "不计分" if part.points is None else plain(part.points) + "分"
            wanted = "不计分" if points is None else plain(points) + "分"
            problems.append(f"{unit}：排名计分{pid}期望{wanted}，实得{shown}（{part.explanation}）")
    return problems


def _ranking_cases(scheme: Scheme, matcher, sfile: str) -> list[CaseResult]:
    out = []
    for case in scheme.ranking_tests:
        units = list(case.units)
        batch = [
            [f for f in prepare(scheme, case.units[u]["facts"]) if f["group"] == SCHEME_GROUP]
            for u in units
        ]
        fired = matcher.match(scheme, batch)
        # the parts computed in ranking first: the rank is on the total with them
        stood = standings(
            scheme, [(u, case.units[u]["total"], case.units[u]["facts"]) for u in units]
        )
        totals = [s.total for s in stood]
        ranks = competition_ranks(totals)
        problems = []
        for unit, total, rank, hits, standing in zip(units, totals, ranks, fired, stood):
            facts = case.units[unit]["facts"]
            vetoes = []
            for v in scheme.grading.vetoes:
                if f"{SCHEME_GROUP}/!{v.id}" in hits:
                    used = {n: facts.get(n) for n in ex.names(v.when)}
                    vetoes.append(
                        GradeVetoResult(
                            v.id,
                            v.effect,
                            v.grade,
                            v.reason,
                            v.when_text,
                            used,
                            facts_text(used, scheme),
                        )
                    )
            pending = pending_grade_vetoes(
                scheme, facts, {v.id for v in vetoes}, not_applicable(scheme, facts)
            )
            d = decision(scheme, total, rank, vetoes, pending)
            grade = "待定" if d.grade_pending else d.grade
            distinctions, why = d.distinctions, d.explanation
            want = case.expect.get(unit)
            if want is None:
                continue
            got = {"rank": rank, "grade": grade, "distinctions": tuple(distinctions)}
            for k, words in (("rank", "名次"), ("grade", "等级"), ("distinctions", "称号")):
                if want[k] is not None and want[k] != got[k]:
                    problems.append(
                        f"{unit}：期望{words}{_shown(want[k])}，实得{_shown(got[k])}（{why}）"
                    )
            problems += _relative_problems(unit, want, standing)
        out.append(CaseResult(scheme.id, sfile, case.name, not problems, problems, case.line))
    return out


# --- checking a rule set ----------------------------------------------------------------------


@dataclass
class RuleCheck:
    """A rule set checked: what loaded, the loader's errors, and the result of every case run."""

    schemes: dict = field(default_factory=dict)  # scheme id -> Scheme (empty if it did not load)
    errors: list[RuleFileError] = field(default_factory=list)
    results: list[CaseResult] = field(default_factory=list)
    tested: tuple = ()  # the versions whose cases were run (the others were known to pass)

    @property
    def failing(self) -> list[CaseResult]:
        return [r for r in self.results if not r.ok]

    @property
    def ok(self) -> bool:
        return not self.errors and not self.failing


class FailingCases(Exception):
    """A rule set that loads but fails some of its own test cases; nothing of it is used."""

    def __init__(self, failing: list[CaseResult]):
        self.failing = failing
        super().__init__("\n".join(line for case in failing for line in case.lines()))


def check_rules(
    load: Callable[[], dict], matcher, passed: Collection[str] = frozenset()
) -> RuleCheck:
    """Load strictly (``load`` raises ``RuleSetError``), then run every case of every scheme
    through ``matcher`` (the production engine outside tests of the oracle), except the cases of
    the versions in ``passed``: the same bytes passed them before, through the same engine."""
    try:
        schemes = load()
    except RuleSetError as err:
        return RuleCheck(errors=list(err.errors))
    results: list[CaseResult] = []
    tested = []
    for scheme in schemes.values():
        if scheme.version in passed:
            continue
        results += run_cases(scheme, matcher)
        tested.append(scheme.version)
    return RuleCheck(schemes, [], results, tuple(tested))
