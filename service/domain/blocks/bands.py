"""bands: the points of the one band the measure falls in (tiers)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ..model import Band, Clause, Rule
from ..outcome import RuleOutcome
from ..wording import signed
from .base import (
    MEASURE,
    MEASURE_LABEL,
    WHEN,
    Change,
    Description,
    Key,
    RuleReading,
    guarded,
    range_differences,
)
from .measured import Measured

#: id(band) -> (the band, the point unit, the words of a measure falling in it); bounded
_TAILS: dict[int, tuple[Band, str, str]] = {}
#: a bands rule's match key -> the match keys of its bands; bounded
_KEYS: dict[str, tuple[str, ...]] = {}
_HELD = 4096


class Bands(Measured):
    kind = "bands"
    title = "分档计分"
    keys = (
        MEASURE,
        Key("bands", "bands", True, "bands：各档", "各档"),
        MEASURE_LABEL,
        WHEN,
    )

    most_key = "bands"

    def most(self, rule: Rule) -> Decimal | None:
        return max(b.points for b in rule.bands)

    def check(self, rule: RuleReading, base: dict) -> Rule | None:
        if not self.read_measure(rule, base) or not rule.contiguous("bands", "档"):
            return None
        bands = tuple(Band(b["range"], b["points"], b.get("label", "")) for b in rule["bands"])
        return Rule(bands=bands, **base)

    def conditions(self, group, clause: Clause, rule: Rule, facts: Mapping) -> None:
        operand = group.derive(rule.measure)
        base = f"{clause.id}/{rule.id}"
        for i, band in enumerate(rule.bands, 1):
            group.add(f"{base}/{i}", guarded(group, rule, band.range.condition(operand)))

    def measured(self, out: RuleOutcome, rule: Rule, key: str, fired: set, m) -> None:
        # the bands are exclusive: at most one holds; their match keys "key/1", "key/2", … made
        # once per rule key and number of bands
        bands = rule.bands
        keys = _KEYS.get(key)
        if keys is None or len(keys) != len(bands):
            if len(_KEYS) >= _HELD:
                _KEYS.clear()
            keys = _KEYS[key] = tuple(f"{key}/{i}" for i in range(1, len(bands) + 1))
        for i, band_key in enumerate(keys):
            if band_key in fired:
                out.fired, out.band, out.amount = True, i + 1, bands[i].points
                return

    def measured_words(self, scheme, rule: Rule, out: RuleOutcome, guard, shown, unit) -> str:
        if out.band is None:
            missed = f"，{guard}不成立" if guard else "，不在任何档内"
            return f"{shown}{missed}，不计分"
        band = rule.bands[out.band - 1]
        # the words after the measure depend on the band alone (and the point unit): written
        # once per band, not for every unit that falls in it
        held = _TAILS.get(id(band))
        if held is None or held[0] is not band or held[1] != scheme.unit:
            name = f"“{band.label}”" if band.label else ""
            tail = (
                f"，落在{band.range.text}档{name}（{band.range.words()}），"
                f"{signed(band.points, scheme.unit)}"
            )
            if len(_TAILS) >= _HELD:
                _TAILS.clear()
            # the band itself held beside its words: its id cannot be another band's meanwhile
            held = _TAILS[id(band)] = (band, scheme.unit, tail)
        return shown + held[2]

    def differences(self, old: Rule, new: Rule, unit: str) -> list[Change]:
        out = self.key_differences(old, new, unit, skip=("bands",))
        return out + range_differences(old.bands, new.bands, "band", unit)

    def describe(self, rule: Rule, clause: Any, d: Description) -> str:
        return f"{d.condition}按{d.measure}分档计分："
