"""assessed: points set by reviewers (``value``), with a written ``reason``."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ..model import Clause, Rule, Scheme
from ..numbers import plain
from ..outcome import RuleOutcome
from .base import VALUE, WHEN, Description, Key, RuleReading
from .valued import Valued


class Assessed(Valued):
    kind = "assessed"
    title = "评审给分"
    keys = (
        VALUE,
        Key("reason", "fact", True, "assessed：评审理由的事实名"),
        WHEN,
    )

    def check(self, rule: RuleReading, base: dict) -> Rule | None:
        fact = self.read_value(rule)
        if fact is None:
            return None
        name, points = rule["value"], rule.points
        if (
            fact.minimum is None
            or fact.maximum is None
            or fact.minimum < 0
            or fact.maximum > points
        ):
            rule.error(
                "value",
                f"评审给分的事实“{name}”须设 min 和 max，且在0到本条款分值{plain(points)}之间",
            )
            return None
        reason = rule.facts.get(rule["reason"])
        if reason is None or reason.type != "text":
            rule.error(
                "reason",
                f"reason 应引用一个 text 类型的事实（评审理由），“{rule['reason']}”不是",
            )
            return None
        return Rule(value=name, reason=rule["reason"], **base)

    def read_more(self, out: RuleOutcome, rule: Rule, values: Mapping) -> None:
        if rule.reason:
            out.facts[rule.reason] = values.get(rule.reason)

    def amount(self, clause: Clause, rule: Rule, v) -> Decimal:
        return v

    def fired_words(self, scheme: Scheme, rule: Rule, out: RuleOutcome, label: str, v) -> str:
        given = out.facts.get(rule.reason) if rule.reason else None
        return f"评审给分{plain(v)}{scheme.unit}" + (f"，理由：{given}" if given else "")

    def describe(self, rule: Rule, clause: Any, d: Description) -> str:
        why = f"，并在「{d.label(rule.reason)}」中写明理由" if rule.reason else ""
        return f"{d.condition}评审在本项分值内给分（「{d.label(rule.value)}」）{why}"
