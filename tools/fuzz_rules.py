"""Mutation fuzzer for the rule loader: every load is accepted or rejected with file:line:column.

Takes the shipped scheme folders (rules/), mutates ONE file of one scheme at a time (byte flips,
control and odd Unicode characters, duplicated, deleted and swapped lines, scalars swapped for
lists, maps, huge numbers, booleans and odd tags, deep nesting, renamed keys, YAML snippets,
expression and number mutations, splices), loads that scheme from memory (the other files'
parses are reused from the loader's cache), and counts the outcomes:

- accepted: the mutated scheme loads;
- rejected: ``RuleSetError`` whose every error names a file of the scheme, a line and column
  inside that file, and a message;
- UNCAUGHT: anything else (an exception, a malformed error, a crash or a hang of the worker).
  Each distinct one is printed once, and its reproducer (the scheme folder with the mutated
  file, and the traceback) saved under --out.

Runs --jobs worker processes (default: the number of cores), each on its own stream of inputs;
every input is derived from (--seed, worker, iteration), so a worker that dies or hangs is
replaced and the input that killed it is rebuilt and saved.

    python -m tools.fuzz_rules --seconds 600 --out /tmp/fuzz
    python -m tools.fuzz_rules --iterations 20000 --seed 7 --jobs 1
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import os
import random
import re
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"

# --- mutations -------------------------------------------------------------------------------

ODD_CHARACTERS = [
    "\x00", "\x01", "\x07", "\x08", "\x0b", "\x0c", "\x1b", "\x7f", "\x80", "\x85", "\x9f",
    "\t", "\r", "\r\n", "\u2028", "\u2029", "\ufeff", "\u200b", "\u3000", "\ufffe", "\uffff",
    "\U0001f600", "０", "１２", "٩٠", "۳", "一", "：", "，", "＃", "\\", '"', "'", "#", "&", "*",
    "!", "%", "@", "`", "|", ">", "-", "?", ":", "[", "]", "{", "}", ",",
]  # fmt: skip

SCALARS = [
    "[1, 2]", "{a: 1}", "[]", "{}", "[[[[1]]]]", "1e1000000", "-1e1000000", "1e-1000000",
    "99999999999999999999", "-9223372036854775809", "9223372036854775808", "0x3", "0o17",
    "0b101", ".inf", "-.inf", ".nan", ".NaN", "-0", "+0", "1_000", "1__0", "1.5e3", "1E+16",
    "0.1234567890123456", "90.0000000000000001", "TRUE", "True", "true", "FALSE", "false",
    "yes", "no", "on", "off", "y", "n", "null", "~", "Null", "!!int x", "!!float y",
    "!!bool yes", "!!str 5", "!!binary aGVsbG8=", "!!timestamp 2001-12-14", "!foo bar",
    "!!map {a: 1}", "!!seq [1]", "!!set {a}", "!!omap [{a: 1}]", "&a 1", "*a", '""', "''",
    '"\\x07"', '"\\u2028"', '"\\0"', "|\n  text", ">-\n  text", "2022-01-01", "12:30",
    "1" * 5000, "x" * 3000, "１２", "٣", "3.", ".5", "-", "- x", "? x", "%TAG", "@x",
]  # fmt: skip

SNIPPETS = [
    "extra: 1\n", "? [a, b]\n: c\n", "? {a: 1}\n: c\n", "--- \n", "...\n", "%YAML 1.1\n",
    "%YAML 1.2\n---\n", "key: |\n  text\n  more\n", "a: &x 1\nb: *x\n", "<<: {a: 1}\n",
    "- 1\n", "[1, 2]\n", "{a: b}\n", "id: x\nid: y\n", "facts: [{a: 1}]\n", "tests: 5\n",
    "rules:\n  - {id: z, kind: fixed, points: 1}\n", "categories: [{id: Z, title: z}]\n",
    "when: " + " or ".join(f"x > {i}" for i in range(300)) + "\n",
    "measure: " + "+".join(["1"] * 200) + "\n", "when: " + "(" * 200 + "x" + ")" * 200 + "\n",
    "- " * 200 + "x\n", "[" * 100 + "]" * 100 + "\n", "{" * 60 + "\n", "'unterminated\n",
    '"unterminated\n', "\t- tab\n", "a: b: c\n", "!!python/object:os.system ls\n",
]  # fmt: skip

KEYS = [
    "id", "kind", "title", "note", "when", "points", "measure", "bands", "range", "label",
    "each", "step", "whole_steps", "cap", "value", "scale_from", "scale_to", "levels",
    "reason", "facts", "name", "type", "min", "max", "choices", "required", "tests", "fired",
    "status", "category", "categories", "total", "grading", "tiers", "grade", "top",
    "distinctions", "vetoes", "effect", "ranking_tests", "units", "expect", "rank", "source",
    "document", "text", "ref", "start", "offices", "deadline", "tasks", "evidence", "unit",
]  # fmt: skip

EXPRESSION_BITS = [
    " or x > 1", " and not y", " + 1", " * 0", " / 0", " - -1", " >= 90.0000000000000001",
    " > -9223372036854775809", " == \"a\"", " == true", "(", ")", " max(1, 2)", " abs(",
    " min()", " foo(1)", " > ٩٠", " > １", " > 1e5", " > 0x1", "!", "$x", " " * 50,
]  # fmt: skip

_SCALAR_AT = re.compile(rb":[ \t]+([^\n#]*)")
_KEY_AT = re.compile(rb"([A-Za-z_]+):")
_NUMBER_AT = re.compile(rb"-?[0-9]+(?:\.[0-9]+)?")
_EXPRESSION_AT = re.compile(rb"(?:when|measure|count): ([^\n,}]*)")


def _enc(text: str) -> bytes:
    return text.encode("utf-8")


def mutate(data: bytes, rng: random.Random, others: list[bytes]) -> bytes:
    """One mutation of a file's bytes."""
    n = len(data)
    at = rng.randrange(n + 1)
    kind = rng.randrange(16)
    if kind == 0 and n:  # flip a bit
        i = rng.randrange(n)
        return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1 :]
    if kind == 1:  # an odd character
        return data[:at] + _enc(rng.choice(ODD_CHARACTERS)) + data[at:]
    if kind == 2:  # raw bytes, maybe not UTF-8
        return data[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 4))) + data[at:]
    lines = data.split(b"\n")
    if kind == 3 and lines:  # duplicate, delete or swap lines
        i = rng.randrange(len(lines))
        j = rng.randrange(len(lines))
        op = rng.randrange(3)
        if op == 0:
            lines.insert(j, lines[i])
        elif op == 1:
            del lines[i]
        else:
            lines[i], lines[j] = lines[j], lines[i]
        return b"\n".join(lines)
    if kind in (4, 5):  # swap a scalar for something else
        found = list(_SCALAR_AT.finditer(data))
        if found:
            m = rng.choice(found)
            return data[: m.start(1)] + _enc(rng.choice(SCALARS)) + data[m.end(1) :]
    if kind == 6:  # deep nesting
        depth = rng.choice([5, 20, 39, 40, 41, 60, 200, 1000, 5000])
        opener = rng.choice(["[", "{a: ", "- ", "[{x: ", "!!seq [", "&a [", "? ", "- - "])
        lead = rng.choice(["", "", "\n", "\r", "\x85", "\u2028", "a: ", "a: b - '", "a: |"])
        return data[:at] + _enc(lead + opener * depth) + data[at:]
    if kind == 7:  # rename a key
        found = list(_KEY_AT.finditer(data))
        if found:
            m = rng.choice(found)
            key = m.group(1).decode()
            new = rng.choice(
                [rng.choice(KEYS), key[:-1], key + "s", key.upper(), key[::-1], "", "x" * 300]
            )
            return data[: m.start(1)] + _enc(new) + data[m.end(1) :]
    if kind == 8:  # a YAML snippet at a line start, maybe indented
        i = rng.randrange(len(lines) + 1)
        indent = b" " * rng.choice([0, 0, 2, 4, 6])
        snippet = b"\n".join(indent + s for s in _enc(rng.choice(SNIPPETS)).split(b"\n"))
        return b"\n".join(lines[:i] + [snippet.rstrip(b" ")] + lines[i:])
    if kind == 9:  # mutate an expression
        found = list(_EXPRESSION_AT.finditer(data))
        if found:
            m = rng.choice(found)
            bit = rng.choice(EXPRESSION_BITS) * rng.choice([1, 1, 2, 10, 150, 600])
            cut = rng.randint(m.start(1), m.end(1))
            return data[:cut] + _enc(bit) + data[cut:]
    if kind == 10:  # mutate a number
        found = list(_NUMBER_AT.finditer(data))
        if found:
            m = rng.choice(found)
            new = rng.choice(
                [
                    m.group() + b"0" * rng.randint(1, 30),
                    m.group() + b".0000000000000001",
                    m.group() + b"e" + str(rng.randint(-400, 400)).encode(),
                    b"-" + m.group(),
                    b"0",
                    _enc("１") + m.group(),
                    m.group().replace(b"0", _enc("٠")),
                    b"1" * rng.randint(16, 2000),
                ]
            )
            return data[: m.start()] + new + data[m.end() :]
    if kind == 11 and n:  # splice a chunk of this or another file
        source = rng.choice(others) if others and rng.random() < 0.5 else data
        i = rng.randrange(len(source) + 1)
        chunk = source[i : i + rng.randint(1, 200)]
        return data[:at] + chunk + data[at:]
    if kind == 12:  # truncate
        return data[:at]
    if kind == 13 and lines:  # change indentation of a line
        i = rng.randrange(len(lines))
        lines[i] = b" " * rng.randint(0, 9) + lines[i].lstrip(b" ")
        return b"\n".join(lines)
    if kind == 14 and others:  # another file's content altogether
        return rng.choice(others)
    if kind == 15:  # change a line ending
        return data[:at] + rng.choice([b"\r", b"\r\n", _enc("\x85"), _enc("\u2028")]) + data[at:]
    return data[:at] + _enc(rng.choice(SCALARS)) + data[at:]


