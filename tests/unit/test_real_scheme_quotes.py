"""The clauses issue 8 quotes from two real schemes (定远县 2011 食品安全工作目标考核评分细则,
徐州 质量工作考核评分细则), encoded as written, without workaround: the 5-point clause with its
bonus, the 15-point clause with its bonus, the committee clause with a fact that applies only
sometimes.  Issue 8 does not say which quote comes from which document; the fixtures
(tests/fixtures/dingyuan-2011, tests/fixtures/xuzhou) say so and claim no origin.

Their cases run here through the oracle and durable-rules.
"""

from decimal import Decimal

import pytest

from service.casebook import run_cases
from service.domain.scoring import assemble, prepare
from service.rulefiles.loader import load_scheme

from ..conftest import FIXTURES

DINGYUAN = FIXTURES / "dingyuan-2011"
XUZHOU = FIXTURES / "xuzhou"

#: the text issue 8 quotes, exactly
QUOTES = {
    (DINGYUAN, "1"): "(5分)注：该项设有加分项(最多加5分)…县主要领导参加一次加2.5分",
    (DINGYUAN, "2"): "(15分)注：该项设有加分项(最多加10分)…每上升一个百分点加1分",
    (XUZHOU, "1"): "没有成立扣5分，不是主要负责人担任主任委员扣2.5分",
}
TITLES = {
    DINGYUAN: "定远县 2011 食品安全工作目标考核评分细则",
    XUZHOU: "徐州 质量工作考核评分细则",
}


@pytest.mark.parametrize("folder, cases", [(DINGYUAN, 15), (XUZHOU, 7)])
def test_the_quoted_clauses_cases_pass_on_both_matchers(folder, cases, oracle, engine):
    scheme = load_scheme(folder)
    for matcher in (oracle, engine):
        results = run_cases(scheme, matcher)
        assert len(results) == cases
        assert all(r.ok for r in results), [r for r in results if not r.ok]


def test_each_quote_is_encoded_exactly_once_and_claims_no_origin():
    seen = []
    for folder, title in TITLES.items():
        scheme = load_scheme(folder)
        assert scheme.source.document == title
        assert "只编码了 issue 8 所引的" in scheme.notes and "不认定出处" in scheme.notes
        for clause in scheme.clauses.values():
            assert clause.source.text == QUOTES[(folder, clause.id)]
            assert "issue 8 未说明出自哪一份" in clause.source.document
            seen.append(clause.source.text)
    assert sorted(seen) == sorted(QUOTES.values())


def _total(scheme, oracle, facts):
    fired = oracle.match(scheme, [prepare(scheme, facts)])[0]
    return assemble(scheme, "某单位", facts, set(fired), "oracle", explain=True)


def test_the_bonuses_count_beyond_the_clauses_points_up_to_their_own_caps(oracle):
    scheme = load_scheme(DINGYUAN)
    result = _total(
        scheme,
        oracle,
        {
            "meeting_requirement_met": True,
            "leader_visits": Decimal(3),
            "rate_requirement_met": True,
            "rate_rise": Decimal(12),
        },
    )
    five, fifteen = result.clauses
    assert (five.base, five.bonus, five.points) == (Decimal(5), Decimal(5), Decimal(10))
    assert (fifteen.base, fifteen.bonus, fifteen.points) == (Decimal(15), Decimal(10), Decimal(25))
    assert result.total == Decimal(35)  # beyond the 20 base points, as 该项设有加分项 says


def test_the_chair_does_not_apply_without_a_committee(oracle):
    scheme = load_scheme(XUZHOU)
    result = _total(scheme, oracle, {"committee_established": False})
    (clause,) = result.clauses
    assert clause.points == Decimal(0) and clause.status == "scored"
    assert result.not_applicable == ["chair_is_principal"] and result.complete
