"""Each broken rule file is rejected with file, line, column and an exact message.

A fixture under fixtures/bad_rules/<case>/ holds only the files that differ
from fixtures/minimal/ (a copy of the good scheme) and, in expected.txt, the
exact errors the loader must report, one per line.
"""

import os
import shutil
import time
from decimal import Decimal
from pathlib import Path

import pytest

from service.rulefiles import RuleSetError, loader
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


# --- inputs that cannot sensibly live in git: generated here -----------------------------------


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "rules"
    shutil.copytree(MINIMAL, root / "minimal")
    return root


def _errors(root: Path) -> list[str]:
    with pytest.raises(RuleSetError) as err:
        load_all(root)
    return [str(e) for e in err.value.errors]


def test_brackets_30000_deep_are_refused_before_the_parser_sees_them(tmp_path):
    # regression: libyaml composed them recursively in C and the process died of SIGSEGV
    root = _copy(tmp_path)
    (root / "minimal" / "clauses" / "09-deep.yaml").write_text("[" * 30000, encoding="utf-8")
    (root / "minimal" / "clauses" / "10-deep.yaml").write_text(
        "a:\n" + "".join(" " * i + "- \n" for i in range(1, 60)), encoding="utf-8"
    )
    (root / "minimal" / "clauses" / "11-deep.yaml").write_text("- " * 30000 + "x", encoding="utf-8")
    started = time.perf_counter()
    assert _errors(root) == [
        "minimal/clauses/09-deep.yaml:1:39: 列表与映射嵌套过深：规则文件最多嵌套40层，请检查括号“[”“{”是否配对、缩进是否正确",
        "minimal/clauses/10-deep.yaml:20:20: 列表与映射嵌套过深：规则文件最多嵌套40层，请检查括号“[”“{”是否配对、缩进是否正确",
        "minimal/clauses/11-deep.yaml:1:1: 列表与映射嵌套过深：规则文件最多嵌套40层，请检查括号“[”“{”是否配对、缩进是否正确",
    ]
    assert time.perf_counter() - started < 2


def test_a_256_mib_file_is_refused_unread(tmp_path):
    # regression: it was read and parsed whole (805 MiB at the peak)
    root = _copy(tmp_path)
    with open(root / "minimal" / "clauses" / "09-huge.yaml", "wb") as f:
        f.truncate(256 << 20)  # sparse: costs no disk
    started = time.perf_counter()
    assert _errors(root) == [
        f"minimal/clauses/09-huge.yaml:1:1: 文件过大（{256 << 20}字节）：一个规则文件最多{loader.MAX_FILE_BYTES}字节"
    ]
    assert time.perf_counter() - started < 1


def test_too_many_clause_files_are_refused_before_any_is_parsed(tmp_path):
    # regression: 1,000 clause files were all parsed (9 s) before the clause limit refused them
    root = _copy(tmp_path)
    text = (MINIMAL / "clauses" / "02-coverage.yaml").read_text(encoding="utf-8")
    for i in range(1000):
        (root / "minimal" / "clauses" / f"x{i:04}.yaml").write_text(text, encoding="utf-8")
    started = time.perf_counter()
    assert _errors(root) == [
        f"minimal/scheme.yaml:1:1: 一套细则最多{loader.MAX_CLAUSES}个条款，这里有1007个"
    ]
    assert time.perf_counter() - started < 2


def test_symlinks_are_refused_and_never_followed(tmp_path):
    # regression: a clause linked to /proc/self/status was read, and its keys shown in messages
    root = _copy(tmp_path)
    (root / "minimal" / "clauses" / "09-leak.yaml").symlink_to("/proc/self/status")
    (root / "minimal" / "linked").symlink_to(tmp_path)
    assert _errors(root) == [
        "minimal/clauses/09-leak.yaml:1:1: 是符号链接：规则文件夹中只能有普通文件和文件夹",
        "minimal/linked:1:1: 是符号链接：规则文件夹中只能有普通文件和文件夹",
    ]


def test_a_fifo_is_refused_not_read(tmp_path):
    root = _copy(tmp_path)
    os.mkfifo(root / "minimal" / "clauses" / "09-pipe.yaml")  # reading it would block forever
    assert _errors(root) == ["minimal/clauses/09-pipe.yaml:1:1: 不是普通文件，未读取"]


