"""Benchmark: load-and-compile, one unit, and 1,000 units, through the contained
durable-rules engine and through the plain-Python oracle, side by side.

Run with ``scoring bench``.  Prints figures; asserts nothing (targets are
compared in the printout, not enforced as timed tests).
"""

from __future__ import annotations

import gc
import os
import random
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import psutil

from service.config import from_environment
from service.domain.scoring import score_units
from service.engine.oracle import OracleMatcher
from service.engine.pool import EnginePool
from service.rulefiles.loader import load_all, load_scheme

MIB = 1024 * 1024


def synthetic_scheme(folder: Path, clauses: int = 240) -> Path:
    """Write a scheme of ``clauses`` clauses mixing bands, steps, per-unit and checklist rules."""
    (folder / "clauses").mkdir(parents=True, exist_ok=True)
    points_each = 5
    (folder / "scheme.yaml").write_text(
        f"""id: synthetic-{clauses}
title: 合成细则（{clauses}个条款）
year: "2026"
issuer: 基准测试
source: {{document: synthetic, text: 基准测试用的合成细则}}
total: {clauses * points_each}
categories:
  - {{id: S, title: 合成, points: {clauses * points_each}}}
grading:
  method: thresholds
  tiers: [{{grade: 优秀, min: {clauses * 4}}}, {{grade: 合格}}]
""",
        encoding="utf-8",
    )
    for i in range(clauses):
        kind = i % 4
        if kind == 0:
            facts = f"""  - {{name: target_{i}, type: percent, label: 目标值{i}}}
  - {{name: actual_{i}, type: percent, label: 实际值{i}}}"""
            rules = f"""  - id: r1
    kind: bands
    measure: target_{i} - actual_{i}
    bands:
      - {{range: "(-inf, 0]", points: 0}}
      - {{range: "(0, 1]", points: -1}}
      - {{range: "(1, 3]", points: -2}}
      - {{range: "(3, 5]", points: -3}}
      - {{range: "(5, inf)", points: -5}}"""
            start, test = (
                "full",
                f"{{name: 达标, facts: {{target_{i}: 95, actual_{i}: 96}}, points: 5}}",
            )
        elif kind == 1:
            facts = f"  - {{name: coverage_{i}, type: percent, label: 覆盖率{i}}}"
            rules = f"""  - {{id: r1, kind: fixed, when: coverage_{i} >= 0, points: 5}}
  - {{id: r2, kind: steps, measure: 100 - coverage_{i}, step: 5, each: -1}}"""
            start, test = "zero", f"{{name: 少5%, facts: {{coverage_{i}: 95}}, points: 4}}"
        elif kind == 2:
            facts = f"""  - {{name: done_{i}_a, type: boolean, label: 事项{i}甲}}
  - {{name: done_{i}_b, type: boolean, label: 事项{i}乙}}
  - {{name: meetings_{i}, type: integer, label: 会议{i}, min: 0, max: 100}}"""
            rules = f"""  - {{id: r1, kind: fixed, when: done_{i}_a, points: 2}}
  - {{id: r2, kind: fixed, when: done_{i}_b and meetings_{i} >= 2, points: 3}}"""
            start, test = (
                "zero",
                f"{{name: 都做到, facts: {{done_{i}_a: true, done_{i}_b: true, meetings_{i}: 2}}, points: 5}}",
            )
        else:
            facts = f"  - {{name: awards_{i}, type: integer, label: 获奖{i}, min: 0, max: 100}}"
            rules = f"  - {{id: r1, kind: per_unit, count: awards_{i}, each: 1, cap: 5}}"
            start, test = "zero", f"{{name: 3项, facts: {{awards_{i}: 3}}, points: 3}}"
        (folder / "clauses" / f"{i:03d}.yaml").write_text(
            f"""id: "{i + 1}"
title: 合成条款{i + 1}
category: S
points: {points_each}
start: {start}
source: {{document: synthetic, text: 合成条款{i + 1}}}
facts:
{facts}
rules:
{rules}
tests:
  - {test}
""",
            encoding="utf-8",
        )
    return folder


def random_facts(scheme, rng: random.Random) -> dict:
    facts = {}
    for name, spec in scheme.facts.items():
        if spec.type == "boolean":
            facts[name] = rng.random() < 0.8
        elif spec.type in ("text", "choice"):
            facts[name] = spec.choices[0] if spec.choices else "评审理由"
        else:
            lo = spec.minimum if spec.minimum is not None else Decimal(0)
            hi = spec.maximum if spec.maximum is not None else Decimal(100)
            hi = min(hi, lo + 100)
            value = lo + (hi - lo) * Decimal(rng.randint(0, 1000)) / 1000
            facts[name] = (
                value.to_integral_value()
                if spec.type == "integer"
                else value.quantize(Decimal("0.1"))
            )
    return facts


def _one_unit_times(scheme, matcher, units, runs):
    times = []
    for i in range(runs):
        unit = units[i % len(units)]
        t0 = time.perf_counter()
        score_units(scheme, {"u": unit}, matcher, "bench")
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


