"""assessed: points set by reviewers (``value``), with a written ``reason``; or, with a ``panel``,
by several reviewers independently, the clause taking the mean of their marks (专家评审)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..model import Panel, Rule, Scheme
from ..numbers import PLAIN, plain
from ..outcome import RuleOutcome
from ..panel import drop_words, panel_words, result_words
from .base import VALUE, WHEN, Description, Key, RuleReading
from .valued import NO_VALUE, Valued


class Assessed(Valued):
    kind = "assessed"
    title = "评审给分"
    keys = (
        # the points a reviewer gives lie within the value fact's min and max
        replace(VALUE, bounds=True),
        Key("reason", "fact", True, "assessed：评审理由的事实名", "理由事实"),
        Key(
            "panel",
            "panel",
            False,
            "assessed：由多名评审各自独立打分，本项取平均（可去掉最高分和最低分），"
            "如 {reviewers: 5, drop: {highest: 1, lowest: 1}}",
            "评审组",
        ),
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
        panel = self.read_panel(rule) if "panel" in rule else None
        if "panel" in rule and panel is None:
            return None
        return Rule(value=name, reason=rule["reason"], panel=panel, **base)

    def read_panel(self, rule: RuleReading) -> Panel | None:
        """The panel as written: at least one mark must be left to take the mean of."""
        written = rule["panel"]
        if not isinstance(written, Mapping):
            return None  # the reader has reported what is not a mapping
        drop = written.get("drop") or {}
        reviewers, highest, lowest = (
            written.get("reviewers"),
            drop.get("highest", 0),
            drop.get("lowest", 0),
        )
        if not (
            isinstance(reviewers, int) and isinstance(highest, int) and isinstance(lowest, int)
        ):
            return None  # the reader has reported the number that is not a whole number
        panel = Panel(reviewers, highest, lowest)
        if panel.counted < 1:
            dropped = panel.drop_highest + panel.drop_lowest
            rule.error(
                "panel",
                f"去掉{drop_words(panel.drop_highest, panel.drop_lowest)}后须至少留下1个评分，"
                f"评审至少应有{dropped + 1}名，这里 reviewers 是{panel.reviewers}",
            )
            return None
        return panel

    # ``points`` and ``sentence`` in one piece each rather than through ``Valued``'s steps: most
    # rules of the seed schemes are assessed, and each step was a call per rule per unit

    def points(self, out: RuleOutcome, scheme, clause, rule: Rule, key, fired, values) -> None:
        v = out.facts[rule.value] = values.get(rule.value)
        if rule.reason:
            out.facts[rule.reason] = values.get(rule.reason)
        if v is None:
            out._why = (NO_VALUE,)
            return
        out.fired = key in fired
        if out.fired:
            out.amount = v

    def sentence(self, scheme: Scheme, clause, rule: Rule, out: RuleOutcome, guard: str) -> str:
        # only a rule with a panel has a PanelOutcome; its panel's result may still be absent
        panel = out.panel if rule.panel is not None else None  # type: ignore[attr-defined]
        if panel is not None:
            return self.panel_sentence(scheme, out, panel, guard)
        if out._why and out._why[0] is NO_VALUE:  # ``is``: see ``Block.words``
            return f"{scheme.facts[rule.value].label}缺失，不计分"
        if out.fired:
            given = out.facts.get(rule.reason) if rule.reason else None
            v = out.facts[rule.value]
            if given:
                return f"评审给分{PLAIN[v]}{scheme.unit}，理由：{given}"
            return f"评审给分{PLAIN[v]}{scheme.unit}"
        if guard:
            return f"{guard}不成立，不计分"
        return f"{scheme.facts[rule.value].label}不在可用范围内，不计分"

    def panel_sentence(self, scheme: Scheme, out: RuleOutcome, panel, guard: str) -> str:
        words = result_words(panel, scheme.unit)
        if panel.mean is None or out.fired:
            return words
        return f"{words}；" + (f"{guard}不成立，不计分" if guard else "不在可用范围内，不计分")

    def describe(self, rule: Rule, clause: Any, d: Description) -> str:
        why = f"，并在「{d.label(rule.reason)}」中写明理由" if rule.reason else ""
        panel = f"；{panel_words(rule.panel)}" if rule.panel is not None else ""
        return f"{d.condition}评审在本项分值内给分（「{d.label(rule.value)}」）{why}{panel}"
