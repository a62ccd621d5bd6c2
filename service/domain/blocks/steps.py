"""steps: ``each`` per ``step`` of the measure, whole steps or in proportion, at most ``cap``."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ..conditions import Comparison
from ..model import Clause, Rule
from ..numbers import CONTEXT, plain, points_words
from ..outcome import RuleOutcome
from .base import (
    CAP,
    EACH,
    MEASURE,
    MEASURE_LABEL,
    WHEN,
    Description,
    Key,
    RuleReading,
    given,
    guarded,
)
from .measured import Counted, each_words


class Steps(Counted):
    kind = "steps"
    title = "按幅度计分"
    keys = (
        MEASURE,
        Key("step", "positive", True, "steps：每档的大小", "每档大小"),
        EACH,
        Key("whole_steps", "flag", False, "steps：true 只计满档（默认），false 按比例", "只计满档"),
        CAP,
        MEASURE_LABEL,
        WHEN,
    )

    def check(self, rule: RuleReading, base: dict) -> Rule | None:
        if not self.read_measure(rule, base) or not self.read_each(rule):
            return None
        whole = rule.get("whole_steps", True)
        return Rule(each=rule["each"], step=rule["step"], whole_steps=whole, **base)

    def conditions(self, group, clause: Clause, rule: Rule, facts: Mapping) -> None:
        operand = group.derive(rule.measure)
        test = (
            Comparison(operand, ">=", rule.step)
            if rule.whole_steps and rule.step is not None
            else Comparison(operand, ">", Decimal(0))
        )
        group.add(f"{clause.id}/{rule.id}", guarded(group, rule, test))

    def raw(self, rule: Rule, m):
        step, each = given(rule.step), given(rule.each)
        if rule.whole_steps:
            steps = CONTEXT.divide_int(m, step)
            return CONTEXT.multiply(steps, each), steps
        return CONTEXT.multiply(CONTEXT.divide(m, step), each), None

    def unfired_words(self, rule: Rule, m, guard: str, shown: str, unit: str) -> str:
        threshold = f"不足{plain(rule.step)}{unit}" if rule.whole_steps else "未超过0"
        return f"{shown}，{threshold if not (guard and m > 0) else guard + '不成立'}，不计分"

    def fired_words(self, rule: Rule, out: RuleOutcome, shown: str, unit: str, u: str) -> str:
        step, each = plain(given(rule.step)), each_words(rule, u)
        if rule.whole_steps:
            return (
                f"{shown}，每满{step}{unit}{each}，"
                f"满{plain(out._why[1])}个整档，计{points_words(given(out.raw))}{u}"
            )
        return f"{shown}，每{step}{unit}{each}，按比例计{points_words(given(out.raw))}{u}"

    def describe(self, rule: Rule, clause: Any, d: Description) -> str:
        how = f"每满{plain(rule.step)}" if rule.whole_steps else f"每{plain(rule.step)}（按比例）"
        return f"{d.condition}按{d.measure}，{how}{d.signed(given(rule.each))}{d.cap}"
