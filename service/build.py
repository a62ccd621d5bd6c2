"""The program that runs: one fingerprint of what decides whether a rule file's test cases pass.

A start or a reload skips the test cases of a rule version whose cases passed before
(``operations.passed_versions``).  That is only sound while the same program would give the same
verdict: the same rule bytes through the same code and libraries.  So a pass is remembered with
the program it passed under (``PROGRAM``) and the engine that matched (the matcher's ``name``),
and after an upgrade of either, every version's cases run once again.

What is fingerprinted is the path from rule bytes to a case's verdict, and nothing else (a
change to a page or to the API must not make every start run every case):

- the code: every ``*.py`` of ``service/domain`` (scoring), ``service/rulefiles`` (bytes to a
  scheme), ``service/engine`` (the matchers) and ``service/casebook.py`` (runs the cases and
  compares their results), by relative path and bytes, in sorted order;
- the libraries on that path, by installed version: durable-rules (the engine's C extension,
  whose version the matcher's name only states by hand), ruamel.yaml and its C parser, lark
  (the expression grammar), and Python itself (``decimal``).

It is computed once, when this module is first imported (with the scoring code it describes,
at a process's start): a deployment that replaces the files under a running process must not
make that process remember passes under the new code's fingerprint.  Reading files is why it
lives here, beside the configuration, and not in the scoring core (which does no I/O).
"""

from __future__ import annotations

import hashlib
import platform
from importlib import metadata
from pathlib import Path

#: The package's parts that decide a case's verdict, relative to the ``service`` package.
CODE = ("domain", "rulefiles", "engine", "casebook.py")
#: The distributions on the same path, by their installed version.
LIBRARIES = ("durable-rules", "ruamel.yaml", "ruamel.yaml.clib", "lark")

_PACKAGE = Path(__file__).resolve().parent


def _sources(root: Path, parts: tuple[str, ...]) -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    for part in parts:
        where = root / part
        if not where.exists():  # a part misnamed here would silently fingerprint nothing
            raise FileNotFoundError(f"fingerprinted code missing: {where}")
        paths = [where] if where.is_file() else sorted(where.rglob("*.py"))
        found += [(p.relative_to(root).as_posix(), p) for p in paths]
    return sorted(found)


def _installed(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def fingerprint(
    root: Path = _PACKAGE, parts: tuple[str, ...] = CODE, libraries: tuple[str, ...] = LIBRARIES
) -> str:
    """SHA-256 over the sources under ``root`` named by ``parts`` (path and bytes, each
    length-prefixed so no two different trees hash alike), the ``libraries``' installed
    versions and Python's."""
    digest = hashlib.sha256()
    for rel, path in _sources(root, parts):
        data = path.read_bytes()
        named = rel.encode("utf-8", "surrogatepass")
        digest.update(b"file %d:%b %d:" % (len(named), named, len(data)))
        digest.update(data)
    for library in libraries:
        digest.update(f"lib {library}=={_installed(library)}\0".encode())
    digest.update(
        f"python {platform.python_implementation()} {platform.python_version()}\0".encode()
    )
    return digest.hexdigest()


#: The fingerprint of the program this process runs (see the module's text).
PROGRAM = fingerprint()
