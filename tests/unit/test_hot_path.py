"""The work of scoring a unit, counted: Python function calls per unit (cProfile's count, as
``python -m tools.bench`` reports it) on the oracle path and on the API path, for the largest
seed scheme, at or below what they were before issue 8's rework of the core (``--against
d98cfa7^1``: 3,298 and 4,767; after the rework they had grown to 3,558 and 5,274).

Counted, not timed: a busy machine cannot move a count, so this fails only when the core does
more work per unit.  (A newer Python makes fewer calls for the same code, never more.)"""

import random

from tools.bench import _calls, _json_body, api_path, random_facts

#: the counts of the core before issue 8 (d98cfa7^1), on this scheme and these units
ORACLE_BEFORE = 3298
API_BEFORE = 4767


def _largest(shipped):
    return max(shipped.values(), key=lambda s: len(s.matches))


def _units(scheme) -> list:
    rng = random.Random(2026)  # the benchmark's units
    return [random_facts(scheme, rng) for _ in range(100)]


def test_scoring_a_unit_does_no_more_work_than_before_issue_8(shipped, oracle):
    from service.domain.scoring import score_units

    scheme = _largest(shipped)
    assert scheme.id == "shuangtaizi-2016"

    def evaluate(unit):
        return score_units(scheme, {"u": unit}, oracle, "bench")

    units = _units(scheme)
    for unit in units:  # warm: the sentence caches, the rules' fact names
        evaluate(unit)
    assert _calls(evaluate, units) <= ORACLE_BEFORE


def test_an_api_answer_does_no_more_work_than_before_issue_8(shipped, oracle):
    scheme = _largest(shipped)
    evaluate = api_path(scheme, oracle)
    bodies = [_json_body(unit) for unit in _units(scheme)]
    for body in bodies:
        evaluate(body)
    assert _calls(evaluate, bodies) <= API_BEFORE
