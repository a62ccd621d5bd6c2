"""``scoring score`` over many units (issue 12): scored in batches, each result written and let go
as it is made, ranked on what ranking needs; the output byte for byte what scoring every unit at
once, ranking the full results and printing them gave.

The reference below is that former way, kept here as the test oracle.  The batches are made
small (``CHUNK``) so that a few dozen units cross many of them.
"""

from __future__ import annotations

import gc
import json
import weakref
from pathlib import Path

import pytest
from click.testing import CliRunner

from service import cli
from service.domain import scoring
from service.domain.grading import rank_units
from service.domain.scoring import score_units
from service.domain.trace import render, render_ranking, to_data
from service.engine.oracle import OracleMatcher
from service.rulefiles.loader import load_all, load_scheme
from tools import units_file

from .conftest import FIXTURES, MINIMAL, RULES

RANKED_SCHEME = "baoshan-2022-b1"  # graded by rank
PLAIN_SCHEME = "zhenxing-2010"  # no grading: a ranking with no grades
RELATIVE = FIXTURES / "relative" / "ruian"  # parts scored by place and a converted total


def reference(scheme, units: dict, as_json: bool, clause_id: str | None = None) -> bytes:
    """What ``scoring score`` printed before it streamed: every unit scored in one call, the
    full results ranked and printed."""
    results = score_units(scheme, units, OracleMatcher(), OracleMatcher.name)
    out: list[str] = []
    if clause_id is not None:
        if as_json:
            payload = {
                "scheme": scheme.id,
                "version": scheme.version,
                "clause": clause_id,
                "results": [
                    {
                        "unit": r.unit,
                        "clause": to_data(next(c for c in r.clauses if c.id == clause_id)),
                    }
                    for r in results
                ],
            }
            return (json.dumps(payload, ensure_ascii=False, indent=2) + "\n").encode()
        for r in results:
            if len(results) > 1:
                out.append(f"被考核单位：{r.unit}")
            out.append(cli._clause_block(render(cli._labelled(scheme, r)), clause_id))
            out.append("")
        return "".join(line + "\n" for line in out).encode()
    many = len(results) > 1 or scheme.grading.method == "rank"
    entries = rank_units(scheme, results) if many else None
    by_unit = {e.unit: e for e in entries} if entries else {}
    if as_json:
        payload = {
            "scheme": scheme.id,
            "version": scheme.version,
            "results": to_data(results),
            "ranking": to_data(entries) if entries else None,
        }
        return (json.dumps(payload, ensure_ascii=False, indent=2) + "\n").encode()
    for r in results:
        out.append(render(cli._labelled(scheme, r), by_unit.get(r.unit)))
        out.append("")
    if entries and len(entries) > 1:
        out.append(render_ranking(entries))
    return "".join(line + "\n" for line in out).encode()


@pytest.fixture()
def small_chunks(monkeypatch):
    monkeypatch.setattr(cli, "CHUNK", 7)


def _invoke(*args, jobs: int = 1) -> tuple[int, bytes, str]:
    result = CliRunner().invoke(
        cli.main, ["score", *map(str, args), "--oracle", "--jobs", str(jobs)]
    )
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout_bytes, result.stderr


def _units(scheme, count: int, seed: int = 5) -> dict:
    return dict(units_file.units(scheme, count, seed))


def _written(tmp_path: Path, scheme, count: int, fmt: str, seed: int = 5) -> Path:
    suffix = {"json": ".json", "jsonl": ".jsonl", "dir": ""}[fmt]
    return units_file.write(scheme, count, tmp_path / f"{fmt}{count}{suffix}", fmt, seed)


@pytest.fixture(scope="module")
def seeds():
    return load_all(RULES)


@pytest.mark.parametrize("jobs", [1, 3], ids=["one process", "three processes"])
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
@pytest.mark.parametrize("scheme_id", [RANKED_SCHEME, PLAIN_SCHEME])
def test_many_units_print_what_scoring_them_at_once_printed(
    tmp_path, seeds, small_chunks, scheme_id, as_json, jobs
):
    scheme = seeds[scheme_id]
    path = _written(tmp_path, scheme, 45, "jsonl")
    flags = ["--json"] if as_json else []
    code, out, err = _invoke(scheme_id, path, "--rules", RULES, *flags, jobs=jobs)
    assert code == 0, err
    expected = reference(scheme, _units(scheme, 45), as_json)
    assert out == expected
    if not as_json:
        assert out.count("名次：".encode()) == 45  # each unit's text carries its rank


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_parts_scored_at_ranking_are_worked_out_from_the_facts_kept(
    tmp_path, small_chunks, as_json
):
    scheme = load_scheme(RELATIVE, RELATIVE.parent)
    path = _written(tmp_path, scheme, 30, "json")
    flags = ["--json"] if as_json else []
    code, out, err = _invoke(scheme.id, path, "--rules", RELATIVE.parent, *flags)
    assert code == 0, err
    assert out == reference(scheme, _units(scheme, 30), as_json)
    assert "排名计分".encode() in out or b'"relative"' in out


