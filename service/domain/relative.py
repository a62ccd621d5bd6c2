"""Scores relative to the other units, computed when the units are ranked (rules/README.md §5.4).

A unit scored alone cannot know these: its share of the best unit's total ("其他单位得分=
(该单位考核得分/排名第一的单位考核得分)×600"), or its points by place ("第一名得基本分200分，
名次每降低1位减基本分2%").  Scoring alone shows them as 排名时计算; ``standings`` works them
out for all the units ranked together, with the reference unit's value in every sentence.

Readings the product takes:
- equal values share a place (1, 2, 2, 4, as totals do, rules/README.md reading 7); points by
  place go by that shared place, so tied units each get the better place's points and the
  next unit is as many places down as there are units ahead of it;
- a unit whose measure is missing or undefined takes no place in that ranking and gets no
  points from it (the part says why); the others are ranked among themselves;
- a ratio against a best value of 0 or below is undefined (no division), said so, and counts
  nothing; a converted total against a best total of 0 or below leaves the totals unconverted;
- several rankings in one part: the part's points are the mean of the points each gives;
  a unit missing from any of them gets no mean (the part is undefined for it).
Everything is exact decimals; only the sentences round (to 2 places).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from . import expressions as ex
from .model import Ranking, RelativePart, Scheme
from .numbers import equals_words, measure_words, plain, points_words

ZERO = Decimal(0)
ALONE = "排名时计算"


@dataclass
class RelativePoints:
    """One relative part (or the conversion) for one unit: its points, and why."""

    id: str
    title: str
    #: None while scored alone (``pending``), or when undefined for this unit
    points: Decimal | None
    explanation: str
    pending: bool = False
    #: the unit(s) in first place and their value, the reference the points are measured against
    reference: str = ""
    reference_value: Decimal | None = None
    value: Decimal | None = None
    place: int | None = None


@dataclass
class Standing:
    """A unit's total once the units are ranked: its own, the relative parts, the conversion."""

    unit: str
    scored_total: Decimal
    total: Decimal
    relative: list = field(default_factory=list)  # RelativePoints
    converted: RelativePoints | None = None


def alone(scheme: Scheme) -> list[RelativePoints]:
    """The relative parts of a unit scored on its own: not missing, not zero, 排名时计算."""
    out = [
        RelativePoints(
            p.id, p.title, None, f"{ALONE}：按与其他单位的排名计分（{_method_words(p)}）", True
        )
        for p in scheme.relative.parts
    ]
    if scheme.relative.convert is not None:
        scale = plain(scheme.relative.convert.scale)
        out.append(
            RelativePoints(
                "折算", "总分折算", None, f"{ALONE}：总分按排名第一的单位折算为{scale}分制", True
            )
        )
    return out


def _method_words(part: RelativePart) -> str:
    if part.method == "ratio":
        return f"排名第一的单位得{plain(part.points)}分，其他单位按与第一名的比值计分"
    return (
        f"第一名得{plain(part.points)}分，名次每降低1位减{plain(part.points)}分的"
        f"{plain(part.per_place * 100)}%"  # type: ignore[operator]
    )


def standings(scheme: Scheme, units: Sequence[tuple[str, Decimal, Mapping]]) -> list[Standing]:
    """(unit, total scored alone, facts) for every unit ranked -> each unit's standing.  The
    facts may be a stored trace's, numbers written as exact decimal strings."""
    out = [Standing(u, t, t) for u, t, _ in units]
    if not scheme.relative or not out:
        return out  # most schemes: the ranked total is the total scored alone; or nobody yet
    units = [(u, t, _typed(scheme, facts)) for u, t, facts in units]
    labels = {n: f.label for n, f in scheme.facts.items()}
    for part in scheme.relative.parts:
        for standing, got in zip(out, _part(part, units, labels)):
            standing.relative.append(got)
            if got.points is not None:
                standing.total += got.points
    if scheme.relative.convert is not None:
        _convert(scheme, out)
    return out


def _typed(scheme: Scheme, facts: Mapping) -> dict:
    """Number facts as decimals: a stored trace writes them as exact strings ("76.5")."""
    out = dict(facts)
    for name, value in facts.items():
        spec = scheme.facts.get(name)
        if isinstance(value, str) and spec is not None and spec.expr_type == ex.NUMBER:
            try:
                out[name] = Decimal(value)
            except InvalidOperation:
                del out[name]  # not a number: missing, as the ranking says
    return out


def _part(part: RelativePart, units: Sequence, labels: Mapping) -> list[RelativePoints]:
    each = [_ranking(part, r, units, labels) for r in part.rankings]
    if len(each) == 1:
        return [RelativePoints(part.id, part.title, **vars(g)) for g in each[0]]
    out = []
    for i in range(len(units)):
        got = [ranked[i] for ranked in each]
        words = "；".join(f"{r.label}：{g.explanation}" for r, g in zip(part.rankings, got))
        known = [g.points for g in got if g.points is not None]
        mean: Decimal | None = None
        if len(known) < len(got):
            said = "有一项排名无得分，本项不计分"
        else:
            mean = sum(known, ZERO) / len(known)
            terms = "+".join(points_words(x) for x in known)
            said = f"取{len(known)}项排名得分的平均值：({terms})/{len(known)}{equals_words(mean)}分"
        out.append(RelativePoints(part.id, part.title, mean, f"{words}；{said}"))
    return out


