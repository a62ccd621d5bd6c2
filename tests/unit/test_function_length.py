"""No function of the scoring core is over 50 lines: a long one is several things in a tangle.

(Issue 8: ``_outcome`` had grown to 123 lines computing points and wording together.)
"""

from __future__ import annotations

import ast
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[2] / "service" / "domain"
LIMIT = 50


def _functions(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            # from the def line (decorators excluded) to the last line of its body
            yield node.name, node.lineno, node.end_lineno - node.lineno + 1


def test_no_function_in_the_scoring_core_is_over_50_lines():
    files = sorted(DOMAIN.rglob("*.py"))
    assert any(p.parent.name == "blocks" for p in files)  # the walk reaches the packages too
    long = [
        f"{path.relative_to(DOMAIN)}:{line} {name} ({length} lines)"
        for path in files
        for name, line, length in _functions(path)
        if length > LIMIT
    ]
    assert not long, f"functions over {LIMIT} lines in service/domain: {long}"


def test_the_check_sees_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(LIMIT))
    source = tmp_path / "long.py"
    source.write_text(f"def long():\n{body}\n", encoding="utf-8")
    assert [(n, length) for n, _, length in _functions(source)] == [("long", LIMIT + 1)]
