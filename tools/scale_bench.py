"""Figures at scale (issue 12): 10,000 and 1,000 units ranked from the CLI, 1,000 units scored
and ranked in one process, rules reloads through the service layer, the web worker's and the
kept rule-loading process's memory over reloads, the six seed schemes loaded cold.  Each figure is printed with
its target and whether it is met; nothing is asserted.

    python -m tools.scale_bench [--units 10000] [--rounds 5] [--no-cli | --only-cli]

``tools.bench`` prints the same figures at its end (``bench.scale_figures``).
"""

from __future__ import annotations

import logging
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from service.config import from_environment

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024


@dataclass
class Figure:
    label: str
    value: float
    unit: str
    target: float  # the figure must stay below it

    @property
    def met(self) -> bool:
        return self.value < self.target

    def line(self) -> str:
        shown = f"{self.value:.0f}" if self.value >= 100 else f"{self.value:.2f}"
        target = f"{self.target:g}"
        return f"   {self.label}：{shown} {self.unit}（目标 < {target} {self.unit}）{'达到' if self.met else '未达到'}"


def _as_installed() -> dict:
    """The environment of a command run as a user's machine runs it: Python keeping the compiled
    bytecode of the product's modules (``__pycache__``, ignored by git).  Some machines, this
    project's CI and sandbox among them, set PYTHONDONTWRITEBYTECODE, and then every start
    compiles every module of the product again: some 60 ms of each command's second."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_cli(*args: str, memory: bool = True) -> tuple[float, float, float, int]:
    """``python -m service.cli`` with ``args``, its output thrown away: (seconds, CPU seconds of
    the command and the processes it waited for, the peak of the resident memory of the command
    and all its processes together in MiB, exit code).  The CPU time says what the wall time
    would be on a quiet machine, when others share its cores.  The memory (proportional set
    size, shared pages counted once) is sampled every 100 ms by a thread while this one waits
    for the command, so the time is the command's to the millisecond; a child's own
    ``ru_maxrss`` would count the memory of this process it was forked from.  Reading the
    processes' memory costs CPU on the cores the command runs on, so ``memory=False`` (peak 0)
    for the runs that are timed."""
    import threading

    import psutil

    peak = [0]
    ended = threading.Event()
    with open(os.devnull, "wb") as sink:
        started = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-m", "service.cli", *args],
            cwd=ROOT,
            stdout=sink,
            stderr=sink,
            env=_as_installed(),
        )

        def sample() -> None:
            me = psutil.Process(child.pid)
            while not ended.wait(0.1):
                try:
                    tree = [me, *me.children(recursive=True)]
                    # proportional set size: pages the forked processes share are counted once
                    peak[0] = max(peak[0], sum(p.memory_full_info().pss for p in tree))
                except psutil.Error:
                    pass  # a process of the tree ended between the listing and the reading

        sampler = threading.Thread(target=sample, daemon=True)
        if memory:
            sampler.start()
        _pid, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
        ended.set()
        if memory:
            sampler.join()
        child.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return elapsed, cpu, peak[0] / MIB, child.returncode


def cli_figures(
    scheme, rules_dir: Path, big: int = 10_000, small: int = 1_000, rounds: int = 5
) -> list[Figure]:
    """``scoring score`` over ``big`` and ``small`` units of the largest seed scheme (JSON lines),
    the text output and the JSON output, through the contained engine: wall time (``small``: the
    median of ``rounds`` runs, with the fastest and the CPU time), peak memory."""
    from tools.units_file import write

    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in (small, big):
            facts = write(scheme, count, Path(tmp) / f"units{count}.jsonl")
            for flags, words in (((), "文本"), (("--json",), "JSON")):
                command = ("score", scheme.id, str(facts), "--rules", str(rules_dir), *flags)
                if count == small and not figures:
                    # not timed: as on a user's machine after the first command, the modules'
                    # bytecode is written (``_as_installed``) and the files are in the page cache
                    run_cli(*command, memory=False)
                runs = [
                    run_cli(*command, memory=False) for _ in range(rounds if count == small else 0)
                ]
                runs.append(run_cli(*command))  # the last with its memory sampled
                if any(code != 0 for *_, code in runs):
                    print(f"   scoring score {count} 个单位（{words}）失败：退出码 {runs[-1][3]}")
                    continue
                timed = runs[:-1] or runs
                seconds = statistics.median(r[0] for r in timed)
                cpu = statistics.median(r[1] for r in timed)
                rss = runs[-1][2]
                several = (
                    f"{len(timed)} 次中位数，最快 {min(r[0] for r in timed):.2f} s，"
                    if len(timed) > 1
                    else ""
                )
                print(
                    f"   scoring score {count} 个单位（{words}输出，含启动与加载）："
                    f"{seconds:.2f} s（{several}CPU {cpu:.2f} s，{os.cpu_count()} 核），"
                    f"峰值内存（全部进程合计）{rss:.0f} MiB"
                )
                seconds_target = 15.0 if count == big else 1.0
                figures.append(
                    Figure(
                        f"命令行 {count} 个单位评分并排名（{words}）", seconds, "s", seconds_target
                    )
                )
                if count == big:
                    figures.append(
                        Figure(f"命令行 {count} 个单位峰值内存（{words}）", rss, "MiB", 400)
                    )
    return figures


def in_process_figure(scheme, matcher, units: int = 1_000, rounds: int = 3) -> Figure:
    """``units`` units scored (checked, matched, full trace) and ranked in this process: the
    median of ``rounds``."""
    from service.domain.grading import rank_units
    from service.domain.scoring import score_units
    from tools.bench import random_facts

    rng = random.Random(12)
    batch = {f"u{i}": random_facts(scheme, rng) for i in range(units)}
    score_units(scheme, dict(list(batch.items())[:5]), matcher, "bench")  # compiled beforehand
    times, cpus, engine = [], [], []
    for _ in range(rounds):
        engine_before = _engine_cpu(matcher)
        started, cpu = time.perf_counter(), time.process_time()
        rank_units(scheme, score_units(scheme, batch, matcher, "bench"))
        times.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
        engine.append(_engine_cpu(matcher) - engine_before)
    seconds = statistics.median(times)
    # the caller waits while the engine process matches: on a quiet machine the wall time is
    # about the two CPU times added up, whatever else the shared machine is doing
    print(
        f"   {units} 个单位评分并排名（进程内，{rounds} 次中位数）：{seconds:.2f} s"
        f"（本进程 CPU {statistics.median(cpus):.2f} s，引擎进程 CPU {statistics.median(engine):.2f} s）"
    )
    return Figure(f"{units} 个单位评分并排名（进程内）", seconds, "s", 1.0)


def _engine_cpu(matcher) -> float:
    """CPU seconds the matcher's engine processes have used so far (0 for an in-process one)."""
    import psutil

    total = 0.0
    for pid in getattr(matcher, "pids", list)():
        try:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def cold_load_figure(rules_dir: Path, rounds: int = 3) -> Figure:
    """All seed schemes loaded with nothing kept from before: the best of ``rounds``."""
    from service.rulefiles import loader

    times, cpus = [], []
    for _ in range(rounds):
        loader.forget()
        started, cpu = time.perf_counter(), time.process_time()
        schemes = loader.load_all(rules_dir)
        times.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    ms, cpu_ms = min(times) * 1000, min(cpus) * 1000
    # CPU time: what the load costs whatever else the shared machine runs meanwhile
    print(
        f"   全部 {len(schemes)} 套种子细则冷加载（{rounds} 次最快）：{ms:.0f} ms（CPU {cpu_ms:.0f} ms）"
    )
    return Figure(f"全部 {len(schemes)} 套种子细则冷加载", ms, "ms", 500)


