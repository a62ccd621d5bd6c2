"""Resident memory stays flat over 100,000 evaluations through the contained engine."""

import os
from decimal import Decimal

import psutil

from service.domain.scoring import prepare
from service.engine.durable import dumps

from ..unit.test_scoring import FULL

EVALUATIONS = 100_000
BATCH = 1_000
MIB = 1024 * 1024


def test_memory_is_flat_over_100k_evaluations(fresh_engine, minimal):
    variants = []
    for actual in (96, 94, 92, 80):
        facts = prepare(minimal, dict(FULL, actual=Decimal(actual), accidents=actual % 3))
        variants.append([dumps(f) for f in facts])
    batch = [variants[i % len(variants)] for i in range(BATCH)]
    definition = dumps(
        __import__("service.engine.durable", fromlist=["compile_ruleset"]).compile_ruleset(
            minimal.matches
        )
    )
    me = psutil.Process(os.getpid())
    samples = []
    for i in range(EVALUATIONS // BATCH):
        fired = fresh_engine.match_raw(minimal.program_name, definition, batch)
        assert len(fired) == BATCH and all(f for f in fired)
        if i in (9, EVALUATIONS // BATCH - 1):
            samples.append((fresh_engine.stats()[0]["rss"], me.memory_info().rss))
    (worker_warm, caller_warm), (worker_end, caller_end) = samples
    print(
        f"\nworker RSS {worker_warm / MIB:.1f} -> {worker_end / MIB:.1f} MiB; "
        f"caller RSS {caller_warm / MIB:.1f} -> {caller_end / MIB:.1f} MiB over {EVALUATIONS} evaluations"
    )
    assert worker_end - worker_warm < 4 * MIB
    assert caller_end - caller_warm < 8 * MIB
