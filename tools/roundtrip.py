"""The contained engine's round trip, measured (issue 12: "the engine round trip must not
spin-wait").  Prints figures; asserts nothing.

``python -m tools.roundtrip`` measures, on the largest seed scheme through an ``EnginePool`` of
two workers (the service's default):

- one call's round trip: one unit's facts (already prepared) through ``pool.match``, one call
  after another from one thread, median and p99 µs, and the CPU time the caller and the workers
  spent per call (a spinning wait shows as CPU burnt while nothing is computed);
- 10 concurrent callers (threads, as gunicorn's threads or a job's would be) sharing the pool:
  calls per second and p50/p99 latency;
- both again while another process holds a core (a busy loop this tool starts and stops).

``--against REV`` runs the same in a fresh process for this tree and for REV (a temporary git
worktree) in turn, ``--rounds`` times each, who goes first alternating, and prints the medians of
both side by side: the before and after of a change to ``service/engine/pool.py``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCENARIOS = {
    "one_us": "单个调用往返中位数 (µs)",
    "one_p99_us": "单个调用往返 p99 (µs)",
    "one_cpu_us": "每次调用的 CPU（调用方 + 引擎进程，µs）",
    "ten_per_s": "10 个并发调用方：每秒调用数",
    "ten_p99_ms": "10 个并发调用方：p99 (ms)",
    "busy_one_us": "另一进程占满一核时：单个调用往返中位数 (µs)",
    "busy_ten_per_s": "另一进程占满一核时：10 个并发调用方每秒调用数",
    "busy_ten_p99_ms": "另一进程占满一核时：10 个并发调用方 p99 (ms)",
}


def _cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) so far of these processes."""
    total = 0.0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _one(pool, scheme, batches, calls: int) -> tuple[float, float, float]:
    times = []
    pids = [os.getpid(), *pool.pids()]
    cpu0 = _cpu(pids)
    for i in range(calls):
        t0 = time.perf_counter()
        pool.match(scheme, [batches[i % len(batches)]])
        times.append(time.perf_counter() - t0)
    cpu = _cpu(pids) - cpu0
    times.sort()
    return (
        statistics.median(times) * 1e6,
        times[int(len(times) * 0.99)] * 1e6,
        cpu / calls * 1e6,
    )


def _concurrent(pool, scheme, batches, callers: int, seconds: float) -> tuple[float, float]:
    latencies: list[float] = []
    stop = time.perf_counter() + seconds
    lock = threading.Lock()

    def caller(k: int) -> None:
        mine = []
        i = k
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            pool.match(scheme, [batches[i % len(batches)]])
            mine.append(time.perf_counter() - t0)
            i += callers
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=caller, args=(k,)) for k in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return len(latencies) / elapsed, latencies[int(len(latencies) * 0.99)] * 1000


def measure(calls: int = 2000, seconds: float = 4.0) -> dict:
    import random

    from service.config import from_environment
    from service.domain.facts import validate_facts
    from service.domain.scoring import prepare
    from service.engine.pool import EnginePool
    from service.rulefiles.loader import load_all
    from tools.bench import random_facts

    seeds = load_all(from_environment().rules_dir)
    scheme = max(seeds.values(), key=lambda s: len(s.matches))
    rng = random.Random(2026)
    batches = [
        prepare(scheme, validate_facts(scheme, random_facts(scheme, rng))) for _ in range(200)
    ]
    out: dict = {}
    with EnginePool(size=2, deadline=30) as pool:
        pool.match(scheme, [batches[0]])  # the ruleset compiled in both workers
        pool.match(scheme, [batches[0]] * 200)
        _one(pool, scheme, batches, 200)  # warm
        out["one_us"], out["one_p99_us"], out["one_cpu_us"] = _one(pool, scheme, batches, calls)
        out["ten_per_s"], out["ten_p99_ms"] = _concurrent(pool, scheme, batches, 10, seconds)
        # another process holding a core: a busy loop, started and stopped here
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(0.2)
            out["busy_one_us"] = _one(pool, scheme, batches, calls // 2)[0]
            out["busy_ten_per_s"], out["busy_ten_p99_ms"] = _concurrent(
                pool, scheme, batches, 10, seconds
            )
        finally:
            busy.kill()
            busy.wait()
    return out


def show(values: dict) -> None:
    for key, label in SCENARIOS.items():
        print(f"   {label:<44} {values[key]:>10,.1f}")


def against(rev: str, rounds: int, calls: int, seconds: float) -> None:
    from tools import revisions  # here, not at the top: the other side loads this file too

    runs: dict = {"current": [], "other": []}
    with revisions.worktree(rev, prefix="roundtrip-") as (commit, other):
        for r in range(rounds):
            order = ("current", "other") if r % 2 == 0 else ("other", "current")
            for side in order:
                root = ROOT if side == "current" else other
                runs[side].append(
                    revisions.call(root, __file__, "measure", calls, seconds, what="测量进程")
                )
    print(
        f"引擎往返：当前工作区与 {rev}（{commit[:10]}），各 {rounds} 次交替测量的中位数"
        f"（机器 {os.cpu_count()} 核，测量时负载 {os.getloadavg()[0]:.1f}）"
    )
    print(f"   {'':<44} {'当前':>10} {rev:>12}")
    for key, label in SCENARIOS.items():
        mine = statistics.median(v[key] for v in runs["current"])
        theirs = statistics.median(v[key] for v in runs["other"])
        print(f"   {label:<44} {mine:>10,.1f} {theirs:>12,.1f}")


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m tools.roundtrip", description="规则引擎进程的往返耗时与并发"
    )
    parser.add_argument("--against", metavar="REV", help="与另一个 git 版本交替对比")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=2000, help="单个调用往返的测量次数")
    parser.add_argument("--seconds", type=float, default=4.0, help="每项并发测量的秒数")
    args = parser.parse_args()
    if args.against:
        against(args.against, args.rounds, args.calls, args.seconds)
    else:
        print(f"引擎往返（机器 {os.cpu_count()} 核，负载 {os.getloadavg()[0]:.1f}）")
        show(measure(args.calls, args.seconds))


if __name__ == "__main__":
    main()
