"""What the blocks that read a measure (bands, per_unit, steps) share."""

from __future__ import annotations

from decimal import Decimal

from .. import expressions as ex
from ..model import Rule, Scheme
from ..numbers import measure_words, plain, points_words
from ..outcome import RuleOutcome
from ..wording import cap, signed
from .base import Block, RuleReading, given

#: ``RuleOutcome._why`` of a rule whose measure has no value (a division by 0, …)
UNDEFINED = "undefined"


class Measured(Block):
    #: the key the measure is written under
    measure_key = "measure"

    def read_measure(self, rule: RuleReading, base: dict) -> bool:
        found = rule.expression(self.measure_key, numeric=True)
        if found is None:
            return False
        base.update(measure=found[0], measure_text=found[1])
        return True

    def read_each(self, rule: RuleReading) -> bool:
        if rule["each"] == 0:
            rule.error("each", "each 不能为0")
            return False
        return True

    def points(self, out: RuleOutcome, scheme, clause, rule: Rule, key, fired, values) -> None:
        measure = rule.measure
        if measure is None:  # pragma: no cover - the loader admits no such rule
            raise ValueError("a rule lacks its measure")
        facts = out.facts
        present = True
        for n in rule.measure_names:
            if (v := values.get(n)) is None:
                present = False
            facts[n] = v
        try:
            # all the facts there (most rules of most units): evaluated without asking again
            m = ex.evaluate_present(measure, values) if present else ex.evaluate(measure, values)
        except ex.Undefined as why:
            out._why = (UNDEFINED, why.reason)
            return
        out._why = (m,)
        self.measured(out, rule, key, fired, m)

    def measured(self, out: RuleOutcome, rule: Rule, key: str, fired: set, m) -> None:
        raise NotImplementedError

    def sentence(self, scheme: Scheme, clause, rule: Rule, out: RuleOutcome, guard: str) -> str:
        label = _label(rule, scheme)
        if out._why[0] is UNDEFINED:  # ``is``: see ``Block.words``
            return f"{label}无法计算（{out._why[1]}），不计分"
        unit = unit_of(rule, scheme)
        shown = f"{label}为{measure_words(out._why[0])}{unit}"
        return self.measured_words(scheme, rule, out, guard, shown, unit)

    def measured_words(
        self, scheme: Scheme, rule: Rule, out: RuleOutcome, guard: str, shown: str, unit: str
    ) -> str:
        raise NotImplementedError


class Counted(Measured):
    most_key = "cap"

    def most(self, rule: Rule) -> Decimal | None:
        # a positive count or step rule is bounded only by its cap; a negative one gives nothing
        return rule.cap if rule.each is not None and rule.each > 0 else None

    """per_unit and steps: points per unit or per step of the measure, at most ``cap``."""

    def measured(self, out: RuleOutcome, rule: Rule, key: str, fired: set, m) -> None:
        out.fired = key in fired
        if not out.fired:
            return
        raw, steps = self.raw(rule, m)
        out._why = (m, steps)
        out.raw = raw
        out.amount, out.capped = cap(raw, rule.cap)

    def raw(self, rule: Rule, m):
        """The points before the rule's cap, and the whole steps counted (or None)."""
        raise NotImplementedError

    def measured_words(self, scheme, rule: Rule, out: RuleOutcome, guard, shown, unit) -> str:
        if not out.fired:
            return self.unfired_words(rule, out._why[0], guard, shown, unit)
        u = scheme.unit
        text = self.fired_words(rule, out, shown, unit, u)
        if out.capped:
            text += f"，超过本规则上限{plain(rule.cap)}{u}，按{points_words(out.amount)}{u}计"
        return text

    def unfired_words(self, rule: Rule, m, guard: str, shown: str, unit: str) -> str:
        raise NotImplementedError

    def fired_words(self, rule: Rule, out: RuleOutcome, shown: str, unit: str, u: str) -> str:
        raise NotImplementedError


def _label(rule: Rule, scheme: Scheme) -> str:
    if rule.measure_label:
        return rule.measure_label
    if isinstance(rule.measure, ex.Name):
        return scheme.facts[rule.measure.name].label
    return rule.measure_text


def unit_of(rule: Rule, scheme: Scheme) -> str:
    if isinstance(rule.measure, ex.Name):
        return scheme.facts[rule.measure.name].unit
    return ""


def each_words(rule: Rule, u: str) -> str:
    return signed(given(rule.each), u)