def test_a_file_name_not_in_utf8_is_named_and_refused(tmp_path):
    # regression: UnicodeEncodeError while writing the message (and hashing the name)
    root = _copy(tmp_path)
    name = os.fsdecode(b"09-\xb9\xa4\xd7\xf7.yaml")  # "工作" in GBK
    (root / "minimal" / "clauses" / name).write_bytes(
        (MINIMAL / "clauses" / "02-coverage.yaml").read_bytes()
    )
    errors = _errors(root)
    assert errors == [
        "minimal/clauses/09-\\xb9\\xa4\\xd7\\xf7.yaml:1:1: 文件名或文件夹名不是 UTF-8 编码，请重新命名"
    ]
    assert all(e.encode("utf-8") for e in errors)


def test_folders_too_deep_are_refused(tmp_path):
    root = _copy(tmp_path)
    deep = root / "minimal" / "/".join(["d"] * 30)
    deep.mkdir(parents=True)
    (deep / "x.yaml").write_text("id: x\n", encoding="utf-8")
    (errors,) = [_errors(root)]
    assert errors == ["minimal/d/d/d/d/d/d/d/d/d/d/d:1:1: 文件夹层数过多：规则目录内最多12层"]


@pytest.mark.parametrize("spelling", ["true", "True", "TRUE"])
def test_yaml_booleans_in_every_spelling_are_read_as_written(tmp_path, spelling):
    # regression: TRUE and True were read as false: whole_steps, required and test facts
    root = _copy(tmp_path)
    path = root / "minimal" / "clauses" / "02-coverage.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("step: 5, each: -1}", f"step: 5, each: -1, whole_steps: {spelling}}}")
    path.write_text(text, encoding="utf-8")
    scheme = load_scheme(root / "minimal")
    assert scheme.clauses["2"].rules[1].whole_steps is True
    path.write_text(
        text.replace(f"whole_steps: {spelling}", "whole_steps: FALSE"), encoding="utf-8"
    )
    assert load_scheme(root / "minimal").clauses["2"].rules[1].whole_steps is False


def test_a_test_fact_true_in_capitals_is_true(tmp_path):
    root = _copy(tmp_path)
    path = root / "minimal" / "clauses" / "03-work.yaml"
    text = path.read_text(encoding="utf-8")
    assert "report_done: true, bureau_score: 87.5" in text
    path.write_text(
        text.replace(
            "report_done: true, bureau_score: 87.5", "report_done: TRUE, bureau_score: 87.5"
        ),
        encoding="utf-8",
    )
    (test, _) = load_scheme(root / "minimal").clauses["3"].tests
    assert test.facts["report_done"] is True


@pytest.mark.parametrize(
    "breaks", ["\u2028", "\u2029", "\x85", "\r", "\r\n"], ids=["LS", "PS", "NEL", "CR", "CRLF"]
)
def test_line_numbers_are_the_editor_s_whatever_breaks_the_text_carries(tmp_path, breaks):
    # regression: U+2028, U+2029, NEL and a lone CR shifted every later line number by one.
    # An editor counts LF (and CRLF as one); these breaks are inside a line for it.
    root = _copy(tmp_path)
    path = root / "minimal" / "clauses" / "02-coverage.yaml"
    text = path.read_text(encoding="utf-8")
    pasted = text.replace("共5分，每少5%扣1分", f'"共5分，{breaks}每少5%扣1分').replace(
        "扣完为止}", '扣完为止"}'
    )
    pasted = pasted.replace("step: 5,", "stepp: 5,")
    path.write_bytes(pasted.encode("utf-8"))
    lines = pasted.split("\n")
    line = next(i for i, text in enumerate(lines, 1) if "stepp" in text)
    column = lines[line - 1].index("stepp") + 1
    assert _errors(root) == [
        f"minimal/clauses/02-coverage.yaml:{line}:{column}: 规则（rule）中没有键“stepp”。是否想写“step”？"
    ]


def test_an_error_inside_an_expression_after_a_line_separator_is_placed_by_the_editor(tmp_path):
    root = _copy(tmp_path)
    path = root / "minimal" / "clauses" / "02-coverage.yaml"
    text = path.read_text(encoding="utf-8").replace("扣完为止}", "扣完\u2028为止}", 1)
    text = text.replace("when: coverage >= 0", "when: covrage >= 0")
    path.write_text(text, encoding="utf-8")
    # the plain scalar is folded by YAML at U+2028; the position is still the editor's
    errors = _errors(root)
    line = next(i for i, t in enumerate(text.split("\n"), 1) if "covrage" in t)
    column = text.split("\n")[line - 1].index("covrage") + 1
    assert errors == [
        f"minimal/clauses/02-coverage.yaml:{line}:{column}: 表达式引用了未声明的事实 “covrage”"
    ]


