"""Another git revision of this repository, beside this tree: the one helper behind every
``--against REV`` (``tools/bench.py``, ``tools/roundtrip.py``, ``tools/same_traces.py``).

- ``worktree(rev)`` checks REV out into a temporary git worktree and removes it afterwards,
  whatever happened in between;
- ``start(root, tool, function, *args)`` starts a fresh Python that runs ``function(*args)`` of
  the tool file ``tool`` (this tree's file) on ``root``'s code: ``root`` first on ``sys.path``
  and on ``PYTHONPATH`` (so the engine processes it spawns import the same side), the rules of
  ``root`` (``SCORING_RULES_DIR`` dropped), and a check that ``service`` really came from ``root``
  (the editable install points elsewhere: a side measured on the wrong code would compare a tree
  with itself);
- ``call(...)`` does the same, waits, and hands back what the function returned (through JSON).

The tool file is this tree's, the code it imports the other side's: a tool compares the same
measurement on two revisions of the product.  So a tool imports this module only where it
starts the sides (inside ``against``), never at its top: the child loads the tool file with the
other revision's ``tools`` package first on its path, and an older revision has no
``tools/revisions.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

#: what the child runs (``python -c``: no main file, so engine processes spawned by the side do not
#: re-run it); its arguments are the root, the tool file, the function's name and its arguments as
#: one JSON array; ``--json`` prints the function's value as the last line of standard output
_CHILD = """
import importlib.util, json, sys
from pathlib import Path
root, tool, function, args = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
sys.path.insert(0, root)
import service
if not Path(service.__file__).resolve().is_relative_to(Path(root).resolve()):
    sys.exit(f"{root} 的子进程用了别处的代码：{service.__file__}")
spec = importlib.util.spec_from_file_location(Path(tool).stem + "_side", tool)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
value = getattr(module, function)(*args)
if sys.argv[5:] == ["--json"]:
    print(flush=True)
    print(json.dumps(value), flush=True)
"""


def git(*args: str) -> str:
    """``git -C ROOT args``: its standard output, stripped; a failure raises."""
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def commit_of(rev: str) -> str:
    """The full commit REV names; a clear exit when it names none."""
    done = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise SystemExit(f"找不到 git 版本 {rev}（{ROOT} 中没有这个提交）")
    return done.stdout.strip()


@contextmanager
def worktree(rev: str, prefix: str = "against-") -> Iterator[tuple[str, Path]]:
    """(commit, folder): REV checked out, detached, in a temporary git worktree; removed (and
    unregistered) on the way out, also after an error or Ctrl-C."""
    commit = commit_of(rev)
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    other = tmp / "rev"
    try:
        git("worktree", "add", "--detach", "--quiet", str(other), commit)
        yield commit, other
    finally:
        removed = subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(other)],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(tmp, ignore_errors=True)
        if removed.returncode != 0:
            # a worktree whose folder went missing another way stays registered until pruned
            subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], check=False)


def _environment(root: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("SCORING_RULES_DIR", "PYTHONPATH")}
    env["PYTHONPATH"] = str(root)  # spawned engine workers import the same side's code
    return env


def _command(root: Path, tool: str, function: str, args: tuple) -> list[str]:
    return [sys.executable, "-c", _CHILD, str(root), str(tool), function, json.dumps(list(args))]


def start(root: Path, tool: str, function: str, *args: Any, **popen: Any) -> subprocess.Popen:
    """A child running ``function(*args)`` of ``tool`` on ``root``'s code, left running (the caller
    talks to it through the pipes it asks for in ``popen``)."""
    return subprocess.Popen(
        _command(root, tool, function, args), cwd=root, env=_environment(root), **popen
    )


def call(root: Path, tool: str, function: str, *args: Any, what: str) -> Any:
    """``function(*args)`` of ``tool`` run in a child on ``root``'s code, its value back (it must
    be JSON).  A child that fails shows its errors and stops the tool: "{root} 的{what}出错"."""
    done = subprocess.run(
        [*_command(root, tool, function, args), "--json"],
        cwd=root,
        env=_environment(root),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"{root} 的{what}出错（见上方）")
    return json.loads(done.stdout.rstrip("\n").rsplit("\n", 1)[-1])
