"""per_unit: ``each`` × the count, at most ``cap`` (per case, per award)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ..conditions import Comparison
from ..model import Clause, Rule
from ..numbers import CONTEXT, points_words
from ..outcome import RuleOutcome
from .base import CAP, EACH, MEASURE_LABEL, WHEN, Description, Key, RuleReading, given, guarded
from .measured import Counted, each_words


class PerUnit(Counted):
    kind = "per_unit"
    title = "按件计分"
    measure_key = "count"
    keys = (
        Key("count", "expression", True, "per_unit：件数表达式", "件数"),
        EACH,
        CAP,
        MEASURE_LABEL,
        WHEN,
    )

    starts = (("each", "每件分值", True), ("cap", "上限", False))

    def starter(
        self, fact: str, title: str, points: Decimal, amounts: Mapping[str, Decimal]
    ) -> tuple[dict, dict]:
        # a count of cases (at most 100,000: a unit's yearly count of anything) times the amount
        rule = {"kind": self.kind, "title": title, "count": fact, "each": amounts["each"]}
        if "cap" in amounts:
            rule["cap"] = amounts["cap"]
        return {"name": fact, "type": "integer", "min": 0, "max": 100000}, rule

    def check(self, rule: RuleReading, base: dict) -> Rule | None:
        if not self.read_measure(rule, base) or not self.read_each(rule):
            return None
        return Rule(each=rule["each"], **base)

    def conditions(self, group, clause: Clause, rule: Rule, facts: Mapping) -> None:
        test = Comparison(group.derive(rule.measure), ">", Decimal(0))
        group.add(f"{clause.id}/{rule.id}", guarded(group, rule, test))

    def raw(self, rule: Rule, m):
        return CONTEXT.multiply(m, given(rule.each)), None

    def unfired_words(self, rule: Rule, m, guard: str, shown: str, unit: str) -> str:
        if guard and m > 0:
            return f"{shown}，{guard}不成立，不计分"
        return f"{shown}，不计分"

    def fired_words(self, rule: Rule, out: RuleOutcome, shown: str, unit: str, u: str) -> str:
        return (
            f"{shown}，每{unit or '项'}{each_words(rule, u)}，计{points_words(given(out.raw))}{u}"
        )

    def describe(self, rule: Rule, clause: Any, d: Description) -> str:
        return f"{d.condition}按{d.measure}，每项{d.signed(given(rule.each))}{d.cap}"
