"""The building blocks of the rule format, one module each, and the one table of them.

Everything that depends on a rule's ``kind`` (its keys, checks, conditions, points, sentences
and admin description) is found through ``BLOCKS``; nothing else compares kind strings.
"""

from __future__ import annotations

from .assessed import Assessed
from .bands import Bands
from .base import Block, Description, Key, RuleReading
from .fixed import Fixed
from .maturity import Maturity
from .per_unit import PerUnit
from .scaled import Scaled
from .steps import Steps
from .weighted import Weighted

BLOCKS: dict[str, Block] = {
    block.kind: block
    for block in (
        Fixed(),
        Bands(),
        PerUnit(),
        Steps(),
        Scaled(),
        Assessed(),
        Maturity(),
        Weighted(),
    )
}

__all__ = ["BLOCKS", "Block", "Description", "Key", "RuleReading"]
