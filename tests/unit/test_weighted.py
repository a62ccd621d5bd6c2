"""Weighted parts (issue 8, mechanism 6): "分管领导评价得分×20%+干部职工评价得分×40%+考核组评价得分×40%".

The fixture scheme tests/fixtures/weighted carries the boundary cases; they run through the
oracle and through durable-rules here.
"""

import copy
import dataclasses
from decimal import Decimal

from service.casebook import run_cases
from service.domain.scoring import prepare, score_clause
from service.rulefiles.loader import load_scheme

from ..conftest import FIXTURES

WEIGHTED = FIXTURES / "weighted"


def _clause(scheme, cid):
    return scheme.clauses[cid]


def _score(scheme, oracle, cid, facts):
    values = {k: Decimal(v) for k, v in facts.items()}
    fired = oracle.match(scheme, [prepare(scheme, values)])[0]
    return score_clause(scheme, _clause(scheme, cid), set(fired), values, explain=True)


def test_the_fixture_cases_pass_on_both_matchers_and_bite(oracle, engine):
    scheme = load_scheme(WEIGHTED)
    assert len(scheme.tests) == 1 and sum(len(c.tests) for c in scheme.clauses.values()) == 10
    for matcher in (oracle, engine):
        results = run_cases(scheme, matcher)
        assert results and all(r.ok for r in results), [r for r in results if not r.ok]
    # a case expecting the unweighted mean (85) instead of 84 fails
    wrong = copy.copy(scheme)
    first = _clause(scheme, "1")
    expects_85 = dataclasses.replace(first.tests[0], points=Decimal(85))
    wrong.clauses = {
        **scheme.clauses,
        "1": dataclasses.replace(first, tests=(expects_85, *first.tests[1:])),
    }
    assert [r.ok for r in run_cases(wrong, oracle)].count(False) == 1


def test_the_sentence_shows_each_part_its_weight_and_the_sum(oracle):
    scheme = load_scheme(WEIGHTED)
    facts = {"leader_score": "83.33", "staff_score": "77.77", "panel_score": "91.11"}
    result = _score(scheme, oracle, "1", facts)
    assert result.points == Decimal("84.218")  # exact in the data
    assert result.rules[0].explanation == (
        "分管领导评价得分83.33×20%+干部职工评价得分77.77×40%+考核组评价得分91.11×40%≈84.22分"
    )


def test_a_missing_part_is_missing_never_zero(oracle):
    scheme = load_scheme(WEIGHTED)
    result = _score(scheme, oracle, "1", {"leader_score": "90"})
    assert result.status == "incomplete" and not result.rules[0].fired
    assert result.rules[0].explanation == (
        "缺少“干部职工评价得分”、“考核组评价得分”，未计算，不计分"
    )


def test_the_cap_holds_and_says_so(oracle):
    scheme = load_scheme(WEIGHTED)
    result = _score(scheme, oracle, "2", {"award_score": "100"})
    assert result.points == 3
    assert result.rules[0].explanation == "表彰评分100×5%=5分，超过本规则上限3分，按3分计"


def test_the_admin_pages_describe_the_parts_and_the_cap():
    from admin.present import rule_words

    scheme = load_scheme(WEIGHTED)
    words = [rule_words(c.rules[0], c, scheme.facts, scheme.unit) for c in scheme.clauses.values()]
    assert words == [
        "加权计分：分管领导评价得分×20%+干部职工评价得分×40%+考核组评价得分×40%",
        "加权计分：表彰评分×5%，最多3分",
    ]