def reload_figures(rules_dir: Path, rounds: int = 5) -> list[Figure]:
    """``operations.reload_rules`` (what POST /api/rules/reload runs) on a copy of the rules, on a
    fresh SQLite database: nothing changed, and one scheme changed (a clause file of the largest
    scheme gains a comment line, a new version each time); medians of ``rounds``."""
    from werkzeug.security import generate_password_hash

    from service import operations
    from service.access import Actor
    from service.app import create_app
    from service.commands import upgrade
    from service.config import Settings
    from service.db import User

    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules"
        shutil.copytree(rules_dir, rules)
        url = f"sqlite:///{tmp}/bench.db"
        logging.disable(logging.INFO)  # the migrations' lines are not figures
        try:
            upgrade(url)
        finally:
            logging.disable(logging.NOTSET)
        settings = Settings(
            rules_dir=rules,
            engine_workers=1,
            engine_deadline=30,
            database_url=url,
            secret_key="bench",
            instance_dir=Path(tmp) / "instance",
        )
        app = create_app(settings)
        ctx = app.extensions["scoring"]
        try:
            with ctx.db.transaction() as s:
                user = User(
                    username="bench",
                    display_name="bench",
                    role="admin",
                    unit_id=None,
                    password_hash=generate_password_hash("x" * 12, method="pbkdf2:sha256:1000"),
                    active=True,
                )
                s.add(user)
                s.flush()
                actor = Actor(user.id, "bench", "admin", None)
            largest = max(ctx.registry.schemes().values(), key=lambda sc: len(sc.matches))
            clause = rules / largest.files[-1]
            operations.reload_rules(ctx, actor)  # the engine has compiled what it serves
            # the first change: the loading process starts, with nothing parsed (it is then kept)
            with clause.open("a", encoding="utf-8") as f:
                f.write("# 修订\n")
            started = time.perf_counter()
            operations.reload_rules(ctx, actor)
            first_ms = (time.perf_counter() - started) * 1000
            same, changed = [], []
            for n in range(rounds):
                started = time.perf_counter()
                done = operations.reload_rules(ctx, actor)
                same.append(time.perf_counter() - started)
                assert not done["changes"], done
                with clause.open("a", encoding="utf-8") as f:
                    f.write(f"# 修订 {n}\n")
                started = time.perf_counter()
                done = operations.reload_rules(ctx, actor)
                changed.append(time.perf_counter() - started)
                assert list(done["changes"]) == [largest.id], done
            grown = _worker_growth(ctx, actor, clause)
        finally:
            if hasattr(ctx.engine, "close"):
                ctx.engine.close()
            ctx.db.engine.dispose()
    same_ms, changed_ms = statistics.median(same) * 1000, statistics.median(changed) * 1000
    print(
        f"   规则重新加载（服务层 reload_rules，{rounds} 次中位数）：未改动 {same_ms:.0f} ms；"
        f"改动一套细则（{largest.id}）{changed_ms:.0f} ms（读取进程启动后的第一次改动 "
        f"{first_ms:.0f} ms：进程新起，什么都没有解析过）"
    )
    return [
        Figure("规则重新加载，未改动", same_ms, "ms", 100),
        Figure("规则重新加载，改动一套细则", changed_ms, "ms", 300),
        grown,
    ]