# --- one load ---------------------------------------------------------------------------------


@dataclass
class Corpus:
    schemes: list[tuple[str, dict[str, bytes]]]  # (prefix, files)

    @classmethod
    def shipped(cls, root: Path = RULES) -> Corpus:
        from service.rulefiles.loader import _display, find_schemes, read_tree

        out = []
        for folder in find_schemes(root):
            prefix = _display(folder, root)
            out.append((prefix, read_tree(folder, prefix)))
        return cls(out)


def make_input(corpus: Corpus, seed: int, worker: int, iteration: int):
    """The mutated scheme of one iteration: (prefix, files, mutated file's name)."""
    rng = random.Random(f"{seed}:{worker}:{iteration}")
    prefix, files = rng.choice(corpus.schemes)
    rel = rng.choice(sorted(files))
    others = [files[r] for r in files if r != rel]
    data = files[rel]
    for _ in range(rng.choice([1, 1, 1, 2, 3, 5])):
        data = mutate(data, rng, others)
    return prefix, dict(files, **{rel: data}), rel


def check_load(prefix: str, files: dict[str, bytes], engine: bool = False) -> str:
    """'accepted' or 'rejected'; raises for anything else (the fuzzer's finding).

    ``engine``: an accepted scheme's own test cases are also matched by durable-rules (in this
    process) and by the plain-Python oracle, which must fire exactly the same conditions: a
    scheme that loads must be one the engine runs, and runs as the oracle does."""
    from service.rulefiles import RuleSetError
    from service.rulefiles.loader import load_files

    try:
        scheme = load_files(files, prefix)
    except RuleSetError as err:
        if not err.errors:
            raise AssertionError("RuleSetError without any error") from None
        named = {
            (f"{prefix}/{rel}" if prefix not in ("", ".") else rel): data
            for rel, data in files.items()
        }
        for e in err.errors:
            if not (isinstance(e.message, str) and e.message.strip()):
                raise AssertionError(f"an error without a message: {e!r}") from None
            str(e).encode("utf-8")  # a message that cannot be written out is a failure too
            data = named.get(e.file)
            if data is None:
                raise AssertionError(f"an error naming no file of the scheme: {e!r}") from None
            lines = data.count(b"\n") + 1
            if not (1 <= e.line <= lines and e.column >= 1):
                raise AssertionError(
                    f"an error outside its file ({lines} lines): {e.line}:{e.column}"
                ) from None
        return "rejected"
    if engine:
        _match_both(scheme)
    return "accepted"


