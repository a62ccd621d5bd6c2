"""Each broken rule file is rejected with file, line, column and an exact message.

A fixture under fixtures/bad_rules/<case>/ holds only the files that differ
from fixtures/minimal/ (a copy of the good scheme) and, in expected.txt, the
exact errors the loader must report, one per line.
"""

import shutil
from pathlib import Path

import pytest

from service.rulefiles import RuleSetError
from service.rulefiles.loader import load_all, load_scheme

from .conftest import FIXTURES, MINIMAL

CASES = sorted(p for p in (FIXTURES / "bad_rules").iterdir() if p.is_dir())


def _assemble(case: Path, tmp_path: Path) -> Path:
    root = tmp_path / "rules"
    shutil.copytree(MINIMAL, root / "minimal")
    for f in case.rglob("*"):
        if f.is_file() and f.name != "expected.txt":
            target = root / "minimal" / f.relative_to(case)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, target)
    return root


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_rule_file(case, tmp_path):
    root = _assemble(case, tmp_path)
    with pytest.raises(RuleSetError) as err:
        load_all(root)
    expected = (case / "expected.txt").read_text(encoding="utf-8").splitlines()
    assert [str(e) for e in err.value.errors] == expected


def test_the_issue_s_kinds_of_error_each_have_a_fixture():
    names = {c.name for c in CASES}
    assert {
        "unknown-key",
        "duplicate-key",
        "wrong-type-number",
        "dangling-fact",
        "overlapping-bands",
        "gapped-bands",
        "clause-points-do-not-add-up",
        "categories-do-not-add-up-to-total",
    } <= names


def test_the_base_fixture_is_good():
    assert load_scheme(MINIMAL).id == "minimal"


def test_an_error_anywhere_loads_nothing(tmp_path):
    root = _assemble(FIXTURES / "bad_rules" / "gapped-bands", tmp_path)
    shutil.copytree(MINIMAL, root / "another")
    (root / "another" / "scheme.yaml").write_text(
        (MINIMAL / "scheme.yaml").read_text(encoding="utf-8").replace("id: minimal", "id: another"),
        encoding="utf-8",
    )
    with pytest.raises(RuleSetError):
        load_all(root)  # the good scheme beside the bad one is not returned on its own


def test_maturity_levels_load_in_any_order(tmp_path):
    # regression: coverage used to be judged on the first-listed level sharing a bound
    root = tmp_path / "rules"
    shutil.copytree(MINIMAL, root / "minimal")
    path = root / "minimal" / "clauses" / "05-maturity.yaml"
    text = path.read_text(encoding="utf-8")
    levels = [
        '      - {range: "[100, 100]", label: "100%"}\n',
        '      - {range: "[60, 100)", label: 60%以上}\n',
        '      - {range: "[30, 60)", label: 30%以上}\n',
        '      - {range: "[0, 30)", label: 30%以下}\n',
    ]
    assert "".join(levels) in text
    path.write_text(text.replace("".join(levels), "".join(reversed(levels))), encoding="utf-8")
    scheme = load_scheme(root / "minimal")
    assert [lv.label for lv in scheme.clauses["5"].rules[0].levels] == [
        "30%以下",
        "30%以上",
        "60%以上",
        "100%",
    ]
