"""Grades: by thresholds on the total, or by rank among all units; grade vetoes.

Readings the product takes (shared/seeds/README.md, reading 7):
- equal totals share a rank (1, 2, 2, 4);
- a tier given by rank ("top 6") takes every unit whose rank is within it, so a
  shared rank straddling the boundary gets the better grade for all;
- a distinction given by rank ("top 3 of A are 优秀") goes by rank position: a
  unit barred from it keeps its rank and grade, and the distinction is not
  passed down to the next unit;
- a grade veto that forces a grade (D) replaces the grade and removes every
  distinction; one that bars a grade or distinction only removes that;
- a grade veto whose facts are missing has not been decided either way (missing
  is not "no", rules/README.md §4): what it could take away is 待定 -- the grade
  for a "force" veto, the grade or distinction it bars for a "bar" veto, but
  only when the unit would otherwise have it -- and never awarded meanwhile;
- a grade veto that lowers (降一级) moves the grade one tier down the order the
  tiers are written in, once per veto that holds; the lowest tier stays lowest;
  a lowered unit takes no distinction (it would belong to its new tier), and a
  force veto wins over lowering.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from .model import Scheme
from .numbers import plain
from .relative import alone, standings


@dataclass
class RankEntry:
    unit: str
    total: Decimal
    rank: int
    grade: str | None
    distinctions: list
    explanation: str
    vetoes: list = field(default_factory=list)
    #: the grade itself is 待定 (a "force" veto or a bar on this grade waits on missing facts)
    grade_pending: bool = False
    #: distinctions within reach but 待定, and why, in words naming the missing facts
    pending_distinctions: list = field(default_factory=list)
    pending: list = field(default_factory=list)
    #: the total the unit scored alone, before the parts computed in ranking (``relative``)
    scored_total: Decimal | None = None
    #: the parts scored by place among the units (``relative.RelativePoints``), each explained
    relative: list = field(default_factory=list)
    #: the total converted against the best unit's (``relative.RelativePoints``), if the scheme says
    converted: object = None


@dataclass
class Decision:
    grade: str | None
    distinctions: list
    explanation: str
    grade_pending: bool = False
    pending_distinctions: list = field(default_factory=list)
    pending: list = field(default_factory=list)


def _pending_words(veto) -> str:
    return f"等级否决“{veto.condition}”缺少事实{veto.missing_text}，未能判断（缺失不等于“否”）"


def competition_ranks(totals: Sequence[Decimal]) -> list[int]:
    """1 + the number of strictly higher totals, for each total (ties share: 1, 2, 2, 4).

    Sorted once and walked: comparing every unit with every other took 46 s for
    10,000 units (issue 12).
    """
    order = sorted(range(len(totals)), key=totals.__getitem__, reverse=True)
    ranks = [0] * len(totals)
    previous: Decimal | None = None
    rank = 0
    for position, index in enumerate(order, start=1):
        total = totals[index]
        # equal totals written differently (80 and 80.0) compare equal and share a rank
        if previous is None or total != previous:
            rank, previous = position, total
        ranks[index] = rank
    return ranks


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


def decide(
    scheme: Scheme, total: Decimal, rank: int | None, vetoes: list, pending: Sequence = ()
) -> tuple:
    """(grade, distinctions, explanation) for one unit; ``decision`` says what is 待定 too."""
    d = decision(scheme, total, rank, vetoes, pending)
    return d.grade, d.distinctions, d.explanation


def decision(
    scheme: Scheme, total: Decimal, rank: int | None, vetoes: list, pending: Sequence = ()
) -> Decision:
    """The grade and distinctions of one unit, explained.  ``pending``: the grade vetoes that
    did not fire but read a missing fact (``scoring.GradePending``)."""
    forced = [v for v in vetoes if v.effect == "force"]
    if forced:
        veto = forced[0]
        return Decision(
            veto.grade,
            [],
            f"等级否决成立（{veto.facts_text or veto.condition}），考核结果定为{veto.grade}（依据：{veto.reason}）",
        )
    if any(p.effect == "force" for p in pending):
        # the veto might replace whatever grade the points give: no grade until the facts are in
        reasons = [_pending_words(p) for p in pending]
        return Decision(
            None, [], "；".join(reasons) + "，考核等级待定", grade_pending=True, pending=reasons
        )
    barred = {v.grade for v in vetoes if v.effect == "bar"}
    grade, why = _points_grade(scheme, total, rank, barred)
    words = [why]
    words.extend(
        f"等级否决成立（{veto.facts_text or veto.condition}），不得评{veto.grade}（依据：{veto.reason}）"
        for veto in vetoes
        if veto.effect == "bar"
    )
    grade, lowered = _lower(scheme, grade, vetoes, words)
    waiting = _grade_waiting(scheme, grade, pending, words)
    if waiting is not None:
        return waiting
    return _distinctions(scheme, grade, total, rank, lowered, barred, pending, words)


def _points_grade(
    scheme: Scheme, total: Decimal, rank: int | None, barred: set
) -> tuple[str | None, str]:
    """The grade the points (or the rank) give, before any lowering."""
    if scheme.grading.method == "none":
        return None, "本细则未规定按分数评定等级"
    if scheme.grading.method == "rank" and rank is None:
        return None, "按名次评定等级，需与其他单位一同排名"
    if scheme.relative and rank is None:
        # the total graded includes what only the ranking works out: no grade from a part of it
        return None, f"总分含{ALONE_WORDS}的部分，等级在与其他单位一同排名时评定"
    return _tier_for(scheme, total, rank, barred)


ALONE_WORDS = "排名时计算"


def _order(scheme: Scheme) -> list:
    return list(dict.fromkeys(t.grade for t in scheme.grading.tiers))


def _lower(scheme: Scheme, grade: str | None, vetoes: list, words: list) -> tuple:
    """``grade`` after the lowering vetoes that hold (one tier each), and whether it moved."""
    order, lowered = _order(scheme), False
    for veto in vetoes:
        if veto.effect != "lower" or grade not in order:
            continue
        place = order.index(grade)
        said = f"等级否决成立（{veto.facts_text or veto.condition}），等级降一级（依据：{veto.reason}）"
        if place + 1 < len(order):
            # each lowering veto that holds takes one tier: two different ones take two
            words.append(f"{said}：由{grade}降为{order[place + 1]}")
            grade, lowered = order[place + 1], True
        else:
            words.append(f"{said}：{grade}已是最低等级，不再降低")
    return grade, lowered


def _grade_waiting(
    scheme: Scheme, grade: str | None, pending: Sequence, words: list
) -> Decision | None:
    """A 待定 grade, when a lowering or barring veto waiting for a missing fact could change it."""
    if grade in _order(scheme)[:-1] and any(p.effect == "lower" for p in pending):
        # lowering might apply: the grade waits, unless it is the lowest already
        used = [_pending_words(p) for p in pending if p.effect == "lower"]
        words.append(f"{used[-1]}，是否降一级待定，考核等级待定")
        return Decision(None, [], "；".join(words), grade_pending=True, pending=used)
    barred_pending = {p.grade: p for p in pending if p.effect == "bar"}
    if grade is not None and grade in barred_pending:
        used = [_pending_words(barred_pending[grade])]
        words.append(f"{used[-1]}，是否评{grade}待定")
        return Decision(None, [], "；".join(words), grade_pending=True, pending=used)
    return None


def _distinctions(
    scheme: Scheme,
    grade: str | None,
    total: Decimal,
    rank: int | None,
    lowered: bool,
    barred: set,
    pending: Sequence,
    words: list,
) -> Decision:
    """The distinctions of ``grade`` the unit earns, bars or waits for."""
    barred_pending = {p.grade: p for p in pending if p.effect == "bar"}
    distinctions: list = []
    held: list = []
    used: list = []
    for d in scheme.grading.distinctions:
        if grade != d.grade:
            continue
        eligible = (d.top is not None and rank is not None and rank <= d.top) or (
            d.min is not None and total >= d.min
        )
        if not eligible:
            continue
        if lowered:
            # a distinction belongs to the grade earned, not to the one a unit was lowered to
            words.append(f"已降级，不评{d.name}")
        elif d.name in barred:
            words.append(
                f"名次在前{d.top}名内，但因否决项不评{d.name}（不顺延给下一名）"
                if d.top
                else f"分数达到{d.name}线，但因否决项不评{d.name}"
            )
        elif d.name in barred_pending:
            used.append(_pending_words(barred_pending[d.name]))
            words.append(
                f"{'名次在前' + str(d.top) + '名内' if d.top else '分数达到' + d.name + '线'}，"
                f"但{used[-1]}，{d.name}待定（不顺延给下一名）"
            )
            held.append(d.name)
        else:
            distinctions.append(d.name)
            words.append(
                f"排名第{rank}，在{d.grade}档前{d.top}名内，评为{d.name}"
                if d.top
                else f"总分不低于{plain(d.min)}，评为{d.name}"
            )
    return Decision(grade, distinctions, "；".join(words), pending_distinctions=held, pending=used)


def _apply(result, d: Decision) -> None:
    result.grade, result.distinctions, result.grade_explanation = (
        d.grade,
        d.distinctions,
        d.explanation,
    )
    result.grade_pending = d.grade_pending
    result.pending_distinctions = d.pending_distinctions


def _pending_of(result) -> list:
    return getattr(result, "grade_pending_vetoes", None) or []


def grade_alone(scheme: Scheme, result) -> None:
    """Grade one unit on its own (thresholds); rank grading waits for ``rank_units``, and so do
    the parts computed in ranking (shown as 排名时计算)."""
    if scheme.relative:
        result.relative = alone(scheme)
    _apply(
        result,
        decision(scheme, result.total, None, result.grade_vetoes, _pending_of(result)),
    )


def rank_units(scheme: Scheme, results: Sequence) -> list[RankEntry]:
    """Rank scored units (ties share a rank) and grade each one, explained.  The parts computed
    in ranking (``relative``) are worked out first: the rank is on the total with them."""
    stood = standings(scheme, [(r.unit, r.total, getattr(r, "facts", None) or {}) for r in results])
    ranks = competition_ranks([s.total for s in stood])
    entries = []
    for result, standing, rank in zip(results, stood, ranks):
        d = decision(scheme, standing.total, rank, result.grade_vetoes, _pending_of(result))
        _apply(result, d)
        if scheme.relative:
            result.relative = standing.relative + [standing.converted] * bool(standing.converted)
        entries.append(
            RankEntry(
                result.unit,
                standing.total,
                rank,
                d.grade,
                d.distinctions,
                d.explanation,
                [v.id for v in result.grade_vetoes],
                d.grade_pending,
                d.pending_distinctions,
                d.pending,
                standing.scored_total,
                standing.relative,
                standing.converted,
            )
        )
    entries.sort(key=lambda e: (e.rank, e.unit))
    return entries
