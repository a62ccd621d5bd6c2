"""The one helper behind every tool's ``--against REV`` (tools/revisions.py), against a real
earlier revision of this repository: the worktree holds that commit and is gone afterwards (also
after an error), a child runs on that revision's code and hands its value back, and a child on the
wrong code, a failing child or a revision that does not exist stops the tool with a clear message.
Skipped where there is no earlier commit (a shallow clone, an exported tree)."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from tools import revisions

ROOT = Path(__file__).resolve().parent.parent


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)


PREVIOUS = _git("rev-parse", "--verify", "--quiet", "HEAD~1^{commit}").stdout.strip()
pytestmark = pytest.mark.skipif(not PREVIOUS, reason="no earlier commit in this checkout")


def _registered() -> str:
    return _git("worktree", "list", "--porcelain").stdout


@pytest.fixture
def tool(tmp_path):
    """A tool file outside both trees: what the child imports comes from the side it runs on."""
    path = tmp_path / "probe.py"
    path.write_text(
        textwrap.dedent(
            """
            import os, sys

            import service
            import tools

            def where(label, numbers):
                print("noise before the value")  # a side's own output does not hide its value
                return {
                    "label": label,
                    "sum": sum(numbers),
                    "service": service.__file__,
                    "tools": tools.__file__,
                    "pythonpath": os.environ.get("PYTHONPATH"),
                    "rules_dir": os.environ.get("SCORING_RULES_DIR"),
                    "cwd": os.getcwd(),
                }

            def fails():
                sys.stderr.write("the side's own error\\n")
                raise SystemExit(3)
            """
        ),
        encoding="utf-8",
    )
    return str(path)


def test_the_worktree_holds_the_revision_and_a_child_runs_on_its_code(tool, monkeypatch):
    monkeypatch.setenv("SCORING_RULES_DIR", str(ROOT / "rules"))
    with revisions.worktree("HEAD~1", prefix="test-revisions-") as (commit, other):
        assert commit == PREVIOUS
        assert other.name == "rev" and other.parent.name.startswith("test-revisions-")
        checked_out = subprocess.run(
            ["git", "-C", str(other), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        assert checked_out == PREVIOUS
        assert str(other) in _registered()

        value = revisions.call(other, tool, "where", "其他版本", [1, 2, 3], what="测量进程")
        assert value["label"] == "其他版本" and value["sum"] == 6
        assert Path(value["service"]).resolve().is_relative_to(other.resolve())
        assert Path(value["tools"]).resolve().is_relative_to(other.resolve())
        assert value["pythonpath"] == str(other)  # the engine processes it spawns: same side
        assert value["rules_dir"] is None  # each side reads its own rules
        assert Path(value["cwd"]).resolve() == other.resolve()

        mine = revisions.call(ROOT, tool, "where", "当前", [], what="测量进程")
        assert Path(mine["service"]).resolve().is_relative_to(ROOT)
    assert not other.parent.exists()
    assert str(other) not in _registered()


def test_a_long_lived_side_talks_through_its_pipes(tmp_path):
    path = tmp_path / "echo.py"
    path.write_text(
        "import sys\n\ndef serve(prefix):\n"
        "    for line in sys.stdin:\n        print(prefix + line.strip(), flush=True)\n",
        encoding="utf-8",
    )
    with revisions.worktree("HEAD~1") as (_, other):
        process = revisions.start(
            other, str(path), "serve", ">", stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        try:
            process.stdin.write("甲\n")
            process.stdin.flush()
            assert process.stdout.readline() == ">甲\n"
        finally:
            process.stdin.close()
            assert process.wait(timeout=60) == 0


def test_the_worktree_is_removed_after_an_error_too():
    with (
        pytest.raises(RuntimeError, match="在中途"),
        revisions.worktree("HEAD~1") as (_, other),
    ):
        raise RuntimeError("在中途")
    assert not other.parent.exists()
    assert str(other) not in _registered()


def test_a_failing_side_shows_its_errors_and_stops_the_tool(tool, capsys):
    with pytest.raises(SystemExit) as stopped:
        revisions.call(ROOT, tool, "fails", what="比对进程")
    assert str(stopped.value) == f"{ROOT} 的比对进程出错（见上方）"
    assert "the side's own error" in capsys.readouterr().err


def test_a_side_that_would_run_other_code_is_refused(tool, tmp_path, capsys):
    # a folder without the product: ``import service`` would find the installed copy instead
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit, match="测量进程出错"):
        revisions.call(empty, tool, "where", "x", [], what="测量进程")
    assert f"{empty} 的子进程用了别处的代码" in capsys.readouterr().err


def test_a_revision_that_does_not_exist_is_named():
    before = _registered()
    with (
        pytest.raises(SystemExit, match="找不到 git 版本 no-such-rev"),
        revisions.worktree("no-such-rev"),
    ):
        pass  # pragma: no cover
    assert _registered() == before