def _worker_growth(ctx, actor, clause: Path, reloads: int = 20) -> Figure:
    """The web worker's (this process's) resident memory over ``reloads`` reloads with the clause
    changed each time.  Target: flat within 8 MiB.  It held every version it had served (the
    registry) and loaded (the loader, up to 64): 0.65 MiB a reload, 13 MiB over 20."""
    import gc

    import psutil

    from service import operations

    me = psutil.Process()
    gc.collect()
    first = me.memory_info().rss / MIB
    for n in range(reloads):
        with clause.open("a", encoding="utf-8") as f:
            f.write(f"# 再修订 {n}\n")
        operations.reload_rules(ctx, actor)
    gc.collect()
    last = me.memory_info().rss / MIB
    print(
        f"   网页进程常驻内存：{first:.1f} MiB；再重新加载 {reloads} 次（每次改动一个条款文件）后"
        f" {last:.1f} MiB"
    )
    return Figure(f"网页进程内存，{reloads} 次重新加载后的增长", last - first, "MiB", 8)


def loader_memory_figure(rules_dir: Path, reloads: int = 20) -> Figure:
    """The kept loading process (``service/rulefiles/contained.py``, kept up to 10 idle minutes):
    its resident memory after loading the six seed schemes, then after ``reloads`` reloads with a
    clause of the largest changed each time (a new version each time).  Target: flat within
    8 MiB.  It keeps each file's latest content and no scheme between loads, so edits add
    nothing but the allocator's slack; before that it grew 0.7 MiB a reload (13 MiB over 20),
    and a return of that growth passes 8 MiB within 12 reloads."""
    import psutil

    from service.rulefiles import contained

    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules"
        shutil.copytree(rules_dir, rules)
        schemes = contained.load_all(rules)  # a path of its own: every folder goes to the process
        process = psutil.Process(contained._loading[0].pid)
        first = process.memory_info().rss / MIB
        largest = max(schemes.values(), key=lambda sc: len(sc.matches))
        clause = rules / largest.files[-1]
        for n in range(reloads):
            with clause.open("a", encoding="utf-8") as f:
                f.write(f"# 修订 {n}\n")
            contained.load_all(rules)
        last = process.memory_info().rss / MIB
    print(
        f"   规则读取进程常驻内存：加载 {len(schemes)} 套种子细则后 {first:.1f} MiB；"
        f"再重新加载 {reloads} 次（每次改动 {largest.id} 的一个条款文件）后 {last:.1f} MiB"
    )
    return Figure(f"规则读取进程内存，{reloads} 次重新加载后的增长", last - first, "MiB", 8)


