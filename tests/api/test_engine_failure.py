"""When the rules engine fails, the request gets 503 with an incident id, nothing is stored,
and the next request is served.

Why this is an honest test of the failure, not a simulation of it
------------------------------------------------------------------
The app's engine is a real ``EnginePool`` (one durable-rules worker process, 1.5 s deadline).
``HangOnce`` is only a switch in front of it: for the first evaluation it sends the pool,
through the pool's own ``match_raw``, the ruleset that really hangs durable-rules
(``HANG_RULESET`` from tests/engine/test_isolation.py: 600 distinct first-level tests make
``create_ruleset`` loop forever in C while holding the GIL).  Nothing is mocked or raised by
the test: the worker process really hangs, the pool's real deadline expires, the pool
really kills and replaces the worker and raises its real ``EngineUnavailable`` with its
incident id, and the service turns that into the HTTP answer under test.  Every later call
goes straight to the same pool, now served by the fresh worker.
"""

from __future__ import annotations

import shutil
from decimal import Decimal

import pytest
from ruamel.yaml import YAML
from sqlalchemy import func, select

from service.db import Base
from service.engine.pool import EnginePool

from ..conftest import MINIMAL, START_METHOD
from ..engine.test_isolation import HANG_RULESET
from ..unit.test_scoring import FULL
from .conftest import DATABASES, make_api
from .shapes import assert_error


class HangOnce:
    """The real pool, whose next evaluation is the real hanging input (once)."""

    name = EnginePool.name

    def __init__(self, pool: EnginePool):
        self.pool = pool
        self.armed = False

    def match(self, scheme, batch):
        if self.armed:
            self.armed = False
            return self.pool.match_raw("hang", HANG_RULESET, [['{"k":"v1"}']])
        return self.pool.match(scheme, batch)

    def retire(self, key):
        self.pool.retire(key)


@pytest.fixture(params=DATABASES)
def failing(request, tmp_path):
    # the hang costs the deadline; the replacement, forked ready-made, answers well within it
    pool = EnginePool(size=1, deadline=1.5, start_method=START_METHOD)
    engine = HangOnce(pool)
    rules = tmp_path / "rules"
    shutil.copytree(MINIMAL, rules / "minimal")
    made = make_api(tmp_path, request.param, engine, rules)
    made.engine, made.pool = engine, pool
    yield made
    made.ctx.db.engine.dispose()
    pool.close()


def counts(api) -> dict:
    with api.ctx.db.transaction() as s:
        return {
            t.name: s.scalar(select(func.count()).select_from(t))
            for t in Base.metadata.sorted_tables
        }


def test_an_engine_hang_is_a_503_with_an_incident_and_nothing_stored(failing):
    api, pool = failing, failing.pool
    path = "/api/units/gucun/schemes/minimal"
    assert (
        api.post(
            f"{path}/submissions", "submitter", json={"role": "self", "facts": FULL}
        ).status_code
        == 201
    )
    workers = pool.pids()

    # scoring a stored submission: the engine hangs in its worker
    before = counts(api)
    api.engine.armed = True
    failed = api.post(f"{path}/scores", "reviewer", json={})
    error = assert_error(failed, 503, "engine_unavailable")
    assert failed.headers["Retry-After"].isdigit()
    incident = pool.incidents[-1]
    assert incident["kind"] == "hang" and error["incident"] == incident["id"]
    assert pool.pids() != workers  # the hung worker was killed and replaced
    assert counts(api) == before  # no score, no journal entry, nothing
    assert api.get(f"{path}/scores", "reviewer").json == []

    # the next request is served, by the same pool, with the right score
    served = api.post(f"{path}/scores", "reviewer", json={})
    assert served.status_code == 201, served.json
    full_marks = Decimal(
        str(YAML(typ="safe").load((MINIMAL / "scheme.yaml").read_text(encoding="utf-8"))["total"])
    )
    assert (
        Decimal(served.json["total"]) == full_marks
    )  # FULL meets every clause; no bonus, no deduction
    assert served.json["engine_version"] == EnginePool.name
    after = counts(api)
    # the score and its journal entry, and the reviewer's read of the unit's scores above
    assert (after["scores"], after["journal"]) == (before["scores"] + 1, before["journal"] + 2)

    # and what-if is served too
    again = api.post("/api/schemes/minimal/evaluate", "editor", json={"facts": FULL})
    assert again.status_code == 200 and Decimal(again.json["result"]["total"]) == full_marks
    assert len(pool.incidents) == 1 and pool.spawned == 2  # the first worker and its replacement