def test_jsonl_a_folder_and_one_json_document_give_the_same_output(tmp_path, seeds, small_chunks):
    scheme = seeds[RANKED_SCHEME]
    outputs = {
        fmt: _invoke(RANKED_SCHEME, _written(tmp_path, scheme, 20, fmt), "--rules", RULES)
        for fmt in ("json", "jsonl", "dir")
    }
    assert {code for code, _, _ in outputs.values()} == {0}
    assert outputs["json"][1] == outputs["jsonl"][1] == outputs["dir"][1]


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
@pytest.mark.parametrize("count", [1, 16])
def test_one_clause_of_many_units(tmp_path, seeds, small_chunks, as_json, count):
    scheme = seeds[RANKED_SCHEME]
    clause_id = next(iter(scheme.clauses))
    path = _written(tmp_path, scheme, count, "jsonl")
    flags = ["--json", "--clause", clause_id] if as_json else ["--clause", clause_id]
    code, out, err = _invoke(RANKED_SCHEME, path, "--rules", RULES, *flags, jobs=2)
    assert code == 0, err
    assert out == reference(scheme, _units(scheme, count), as_json, clause_id)


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_one_unit_and_no_units(tmp_path, as_json):
    minimal = load_all(MINIMAL)["minimal"]  # files named as the command names them
    flags = ["--json"] if as_json else []
    (facts,) = dict(units_file.units(minimal, 1, 3)).values()
    one = tmp_path / "one.json"
    one.write_text(units_file._line("甲街道", facts), encoding="utf-8")
    code, out, err = _invoke("minimal", one, "--rules", MINIMAL, *flags)
    assert code == 0, err
    assert out == reference(minimal, cli.read_facts_file(one), as_json)
    none = tmp_path / "none.json"
    none.write_text('{"units": {}}', encoding="utf-8")
    code, out, err = _invoke("minimal", none, "--rules", MINIMAL, *flags)
    assert code == 0, err
    assert out == reference(minimal, {}, as_json)


