"""Concurrent callers never see each other's facts."""

import random
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from service.domain.scoring import prepare, score_unit

from ..unit.test_scoring import FULL


def test_concurrent_callers_get_their_own_scores(engine, oracle, minimal):
    rng = random.Random(7)
    units = []
    for i in range(400):
        facts = dict(
            FULL,
            actual=Decimal(rng.randint(700, 1000)) / 10,
            coverage=rng.randint(0, 100),
            accidents=rng.randint(0, 5),
            awards=rng.randint(0, 4),
            major_incident=rng.random() < 0.1,
        )
        units.append((f"单位{i}", facts))

    def work(unit):
        name, facts = unit
        return name, score_unit(minimal, name, facts, engine, "engine")

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, units))
    for (name, facts), (got_name, result) in zip(units, results):
        expected = score_unit(minimal, name, facts, oracle, "oracle")
        assert got_name == result.unit == name
        assert result.total == expected.total
        assert result.facts == expected.facts
        assert [c.points for c in result.clauses] == [c.points for c in expected.clauses]


def test_a_batch_keeps_units_apart(engine, oracle, minimal):
    batch = [
        prepare(minimal, {"target": Decimal(95), "actual": Decimal(a)}) for a in (95, 94, 92, 80)
    ]
    assert engine.match(minimal, batch) == oracle.match(minimal, batch)