def test_whole_steps_true_in_capitals_scores_whole_steps(tmp_path, oracle):
    # the audit's case: a 97.5 % rate with steps of 1 % scored 4.25 (proportional) instead of 4.4
    root = _copy(tmp_path)
    path = root / "minimal" / "clauses" / "02-coverage.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("step: 5, each: -1}", "step: 1, each: -0.3, whole_steps: TRUE}"),
        encoding="utf-8",
    )
    scheme = load_scheme(root / "minimal")
    from service.domain.scoring import score_unit

    facts = {
        "target": 95, "actual": 96, "coverage": Decimal("97.5"), "report_done": True,
        "bureau_score": 100, "review_points": 2, "review_reason": "好", "maturity": 100,
        "awards": 0, "accidents": 0, "major_incident": False,
    }  # fmt: skip
    result = score_unit(scheme, "甲", facts, oracle, "test")
    points = next(c for c in result.clauses if c.id == "2").points
    assert points == Decimal("4.4")  # 2 whole steps of 1 % missing: 5 - 2 x 0.3


def _clause_file(root: Path, name: str, text: str) -> None:
    (root / "minimal" / "clauses" / name).write_text(text, encoding="utf-8")


_HEAD = "id: {id}\ntitle: t\ncategory: B\npoints: 1\nsource: {{document: d, text: t}}\n"


def test_what_the_engine_cannot_run_is_refused_at_load(tmp_path):
    # regression: conditions.size() was never called; an `or` of 520 alternatives loaded and
    # made every evaluation time out.  Each of the engine's limits (engine/limits.py) is checked.
    from service.engine import limits

    root = _copy(tmp_path)
    many = limits.MAX_CLAUSE_MATCHES + 1
    bands = (
        "".join(f'      - {{range: "[{i}, {i + 1})", points: 0}}\n' for i in range(many - 1))
        + f'      - {{range: "[{many - 1}, inf)", points: 1}}\n'
    )
    _clause_file(
        root,
        "08-bands.yaml",
        _HEAD.format(id="b")
        + "facts:\n  - {name: n, type: integer, label: n}\n"
        + "rules:\n  - id: r\n    kind: bands\n    measure: n\n    bands:\n"
        + bands
        + "tests:\n  - {name: t, facts: {n: 0}, points: 0}\n",
    )
    names = [f"f{i}" for i in range(limits.MAX_OPERANDS + 1)]
    facts = "".join(f"  - {{name: {n}, type: boolean, label: {n}}}\n" for n in names)
    rules = "".join(
        f"  - {{id: r{j}, kind: fixed, points: 0, when: {' and '.join(names[j::5])}}}\n"
        for j in range(5)
    )
    _clause_file(
        root,
        "09-operands.yaml",
        _HEAD.format(id="o")
        + "facts:\n"
        + facts
        + "rules:\n"
        + rules
        + "tests:\n  - {name: t, facts: {}, points: 0}\n",
    )
    assert _errors(root) == [
        f"minimal/clauses/08-bands.yaml:9:3: 本条款的规则、档与否决共{many}个，规则引擎最多400个，请拆分条款",
        "minimal/clauses/09-operands.yaml:209:3: 本条款读取的事实与计算值共201个，规则引擎一次最多200个，请拆分条款",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "!!seq [" * 30000,
        "a: " + "&x [" * 30000,
        "a: " + "!!map {b: " * 30000,
        "a: text - 'not a quote\nb: " + "[" * 30000,
        "a: [x - 'not a quote, " + "[" * 30000,
        "a: it's\nb: " + "{c: " * 30000,
        "a:\r" + "- " * 30000 + "x",
        "a:\u2028" + "- " * 30000 + "x",
        "a: [[ b - |\n" + "   [" * 30000,
    ],
    ids=[
        "tags",
        "anchors",
        "tagged-maps",
        "quote-in-block-text",
        "quote-in-flow-text",
        "apostrophe",
        "items-after-a-lone-CR",
        "items-after-U+2028",
        "bar-in-flow-text",
    ],
)
def test_nesting_cannot_hide_behind_tags_anchors_or_quotes_that_are_text(tmp_path, text):
    # the pre-scan must never count too shallow: each of these is 30,000 deep to libyaml
    root = _copy(tmp_path)
    (root / "minimal" / "clauses" / "09-deep.yaml").write_text(text, encoding="utf-8")
    (error,) = _errors(root)
    assert "列表与映射嵌套过深" in error
