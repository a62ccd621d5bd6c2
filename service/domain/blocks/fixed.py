"""fixed: set points when a condition holds (checklists)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ..conditions import ALWAYS, compile_condition
from ..model import Clause, Rule, Scheme
from ..outcome import RuleOutcome
from ..wording import facts_text, signed
from .base import WHEN, Block, Description, Key, RuleReading, given


class Fixed(Block):
    kind = "fixed"
    title = "固定分值"
    keys = (
        Key("points", "number", True, "fixed：条件成立时的分值，扣分写负数", "分值", True),
        WHEN,
    )

    most_key = "points"
    starts = ()

    def starter(
        self, fact: str, title: str, points: Decimal, amounts: Mapping[str, Decimal]
    ) -> tuple[dict, dict]:
        # a checklist item: done (a yes/no fact) gives the clause's points
        return {"name": fact, "type": "boolean"}, {
            "kind": self.kind, "title": title, "when": fact, "points": points
        }  # fmt: skip

    def most(self, rule: Rule) -> Decimal | None:
        return rule.points

    def check(self, rule: RuleReading, base: dict) -> Rule | None:
        return Rule(points=rule["points"], **base)

    def conditions(self, group, clause: Clause, rule: Rule, facts: Mapping) -> None:
        when = rule.when
        group.add(
            f"{clause.id}/{rule.id}",
            compile_condition(when, group.derive) if when is not None else ALWAYS,
        )

    def points(self, out: RuleOutcome, scheme, clause, rule: Rule, key, fired, values) -> None:
        out.fired = key in fired
        if out.fired:
            out.amount = given(rule.points)

    def sentence(self, scheme: Scheme, clause, rule: Rule, out: RuleOutcome, guard: str) -> str:
        if out.fired:
            return f"{guard or '本项'}成立（{facts_text(out.facts, scheme)}），{signed(out.amount, scheme.unit)}"
        return f"{guard}不成立（{facts_text(out.facts, scheme)}），不计分"

    def describe(self, rule: Rule, clause: Any, d: Description) -> str:
        return f"{d.condition}{d.signed(given(rule.points))}"
