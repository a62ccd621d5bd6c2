"""The program's fingerprint (``service.build``): what a pass of a rule version's cases is
remembered under.  It changes with the scoring code's bytes and names and with the libraries
on the path from rule bytes to a verdict, and with nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from service import build

PARTS = ("domain", "casebook.py")


def package(root: Path) -> Path:
    (root / "domain" / "blocks").mkdir(parents=True)
    (root / "api").mkdir()
    (root / "domain" / "scoring.py").write_text("POINTS = 1\n")
    (root / "domain" / "blocks" / "fixed.py").write_text("KIND = 'fixed'\n")
    (root / "casebook.py").write_text("def run(): ...\n")
    (root / "api" / "views.py").write_text("VIEW = 1\n")
    return root


def fingerprint(root: Path, libraries=("durable-rules",)) -> str:
    return build.fingerprint(root, PARTS, libraries)


def test_the_running_program_is_fingerprinted_once_from_its_own_files():
    assert build.fingerprint() == build.PROGRAM
    assert len(build.PROGRAM) == 64 and int(build.PROGRAM, 16) >= 0
    # each part is there (a misnamed one would be refused, not fingerprint nothing)
    package = Path(build.__file__).parent
    for part in build.CODE:
        assert (package / part).exists()
    assert build.fingerprint(parts=build.CODE[:-1]) != build.PROGRAM


def test_a_part_that_is_not_there_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="engine"):
        build.fingerprint(package(tmp_path), ("domain", "engine"))


def test_a_change_to_the_scoring_code_changes_the_fingerprint(tmp_path):
    root = package(tmp_path)
    before = fingerprint(root)
    assert fingerprint(root) == before  # the same files: the same program
    (root / "domain" / "blocks" / "fixed.py").write_text("KIND = 'fixed'  # 修订\n")
    assert fingerprint(root) != before


def test_a_file_added_or_renamed_changes_it(tmp_path):
    root = package(tmp_path)
    before = fingerprint(root)
    (root / "domain" / "blocks" / "fixed.py").rename(root / "domain" / "blocks" / "fixed2.py")
    renamed = fingerprint(root)
    assert renamed != before
    (root / "domain" / "new.py").write_text("")
    assert fingerprint(root) not in (before, renamed)


def test_what_cannot_change_a_verdict_does_not_change_it(tmp_path):
    """The pages, the API, compiled bytecode: a start after such a change runs no case again."""
    root = package(tmp_path)
    before = fingerprint(root)
    (root / "api" / "views.py").write_text("VIEW = 2\n")
    (root / "domain" / "__pycache__").mkdir()
    (root / "domain" / "__pycache__" / "scoring.cpython-311.pyc").write_bytes(b"\0")
    (root / "domain" / "notes.txt").write_text("…")
    assert fingerprint(root) == before


def test_the_libraries_installed_versions_count(tmp_path):
    root = package(tmp_path)
    # a library the program now needs, or one at another version, is another program
    assert fingerprint(root, ("durable-rules",)) != fingerprint(root, ("durable-rules", "lark"))
    assert fingerprint(root, ("no-such-distribution",)) != fingerprint(root, ("durable-rules",))
