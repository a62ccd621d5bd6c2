"""The plain-Python matcher: the same conditions, checked directly.

Used as a test oracle (differential tests against durable-rules) and as the
baseline in the benchmark.  Production scoring goes through durable-rules.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.domain.conditions import holds
from service.domain.model import Scheme


class OracleMatcher:
    name = "oracle"

    def match(self, scheme: Scheme, batch: Sequence[Sequence[dict]]) -> list[set]:
        by_group: dict[str, list] = {}
        for rule in scheme.matches:
            by_group.setdefault(rule.group, []).append(rule)
        out = []
        for facts in batch:
            fired = set()
            for fact in facts:
                for rule in by_group.get(fact["group"], ()):
                    if holds(rule.condition, fact):
                        fired.add(rule.key)
            out.append(fired)
        return out
