"""A bonus attached to a clause (issue 8, mechanism 1): "(5分)注：该项设有加分项(最多加5分)…
县主要领导参加一次加2.5分".  The bonus rules count beyond the clause's points, up to its own cap.

The fixture scheme tests/fixtures/clause_bonus carries the boundary cases; they run through the
oracle and through durable-rules here.
"""

from decimal import Decimal

from service.casebook import run_cases
from service.domain.scoring import assemble, prepare, score_clause
from service.rulefiles.loader import load_scheme

from ..conftest import FIXTURES

CLAUSE_BONUS = FIXTURES / "clause_bonus"


def _score(scheme, oracle, cid, facts):
    fired = oracle.match(scheme, [prepare(scheme, facts)])[0]
    return score_clause(scheme, scheme.clauses[cid], set(fired), facts, explain=True)


def test_the_fixture_cases_pass_on_both_matchers(oracle, engine):
    scheme = load_scheme(CLAUSE_BONUS)
    assert sum(len(c.tests) for c in scheme.clauses.values()) == 12
    for matcher in (oracle, engine):
        results = run_cases(scheme, matcher)
        assert results and all(r.ok for r in results), [r for r in results if not r.ok]


def test_the_bonus_is_beyond_the_clause_points_and_capped_by_its_own_cap(oracle):
    scheme = load_scheme(CLAUSE_BONUS)
    one = _score(scheme, oracle, "1", {"meeting_held": True, "leader_visits": Decimal(1)})
    assert (one.base, one.bonus, one.points) == (Decimal(5), Decimal("2.5"), Decimal("7.5"))
    three = _score(scheme, oracle, "1", {"meeting_held": True, "leader_visits": Decimal(3)})
    assert (three.base, three.bonus_raw, three.bonus, three.points) == (
        Decimal(5),
        Decimal("7.5"),
        Decimal(5),
        Decimal(10),
    )
    assert three.explanation == (
        "条件“meeting_held”成立（召开质量工作会议=是），得5分。基本分5分（满分5分）；"
        "加分：县主要领导参加次数为3次，每次得2.5分，计7.5分，加分合计7.5分，超过加分上限5分，"
        "加5分（最多加5分）。本项共得10分"
    )


def test_the_clause_bonus_counts_in_the_scheme_total(oracle):
    scheme = load_scheme(CLAUSE_BONUS)
    facts = {
        "meeting_held": True,
        "leader_visits": Decimal(3),
        "quality_rate": Decimal(96),
        "rate_rise": Decimal(12),
    }
    fired = oracle.match(scheme, [prepare(scheme, facts)])[0]
    result = assemble(scheme, "某县", facts, set(fired), "oracle")
    assert result.total == Decimal(35)  # 5+5 and 15+10: beyond the scheme's 20 base points
