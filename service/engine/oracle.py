"""The plain-Python matcher: the same conditions, checked directly.

Used as a test oracle (differential tests against durable-rules) and as the
baseline in the benchmark.  Production scoring goes through durable-rules: the
same check (``scoring.match_here``) only lets a unit be scored while the engine
works, and the engine's answer is what the score is built from.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.domain.model import Scheme
from service.domain.scoring import match_here


class OracleMatcher:
    name = "oracle"

    def match(self, scheme: Scheme, batch: Sequence[Sequence[dict]]) -> list[set]:
        return match_here(scheme, batch)
