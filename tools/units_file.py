"""Write a facts file of many units for one scheme, to score from the CLI at scale (issue 12).

    python -m tools.units_file SCHEME_ID N OUT [--rules DIR] [--seed S] [--format jsonl|json|dir]

``jsonl`` (the default): one unit a line, ``{"unit": name, "facts": {...}}``, which
``scoring score`` reads line by line; ``json``: the several-unit form ``{"units": {...}}`` in
one document; ``dir``: one ``{"unit", "facts"}`` JSON file per unit in the folder OUT.  The facts
are random within each fact's declared range (``tools.bench.random_facts``), a few units
lacking a fact, so that totals spread, tie and some units are incomplete.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

from service.config import from_environment
from service.rulefiles.loader import load_all
from tools.bench import random_facts


def units(scheme, count: int, seed: int = 2026) -> Iterator[tuple[str, dict]]:
    """(unit name, facts) for ``count`` units, the same for the same seed."""
    rng = random.Random(seed)
    names = list(scheme.facts)
    for i in range(count):
        facts = random_facts(scheme, rng)
        if names and i % 10 == 9:
            facts.pop(names[i % len(names)], None)  # one unit in ten lacks a fact
        yield f"单位{i + 1:05d}", facts


def _line(unit: str, facts: dict) -> str:
    # decimals as JSON numbers written exactly (the CLI reads JSON numbers as decimals)
    body = ", ".join(
        f"{json.dumps(k, ensure_ascii=False)}: "
        + (str(v) if isinstance(v, Decimal) else json.dumps(v, ensure_ascii=False))
        for k, v in facts.items()
    )
    return f'{{"unit": {json.dumps(unit, ensure_ascii=False)}, "facts": {{{body}}}}}'


def write(scheme, count: int, out: Path, fmt: str = "jsonl", seed: int = 2026) -> Path:
    out = Path(out)
    if fmt == "dir":
        out.mkdir(parents=True, exist_ok=True)
        for n, (unit, facts) in enumerate(units(scheme, count, seed)):
            (out / f"{n:06d}.json").write_text(_line(unit, facts) + "\n", encoding="utf-8")
        return out
    with out.open("w", encoding="utf-8") as f:
        if fmt == "jsonl":
            for unit, facts in units(scheme, count, seed):
                f.write(_line(unit, facts) + "\n")
        else:
            f.write('{"units": {\n')
            for n, (unit, facts) in enumerate(units(scheme, count, seed)):
                body = _line(unit, facts).split('"facts": ', 1)[1][:-1]
                f.write(("," if n else "") + f"{json.dumps(unit, ensure_ascii=False)}: {body}\n")
            f.write("}}\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tools.units_file", description="生成多个单位的事实文件（用于大批量评分）"
    )
    parser.add_argument("scheme")
    parser.add_argument("count", type=int)
    parser.add_argument("out", type=Path)
    parser.add_argument("--rules", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--format", choices=("jsonl", "json", "dir"), default="jsonl")
    args = parser.parse_args()
    schemes = load_all(args.rules or from_environment().rules_dir)
    write(schemes[args.scheme], args.count, args.out, args.format, args.seed)


if __name__ == "__main__":
    main()
