"""Scoring while the engine works (``scoring._while_matching``, ``EnginePool.start``).

The contained engine answers a few hundred microseconds after it is asked, most of it another
process's time.  ``score_units`` scores each unit meanwhile from the conditions Python finds to
hold, then compares with the engine's answer: the engine's answer is what every score is built
from, a unit whose guess differed is scored again from it, and the difference is recorded.
These tests hold the promises that make that safe: the engine's answer wins, a failure of
either side gives no score, an answer never read is never left for the next call, and an answer
given in time is taken even when its caller comes for it after the deadline.
"""

from __future__ import annotations

import os
import random
import signal
import time
from decimal import Decimal

import pytest

from service.domain import scoring
from service.domain.scoring import match_here, prepare, score_units
from service.domain.trace import to_data
from service.engine.pool import EnginePool, EngineUnavailable
from tools.bench import random_facts  # the benchmark's own random units

from ..conftest import START_METHOD
from ..unit.test_scoring import FULL


class _Answer:
    """A matching whose answer is given: the engine's side of a disagreement, which the real
    engine (validated facts, mutually exclusive tiers) has never shown."""

    def __init__(self, fired: list[set], fail: bool = False):
        self.fired, self.fail = fired, fail
        self.read = self.discarded = False
        self.disagreements: list = []

    def result(self) -> list[set]:
        self.read = True
        if self.fail:
            raise RuntimeError("引擎失败")
        return self.fired

    def discard(self) -> None:
        self.discarded = True

    def disagreed(self, position: int, guessed: set, fired: set) -> None:
        self.disagreements.append((position, guessed, fired))


class _Remote:
    name = "remote"

    def __init__(self, change=None, fail: bool = False):
        self.change, self.fail, self.matchings = change, fail, []

    def match(self, scheme, batch):  # pragma: no cover - ``start`` is what scoring calls
        raise AssertionError("a remote matcher is started, not called")

    def start(self, scheme, batch):
        fired = match_here(scheme, batch)
        if self.change:
            fired = [self.change(i, set(f)) for i, f in enumerate(fired)]
        self.matchings.append(_Answer(fired, self.fail))
        return self.matchings[-1]


class _Given:
    """A plain matcher answering the given sets: the score each unit must get."""

    name = "remote"

    def __init__(self, fired):
        self.fired = fired

    def match(self, scheme, batch):
        return self.fired


def _units(n: int) -> dict:
    return {f"单位{i}": dict(FULL) for i in range(n)}


def test_the_engines_answer_is_what_a_unit_is_scored_from(minimal):
    units = _units(3)
    # the engine sees unit 1's band condition otherwise than Python: one rule less fired
    dropped = sorted(match_here(minimal, [prepare(minimal, FULL)])[0])[0]

    def change(i, fired):
        return fired - {dropped} if i == 1 else fired

    remote = _Remote(change)
    results = score_units(minimal, units, remote, "remote", explain=True)
    (matching,) = remote.matchings
    assert matching.read and not matching.discarded
    expected = score_units(minimal, units, _Given(matching.fired), "remote", explain=True)
    assert [to_data(r) for r in results] == [to_data(r) for r in expected]
    # unit 1's trace is the engine's: the rule it did not fire is not fired there
    assert to_data(results[1])["clauses"] != to_data(results[0])["clauses"]
    assert [(p, g - f) for p, g, f in matching.disagreements] == [(1, {dropped})]


def test_a_guess_that_was_the_answer_is_scored_once(minimal, monkeypatch):
    calls = []
    real = scoring.assemble
    monkeypatch.setattr(scoring, "assemble", lambda *a, **k: calls.append(1) or real(*a, **k))
    remote = _Remote()
    score_units(minimal, _units(4), remote, "remote")
    assert len(calls) == 4 and remote.matchings[0].disagreements == []


def test_an_engine_failure_gives_no_score(minimal):
    with pytest.raises(RuntimeError, match="引擎失败"):
        score_units(minimal, _units(2), _Remote(fail=True), "remote")


