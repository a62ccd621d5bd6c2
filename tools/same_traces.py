"""Are explained scores byte-identical to another revision's?  (issue 12: speed, same results)

``python -m tools.same_traces --against REV`` checks REV out into a temporary git worktree and
runs the same sweep in a fresh process for each side, each on its own code and its own rules:
for every shipped scheme and every fixture scheme of the tests, every example unit, every test
case in the rule files (with the panel marks a case carries) and ``--randoms`` random fact sets
(one in five with a fact left out, one in seven with a bad value), the bytes of

- the what-if API's JSON answer (``{"result": to_data(result)}`` through ``jsonio``), through the
  plain-Python oracle and through the contained durable-rules engine,
- its readable text (``trace.render``, what ``Accept: text/plain`` answers),
- the JSON and the text of the same unit scored without ``explain`` (sentences written when read),
- or the error a bad fact set gets (``InvalidFacts``: every field and message),

are hashed, and every unit whose hashes differ is listed with the first differing bytes.
Exit status 1 on any difference.  ``--write FILE`` only writes this tree's digests.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: values that a number fact must refuse, each with a different message
_BAD = ("不是数字", True, Decimal("1e13"), Decimal("1.23456789012345678"), Decimal("-1e-20"))


def _schemes(root: Path) -> dict:
    from service.config import from_environment
    from service.rulefiles.loader import load_all, load_scheme

    rules = from_environment().rules_dir
    out = dict(load_all(rules))
    fixtures = root / "tests" / "fixtures"
    for folder in sorted(fixtures.iterdir()) if fixtures.is_dir() else ():
        if (folder / "scheme.yaml").is_file():
            try:
                scheme = load_scheme(folder, fixtures)
            except Exception:  # a fixture this revision cannot load: skipped on both sides
                continue
            out.setdefault(f"fixture:{scheme.id}", scheme)
    return out


def _units(scheme, root: Path, randoms: int) -> dict:
    """name -> (facts, marks by clause)"""
    import random

    from tools.bench import random_facts

    out: dict = {}
    for path in sorted((root / "examples").glob("*.y*ml")):
        text = path.read_text(encoding="utf-8")
        if path.stem == scheme.id or f"scoring score {scheme.id} " in text:
            from service.cli import read_facts_file

            for unit, facts in read_facts_file(path).items():
                out[f"示例 {path.name} {unit}"] = (facts, {})
    for test in scheme.tests:
        out[f"细则用例 {test.name} @{test.line}"] = (test.facts, dict(getattr(test, "marks", {})))
    for clause in scheme.clauses.values():
        for test in clause.tests:
            marks = getattr(test, "marks", ())
            out[f"条款{clause.id}用例 {test.name} @{test.line}"] = (
                test.facts,
                {clause.id: list(marks)} if marks else {},
            )
    rng = random.Random(2026)
    names = sorted(scheme.facts)
    numbers = [n for n in names if scheme.facts[n].type in ("number", "percent", "integer")]
    for i in range(randoms):
        facts = random_facts(scheme, rng)
        if i % 5 == 4:
            facts.pop(rng.choice(names), None)
        if i % 7 == 6 and numbers:
            facts[rng.choice(numbers)] = _BAD[i % len(_BAD)]
        if i % 11 == 10:
            facts["no_such_fact"] = 1
        out[f"随机 {i}"] = (facts, {})
    return out


def _digest(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()[:20]


def sweep(root: Path, randoms: int, keep: set | None = None) -> dict:
    """name -> {part: digest} for this process's code (``keep``: also the bytes of these names)."""
    from service.domain.facts import InvalidFacts
    from service.domain.scoring import score_units
    from service.domain.trace import render, to_data
    from service.engine.oracle import OracleMatcher
    from service.engine.pool import EnginePool
    from service.jsonio import dumps_bytes

    out: dict = {}
    kept: dict = {}
    oracle = OracleMatcher()
    with EnginePool(size=1, deadline=60) as pool:
        for sid, scheme in sorted(_schemes(root).items()):
            for unit, (facts, marks) in _units(scheme, root, randoms).items():
                name = f"{sid} | {unit}"
                parts: dict = {}
                for label, matcher in (("oracle", oracle), ("durable", pool)):
                    for explain in (True, False):
                        try:
                            result = score_units(
                                scheme,
                                {"（试算）": facts},
                                matcher,
                                matcher.name,
                                explain=explain,
                                marks={"（试算）": marks},
                            )[0]
                        except InvalidFacts as err:
                            parts[f"{label} invalid"] = _digest(
                                json.dumps([[e.field, e.message] for e in err.errors])
                            )
                            break
                        body = dumps_bytes({"result": to_data(result)})
                        text = render(result)
                        tag = f"{label} {'explain' if explain else 'lazy'}"
                        parts[f"{tag} json"] = _digest(body)
                        parts[f"{tag} text"] = _digest(text)
                        if keep is not None and name in keep:
                            kept[f"{name} | {tag} json"] = body.decode("utf-8")
                            kept[f"{name} | {tag} text"] = text
                out[name] = parts
    return {"digests": out, "kept": kept}


