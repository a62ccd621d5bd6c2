"""rules/README.md documents the rule-file format for policy staff.

Three checks keep it honest:
- every key the loader accepts (``service.rulefiles.spec.all_keys()``) is named
  in backticks somewhere in the README, so no key goes undocumented;
- every building block in the one table of them (``service.domain.blocks.BLOCKS``) has its
  section, a heading that names its kind, and each key its block declares is documented;
- every ```yaml block that is a complete rule file (it starts with an ``id:``
  line) parses as YAML, so the worked examples can be copied as they are.

Whether the examples also pass ``scoring check`` / ``scoring test`` is checked
by hand when the README is edited (see the README's preface); this test only
guards the two properties above.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from service.domain.blocks import BLOCKS
from service.rulefiles.spec import all_keys

README = Path(__file__).resolve().parent.parent / "rules" / "README.md"
TEXT = README.read_text(encoding="utf-8")
YAML_BLOCKS = re.findall(r"^```yaml\n(.*?)^```", TEXT, re.S | re.M)
RULE_FILE_BLOCKS = [b for b in YAML_BLOCKS if b.startswith("id:")]


def test_every_accepted_key_is_documented_in_backticks():
    missing = {
        obj: sorted(k for k in keys if f"`{k}`" not in TEXT) for obj, keys in all_keys().items()
    }
    missing = {obj: keys for obj, keys in missing.items() if keys}
    assert not missing, (
        f"keys accepted by the loader but not written as `key` in rules/README.md: {missing}"
    )


HEADINGS = re.findall(r"^#+ .*$", TEXT, re.M)


@pytest.mark.parametrize("kind", list(BLOCKS))
def test_every_building_block_has_its_section(kind):
    assert any(re.search(rf"\b{kind}\b", h) for h in HEADINGS), (
        f"rules/README.md has no heading naming the building block {kind}"
    )
    undocumented = [k.name for k in BLOCKS[kind].keys if f"`{k.name}`" not in TEXT]
    assert not undocumented, (
        f"{kind}'s keys not written as `key` in rules/README.md: {undocumented}"
    )


def test_readme_has_rule_file_examples():
    assert len(RULE_FILE_BLOCKS) >= 10


@pytest.mark.parametrize(
    "block",
    RULE_FILE_BLOCKS,
    ids=[f"{i}-{b.splitlines()[0]}" for i, b in enumerate(RULE_FILE_BLOCKS)],
)
def test_rule_file_example_parses_as_yaml(block):
    data = YAML(typ="safe", pure=True).load(block)
    assert isinstance(data, dict)
    assert "id" in data
