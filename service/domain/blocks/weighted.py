"""weighted: Σ weight × part over several number facts (评价得分×20%+…), at most ``cap``."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from .. import expressions as ex
from ..conditions import AllOf, Comparison
from ..model import Clause, Part, Rule, Scheme
from ..numbers import CONTEXT, equals_words, plain, points_words
from ..outcome import RuleOutcome
from ..wording import cap
from .base import CAP, WHEN, Block, Description, Key, RuleReading, guarded

#: ``RuleOutcome._why`` of a rule some of whose parts have no value
NO_PARTS = "no parts"
ONE = Decimal(1)


class Weighted(Block):
    kind = "weighted"
    title = "加权计分"
    keys = (
        Key("parts", "parts", True, "weighted：各部分（事实名与权重）", "各部分"),
        CAP,
        WHEN,
    )
    positive_only = True

    def check(self, rule: RuleReading, base: dict) -> Rule | None:
        parts = []
        for p in rule["parts"]:
            spec = rule.facts.get(p["fact"])
            if spec is None:
                rule.error("parts", rule.undeclared(p["fact"]))
                return None
            if spec.expr_type != ex.NUMBER or spec.minimum is None or spec.maximum is None:
                rule.error(
                    "parts", f"加权计分的部分“{p['fact']}”应为数值类型的事实，并设 min 和 max"
                )
                return None
            parts.append(Part(p["fact"], p["weight"], spec.maximum))
        # the weights are shares of one whole (20%+40%+40%); they may leave part of it to the
        # other rules of the clause (the "+附加分"), but more than the whole is a slip (20 for 20%)
        total = sum((p.weight for p in parts), Decimal(0))
        if total > ONE:
            rule.error("parts", f"各部分的权重之和为{plain(total)}，不能大于1（20%写 0.2）")
            return None
        reach = sum((p.weight * p.maximum for p in parts), Decimal(0))
        if base.get("cap") is not None:
            reach = min(reach, base["cap"])
        if reach > rule.points:
            rule.error(
                "parts",
                f"各部分取最大值时可得{plain(reach)}分，超过本条款分值{plain(rule.points)}分"
                "（调整权重、事实的 max，或写 cap）",
            )
            return None
        return Rule(parts=tuple(parts), **base)

    def conditions(self, group, clause: Clause, rule: Rule, facts: Mapping) -> None:
        # holds when every part has a value: a missing part is missing, never 0
        present = [Comparison(p.fact, ">=", facts[p.fact].minimum) for p in rule.parts]
        group.add(f"{clause.id}/{rule.id}", guarded(group, rule, AllOf(tuple(present))))

    def points(self, out: RuleOutcome, scheme, clause, rule: Rule, key, fired, values) -> None:
        for p in rule.parts:
            out.facts[p.fact] = values.get(p.fact)
        absent = [p.fact for p in rule.parts if out.facts[p.fact] is None]
        if absent:
            out._why = (NO_PARTS, absent)
            return
        out.fired = key in fired
        if out.fired:
            raw = sum(
                (CONTEXT.multiply(p.weight, out.facts[p.fact]) for p in rule.parts), Decimal(0)
            )
            out.raw = raw
            out.amount, out.capped = cap(raw, rule.cap)

    def sentence(self, scheme: Scheme, clause, rule: Rule, out: RuleOutcome, guard: str) -> str:
        if out._why and out._why[0] is NO_PARTS:  # ``is``: see ``Block.words``
            labels = "、".join(f"“{scheme.facts[n].label}”" for n in out._why[1])
            return f"缺少{labels}，未计算，不计分"
        if not out.fired:
            return f"{guard}不成立，不计分"
        terms = "+".join(
            f"{scheme.facts[p.fact].label}{plain(out.facts[p.fact])}×{_percent(p.weight)}"
            for p in rule.parts
        )
        u = scheme.unit
        text = f"{terms}{equals_words(out.raw)}{u}"
        if out.capped:
            text += f"，超过本规则上限{plain(rule.cap)}{u}，按{points_words(out.amount)}{u}计"
        return text

    def describe(self, rule: Rule, clause: Any, d: Description) -> str:
        terms = "+".join(f"{d.label(p.fact)}×{_percent(p.weight)}" for p in rule.parts)
        return f"{d.condition}加权计分：{terms}{d.cap}"


def _percent(weight: Decimal) -> str:
    return f"{plain(weight * 100)}%"