@dataclass
class _Got:
    points: Decimal | None
    explanation: str
    reference: str = ""
    reference_value: Decimal | None = None
    value: Decimal | None = None
    place: int | None = None


def _value(ranking: Ranking, facts: Mapping, labels: Mapping) -> tuple[Decimal | None, str]:
    try:
        return ex.evaluate(ranking.measure, facts), ""
    except ex.Undefined as why:
        if why.missing:  # named by label, as the form asks for them
            return None, "缺少事实" + "、".join(f"“{labels.get(n, n)}”" for n in why.missing)
        return None, why.reason


def places(values: Sequence[Decimal], better: str = "higher") -> list[int]:
    """1 + the number of units strictly better, for each value (equal values share a place)."""
    ordered = sorted(values, reverse=better == "higher")
    first: dict[Decimal, int] = {}
    for i, v in enumerate(ordered):
        first.setdefault(v, i + 1)
    return [first[v] for v in values]


def _ranking(part: RelativePart, ranking: Ranking, units: Sequence, labels: Mapping) -> list[_Got]:
    values = [_value(ranking, facts, labels) for _, _, facts in units]
    known = [v for v, _ in values if v is not None]
    placed = iter(places(known, ranking.better))
    best = (max if ranking.better == "higher" else min)(known) if known else None
    leaders = "、".join(
        u for (u, _, _), (v, _) in zip(units, values) if v == best and v is not None
    )
    out = []
    count = len(known)
    for v, why in values:
        if v is None:
            out.append(_Got(None, f"{ranking.label}无法确定（{why}），不参加该项排名，不计分"))
            continue
        place = next(placed)
        ref = f"排名第一的单位（{leaders}）{ranking.label}{measure_words(best)}"  # type: ignore[arg-type]
        if part.method == "ratio":
            got = _ratio(part, ranking, v, best, ref)  # type: ignore[arg-type]
        else:
            got = _by_place(part, ranking, v, place, count, ref)
        got.reference, got.reference_value, got.value, got.place = leaders, best, v, place
        out.append(got)
    return out


def _by_place(part, ranking: Ranking, value: Decimal, place: int, count: int, ref: str) -> _Got:
    lost = part.points * part.per_place * (place - 1)
    points = max(part.points - lost, ZERO)
    said = (
        f"{ref}，本单位{measure_words(value)}，在{count}个单位中排第{place}名；"
        f"第一名得{plain(part.points)}分，名次每降低1位减{plain(part.points * part.per_place)}分"
    )
    if place == 1:
        return _Got(points, f"{said}，得{plain(part.points)}分")
    floor = "，减完为止" if lost > part.points else ""
    return _Got(
        points,
        f"{said}，{plain(part.points)}-{place - 1}×{plain(part.points * part.per_place)}"
        f"{floor}，得{points_words(points)}分",
    )


def _ratio(part, ranking: Ranking, value: Decimal, best: Decimal, ref: str) -> _Got:
    if best <= 0:
        return _Got(
            None,
            f"{ref}，不大于0，与第一名的比值无定义，本项不计分",
        )
    points = value / best * part.points
    return _Got(
        points,
        f"{ref}，本单位{measure_words(value)}，"
        f"{_n(value)}/{_n(best)}×{plain(part.points)}{equals_words(points)}",
    )


def _n(value: Decimal) -> str:
    """A number inside an equation: exact when short, else rounded to 2 places ("约")."""
    return points_words(value)


def _convert(scheme: Scheme, out: list[Standing]) -> None:
    scale = scheme.relative.convert.scale  # type: ignore[union-attr]
    best = max(s.total for s in out)
    leaders = "、".join(s.unit for s in out if s.total == best)
    ref = f"排名第一的单位（{leaders}）考核得分{points_words(best)}"
    for s in out:
        if best <= 0:
            s.converted = RelativePoints(
                "折算",
                "总分折算",
                None,
                f"{ref}，不大于0，与第一名的比值无定义，总分不折算，保留{points_words(s.total)}分",
                reference=leaders,
                reference_value=best,
                value=s.total,
            )
            continue
        converted = s.total / best * scale
        s.converted = RelativePoints(
            "折算",
            "总分折算",
            converted,
            f"{ref}，本单位{points_words(s.total)}，"
            f"{_n(s.total)}/{_n(best)}×{plain(scale)}{equals_words(converted)}",
            reference=leaders,
            reference_value=best,
            value=s.total,
        )
        s.total = converted
