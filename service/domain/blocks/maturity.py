"""maturity: the clause's points × ``value`` %, the maturity ``levels`` naming the level."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ..model import Clause, Level, Rule
from ..numbers import CONTEXT, equals_words, plain
from ..outcome import RuleOutcome
from .base import VALUE, WHEN, Change, Description, Key, RuleReading, guarded, range_differences
from .valued import Valued


class Maturity(Valued):
    kind = "maturity"
    title = "成熟度"
    keys = (
        VALUE,
        Key("levels", "levels", True, "maturity：各成熟度档", "成熟度档"),
        WHEN,
    )

    def check(self, rule: RuleReading, base: dict) -> Rule | None:
        fact = self.read_value(rule)
        if fact is None:
            return None
        name = rule["value"]
        if fact.type != "percent":
            rule.error("value", f"成熟度读取的事实“{name}”应为 percent 类型，这里是 {fact.type}")
            return None
        if not rule.contiguous("levels", "成熟度档"):
            return None
        ranges = [lv["range"] for lv in rule["levels"]]
        # the levels are contiguous (checked above), so they cover the fact's range
        # exactly when its two ends each fall in some level, whatever the listing order
        if not all(any(r.contains(end) for r in ranges) for end in (fact.minimum, fact.maximum)):
            rule.error(
                "levels",
                f"成熟度各档应覆盖事实“{name}”的全部取值（{plain(fact.minimum)}到{plain(fact.maximum)}）",
            )
            return None
        levels = tuple(Level(lv["range"], lv["label"], lv.get("text", "")) for lv in rule["levels"])
        return Rule(value=name, levels=levels, **base)

    def conditions(self, group, clause: Clause, rule: Rule, facts: Mapping) -> None:
        base = f"{clause.id}/{rule.id}"
        for i, level in enumerate(rule.levels, 1):
            group.add(f"{base}/{i}", guarded(group, rule, level.range.condition(rule.value)))

    def valued(self, out: RuleOutcome, clause: Clause, rule: Rule, key: str, fired: set, v) -> None:
        # the levels are exclusive: at most one holds
        for i in range(1, len(rule.levels) + 1):
            if f"{key}/{i}" in fired:
                out.fired, out.band = True, i
                out.amount = CONTEXT.divide(CONTEXT.multiply(clause.points, v), Decimal(100))
                return

    def valued_words(self, scheme, clause, rule: Rule, out: RuleOutcome, guard, label, v) -> str:
        if out.band is None:
            missed = guard + "不成立" if guard else "不在任何成熟度档内"
            return f"{label}为{plain(v)}%，{missed}，不计分"
        level = rule.levels[out.band - 1]
        text = f"：{level.text}" if level.text else ""
        return (
            f"{label}为{plain(v)}%，属“{level.label}”档{text}；"
            f"{plain(clause.points)}×{plain(v)}%{equals_words(out.amount)}{scheme.unit}"
        )

    def differences(self, old: Rule, new: Rule, unit: str) -> list[Change]:
        out = self.key_differences(old, new, unit, skip=("levels",))
        return out + range_differences(old.levels, new.levels, "level", unit)

    def describe(self, rule: Rule, clause: Any, d: Description) -> str:
        return (
            f"{d.condition}按「{d.label(rule.value)}」的百分比计："
            f"{plain(clause.points)}{d.unit}×百分比；成熟度档次："
        )