def test_a_failure_while_guessing_drops_the_engines_answer(minimal, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("计分出错")

    monkeypatch.setattr(scoring, "assemble", broken)
    remote = _Remote()
    with pytest.raises(ValueError, match="计分出错"):
        score_units(minimal, _units(2), remote, "remote")
    (matching,) = remote.matchings
    assert matching.discarded and not matching.read


# --- the contained engine ---------------------------------------------------------------


def test_the_pool_scores_while_it_matches_exactly_as_the_oracle(engine, shipped, oracle):
    rng = random.Random(7)
    for scheme in shipped.values():
        units = {f"u{i}": random_facts(scheme, rng) for i in range(30)}
        ours = score_units(scheme, units, engine, "engine", explain=True)
        theirs = score_units(scheme, units, oracle, "engine", explain=True)
        assert [to_data(r) for r in ours] == [to_data(r) for r in theirs], scheme.id
    assert [i for i in engine.incidents if i["kind"] == "disagreement"] == []


def test_an_answer_given_in_time_is_taken_after_the_deadline(minimal, oracle):
    pool = EnginePool(size=1, deadline=0.5, per_unit=0, start_method=START_METHOD)
    try:
        batch = [prepare(minimal, FULL)]
        pool.match(minimal, batch)  # the ruleset compiled: the call below is quick
        matching = pool.start(minimal, batch)
        time.sleep(0.8)  # the caller busy past the deadline; the worker answered long ago
        assert matching.result() == oracle.match(minimal, batch)
        assert pool.incidents == [] and pool.spawned == 1
    finally:
        pool.close()


def test_an_answer_never_read_is_not_left_for_the_next_call(fresh_engine, minimal, oracle):
    full = [prepare(minimal, FULL)]
    other = [prepare(minimal, dict(FULL, actual=50))]
    assert oracle.match(minimal, full) != oracle.match(minimal, other)
    fresh_engine.start(minimal, full).discard()
    assert fresh_engine.match(minimal, other) == oracle.match(minimal, other)
    assert fresh_engine.incidents == []


def test_a_batch_shares_out_only_over_idle_workers(engine, minimal, oracle):
    """Holding one of the two workers, a large batch goes to the other and the rest waits for
    it: a caller never holds one worker while it waits for another."""
    batch = [prepare(minimal, dict(FULL, actual=i % 100)) for i in range(300)]
    held = engine.start(minimal, batch[:1])
    try:
        matching = engine.start(minimal, batch)
        assert [type(p).__name__ for p in matching.parts] == ["_Call", "list"]
        assert matching.result() == oracle.match(minimal, batch)
    finally:
        held.result()
    both = engine.start(minimal, batch)
    assert [type(p).__name__ for p in both.parts] == ["_Call", "_Call"]
    assert both.result() == oracle.match(minimal, batch)


def test_a_disagreement_is_an_incident(fresh_engine, minimal):
    matching = fresh_engine.start(minimal, [prepare(minimal, FULL)])
    matching.result()
    matching.disagreed(0, {"a", "b"}, {"b", "c"})
    (incident,) = fresh_engine.incidents
    assert incident["kind"] == "disagreement"
    assert "only the engine: ['c']; only Python: ['a']" in incident["detail"]


def test_an_engine_failure_while_scoring_ahead_is_the_calls_failure(fresh_engine, minimal):
    score_units(minimal, _units(1), fresh_engine, "engine")
    (pid,) = fresh_engine.pids()
    matching = fresh_engine.start(minimal, [prepare(minimal, FULL)])
    os.kill(pid, signal.SIGKILL)
    try:
        matching.result()  # answered before it died, or lost with it: never a wrong answer
    except EngineUnavailable as err:
        assert err.kind == "crash"
    assert score_units(minimal, _units(1), fresh_engine, "engine")[0].total == Decimal(20)