def figures(
    units: int = 10_000, rounds: int = 5, with_cli: bool = True, only_cli: bool = False
) -> list[Figure]:
    """Every scale figure, printed as it is measured, then the list against the targets."""
    from service.engine.pool import EnginePool
    from service.rulefiles.loader import load_all

    rules_dir = from_environment().rules_dir
    load = "、".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n== 规模（issue 12）；机器 {os.cpu_count()} 核，平均负载 {load}（1、5、15 分钟）")
    seeds = load_all(rules_dir)
    largest = max(seeds.values(), key=lambda s: len(s.matches))
    out = []
    if not only_cli:
        out.append(cold_load_figure(rules_dir))
        out += reload_figures(rules_dir, rounds)
        out.append(loader_memory_figure(rules_dir))
        with EnginePool(size=1, deadline=60) as pool:
            out.append(in_process_figure(largest, pool))
    if with_cli or only_cli:
        out += cli_figures(largest, rules_dir, big=units, rounds=rounds)
        load = "、".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"   （命令行各次运行之后的平均负载 {load}）")
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # ru_maxrss is the process's whole life: under ``make bench`` it includes the sections before
    # (the 240-clause scheme's 1,000 units held at once), not these figures alone
    print(f"   本进程峰值内存 {me:.0f} MiB（本基准测试进程至此的最高值，含此前的各项测量）")
    print("对照目标（规模）：")
    for f in out:
        print(f.line())
    return out


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tools.scale_bench", description=__doc__)
    parser.add_argument("--units", type=int, default=10_000, help="命令行评分的单位数")
    parser.add_argument("--rounds", type=int, default=5, help="重新加载的测量次数")
    parser.add_argument("--no-cli", action="store_true", help="不测命令行评分")
    parser.add_argument("--only-cli", action="store_true", help="只测命令行评分")
    args = parser.parse_args()
    figures(args.units, args.rounds, not args.no_cli, args.only_cli)


if __name__ == "__main__":
    main()
