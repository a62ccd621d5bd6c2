"""scaled: a score from another body, ``value`` × ``scale_to`` / ``scale_from``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..model import Clause, Rule, Scheme
from ..numbers import CONTEXT, equals_words, plain
from ..outcome import RuleOutcome
from .base import VALUE, WHEN, Description, Key, RuleReading, given
from .valued import Valued


class Scaled(Valued):
    kind = "scaled"
    title = "折算"
    keys = (
        VALUE,
        Key("scale_from", "positive", True, "scaled：来源分数的满分", "来源满分"),
        Key(
            "scale_to",
            "positive",
            False,
            "scaled：折算后的满分，默认为本条款分值",
            "折算满分",
            True,
        ),
        WHEN,
    )

    def check(self, rule: RuleReading, base: dict) -> Rule | None:
        if self.read_value(rule) is None:
            return None
        scale_to = rule.get("scale_to", rule.points)
        return Rule(value=rule["value"], scale_from=rule["scale_from"], scale_to=scale_to, **base)

    def amount(self, clause: Clause, rule: Rule, v) -> Decimal:
        return CONTEXT.divide(CONTEXT.multiply(v, given(rule.scale_to)), given(rule.scale_from))

    def fired_words(self, scheme: Scheme, rule: Rule, out: RuleOutcome, label: str, v) -> str:
        top, source = plain(given(rule.scale_to)), plain(given(rule.scale_from))
        return (
            f"{label}为{plain(v)}（满分{source}），"
            f"折算：{plain(v)}×{top}÷{source}{equals_words(out.amount)}{scheme.unit}"
        )

    def describe(self, rule: Rule, clause: Any, d: Description) -> str:
        return (
            f"{d.condition}{d.label(rule.value)}（满分{plain(rule.scale_from)}）折算为本项分值："
            f"×{plain(rule.scale_to)}÷{plain(rule.scale_from)}"
        )
