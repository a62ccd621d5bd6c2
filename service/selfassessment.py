"""What a unit's own self-assessment (自评) would score, beside the official (评审) score.

The publication outputs set the points of the version a unit submitted (``round_units.
self_version``) beside the points of the version the reviewer decided, clause by clause, so a
reader sees where review changed the result.  The self-assessed points are computed here, under the
round's scheme version, and never stored: a stored score would be a preview or an official score,
and this is neither (the unit did not ask for it, and nothing ranks it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select

from .access import OWN_UNIT_ONLY, Actor, check
from .db import RoundUnit, Submission, Unit, marks_of
from .domain.facts import InvalidFacts, validate_facts
from .domain.panel import MARKS_PUBLIC
from .domain.scoring import score_units
from .engine.pool import EngineUnavailable
from .exceptions import Unavailable
from .operations import Context, _unit_for, current_scheme, intact, round_scheme
from .roundstate import latest_round_of


@dataclass
class SelfAssessed:
    """The points of a unit's submitted self-assessment: ``clauses`` and ``categories`` by id."""

    version: int
    total: Decimal
    complete: bool
    clauses: dict = field(default_factory=dict)
    categories: dict = field(default_factory=dict)


def self_assessed(
    ctx: Context, actor: Actor, scheme_id: str, unit_code: str | None = None
) -> dict[str, SelfAssessed]:
    """Unit code -> the points its submitted self-assessment gets under the round's scheme version,
    for the units of the scheme's newest round (the one the ranking shows) that have an official
    score; ``unit_code``: that unit only.  Nothing is stored.

    Read under the permission of the output it goes into: the ranking (``ranking.read``) for every
    unit, the unit's scores (``scores.read``, a submitter's own unit only) for one.  A unit whose
    submitted version is missing, was changed since it was written, or no longer passes the round's
    fact checks is left out: the outputs then show no 自评 for it rather than a wrong one."""
    if unit_code is None:
        check(ctx.db, actor, "ranking.read", f"scheme:{scheme_id}")
        only = None
    else:
        only = _unit_for(
            ctx, actor, "scores.read", unit_code, f"unit:{unit_code}/scheme:{scheme_id}"
        )
    current_scheme(ctx, scheme_id)  # an unknown scheme is a 404, as for the ranking
    with ctx.db.transaction() as s:
        rnd = latest_round_of(s, scheme_id)
        if rnd is None:
            return {}
        query = (
            select(RoundUnit, Unit, Submission)
            .join(Unit, Unit.id == RoundUnit.unit_id)
            .join(
                Submission,
                (Submission.unit_id == RoundUnit.unit_id)
                & (Submission.scheme_id == scheme_id)
                & (Submission.version == RoundUnit.self_version),
            )
            .where(RoundUnit.round_id == rnd.id, RoundUnit.official_score_id.is_not(None))
        )
        if only is not None:
            query = query.where(RoundUnit.unit_id == only.id)
        found = list(s.execute(query))
        rows = [(unit, sub) for _place, unit, sub in found]
        # a unit's own submitter sees no panel marks before its score is published (as in its
        # previews); only a single unit is read by a submitter (the ranking is not theirs)
        withheld = actor.role in OWN_UNIT_ONLY and any(
            place.state not in MARKS_PUBLIC for place, _unit, _sub in found
        )
        marks = {unit.code: marks_of(s, rnd.id, unit.id) for unit, _sub in rows}
    scheme = round_scheme(ctx, rnd)
    facts = {}
    for unit, sub in rows:
        if not intact(sub):
            continue
        try:
            validate_facts(scheme, sub.facts)
        except InvalidFacts:
            continue
        facts[unit.code] = sub.facts
    if not facts:
        return {}
    # the reviewers' panel marks are no part of a unit's self-assessment: the same marks as the
    # official score, so a panel clause shows no difference the unit could have caused
    try:
        results = score_units(
            scheme, facts, ctx.engine, ctx.engine.name, marks=marks, withheld=withheld
        )
    except EngineUnavailable as err:
        raise Unavailable(
            "engine_unavailable", err.message, incident=err.incident, retry_after=1
        ) from None
    versions = {unit.code: sub.version for unit, sub in rows}
    return {
        code: SelfAssessed(
            versions[code],
            result.total,
            result.complete,
            {c.id: c.points for c in result.clauses},
            {c.id: c.points for c in result.categories},
        )
        for code, result in zip(facts, results, strict=True)
    }
