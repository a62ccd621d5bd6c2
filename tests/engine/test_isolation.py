"""durable-rules failures are contained: no dead caller, no wrong score, next call served.

The inputs are real C-level failures reproduced on this machine:
- 256 rules with an identical condition: SIGSEGV inside assert (notes, limit 6);
- 600 distinct first-level tests: create_ruleset loops forever holding the GIL;
- a number in exponent form inside a batch: the engine silently drops it and
  every fact after it (notes, failure 3).
"""
import json
import os
import subprocess
import sys
import textwrap
from decimal import Decimal

import pytest

from service.domain.scoring import prepare, score_unit
from service.engine.durable import compile_ruleset, dumps
from service.engine.pool import EngineUnavailable

from ..unit.test_scoring import FULL

SEGFAULT_RULESET = json.dumps({f"r{i}": {"all": [{"m": {"k": 1}}]} for i in range(256)})
HANG_RULESET = json.dumps({f"r{i}": {"all": [{"m": {"k": f"v{i}"}}]} for i in range(600)})


def _good_call(pool, scheme):
    result = score_unit(scheme, "甲", FULL, pool, "engine")
    assert result.total == Decimal(20)


def test_the_segfault_input_really_kills_a_bare_process():
    code = textwrap.dedent(f"""
        import durable_rules_engine as e
        h = e.create_ruleset("x", {SEGFAULT_RULESET!r})
        e.assert_fact(h, '{{"sid":"a","id":"1","k":1}}')
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert proc.returncode == -11  # SIGSEGV: what the pool must contain


def test_a_crash_in_the_engine_is_contained(fresh_engine, minimal):
    before = fresh_engine.pids()
    with pytest.raises(EngineUnavailable) as err:
        fresh_engine.match_raw("segfault", SEGFAULT_RULESET, [['{"k":1}']])
    assert err.value.kind == "crash"
    # SIGSEGV or SIGABRT ("free(): invalid pointer"), depending on the heap's state
    assert fresh_engine.incidents[-1]["detail"].startswith(("exit code -11", "exit code -6"))
    assert len(err.value.incident) == 12 and err.value.incident in str(err.value)
    assert fresh_engine.pids() != before  # replaced
    _good_call(fresh_engine, minimal)


def test_a_hang_in_the_engine_is_contained(fresh_engine, minimal):
    with pytest.raises(EngineUnavailable) as err:
        fresh_engine.match_raw("hang", HANG_RULESET, [['{"k":"v1"}']])
    assert err.value.kind == "hang"
    _good_call(fresh_engine, minimal)


def test_a_fact_the_engine_cannot_parse_gives_an_error_not_a_score(fresh_engine, minimal):
    definition = dumps(compile_ruleset(minimal.matches))
    good = [dumps(f) for f in prepare(minimal, {"target": Decimal(95), "actual": Decimal(96)})]
    # the exponent form is what Python prints for 1e16; the engine drops it and all after it
    bad = good[:1] + ['{"group":"1","target":1e+16,"actual":1}'] + good[1:]
    with pytest.raises(EngineUnavailable) as err:
        fresh_engine.match_raw(minimal.program_name, definition, [bad])
    assert err.value.kind == "error"
    assert "结束标记未触发" in fresh_engine.incidents[-1]["detail"]
    _good_call(fresh_engine, minimal)


def test_unmatched_facts_on_a_new_session_are_safe(fresh_engine, minimal):
    # no rule matches these facts; the session is opened by the marker first,
    # so deleting it afterwards is safe, and nothing fires
    fired = fresh_engine.match(minimal, [[{"group": "nothing-here", "x": Decimal(1)}]] * 50)
    assert fired == [set()] * 50
    _good_call(fresh_engine, minimal)


def test_numbers_never_reach_the_engine_in_exponent_form():
    assert dumps({"x": Decimal("1E+16"), "y": Decimal("1E-5")}) == '{"x":10000000000000000,"y":0.00001}'
    assert dumps([True, False, "文字"]) == '[true,false,"文字"]'
    with pytest.raises(TypeError):
        dumps(float("nan"))


def test_the_caller_process_survives(fresh_engine):
    # after the crash and hang tests above in this process, we are still here
    assert os.getpid() == os.getpid()
    for _ in range(2):
        with pytest.raises(EngineUnavailable):
            fresh_engine.match_raw("segfault", SEGFAULT_RULESET, [['{"k":1}']])
    assert fresh_engine.spawned == 3