def _many_units(scheme, matcher, units):
    t0 = time.perf_counter()
    results = score_units(scheme, {f"u{i}": u for i, u in enumerate(units)}, matcher, "bench")
    elapsed = time.perf_counter() - t0
    return elapsed, results


def _measure(label, scheme, load_seconds, pool, oracle, n_units, runs):
    rng = random.Random(2026)
    units = [random_facts(scheme, rng) for _ in range(n_units)]
    print(
        f"\n== {label}: {len(scheme.clauses)} 个条款，{len(scheme.matches)} 条匹配规则，{len(scheme.facts)} 个事实"
    )
    print(f"   加载并编译（YAML → 模型 → 条件）：{load_seconds * 1000:.1f} ms")
    t0 = time.perf_counter()
    pool.match(scheme, [[]])  # compile the durable-rules ruleset in the worker
    print(
        f"   durable-rules 规则集编译（首次调用，含进程通信）：{(time.perf_counter() - t0) * 1000:.1f} ms"
    )
    rows = []
    totals = {}
    for name, matcher in (("durable-rules（进程隔离）", pool), ("纯 Python 对照", oracle)):
        _one_unit_times(scheme, matcher, units, 20)  # warm up
        median, p99 = _one_unit_times(scheme, matcher, units, runs)
        elapsed, results = _many_units(scheme, matcher, units)
        totals[name] = [r.total for r in results]
        rows.append((name, median, p99, elapsed, n_units / elapsed))
    print(
        f"   {'匹配器':<22}{'单个单位中位数':>12}{'p99':>10}{f'{n_units}个单位':>12}{'单位/秒':>10}"
    )
    for name, median, p99, elapsed, rate in rows:
        print(f"   {name:<20}{median:>10.2f} ms{p99:>8.2f} ms{elapsed:>10.2f} s{rate:>10.0f}")
    same = totals[rows[0][0]] == totals[rows[1][0]]
    print(f"   两种匹配器的{n_units}个总分{'完全一致' if same else '不一致！'}")
    return rows


def run(units: int = 1000, runs: int = 1000) -> None:
    me = psutil.Process(os.getpid())
    settings = from_environment()
    print(f"机器：{os.cpu_count()} 核；Python 进程 RSS {me.memory_info().rss / MIB:.1f} MiB")
    t0 = time.perf_counter()
    seeds = load_all(settings.rules_dir)
    load_all_seconds = time.perf_counter() - t0
    print(
        f"全部 {len(seeds)} 套种子细则加载并编译：{load_all_seconds * 1000:.0f} ms（目标 < 1000 ms）"
    )
    largest = max(seeds.values(), key=lambda s: len(s.matches))
    t0 = time.perf_counter()
    largest = load_scheme(largest.path, settings.rules_dir)
    largest_load = time.perf_counter() - t0
    oracle = OracleMatcher()
    with EnginePool(size=2, deadline=30) as pool, tempfile.TemporaryDirectory() as tmp:
        seed_rows = _measure(
            f"最大的种子细则 {largest.id}", largest, largest_load, pool, oracle, units, runs
        )
        folder = synthetic_scheme(Path(tmp) / "synthetic")
        t0 = time.perf_counter()
        synthetic = load_scheme(folder, Path(tmp))
        synthetic_load = time.perf_counter() - t0
        _measure("合成细则", synthetic, synthetic_load, pool, oracle, units, runs)
        pool.retire(synthetic.program_name)
        # memory: the same 1,000 units scored again and again, each batch's results let go
        batch = [random_facts(largest, random.Random(i)) for i in range(units)]
        caller, workers = [], []
        for _ in range(6):
            elapsed, results = _many_units(largest, pool, batch)
            del results
            gc.collect()
            caller.append(me.memory_info().rss / MIB)
            workers.append(sum(s["rss"] for s in pool.stats()) / MIB)
    name, median, p99, elapsed, rate = seed_rows[0]
    print(f"\n内存（{largest.id} 的{units}个单位连续评分6轮，每轮之后）：")
    print("   主进程 RSS " + " → ".join(f"{x:.1f}" for x in caller) + " MiB")
    print("   引擎进程合计 RSS " + " → ".join(f"{x:.1f}" for x in workers) + " MiB")
    print(
        f"对照目标：种子细则全部加载 {load_all_seconds * 1000:.0f} ms（< 1000）；"
        f"最大种子细则单个单位中位数 {median:.2f} ms（< 3）；{units} 个单位 {elapsed:.2f} s（< 2.5）"
    )


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m tools.bench",
        description="基准测试：加载、编译与评分的耗时（durable-rules 与纯 Python 对照）",
    )
    parser.add_argument("--units", type=int, default=1000, help="批量评分的单位数")
    parser.add_argument("--runs", type=int, default=1000, help="单个单位评分的重复次数")
    args = parser.parse_args()
    run(units=args.units, runs=args.runs)


if __name__ == "__main__":
    main()
