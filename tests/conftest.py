"""Shared fixtures: the fixture scheme, the shipped rules, both matchers.

Rule files are parsed once per test session: ``load_files`` (which every way of loading goes
through: ``load_all``, ``load_scheme``, the archive) is memoised on its exact input, the bytes
of every file, the folder's name and its path.  Identical bytes always gave an identical scheme
(the version is the hash of those bytes), so only the repetition is skipped: every app a test
builds, every registry reload of unchanged files and every module that loads the shipped rules
share one parse.  Changed files, or broken ones, are loaded (and fail) for real every time.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import pytest

import service.operations
from service.engine.oracle import OracleMatcher
from service.engine.pool import EnginePool
from service.rulefiles import loader
from service.rulefiles.loader import load_all, load_scheme


def _parsed_once(load_files):
    parsed: dict = {}
    lock = threading.Lock()

    @functools.wraps(load_files)
    def load_files_once(files: dict, prefix: str, path: str = ""):
        key = (
            tuple(
                (rel, data.encode("utf-8") if isinstance(data, str) else data)
                for rel, data in files.items()
            ),
            prefix,
            path,
        )
        with lock:
            scheme = parsed.get(key)
        if scheme is None:
            scheme = load_files(files, prefix, path)  # raises on a broken file: nothing kept
            with lock:
                scheme = parsed.setdefault(key, scheme)
        return scheme

    load_files_once.uncached = load_files
    return load_files_once


if not hasattr(loader.load_files, "uncached"):
    loader.load_files = _parsed_once(loader.load_files)
    service.operations.load_files = loader.load_files

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
MINIMAL = FIXTURES / "minimal"
#: engine workers forked from a server that has imported the engine already: a fresh pool or a
#: replaced worker is ready in about 50 ms, not after starting an interpreter (0.3-0.6 s here),
#: and the engine tests start and replace dozens of them.  The pool's code is the same under
#: both methods; the service's own "spawn" is exercised end to end by the gunicorn tests.
START_METHOD = "forkserver"


@pytest.fixture(scope="session")
def minimal():
    return load_scheme(MINIMAL)


@pytest.fixture(scope="session")
def shipped():
    """Every scheme shipped under rules/."""
    return load_all(RULES)


@pytest.fixture(scope="session")
def oracle():
    return OracleMatcher()


@pytest.fixture(scope="session")
def engine():
    """durable-rules in two contained worker processes, shared by the whole run."""
    pool = EnginePool(size=2, deadline=10, start_method=START_METHOD)
    yield pool
    pool.close()


@pytest.fixture()
def fresh_engine():
    """A pool of its own, for tests that crash, hang or count its workers."""
    pool = EnginePool(size=1, deadline=3, start_method=START_METHOD)
    yield pool
    pool.close()
