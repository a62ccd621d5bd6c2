"""durable-rules and the plain-Python oracle agree on generated facts.

Facts are drawn from each fact's declared range with a strong bias towards
the edges the rules care about (every band, level, step and comparison
constant, and a hair either side), plus missing facts.  Every generated fact
set goes through both matchers; any difference in the fired conditions fails.
"""

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.domain import conditions as cond
from service.domain.scoring import prepare
from service.rulefiles.loader import load_all, load_scheme

from ..conftest import MINIMAL, RULES

HAIR = Decimal("0.01")


def _constants(scheme):
    found = set()

    def walk(c):
        if isinstance(c, cond.Comparison):
            if isinstance(c.value, Decimal):
                found.add(c.value)
        else:
            for p in c.parts:
                walk(p)

    for m in scheme.matches:
        walk(m.condition)
    return found


def _fact_strategy(spec, edges):
    if spec.type == "boolean":
        value = st.booleans()
    elif spec.type in ("text", "choice"):
        value = (
            st.sampled_from(spec.choices)
            if spec.choices
            else st.sampled_from(["好", "一般", "未报送理由"])
        )
    else:
        lo = spec.minimum if spec.minimum is not None else Decimal(-1000)
        hi = spec.maximum if spec.maximum is not None else Decimal(1000)
        near = sorted(
            {e + d for e in edges | {lo, hi} for d in (-HAIR, 0, HAIR) if lo <= e + d <= hi}
        )
        places = 0 if spec.type == "integer" else 2
        anywhere = st.decimals(
            min_value=lo, max_value=hi, places=places, allow_nan=False, allow_infinity=False
        )
        if spec.type == "integer":
            near = [n for n in near if n == n.to_integral_value()]
        value = st.one_of(st.sampled_from(near), anywhere) if near else anywhere
    return st.one_of(value, st.none())  # missing facts too


def _facts_strategy(scheme):
    edges = _constants(scheme)
    return st.fixed_dictionaries(
        {name: _fact_strategy(spec, edges) for name, spec in scheme.facts.items()}
    )


def _schemes():
    import tempfile
    from pathlib import Path

    from tools.bench import synthetic_scheme

    out = [load_scheme(MINIMAL)]
    out += list(load_all(RULES).values())
    folder = Path(tempfile.mkdtemp(prefix="synthetic-")) / "synthetic"
    out.append(
        load_scheme(synthetic_scheme(folder, 240), folder.parent)
    )  # 600 engine rules in one ruleset
    return out


SCHEMES = _schemes()


@pytest.mark.parametrize("scheme", SCHEMES, ids=[s.id for s in SCHEMES])
def test_engine_agrees_with_oracle(scheme, engine, oracle):
    # 400 fact sets per seed scheme, 100 for the 240-clause one: about 2,900 in all
    @settings(
        max_examples=100 if len(scheme.clauses) > 100 else 400,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(_facts_strategy(scheme))
    def check(facts):
        values = {k: v for k, v in facts.items() if v is not None}
        prepared = prepare(scheme, values)
        assert engine.match(scheme, [prepared]) == oracle.match(scheme, [prepared])

    check()
