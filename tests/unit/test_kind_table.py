"""The table of building blocks is the one place a rule kind is known by its name.

No module outside ``service/domain/blocks`` compares anything with a kind's name: a new kind
is then one module and one line in ``BLOCKS``, and nothing else to find and change."""

from __future__ import annotations

import ast
from pathlib import Path

from service.domain.blocks import BLOCKS
from service.rulefiles import spec

ROOT = Path(__file__).resolve().parents[2]
BLOCKS_DIR = ROOT / "service" / "domain" / "blocks"


def _kind_comparisons(path: Path):
    """(line, text) of each comparison or membership test with a kind's name as a constant."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        for side in [node.left, *node.comparators]:
            values = side.elts if isinstance(side, (ast.Tuple, ast.List, ast.Set)) else [side]
            if any(isinstance(v, ast.Constant) and v.value in BLOCKS for v in values):
                yield node.lineno, ast.unparse(node)


def test_no_kind_name_is_compared_outside_the_blocks():
    files = [
        p
        for folder in ("service", "admin", "schemas")
        for p in sorted((ROOT / folder).rglob("*.py"))
        if BLOCKS_DIR not in p.parents
    ]
    found = [
        f"{p.relative_to(ROOT)}:{line}: {text}"
        for p in files
        for line, text in _kind_comparisons(p)
    ]
    assert not found, "kind names compared outside service/domain/blocks:\n" + "\n".join(found)


def test_the_check_finds_a_kind_comparison(tmp_path):
    source = tmp_path / "m.py"
    source.write_text('if rule.kind in ("bands", "steps"):\n    pass\nx = kind == "fixed"\n')
    assert [line for line, _ in _kind_comparisons(source)] == [1, 3]


def test_the_loader_reads_its_kinds_and_their_keys_from_the_table():
    assert tuple(BLOCKS) == spec.RULE_KINDS
    for kind, block in BLOCKS.items():
        required, optional = spec.KIND_FIELDS[kind]
        assert required == {k.name for k in block.keys if k.required}
        assert optional == {k.name for k in block.keys if not k.required}
        for key in block.keys:
            assert key.name in spec.RULE_FIELDS
