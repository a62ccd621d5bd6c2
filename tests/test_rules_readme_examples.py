"""Every worked example in rules/README.md loads and passes its own test cases.

The README promises that its examples can be copied as they are and pass
``scoring check`` and ``scoring test``. A rule-file example is either a clause
file (it has ``category``) or a scheme.yaml (it has ``categories``). Each scheme
example is the README's "完整的示例细则": it is loaded with the clause examples
the README builds it from (``SCHEMES`` below, as the text around each says);
every other clause example is loaded on its own, in a one-clause scheme made here
whose category has the kind its name says (加分项 bonus, 扣分/减分项 deduction).
Then the cases run through the oracle and through durable-rules (``scoring test``).
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from service.casebook import run_cases
from service.engine.oracle import OracleMatcher
from service.rulefiles import RuleSetError
from service.rulefiles.loader import load_files

README = Path(__file__).resolve().parent.parent / "rules" / "README.md"
TEXT = README.read_text(encoding="utf-8")
BLOCKS = [b for b in re.findall(r"^```yaml\n(.*?)^```", TEXT, re.S | re.M) if b.startswith("id:")]


def _data(block: str) -> dict:
    return YAML(typ="safe", pure=True).load(block)


CLAUSES = {
    (str(_data(b)["id"]), str(_data(b)["category"])): b for b in BLOCKS if "category" in _data(b)
}
SCHEME_BLOCKS = {str(_data(b)["id"]): b for b in BLOCKS if "categories" in _data(b)}

# scheme example -> the clause examples (id, category) it is built from, as its section says
SCHEMES = {
    # 6.12: "基本分只保留 6.8 的“1.1 组织保障”一个条款" and the four bonus and deduction clauses
    "baoshan-demo": [
        ("1.1", "1"),
        ("加分1", "加分项"),
        ("加分2", "加分项"),
        ("加分3", "加分项"),
        ("减分1", "减分项"),
    ],
    # 6.13: "只含 6.2 示例一（考核要点1）一个条款"
    "shuangtaizi-demo": [("1", "质量目标")],
    # 6.14: "借用的是 6.1 的条款（10分）"
    "thresholds-demo": [("1", "质量振兴")],
    # 6.13 降一级: "借用的是 6.1 的条款（10分）"
    "lowering-demo": [("1", "质量振兴")],
    # 6.19 示例一、示例二: "借用 6.1 的条款（10分）"
    "ruian-demo": [("1", "质量振兴")],
    "by-place-demo": [("1", "质量振兴")],
}
KINDS = {"加分项": "bonus", "扣分项": "deduction", "减分项": "deduction"}


def _clause_file(n: int) -> str:
    return f"clauses/{n:02d}.yaml"


def _alone(block: str) -> dict:
    """A one-clause scheme around a clause example (plus, for a bonus or deduction clause,
    a one-point standard clause: a scheme's total is positive)."""
    d = _data(block)
    category, points = str(d["category"]), d["points"]
    kind = KINDS.get(category, "standard")
    files = {_clause_file(1): block}
    if kind == "standard":
        categories = f'  - {{id: "{category}", title: 示例, points: {points}}}\n'
        total = points
    else:
        categories = (
            f'  - {{id: "{category}", title: 示例, kind: {kind}}}\n'
            "  - {id: 基本, title: 基本分, points: 1}\n"
        )
        total = 1
        files["clauses/filler.yaml"] = (
            'id: "基本1"\ntitle: 基本分\ncategory: 基本\npoints: 1\n'
            "source: {document: 示例, text: 做到得1分}\n"
            "facts:\n  - {name: filler_done, type: boolean, label: 已做到}\n"
            "rules:\n  - {id: r1, kind: fixed, when: filler_done, points: 1}\n"
            "tests:\n  - {name: 做到, facts: {filler_done: true}, points: 1, fired: [r1]}\n"
        )
    files["scheme.yaml"] = (
        'id: example\ntitle: 示例\nyear: "2026"\nissuer: 示例\n'
        "source: {document: 示例, text: 示例}\n"
        f"total: {total}\ncategories:\n{categories}grading: {{method: none}}\n"
    )
    return files


def _composed(sid: str) -> dict:
    files = {"scheme.yaml": SCHEME_BLOCKS[sid]}
    for n, key in enumerate(SCHEMES[sid], 1):
        files[_clause_file(n)] = CLAUSES[key]
    return files


USED = {key for keys in SCHEMES.values() for key in keys}
CASES = [(f"scheme {sid}", _composed(sid)) for sid in SCHEME_BLOCKS] + [
    (f"clause {cid} ({cat})", _alone(block))
    for (cid, cat), block in CLAUSES.items()
    if (cid, cat) not in USED
]


def test_every_scheme_example_is_composed_from_clause_examples():
    assert set(SCHEMES) == set(SCHEME_BLOCKS)
    assert set(CLAUSES) >= USED


def test_there_are_examples_to_run():
    assert len(CLAUSES) >= 15 and len(SCHEME_BLOCKS) >= 3


def _failures(scheme, matcher) -> list[str]:
    results = run_cases(scheme, matcher)
    assert results, "an example with no test cases"
    return [f"{r.where} {r.name}: {'；'.join(r.problems)}" for r in results if not r.ok]


@pytest.mark.parametrize("files", [f for _, f in CASES], ids=[n for n, _ in CASES])
def test_readme_example_loads_and_passes_its_cases(files, engine):
    try:
        scheme = load_files(files, "example")
    except RuleSetError as err:
        pytest.fail("\n".join(str(e) for e in err.errors))
    assert all(isinstance(c.points, Decimal) for c in scheme.clauses.values())
    failed = _failures(scheme, OracleMatcher())
    assert not failed, "oracle:\n" + "\n".join(failed)
    failed = _failures(scheme, engine)  # durable-rules, as `scoring test` runs them
    assert not failed, "durable-rules:\n" + "\n".join(failed)


def test_a_clause_note_is_in_the_trace_as_section_3_5_says():
    # 3.5 and the appendix both say a clause's note is shown in the explained score
    assert (
        "`note` | 否 | 文字 | 本条款的解读说明（整条的读法、分值来源等）。显示在计分说明中" in TEXT
    )
    from service.domain.scoring import score_unit
    from service.domain.trace import render

    key = next(k for k, b in CLAUSES.items() if "note" in _data(b) and k not in USED)
    scheme = load_files(_alone(CLAUSES[key]), "example")
    clause = scheme.clauses[key[0]]
    text = render(score_unit(scheme, "甲", clause.tests[0].facts, OracleMatcher(), "oracle"))
    assert "解读：" + " ".join(clause.note.split())[:30] in text