_matchers: dict = {}


def _match_both(scheme) -> None:
    from service.domain.scoring import prepare
    from service.engine.durable import InProcessMatcher
    from service.engine.oracle import OracleMatcher

    if not _matchers:
        _matchers.update(engine=InProcessMatcher(), oracle=OracleMatcher())
    cases = [case.facts for clause in scheme.clauses.values() for case in clause.tests]
    cases += [case.facts for case in scheme.tests]
    batch = [prepare(scheme, facts) for facts in cases]
    try:
        by_engine = _matchers["engine"].match(scheme, batch)
    finally:
        _matchers["engine"].release(scheme.program_name)
    by_oracle = _matchers["oracle"].match(scheme, batch)
    for facts, a, b in zip(cases, by_engine, by_oracle):
        if a != b:
            raise AssertionError(
                f"durable-rules and the oracle disagree on {facts}: only durable-rules "
                f"{sorted(a - b)}, only the oracle {sorted(b - a)}"
            )


# --- workers ------------------------------------------------------------------------------------


def _signature(exc_text: str) -> str:
    """What makes two failures the same: the exception type and the innermost frames."""
    lines = [line for line in exc_text.strip().splitlines() if line.startswith('  File "')]
    last = exc_text.strip().splitlines()[-1] if exc_text.strip() else "?"
    kind = last.split(":", 1)[0]
    return kind + " @ " + " | ".join(line.strip() for line in lines[-2:])


