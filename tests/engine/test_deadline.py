"""The pool's promises at the edges of a call: the deadline covers all of it, and a worker that
died before it took a call costs that call nothing.

From an outside audit: a stopped worker (SIGSTOP) and a request larger than the pipe buffer
blocked the caller 32 s past a 17 s deadline, with other callers queued behind it; and a worker
killed while idle cost the next call a 503 in 19 of 20 tries when that call came at once.
"""

import os
import signal
import threading
import time
from decimal import Decimal

import pytest

from service.domain.scoring import prepare, score_unit
from service.engine.durable import compile_ruleset, dumps, dumps_fact
from service.engine.pool import EnginePool, EngineUnavailable

from ..conftest import START_METHOD
from ..unit.test_scoring import FULL


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture()
def tight_engine():
    """One worker, a 1 s deadline whatever the batch's size (so the size alone cannot excuse a wait)."""
    pool = EnginePool(size=1, deadline=1.0, per_unit=0, start_method=START_METHOD)
    pids = set(pool.pids())
    yield pool, pids
    # a worker left stopped by a failing test must not outlive it, nor keep a caller blocked
    for pid in pids:
        _kill(pid)
    pool.close()


def _payload(scheme, units: int) -> list[list[str]]:
    facts = [dumps_fact(f) for f in prepare(scheme, FULL)]
    # distinct string objects: pickling writes a repeated object once
    return [[(text + " ")[:-1] for text in facts] for _ in range(units)]


def test_a_stopped_worker_and_a_request_bigger_than_the_pipe_cost_only_the_deadline(
    tight_engine, minimal, oracle
):
    pool, pids = tight_engine
    definition = dumps(compile_ruleset(minimal.matches))
    # loaded now: the big call below sends no definition
    pool.match_raw(minimal.program_name, definition, [[]])
    batch = _payload(minimal, 4000)
    size = sum(len(f) for facts in batch for f in facts)
    assert size > 1 << 20  # far more than any pipe or socket buffer holds
    (pid,) = pool.pids()
    os.kill(pid, signal.SIGSTOP)
    outcome: dict = {}

    def call(name):
        started = time.monotonic()
        try:
            outcome[name] = pool.match_raw(minimal.program_name, definition, batch)
        except EngineUnavailable as err:
            outcome[name] = err
        outcome[name + " seconds"] = time.monotonic() - started

    first = threading.Thread(target=call, args=("first",), daemon=True)
    first.start()
    time.sleep(0.1)
    queued = threading.Thread(target=call, args=("queued",), daemon=True)
    queued.start()  # waits for the one worker, behind the first caller
    first.join(timeout=1.0 + 1.5)
    blocked = first.is_alive()
    if blocked:  # free the caller before failing, so the run goes on
        _kill(pid)
        first.join(timeout=5)
    assert not blocked, "the caller was still blocked sending 1.5 s after its 1 s deadline"
    err = outcome["first"]
    assert isinstance(err, EngineUnavailable) and err.kind == "hang", err
    assert outcome["first seconds"] < 1.0 + 1.0
    # the stopped worker was killed and replaced: the caller queued behind it is served
    queued.join(timeout=30)
    assert not queued.is_alive()
    assert outcome["queued"] == oracle.match(minimal, [prepare(minimal, FULL)]) * 4000
    assert pid not in pool.pids()
    assert score_unit(minimal, "甲", FULL, pool, "engine").total == Decimal(20)


def test_a_worker_killed_while_idle_costs_no_call_even_at_once(fresh_engine, minimal):
    """SIGKILL the worker and call with no gap at all, 20 times: 20 answers, no error."""
    answers, errors = 0, []
    score_unit(minimal, "甲", FULL, fresh_engine, "engine")  # the ruleset compiled once
    for _ in range(20):
        (pid,) = fresh_engine.pids()
        os.kill(pid, signal.SIGKILL)
        try:
            result = score_unit(minimal, "甲", FULL, fresh_engine, "engine")
        except EngineUnavailable as err:
            errors.append(err)
            continue
        assert result.total == Decimal(20)
        answers += 1
    assert (answers, [e.kind for e in errors]) == (20, [])
    assert fresh_engine.spawned == 21
    # every death is still on record, as a death found before the call was taken
    assert len(fresh_engine.incidents) == 20
    assert all(i["kind"] == "crash" and "-9" in i["detail"] for i in fresh_engine.incidents)


def test_a_worker_that_dies_during_a_call_costs_that_call_only(fresh_engine, minimal):
    """A death after the worker took the call is not retried: the input may be what killed it."""
    from .test_isolation import HANG_RULESET, computing

    score_unit(minimal, "甲", FULL, fresh_engine, "engine")  # up: it takes the next call at once
    (pid,) = fresh_engine.pids()
    caught = []

    def call():
        try:
            fresh_engine.match_raw("hang", HANG_RULESET, [['{"k":"v1"}']])
        except EngineUnavailable as err:
            caught.append(err)

    t = threading.Thread(target=call)
    t.start()
    computing(pid)  # it took the call and is stuck in the engine
    os.kill(pid, signal.SIGKILL)
    t.join(timeout=30)
    assert [e.kind for e in caught] == ["crash"]
    assert fresh_engine.spawned == 2  # replaced once, not retried on a second fresh worker
    assert score_unit(minimal, "甲", FULL, fresh_engine, "engine").total == Decimal(20)


def test_an_answer_cut_off_half_way_costs_only_the_deadline():
    """The receiving end: a worker stopped half-way through writing its answer (header sent,
    body not) must not keep the caller past the deadline either.  Played here by a real socket
    whose far end announces a megabyte and sends ten bytes of it."""
    import socket

    from service.engine.pool import _HEADER, _Worker

    ours, theirs = socket.socketpair()
    worker = _Worker(process=None, sock=ours, accepted=None)
    theirs.sendall(_HEADER.pack(1 << 20) + b"0123456789")
    try:
        # the receive, then a request the far end never reads (a send that would block)
        for attempt in (
            lambda until: worker.receive(until),
            lambda until: worker.send(("match", "x" * (8 << 20)), until),
        ):
            outcome: list = []

            def call(attempt=attempt, outcome=outcome):
                try:
                    attempt(time.monotonic() + 0.5)
                except TimeoutError as err:
                    outcome.append(err)

            started = time.monotonic()
            t = threading.Thread(target=call, daemon=True)
            t.start()
            t.join(timeout=5)  # a blocking read or write would never return: fail, not hang
            assert not t.is_alive() and outcome, "blocked past its deadline"
            assert time.monotonic() - started < 0.5 + 0.5
    finally:
        ours.close()  # also frees a thread left blocked by a regression
        theirs.close()
