"""Vote and survey shares in bands (issue 8, mechanism 6): "优秀得票率在90%及以上的，得满分…
80%(含)-90%的，得190分…", answers weighted 100 % / 75 % / 55 % with "不了解" not counted.

Today's ``bands`` block says this exactly: the share is its measure, an expression over the
counts. The fixture scheme tests/fixtures/shares carries the boundary cases (exactly 90 %, exactly
80 %, a hair below each, all "不了解"); they run through the oracle and through durable-rules here.
"""

import copy
import dataclasses
from decimal import Decimal

from service.casebook import run_cases
from service.domain.scoring import prepare, score_clause
from service.rulefiles.loader import load_scheme

from ..conftest import FIXTURES

SHARES = FIXTURES / "shares"


def _score(scheme, oracle, cid, facts):
    values = {k: Decimal(v) for k, v in facts.items()}
    fired = oracle.match(scheme, [prepare(scheme, values)])[0]
    return score_clause(scheme, scheme.clauses[cid], set(fired), values, explain=True)


def test_the_fixture_cases_pass_on_both_matchers_and_bite(oracle, engine):
    scheme = load_scheme(SHARES)
    names = {t.name for c in scheme.clauses.values() for t in c.tests}
    assert "恰好90%（18/20）→ 满分" in names and "恰好80%：20满意、80比较满意 → 90分" in names
    for matcher in (oracle, engine):
        results = run_cases(scheme, matcher)
        assert results and all(r.ok for r in results), [r for r in results if not r.ok]
    # counting "不了解" in the denominator (18/22 ≈ 81.8 %: 190) is caught by the cases
    votes = scheme.clauses["1"]
    wrong = copy.copy(scheme)
    expects_190 = [
        dataclasses.replace(t, points=Decimal(190), bands={}) if "不计入" in t.name else t
        for t in votes.tests
    ]
    wrong.clauses = {**scheme.clauses, "1": dataclasses.replace(votes, tests=tuple(expects_190))}
    assert [r.ok for r in run_cases(wrong, oracle)].count(False) == 1


def test_all_unknown_leaves_the_share_undefined_and_says_so(oracle):
    scheme = load_scheme(SHARES)
    votes = _score(
        scheme, oracle, "1", {"total_votes": 5, "excellent_votes": 0, "unknown_votes": 5}
    )
    assert votes.points == 0 and not votes.rules[0].fired
    assert votes.rules[0].explanation == "优秀得票率（%）无法计算（除数为 0），不计分"
    survey = {"satisfied": 0, "fairly_satisfied": 0, "basically_satisfied": 0, "dissatisfied": 0}
    result = _score(scheme, oracle, "2", survey)
    assert result.rules[0].explanation == "满意度（%）无法计算（除数为 0），不计分"


def test_the_weighted_answers_count_75_and_55_percent(oracle):
    scheme = load_scheme(SHARES)
    facts = {"satisfied": 10, "fairly_satisfied": 4, "basically_satisfied": 4, "dissatisfied": 2}
    result = _score(scheme, oracle, "2", facts)
    # (10 + 4×0.75 + 4×0.55) / 20 × 100 = 76
    assert result.points == 80
    assert result.rules[0].explanation.startswith("满意度（%）为76，落在[0, 80)档")