def _worker(
    engine: bool,
    seed: int,
    worker: int,
    counter,
    results,
    stop_at: float,
    iterations: int,
    first: int = 0,
) -> None:  # pragma: no cover - child
    """Loads inputs ``first``, ``first + 1``, ... of this worker's stream until ``iterations``
    (0: no end) or ``stop_at``; ``counter`` shows the parent which input is being loaded."""
    sys.path.insert(0, str(ROOT))
    corpus = Corpus.shipped()
    i = first
    accepted = rejected = 0
    while (iterations <= 0 or i < iterations) and time.time() < stop_at:
        counter.value = i
        prefix, files, rel = make_input(corpus, seed, worker, i)
        try:
            if check_load(prefix, files, engine) == "accepted":
                accepted += 1
            else:
                rejected += 1
        except Exception:
            text = traceback.format_exc()
            results.put(("uncaught", worker, i, _signature(text), text))
        i += 1
        if (i - first) % 200 == 0:
            results.put(("progress", worker, i, accepted, rejected))
            accepted = rejected = 0
    results.put(("progress", worker, i, accepted, rejected))
    results.put(("done", worker, i - first))


@dataclass
class Report:
    loads: int = 0
    accepted: int = 0
    rejected: int = 0
    uncaught: int = 0
    seconds: float = 0.0
    distinct: dict[str, dict] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.loads / self.seconds if self.seconds else 0.0


def _save(
    out: Path | None,
    corpus: Corpus,
    seed: int,
    worker: int,
    i: int,
    signature: str,
    text: str,
    report: Report,
) -> None:
    report.uncaught += 1
    if signature in report.distinct:
        report.distinct[signature]["count"] += 1
        return
    prefix, files, rel = make_input(corpus, seed, worker, i)
    info = {
        "count": 1,
        "seed": seed,
        "worker": worker,
        "iteration": i,
        "file": f"{prefix}/{rel}",
        "text": text,
    }
    report.distinct[signature] = info
    print(
        f"\n!! UNCAUGHT #{len(report.distinct)}: {signature}\n   input: --seed {seed} worker {worker} iteration {i}, file {prefix}/{rel}",
        flush=True,
    )
    print("   " + "\n   ".join(text.strip().splitlines()[-6:]), flush=True)
    if out is not None:
        folder = out / hashlib.sha1(signature.encode()).hexdigest()[:12] / prefix
        for r, data in files.items():
            (folder / r).parent.mkdir(parents=True, exist_ok=True)
            (folder / r).write_bytes(data)
        (folder.parent / "traceback.txt").write_text(
            f"{signature}\nseed {seed} worker {worker} iteration {i}; mutated: {prefix}/{rel}\n\n{text}",
            encoding="utf-8",
        )
        print(f"   reproducer: {folder.parent}", flush=True)


