"""Nobody waits awake (issue 12): between calls an engine worker sleeps in the kernel until the
next request comes, so a machine whose cores are busy loses no CPU to a waiting engine.

A worker used to spin 3 ms after each answer (and the caller 2 ms before each), which on two
busy cores took the very CPU the other side needed: the contained engine slowed 4x under load.
Counted in CPU time, not timed: what a worker burns while nothing is asked of it."""

import os
import time

from service.engine.pool import EnginePool

from ..conftest import START_METHOD


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_worker_between_calls_burns_no_cpu(minimal):
    with EnginePool(size=1, deadline=10, start_method=START_METHOD) as pool:
        pool.match(minimal, [[]])  # the ruleset compiled: what follows only waits and answers
        (pid,) = pool.pids()
        before = _cpu_seconds(pid)
        for _ in range(100):
            assert pool.match(minimal, []) == []  # a call that computes nothing
            time.sleep(0.005)  # the caller away a moment, as between two requests
        burnt = _cpu_seconds(pid) - before
    # answering 100 empty calls takes a few milliseconds; 3 ms of spinning after each took 0.3 s
    assert burnt < 0.05, f"the worker burnt {burnt:.3f} s of CPU answering 100 empty calls"
