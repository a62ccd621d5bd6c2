"""The data ``to_data`` writes is the caller's own (issue 12): the fields of a result that never
vary are written once per scheme version and copied, so nothing in one answer's data may be an
object another answer's data shares, or changing one (a reader adding to a list) would change
the next unit's trace."""

import random

from service.domain.scoring import score_units
from service.domain.trace import to_data
from tools.bench import random_facts


def _containers(value, out: list) -> list:
    if isinstance(value, (dict, list)):
        out.append(value)
        for item in value.values() if isinstance(value, dict) else value:
            _containers(item, out)
    return out


def test_two_units_data_share_no_list_or_dict(shipped, oracle):
    scheme = max(shipped.values(), key=lambda s: len(s.matches))
    rng = random.Random(7)
    units = {f"u{i}": random_facts(scheme, rng) for i in range(2)}
    first, second = score_units(scheme, units, oracle, "oracle", explain=True)
    a, b = to_data(first), to_data(second)
    shared = {id(x) for x in _containers(a, [])} & {id(x) for x in _containers(b, [])}
    assert not shared
    a["clauses"][0]["offices"].append("改动")
    assert "改动" not in to_data(second)["clauses"][0]["offices"]
    assert "改动" not in to_data(first)["clauses"][0]["offices"]
