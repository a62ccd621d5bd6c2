"""Grades: by thresholds on the total, or by rank among all units; grade vetoes.

Readings the product takes (shared/seeds/README.md, reading 7):
- equal totals share a rank (1, 2, 2, 4);
- a tier given by rank ("top 6") takes every unit whose rank is within it, so a
  shared rank straddling the boundary gets the better grade for all;
- a distinction given by rank ("top 3 of A are 优秀") goes by rank position: a
  unit barred from it keeps its rank and grade, and the distinction is not
  passed down to the next unit;
- a grade veto that forces a grade (D) replaces the grade and removes every
  distinction; one that bars a grade or distinction only removes that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from .model import Scheme
from .numbers import plain


@dataclass
class RankEntry:
    unit: str
    total: Decimal
    rank: int
    grade: str | None
    distinctions: list
    explanation: str
    vetoes: list = field(default_factory=list)


def competition_ranks(totals: Sequence[Decimal]) -> list[int]:
    """1 + the number of strictly higher totals, for each total."""
    return [1 + sum(1 for other in totals if other > t) for t in totals]


def _tier_for(
    scheme: Scheme, total: Decimal, rank: int | None, barred: set
) -> tuple[str | None, str]:
    for tier in scheme.grading.tiers:
        if tier.grade in barred:
            continue
        if tier.min is not None:
            if total >= tier.min:
                return (
                    tier.grade,
                    f"总分{plain(total)}不低于{plain(tier.min)}，评为{tier.title or tier.grade}",
                )
        elif tier.top is not None:
            if rank is not None and rank <= tier.top:
                return (
                    tier.grade,
                    f"排名第{rank}，在前{tier.top}名内，评为{tier.title or tier.grade}",
                )
        else:
            return tier.grade, f"其余评为{tier.title or tier.grade}"
    return None, "没有适用的等级"


def decide(scheme: Scheme, total: Decimal, rank: int | None, vetoes: list) -> tuple:
    """(grade, distinctions, explanation) for one unit."""
    grading = scheme.grading
    forced = [v for v in vetoes if v.effect == "force"]
    barred = {v.grade for v in vetoes if v.effect == "bar"}
    words = []
    if forced:
        veto = forced[0]
        words.append(
            f"等级否决成立（{veto.facts_text or veto.condition}），考核结果定为{veto.grade}（依据：{veto.reason}）"
        )
        return veto.grade, [], "；".join(words)
    if grading.method == "none":
        grade, why = None, "本细则未规定按分数评定等级"
    elif grading.method == "rank" and rank is None:
        grade, why = None, "按名次评定等级，需与其他单位一同排名"
    else:
        grade, why = _tier_for(scheme, total, rank, barred)
    words.append(why)
    for veto in vetoes:
        if veto.effect == "bar":
            words.append(
                f"等级否决成立（{veto.facts_text or veto.condition}），不得评{veto.grade}（依据：{veto.reason}）"
            )
    distinctions = []
    for d in grading.distinctions:
        if grade != d.grade:
            continue
        eligible = (d.top is not None and rank is not None and rank <= d.top) or (
            d.min is not None and total >= d.min
        )
        if not eligible:
            continue
        if d.name in barred:
            words.append(
                f"名次在前{d.top}名内，但因否决项不评{d.name}（不顺延给下一名）"
                if d.top
                else f"分数达到{d.name}线，但因否决项不评{d.name}"
            )
            continue
        distinctions.append(d.name)
        words.append(
            f"排名第{rank}，在{d.grade}档前{d.top}名内，评为{d.name}"
            if d.top
            else f"总分不低于{plain(d.min)}，评为{d.name}"
        )
    return grade, distinctions, "；".join(words)


def grade_alone(scheme: Scheme, result) -> None:
    """Grade one unit on its own (thresholds); rank grading waits for ``rank_units``."""
    result.grade, result.distinctions, result.grade_explanation = decide(
        scheme, result.total, None, result.grade_vetoes
    )


def rank_units(scheme: Scheme, results: Sequence) -> list[RankEntry]:
    """Rank scored units (ties share a rank) and grade each one, explained."""
    ranks = competition_ranks([r.total for r in results])
    entries = []
    for result, rank in zip(results, ranks):
        grade, distinctions, why = decide(scheme, result.total, rank, result.grade_vetoes)
        result.grade, result.distinctions, result.grade_explanation = grade, distinctions, why
        entries.append(
            RankEntry(
                result.unit,
                result.total,
                rank,
                grade,
                distinctions,
                why,
                [v.id for v in result.grade_vetoes],
            )
        )
    entries.sort(key=lambda e: (e.rank, e.unit))
    return entries