def test_a_unit_named_twice_in_json_lines_is_refused_naming_both_lines(tmp_path, seeds):
    scheme = seeds[RANKED_SCHEME]
    path = _written(tmp_path, scheme, 3, "jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines + ["", lines[1]]) + "\n", encoding="utf-8")
    code, out, err = _invoke(RANKED_SCHEME, path, "--rules", RULES)
    assert code == 1 and out == b""
    assert f"{path.name} 第5行：单位“单位00002”重复出现（{path.name} 第2行已有）" in err


def test_a_line_that_is_not_json_is_named(tmp_path, seeds):
    scheme = seeds[RANKED_SCHEME]
    path = _written(tmp_path, scheme, 2, "jsonl")
    path.write_text(path.read_text(encoding="utf-8") + '{"unit": "乙", "facts": {\n', "utf-8")
    code, out, err = _invoke(RANKED_SCHEME, path, "--rules", RULES)
    assert code == 1 and out == b""
    assert f"{path.name} 第3行：不是有效的 JSON（第" in err


@pytest.mark.parametrize("jobs", [1, 2], ids=["one process", "two processes"])
def test_wrong_facts_late_in_the_file_leave_no_output(tmp_path, seeds, small_chunks, jobs):
    scheme = seeds[RANKED_SCHEME]
    path = _written(tmp_path, scheme, 30, "jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    bad = json.loads(lines[25])
    bad["facts"]["no_such_fact"] = 1
    lines[25] = json.dumps(bad, ensure_ascii=False)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out, err = _invoke(RANKED_SCHEME, path, "--rules", RULES, jobs=jobs)
    assert code == 2
    assert out == b""  # units 1-21 were scored in earlier batches: nothing of them printed
    assert "事实有误 no_such_fact" in err


def test_at_most_one_batch_of_full_results_is_alive_at_a_time(tmp_path, seeds, monkeypatch):
    """Results are let go as they are written: the clauses of 60 units are never all held."""
    monkeypatch.setattr(cli, "CHUNK", 5)
    alive: list = []
    most = [0]
    calls = [0]

    def watched(*args, **kwargs):
        gc.collect()
        most[0] = max(most[0], sum(1 for ref in alive if ref() is not None))
        calls[0] += 1
        results = score_units(*args, **kwargs)
        alive.extend(weakref.ref(r) for r in results)
        return results

    monkeypatch.setattr(scoring, "score_units", watched)
    scheme = seeds[RANKED_SCHEME]
    code, out, err = _invoke(
        RANKED_SCHEME, _written(tmp_path, scheme, 60, "jsonl"), "--rules", RULES
    )
    assert code == 0, err
    assert len(alive) == 60
    assert calls[0] == 12  # scored batch by batch
    assert most[0] <= 5  # at most the batch just written, never the earlier ones


def test_a_file_of_a_folder_that_is_not_a_facts_file_is_named(tmp_path, seeds):
    scheme = seeds[RANKED_SCHEME]
    folder = _written(tmp_path, scheme, 3, "dir")
    (folder / "zz-notes.json").write_text('{"title": "说明"}', encoding="utf-8")
    code, out, err = _invoke(RANKED_SCHEME, folder, "--rules", RULES)
    assert code == 1 and out == b""
    assert "zz-notes.json：事实文件应包含 facts（一个单位）或 units（多个单位）" in err


def test_wrong_facts_in_several_batches_report_the_first_however_many_processes(
    tmp_path, seeds, small_chunks
):
    """Batches go to whichever process is free, so a later batch may be scored before an earlier
    one; the error reported is still that of the first wrong batch, as one process reports it.
    Batches of 7: a wrong unit in each of batches 1 to 7, the first held by a forked process."""
    scheme = seeds[RANKED_SCHEME]
    path = _written(tmp_path, scheme, 60, "jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    wrong = (10, 16, 24, 31, 38, 45, 52)
    for number in wrong:
        bad = json.loads(lines[number])
        bad["facts"][f"wrong_{number}"] = 1
        lines[number] = json.dumps(bad, ensure_ascii=False)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    outcomes = {j: _invoke(RANKED_SCHEME, path, "--rules", RULES, jobs=j) for j in (1, 2, 3)}
    for code, out, err in outcomes.values():
        assert code == 2 and out == b""
        assert [n for n in wrong if f"事实有误 wrong_{n}:" in err] == [10]
    assert outcomes[1][2] == outcomes[2][2] == outcomes[3][2]


@pytest.mark.parametrize("how", ["dies", "raises"])
def test_a_forked_process_that_fails_leaves_no_output(
    tmp_path, seeds, small_chunks, monkeypatch, how
):
    """A forked scoring process that dies (its exit code said) or fails (the error said): the
    command stops with nothing printed, whichever batches this process scored meanwhile."""
    import os
    import time

    parent = os.getpid()

    def failing(*args, **kwargs):
        if os.getpid() != parent:
            if how == "dies":
                os._exit(3)
            raise RuntimeError("引擎坏了")
        time.sleep(0.1)  # this process is slow: the forked one surely takes a batch
        return score_units(*args, **kwargs)

    monkeypatch.setattr(scoring, "score_units", failing)
    scheme = seeds[RANKED_SCHEME]
    path = _written(tmp_path, scheme, 40, "jsonl")
    code, out, err = _invoke(RANKED_SCHEME, path, "--rules", RULES, jobs=2)
    assert code == 1 and out == b""
    if how == "dies":
        assert "评分进程意外退出（退出码 3），未输出任何结果" in err
    else:
        assert "评分失败：RuntimeError: 引擎坏了" in err


@pytest.mark.parametrize("to", ["file", "pipe"])
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
@pytest.mark.parametrize("one_clause", [False, True], ids=["all", "one clause"])
def test_run_as_a_user_runs_it_a_file_and_a_pipe_get_the_same_bytes(
    tmp_path, seeds, to, as_json, one_clause
):
    """The command run as a user runs it, its standard output a file or a pipe (not a test's
    buffer): the bytes scoring every unit at once gave, from one process and from two."""
    import subprocess
    import sys

    scheme = seeds[RANKED_SCHEME]
    count = cli.PARALLEL_FROM * cli.CHUNK + 13
    path = _written(tmp_path, scheme, count, "jsonl")
    clause_id = next(iter(scheme.clauses)) if one_clause else None
    flags = (["--json"] if as_json else []) + (["--clause", clause_id] if clause_id else [])
    expected = reference(scheme, _units(scheme, count), as_json, clause_id)
    for jobs in ("1", "2"):
        args = [sys.executable, "-m", "service.cli", "score", RANKED_SCHEME, str(path)]
        args += ["--rules", str(RULES), "--oracle", "--jobs", jobs, *flags]
        if to == "file":
            with open(tmp_path / "out", "wb") as out:
                proc = subprocess.run(args, stdout=out, stderr=subprocess.PIPE, timeout=300)
            got = (tmp_path / "out").read_bytes()
        else:
            proc = subprocess.run(args, capture_output=True, timeout=300)
            got = proc.stdout
        assert proc.returncode == 0, proc.stderr.decode()
        assert got == expected