def side(root: str, randoms: int, keep: list | None) -> dict:
    """``sweep`` as one side of ``--against`` runs it (in a child, on ``root``'s code)."""
    return sweep(Path(root), randoms, set(keep) if keep is not None else None)


def _side(root: Path, randoms: int, keep: set | None = None) -> dict:
    from tools import revisions  # here, not at the top: the other side loads this file too

    shown = sorted(keep) if keep else None
    return revisions.call(root, __file__, "side", str(root), randoms, shown, what="比对进程")


def _first_difference(a: str, b: str) -> str:
    i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return f"第{i}个字符起：当前 …{a[max(0, i - 40) : i + 80]!r}… 对比版本 …{b[max(0, i - 40) : i + 80]!r}…"


def against(rev: str, randoms: int) -> int:
    from tools import revisions  # here, not at the top: the other side loads this file too

    with revisions.worktree(rev, prefix="same-traces-") as (commit, other):
        mine = _side(ROOT, randoms)["digests"]
        theirs = _side(other, randoms)["digests"]
        differing = sorted(
            name for name in set(mine) | set(theirs) if mine.get(name) != theirs.get(name)
        )
        parts = sum(len(p) for p in mine.values())
        print(
            f"当前工作区与 {rev}（{commit[:10]}）：{len(mine)} 组事实，{parts} 份输出（JSON、文字、"
            f"错误），{len(differing)} 组不同"
        )
        if differing:
            shown = set(differing[:5])
            a, b = _side(ROOT, randoms, shown)["kept"], _side(other, randoms, shown)["kept"]
            for name in differing[:20]:
                print(f"   不同：{name}")
                for key in sorted(set(mine.get(name, {})) | set(theirs.get(name, {}))):
                    if mine.get(name, {}).get(key) != theirs.get(name, {}).get(key):
                        full = f"{name} | {key}"
                        detail = (
                            _first_difference(a[full], b[full]) if full in a and full in b else ""
                        )
                        print(f"      {key} {detail}")
        return 1 if differing else 0


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m tools.same_traces",
        description="与另一个 git 版本比对：每套细则的示例、用例与随机事实的评分结果是否逐字节相同",
    )
    parser.add_argument("--against", metavar="REV", help="对比的 git 版本")
    parser.add_argument("--randoms", type=int, default=300, help="每套细则的随机事实组数")
    parser.add_argument("--write", metavar="FILE", help="只把当前工作区的摘要写入文件")
    args = parser.parse_args()
    if args.write:
        Path(args.write).write_text(
            json.dumps(sweep(ROOT, args.randoms)["digests"], ensure_ascii=False, indent=0)
        )
        return
    raise SystemExit(against(args.against or "HEAD", args.randoms))


if __name__ == "__main__":
    main()