def run(
    iterations: int = 0,
    seconds: float = 0.0,
    seed: int = 1,
    jobs: int = 0,
    out: Path | None = None,
    hang: float = 20.0,
    quiet: bool = False,
    engine: bool = False,
) -> Report:
    """Fuzz; ``jobs=0`` runs in this process (no crash or hang containment: for tests)."""
    corpus = Corpus.shipped()
    report = Report()
    started = time.perf_counter()
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    if jobs == 0:
        i = 0
        while (iterations <= 0 or i < iterations) and (
            seconds <= 0 or time.perf_counter() - started < seconds
        ):
            prefix, files, _rel = make_input(corpus, seed, 0, i)
            try:
                if check_load(prefix, files, engine) == "accepted":
                    report.accepted += 1
                else:
                    report.rejected += 1
            except Exception:
                text = traceback.format_exc()
                _save(out, corpus, seed, 0, i, _signature(text), text, report)
            i += 1
        report.loads = i
        report.seconds = time.perf_counter() - started
        return report

    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    stop_at = time.time() + (seconds if seconds > 0 else 10**9)
    per_worker = -(-iterations // jobs) if iterations > 0 else 0
    workers: dict[int, tuple] = {}
    done_loads = 0

    def start(wid: int, first: int = 0):
        counter = ctx.Value("q", 0, lock=False)
        p = ctx.Process(
            target=_worker,
            args=(engine, seed, wid, counter, results, stop_at, per_worker, first),
            daemon=True,
        )
        p.start()
        workers[wid] = (p, counter, time.time(), -1, first)

    for wid in range(jobs):
        start(wid)
    last_print = time.time()
    while workers:
        try:
            msg = results.get(timeout=0.5)
        except Exception:
            msg = None
        if msg is not None:
            if msg[0] == "progress":
                report.accepted += msg[3]
                report.rejected += msg[4]
            elif msg[0] == "uncaught":
                _save(out, corpus, seed, msg[1], msg[2], msg[3], msg[4], report)
            elif msg[0] == "done":
                p, *_ = workers.pop(msg[1])
                done_loads += msg[2]
                p.join(timeout=5)
        now = time.time()
        for wid, (p, counter, since, seen, first) in list(workers.items()):
            value = counter.value
            if value != seen:
                workers[wid] = (p, counter, now, value, first)
                continue
            died = not p.is_alive()
            if died and p.exitcode == 0:
                continue  # finished: its "done" is still in the queue
            if died or now - since > hang:
                p.kill()
                p.join(timeout=5)
                kind = f"crash (exit code {p.exitcode})" if died else f"hang (> {hang:g} s)"
                text = f"worker {kind} on this input\n{kind}"
                _save(
                    out,
                    corpus,
                    seed,
                    wid,
                    value,
                    f"{kind.split(' ')[0]} of the loader process",
                    text,
                    report,
                )
                del workers[wid]
                done_loads += value + 1 - first
                # go on from the next input, under the same worker number
                start_next = value + 1
                if (per_worker <= 0 or start_next < per_worker) and now < stop_at:
                    start(wid, start_next)
        if not quiet and now - last_print >= 30:
            last_print = now
            loads = report.accepted + report.rejected
            elapsed = time.perf_counter() - started
            print(
                f"[{elapsed:7.0f} s] {loads} loads, {loads / elapsed:.0f}/s; accepted {report.accepted}, rejected {report.rejected}, uncaught {report.uncaught} ({len(report.distinct)} distinct)",
                flush=True,
            )
    report.loads = report.accepted + report.rejected + report.uncaught
    report.seconds = time.perf_counter() - started
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iterations", type=int, default=0, help="loads in all (0: no limit)")
    parser.add_argument(
        "--seconds", type=float, default=0.0, help="stop after this long (0: no limit)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="worker processes (0: in this process)",
    )
    parser.add_argument("--out", type=Path, default=None, help="folder for reproducers")
    parser.add_argument(
        "--hang", type=float, default=20.0, help="seconds without progress that count as a hang"
    )
    parser.add_argument(
        "--engine",
        action="store_true",
        help="also match each accepted scheme's test cases by durable-rules and by the oracle",
    )
    args = parser.parse_args(argv)
    if not args.iterations and not args.seconds:
        args.seconds = 60.0
    sys.path.insert(0, str(ROOT))
    report = run(
        args.iterations,
        args.seconds,
        args.seed,
        args.jobs,
        args.out,
        args.hang,
        engine=args.engine,
    )
    print(
        f"\n{report.loads} loads in {report.seconds:.0f} s: {report.rate:.0f} loads/s "
        f"({report.rate / max(args.jobs, 1):.0f}/s per process); accepted {report.accepted}, "
        f"rejected with file:line:column {report.rejected}, UNCAUGHT {report.uncaught} "
        f"({len(report.distinct)} distinct)"
    )
    for signature, info in report.distinct.items():
        print(f"  {info['count']:6d} x {signature}")
    return 1 if report.uncaught else 0


if __name__ == "__main__":
    sys.exit(main())
