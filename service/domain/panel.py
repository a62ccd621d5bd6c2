"""Several reviewers scoring one clause (专家评审).

A clause's ``assessed`` rule may declare a panel (``Rule.panel``): that many reviewers each enter
their own points and reason (a ``Mark``), and the clause takes the mean of the marks, after setting
aside the highest and the lowest where the rule file says so (去掉一个最高分和一个最低分).  Until
every declared mark is in, the clause's value is missing (never 0), and the trace says how many of
how many are in.

The marks become the rule's value fact (the mean) and its reason fact (the reviewers' reasons)
before the facts reach a matcher, so durable-rules and the oracle see the very same value; the
``PanelResult`` goes into the rule's trace.  Plain values only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from .model import Panel, Scheme
from .numbers import CONTEXT, ZERO, plain, points_words

#: ``PanelResult.status``: every declared mark is in / some are still to come / more than declared
#: / not shown to this score (a preview before publication: ``with_marks(withheld=True)``)
COMPLETE, WAITING, EXCESS, WITHHELD = "complete", "waiting", "excess", "withheld"

#: the states of a unit in a round (``cycle.STATES``) in which its marks are public: its score is
#: published, so its own submitter may read them, and a preview may show them
MARKS_PUBLIC = frozenset({"published", "appealed", "rechecked", "final"})

#: ``MarkOutcome.dropped`` of a mark set aside
HIGHEST, LOWEST = "highest", "lowest"


@dataclass(frozen=True)
class Mark:
    """One reviewer's points for a clause, with their reason; ``reviewer`` is shown by name."""

    reviewer: str
    points: Decimal
    reason: str = ""


@dataclass(slots=True)
class MarkOutcome:
    reviewer: str
    points: Decimal
    reason: str
    dropped: str = ""  # HIGHEST, LOWEST or "" (counted)


@dataclass(slots=True)
class PanelResult:
    """What a panel's marks come to: each mark (in the order entered) and whether it was set aside,
    and the mean of the rest (exact to the arithmetic's 34 digits; only the sentence rounds)."""

    reviewers: int
    drop_highest: int
    drop_lowest: int
    status: str
    entered: int
    marks: list = field(default_factory=list)
    counted: int = 0
    sum: Decimal | None = None
    mean: Decimal | None = None


def combine(panel: Panel, marks: Sequence[Mark]) -> PanelResult:
    """The panel's result from ``marks`` (in the order they were entered).

    Ties among the extremes: exactly ``drop_highest`` and ``drop_lowest`` marks are set aside, no
    more (three reviewers giving the same top score lose one of them); of equal marks, the lowest
    set aside is the one entered first and the highest the one entered last, so the choice is fixed
    (it never changes the mean)."""
    outcomes = [MarkOutcome(m.reviewer, m.points, m.reason) for m in marks]
    status = COMPLETE
    if len(marks) < panel.reviewers:
        status = WAITING
    elif len(marks) > panel.reviewers:
        status = EXCESS
    result = PanelResult(
        panel.reviewers, panel.drop_highest, panel.drop_lowest, status, len(marks), outcomes
    )
    if status != COMPLETE:
        return result
    order = sorted(range(len(outcomes)), key=lambda i: (outcomes[i].points, i))
    for i in order[: panel.drop_lowest]:
        outcomes[i].dropped = LOWEST
    for i in order[len(order) - panel.drop_highest :] if panel.drop_highest else ():
        outcomes[i].dropped = HIGHEST
    kept = [o.points for o in outcomes if not o.dropped]
    result.counted = len(kept)
    result.sum = sum(kept, ZERO)
    result.mean = CONTEXT.divide(result.sum, Decimal(len(kept)))
    return result


def with_marks(
    scheme: Scheme,
    values: Mapping,
    marks: Mapping[str, Sequence[Mark]] | None,
    withheld: bool = False,
) -> tuple[dict, dict]:
    """``values`` with each panel clause's value fact set to its panel's mean and its reason fact to
    the reviewers' reasons, and the panels' results by clause id.

    Whatever the facts held for those two facts is dropped first: a panel clause's value comes from
    its reviewers' marks alone (a unit's own figure for it is not the panel's), so a clause whose
    marks are not all in lacks its value and is incomplete.  ``withheld``: the score is read by
    those who may not see the marks yet (a preview before publication): only how many are in is
    kept, and the clause is incomplete."""
    out = dict(values)
    results = {}
    for clause_id, rule in scheme.panels.items():
        given = (marks or {}).get(clause_id, ())
        if withheld:
            p = rule.panel
            result = PanelResult(p.reviewers, p.drop_highest, p.drop_lowest, WITHHELD, len(given))
        else:
            result = combine(rule.panel, given)
        results[clause_id] = result
        out.pop(rule.value, None)
        out.pop(rule.reason, None)
        if result.mean is not None:
            out[rule.value] = result.mean
            out[rule.reason] = "；".join(
                f"{m.reviewer}：{m.reason or '未写理由'}" for m in result.marks
            )
    return out, results


def drop_words(highest: int, lowest: int) -> str:
    """What is set aside, in words: "1个最高分和1个最低分", "2个最高分"; "" for nothing."""
    drops = [f"{n}个{what}" for n, what in ((highest, "最高分"), (lowest, "最低分")) if n]
    return "和".join(drops)


def panel_words(panel: Panel) -> str:
    """The rule as the admin pages and the documentation say it: "5名评审独立打分，去掉1个最高分
    和1个最低分后取平均"."""
    drops = drop_words(panel.drop_highest, panel.drop_lowest)
    return f"{panel.reviewers}名评审独立打分，" + (f"去掉{drops}后" if drops else "") + "取平均"


def result_words(result: PanelResult, u: str) -> str:
    """The panel's marks in the trace's sentence: each reviewer's points by name, which were set
    aside, and the mean (to 2 places in words; the data keeps it exact)."""
    if result.status == WAITING:
        names = "、".join(m.reviewer for m in result.marks)
        given = f"（{names}）" if names else ""
        return (
            f"评审组应有{result.reviewers}人独立打分，已收到{result.entered}份{given}，"
            f"还缺{result.reviewers - result.entered}份，暂不计分"
        )
    if result.status == WITHHELD:
        return (
            f"评审组应有{result.reviewers}人独立打分，已收到{result.entered}份；"
            "评审打分在公示前不计入预览，暂不计分"
        )
    if result.status == EXCESS:
        return (
            f"评审组应有{result.reviewers}人独立打分，却收到{result.entered}份，"
            "多于规定人数，无法确定取哪几份，暂不计分"
        )
    shown = "、".join(
        f"{m.reviewer}{plain(m.points)}{u}" + _dropped_words(m.dropped) for m in result.marks
    )
    drops = drop_words(result.drop_highest, result.drop_lowest)
    rest = f"去掉{drops}后其余{result.counted}人" if drops else f"{result.counted}人"
    mean = points_words(result.mean) if result.mean is not None else "—"
    return f"评审组{result.reviewers}人独立打分：{shown}；{rest}平均{mean}{u}"


def _dropped_words(dropped: str) -> str:
    if dropped == HIGHEST:
        return "（最高分，去掉）"
    if dropped == LOWEST:
        return "（最低分，去掉）"
    return ""
