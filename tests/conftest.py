"""Shared fixtures: the fixture scheme, the shipped rules, both matchers."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.engine.oracle import OracleMatcher
from service.engine.pool import EnginePool
from service.rulefiles.loader import load_all, load_scheme

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
MINIMAL = FIXTURES / "minimal"


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
    pool = EnginePool(size=2, deadline=10)
    yield pool
    pool.close()


@pytest.fixture()
def fresh_engine():
    """A pool of its own, for tests that crash, hang or count its workers."""
    pool = EnginePool(size=1, deadline=3)
    yield pool
    pool.close()
