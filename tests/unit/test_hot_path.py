"""The work of scoring a unit, counted: Python function calls per unit (cProfile's count, as
``python -m tools.bench`` reports it) on the oracle path, on the API path and in ``to_data``
alone, for the largest seed scheme.

The ceilings are what issue 12's work reached: the oracle path 2,208 calls a unit, the API path
3,007, ``to_data`` 470, after making the full explanation cheaper on the API path (h/explain:
2,640, 3,812 and 704 at fc9bb5b); before issue 12 they were 2,757, 4,111 and 996, and before
issue 8's rework of the core 3,298 and 4,767 (``--against d98cfa7^1``).  Much of issue 12's
work does not show in a count of calls (a trace written by one dict display per object instead
of a loop over its fields, a template copied for the fields that never vary):
``python -m tools.bench`` prints the time, and ``tools/same_traces.py`` checks the results stay
byte-identical.

``prepare`` then knew each derived measure's facts from the scheme's plan instead of asking its
expression tree for them (hashing the whole tree) for every measure of every unit: 2,089 and
2,888 calls a unit before (d73992a), 2,053 and 2,852 after (h/cache).

Counted, not timed: a busy machine cannot move a count, so this fails only when the core does
more work per unit.  (A newer Python makes fewer calls for the same code, never more.)"""

import random

from tools.bench import _calls, _json_body, api_path, random_facts

#: the counts reached, on this scheme and these units
ORACLE_CALLS = 2053
API_CALLS = 2852
TO_DATA_CALLS = 470
#: a unit's count moves by a call or two with what earlier tests in the same process left in
#: shared caches (seen: 2,649.5 after the whole suite, 2,648 alone); a real regression is tens
SLACK = 1.002


def _fresh_number_texts():
    """The numbers' texts written anew: a text is written (two calls) at a value's first use and
    the caches drop their oldest values when full (``numbers.Texts``), so what earlier tests left
    in them would move the count; the warm-up then fills them with these units' values."""
    from service.domain import numbers

    for texts in (numbers.PLAIN, numbers.POINTS_WORDS, numbers.EQUALS_WORDS):
        texts.clear()


def _largest(shipped):
    return max(shipped.values(), key=lambda s: len(s.matches))


def _units(scheme) -> list:
    rng = random.Random(2026)  # the benchmark's units
    return [random_facts(scheme, rng) for _ in range(100)]


def test_scoring_a_unit_does_no_more_work_than_issue_12_left(shipped, oracle):
    from service.domain.scoring import score_units

    scheme = _largest(shipped)
    assert scheme.id == "shuangtaizi-2016"

    def evaluate(unit):
        return score_units(scheme, {"u": unit}, oracle, "bench")

    units = _units(scheme)
    _fresh_number_texts()
    for unit in units:  # warm: the sentence caches, the rules' fact names, the scheme's plan
        evaluate(unit)
    assert _calls(evaluate, units) <= ORACLE_CALLS * SLACK


def test_an_api_answer_does_no_more_work_than_issue_12_left(shipped, oracle):
    scheme = _largest(shipped)
    evaluate = api_path(scheme, oracle)
    bodies = [_json_body(unit) for unit in _units(scheme)]
    _fresh_number_texts()
    for body in bodies:
        evaluate(body)
    assert _calls(evaluate, bodies) <= API_CALLS * SLACK


def test_a_trace_is_written_as_data_without_a_call_per_value(shipped, oracle):
    """``to_data`` of an explained result: a function per object (its class's writer), not a
    recursive call for each of its some 650 values, nor one for each sentence already written
    (996 calls a unit before issue 12)."""
    from service.domain.scoring import score_units
    from service.domain.trace import to_data

    scheme = _largest(shipped)
    units = _units(scheme)
    _fresh_number_texts()
    results = score_units(
        scheme, {f"u{i}": u for i, u in enumerate(units)}, oracle, "bench", explain=True
    )
    for result in results:  # warm: each class's writer made once, the numbers' texts written
        to_data(result)
    assert _calls(to_data, results) <= TO_DATA_CALLS * SLACK
