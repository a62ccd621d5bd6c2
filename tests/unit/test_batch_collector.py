"""A large batch's results are not walked by the cyclic garbage collector on the way out.

``score_units`` keeps the collector off while it builds a batch (its results hold no cycles).
Left at that, every object of the batch sat in the youngest generation when it was switched
back on: the next collections walked all of them, some 400 a unit, then again when they were
promoted (0.17-0.37 s of 1,000 units scored and ranked, measured: a third of the time).  A
large batch's objects are now moved to the oldest generation in one step instead, where only a
full collection visits them; garbage with cycles is still found there."""

import gc
import random

from tools.bench import random_facts


def _largest(shipped):
    return max(shipped.values(), key=lambda s: len(s.matches))


def _young_ids() -> set:
    return {id(o) for generation in (0, 1) for o in gc.get_objects(generation)}


def test_a_large_batch_leaves_nothing_for_the_young_collections(shipped, oracle):
    from service.domain.scoring import SETTLE_AT, score_units

    scheme = _largest(shipped)
    rng = random.Random(7)
    units = {f"u{i}": random_facts(scheme, rng) for i in range(SETTLE_AT)}
    results = score_units(scheme, units, oracle, "bench")
    young = _young_ids()
    clauses = [c for r in results for c in r.clauses]
    assert len(clauses) == SETTLE_AT * len(scheme.clauses)
    assert not [c for c in clauses if id(c) in young]
    assert not [r for r in results if id(r) in young]
    assert gc.isenabled()


def test_garbage_with_cycles_made_in_a_batch_is_still_collected(shipped, oracle):
    from service.domain.scoring import SETTLE_AT, score_units

    class Node:
        pass

    scheme = _largest(shipped)
    rng = random.Random(8)
    units = {f"u{i}": random_facts(scheme, rng) for i in range(SETTLE_AT)}
    a, b = Node(), Node()
    a.other, b.other = b, a
    import weakref

    gone = weakref.ref(a)
    del a, b
    gc.disable()  # the cycle is garbage before the batch, uncollected until after it
    try:
        score_units(scheme, units, oracle, "bench")
    finally:
        gc.enable()
    gc.collect()
    assert gone() is None


def test_a_frozen_generation_is_left_frozen(shipped, oracle):
    """A server that froze its startup objects (``gc.freeze`` after the fork) keeps them frozen."""
    from service.domain.scoring import SETTLE_AT, score_units

    scheme = _largest(shipped)
    rng = random.Random(9)
    units = {f"u{i}": random_facts(scheme, rng) for i in range(SETTLE_AT)}
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        score_units(scheme, units, oracle, "bench")
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


def test_a_batch_is_freed_when_its_results_are_let_go_without_the_collector(shipped, oracle):
    """Nothing of a result is kept by a reference cycle: once a batch moves to the oldest
    generation the collector rarely visits, a cycle there would keep every unit's clauses alive
    (the recursive walk of the categories was one: a closure refers to itself through its cell,
    and the cell held the unit's clause results)."""
    from service.domain.scoring import SETTLE_AT, score_units

    scheme = _largest(shipped)
    rng = random.Random(10)
    units = {f"u{i}": random_facts(scheme, rng) for i in range(SETTLE_AT)}
    score_units(scheme, units, oracle, "bench")  # warm: the scheme's plan, the sentence caches
    gc.collect()
    gc.disable()
    try:
        before = len(gc.get_objects())
        results = score_units(scheme, units, oracle, "bench")
        made = len(gc.get_objects()) - before
        del results
        left = len(gc.get_objects()) - before
    finally:
        gc.enable()
    assert made > 300 * SETTLE_AT  # what is let go below: some 400 objects a unit
    assert left < 10
