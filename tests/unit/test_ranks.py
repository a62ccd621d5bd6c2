"""competition_ranks at scale: 1 + the number of strictly higher totals, ties sharing a rank.

Issue 12: ranking 10,000 units took 46 s because every unit was compared with every
other.  These tests check the ranks against the plain definition on 100,000 totals
and count the comparisons (not the time: speed targets are never timed tests).
"""

import math
import random
from decimal import Decimal

from service.domain.grading import competition_ranks
from service.domain.relative import places


def _totals(n: int, seed: int) -> list[Decimal]:
    # few distinct values (one decimal place in 0..100) so that ties are everywhere,
    # with equal values written differently (80 and 80.0) among them
    rng = random.Random(seed)
    totals = [Decimal(rng.randint(0, 1000)) / 10 for _ in range(n)]
    totals[::97] = [Decimal("80.0")] * len(totals[::97])
    totals[1::97] = [Decimal(80)] * len(totals[1::97])
    return totals


def test_100000_totals_match_the_definition_on_a_sample():
    totals = _totals(100_000, 2026)
    ranks = competition_ranks(totals)
    assert len(ranks) == len(totals)
    rng = random.Random(12)
    sample = rng.sample(range(len(totals)), 100) + [0, 1, totals.index(max(totals))]
    for i in sample:
        assert ranks[i] == 1 + sum(1 for other in totals if other > totals[i]), i
    assert min(ranks) == 1


def test_100000_totals_ties_share_a_rank_and_the_next_skips():
    totals = _totals(100_000, 7)
    ranks = competition_ranks(totals)
    by_total: dict[Decimal, set[int]] = {}
    for total, rank in zip(totals, ranks):
        by_total.setdefault(total, set()).add(rank)
    # equal totals (80 and 80.0 included) share exactly one rank
    assert all(len(r) == 1 for r in by_total.values())
    # 1, 2, 2, 4: the rank after a tie of k units at rank r is r + k
    ordered = sorted(by_total, reverse=True)
    counts = {t: sum(1 for x in totals if x == t) for t in ordered[:50]}
    expected = 1
    for t in ordered[:50]:
        assert by_total[t] == {expected}, t
        expected += counts[t]


def test_small_ties():
    assert competition_ranks([Decimal(90), Decimal(95), Decimal(90), Decimal(80)]) == [2, 1, 2, 4]
    assert competition_ranks([]) == []
    assert competition_ranks([Decimal(5)] * 4) == [1, 1, 1, 1]


class _Counted(Decimal):
    """A total that counts how often it is compared."""

    calls = 0

    def __gt__(self, other):
        _Counted.calls += 1
        return Decimal.__gt__(self, other)

    def __lt__(self, other):
        _Counted.calls += 1
        return Decimal.__lt__(self, other)

    def __ge__(self, other):
        _Counted.calls += 1
        return Decimal.__ge__(self, other)

    def __le__(self, other):
        _Counted.calls += 1
        return Decimal.__le__(self, other)

    def __eq__(self, other):
        _Counted.calls += 1
        return Decimal.__eq__(self, other)

    __hash__ = Decimal.__hash__


def test_comparisons_grow_as_n_log_n_not_n_squared():
    n = 2_000
    totals = [_Counted(t) for t in _totals(n, 3)]
    _Counted.calls = 0
    competition_ranks(totals)
    # every unit against every other would be n² = 4,000,000 comparisons
    assert _Counted.calls <= 4 * n * math.log2(n), _Counted.calls


def test_100000_totals_take_n_log_n_comparisons():
    """The count on 100,000 totals themselves: n² would be 10,000,000,000."""
    n = 100_000
    totals = [_Counted(t) for t in _totals(n, 11)]
    _Counted.calls = 0
    ranks = competition_ranks(totals)
    assert _Counted.calls <= 2 * n * math.log2(n), _Counted.calls
    assert len(ranks) == n and min(ranks) == 1


def test_places_by_a_relative_measure_take_n_log_n_comparisons():
    """The parts scored by place among the units (``relative.places``) rank as totals do."""
    n = 100_000
    values = [_Counted(t) for t in _totals(n, 13)]
    for better in ("higher", "lower"):
        _Counted.calls = 0
        got = places(values, better)
        assert _Counted.calls <= 2 * n * math.log2(n), (better, _Counted.calls)
        ordered = sorted(set(values), reverse=better == "higher")
        first = ordered[0]
        assert all(p == 1 for v, p in zip(values, got) if v == first)
        assert max(got) <= n


def test_ranking_100000_units_grades_each_once():
    """``rank_units`` over 100,000 scored units (what ``scoring score`` keeps of each): every
    unit ranked and graded, in rank order, the decision taken once a unit."""
    from types import SimpleNamespace

    from service.domain import grading
    from service.domain.model import Grading, Tier

    scheme = SimpleNamespace(
        relative=None,
        grading=Grading(method="rank", tiers=(Tier("A", top=10), Tier("B"))),
    )
    totals = _totals(100_000, 17)
    units = [
        SimpleNamespace(unit=f"u{i:06d}", total=t, facts={}, grade_vetoes=[])
        for i, t in enumerate(totals)
    ]
    calls = [0]
    decide = grading.decision

    def counted(*args, **kwargs):
        calls[0] += 1
        return decide(*args, **kwargs)

    grading.decision = counted
    try:
        entries = grading.rank_units(scheme, units)
    finally:
        grading.decision = decide
    assert calls[0] == len(units) == len(entries)
    assert [e.rank for e in entries] == sorted(e.rank for e in entries)
    assert {e.grade for e in entries if e.rank <= 10} == {"A"}
