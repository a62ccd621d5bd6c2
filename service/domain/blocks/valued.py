"""What the blocks that read one fact's value (scaled, assessed, maturity) share."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from .. import expressions as ex
from ..conditions import Comparison
from ..model import Clause, FactSpec, Rule, Scheme
from ..outcome import RuleOutcome
from .base import Block, RuleReading, guarded

#: ``RuleOutcome._why`` of a rule whose fact has no value
NO_VALUE = "no value"


class Valued(Block):
    positive_only = True

    def read_value(self, rule: RuleReading) -> FactSpec | None:
        name = rule["value"]
        fact = rule.facts.get(name)
        if fact is None:
            rule.error("value", rule.undeclared(name))
            return None
        if fact.expr_type != ex.NUMBER:
            rule.error("value", f"value 引用的事实“{name}”应为数值类型，这里是 {fact.type}")
            return None
        return fact

    def conditions(self, group, clause: Clause, rule: Rule, facts: Mapping) -> None:
        # holds whenever the value is there: the fact's own range is checked with the facts
        spec = facts[rule.value]
        floor = spec.minimum if spec.minimum is not None else Decimal("-1e12")
        group.add(
            f"{clause.id}/{rule.id}", guarded(group, rule, Comparison(rule.value, ">=", floor))
        )

    def points(self, out: RuleOutcome, scheme, clause, rule: Rule, key, fired, values) -> None:
        v = out.facts[rule.value] = values.get(rule.value)
        if v is None:
            out._why = (NO_VALUE,)
            return
        self.valued(out, clause, rule, key, fired, v)

    def valued(self, out: RuleOutcome, clause: Clause, rule: Rule, key: str, fired: set, v) -> None:
        out.fired = key in fired
        if out.fired:
            out.amount = self.amount(clause, rule, v)

    def amount(self, clause: Clause, rule: Rule, v) -> Decimal:
        raise NotImplementedError

    def sentence(self, scheme: Scheme, clause, rule: Rule, out: RuleOutcome, guard: str) -> str:
        label = scheme.facts[rule.value].label
        if out._why and out._why[0] is NO_VALUE:  # ``is``: see ``Block.words``
            return f"{label}缺失，不计分"
        v = out.facts[rule.value]
        return self.valued_words(scheme, clause, rule, out, guard, label, v)

    def valued_words(self, scheme, clause, rule: Rule, out: RuleOutcome, guard, label, v) -> str:
        if not out.fired:
            return f"{guard}不成立，不计分" if guard else f"{label}不在可用范围内，不计分"
        return self.fired_words(scheme, rule, out, label, v)

    def fired_words(self, scheme: Scheme, rule: Rule, out: RuleOutcome, label: str, v) -> str:
        raise NotImplementedError
