"""A unit's state in a round, moved inside the caller's transaction.

The submission, score and draft operations (``service/operations.py``) and the round operations
(``service/rounds.py``) both move units through the cycle; they do it here, in the same
transaction as the write the move belongs to, so a submission and its 已提交自评 are stored
together or not at all.  The cycle itself (which moves are allowed, by whom, until when) is
``domain/cycle.py``; this module stores its answers and turns its refusals into service errors.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from .access import Actor, journal
from .db import Round, RoundUnit, Submission
from .domain.cycle import ACTIONS, STATES, CycleRefusal, RoundDates, check_action, state_words
from .exceptions import Closed, Conflict, Forbidden


def dates_of(rnd: Round) -> RoundDates:
    return RoundDates(
        rnd.self_deadline,
        rnd.review_deadline,
        rnd.publication_start,
        rnd.appeal_deadline,
        rnd.publication_end,
    )


def refusal(err: CycleRefusal) -> Exception:
    """The service error a refusal of the cycle is: 403 (not this role), 409 (not from this state)
    or 423 (past the deadline, naming it)."""
    if err.kind == "role":
        return Forbidden("not_your_step", err.message)
    if err.kind == "deadline":
        return Closed("deadline_passed", err.message, {err.deadline or "deadline": [err.message]})
    return Conflict("illegal_transition", err.message, {"state": [err.message]})


def open_round_of(s, scheme_id: str) -> Round | None:
    """The round a scheme's facts are entered in now: its newest round not yet final."""
    return s.scalar(
        select(Round)
        .where(Round.scheme_id == scheme_id, Round.stage != "final")
        .order_by(Round.year.desc(), Round.id.desc())
        .limit(1)
    )


def latest_round_of(s, scheme_id: str) -> Round | None:
    """The round a scheme's ranking shows: its newest round, final or not."""
    return s.scalar(
        select(Round)
        .where(Round.scheme_id == scheme_id)
        .order_by(Round.year.desc(), Round.id.desc())
        .limit(1)
    )


def no_round(scheme_id: str) -> Conflict:
    return Conflict(
        "no_open_round",
        f"细则“{scheme_id}”没有进行中的考核轮次，不能填报或评审；请管理员先开启考核轮次",
        {"round": ["没有进行中的考核轮次"]},
    )


def place_of(s, rnd: Round, unit_id: int) -> RoundUnit | None:
    return s.scalar(
        select(RoundUnit).where(RoundUnit.round_id == rnd.id, RoundUnit.unit_id == unit_id)
    )


def state_of(place: RoundUnit | None) -> str:
    return place.state if place is not None else "none"


def allowed(rnd: Round, place: RoundUnit | None, action: str, role: str, at: datetime) -> str:
    """The state after ``action``, or the service error that refuses it (raised)."""
    if rnd.stage == "final":
        raise Conflict(
            "round_final",
            f"考核轮次“{rnd.title}”已定稿，不能再{ACTIONS[action].words}",
            {"round": ["已定稿"]},
        )
    try:
        return check_action(action, state_of(place), role, dates_of(rnd), at)
    except CycleRefusal as err:
        raise refusal(err) from None


def advance(
    s,
    actor: Actor,
    rnd: Round,
    unit_id: int,
    unit_code: str,
    action: str,
    at: datetime | None = None,
    note: dict | None = None,
    **changes,
) -> RoundUnit:
    """Move a unit by ``action`` in session ``s`` (the caller's transaction), with ``changes`` to
    its place (versions, official score, returned reason), journaled as ``rounds.<action>`` with
    the changes and ``note`` (what the journal should say besides, e.g. a reason)."""
    at = at or datetime.now(UTC)
    place = place_of(s, rnd, unit_id)
    before = state_of(place)
    after = allowed(rnd, place, action, actor.role, at)
    if place is None:
        place = RoundUnit(round_id=rnd.id, unit_id=unit_id, state=after)
        s.add(place)
    place.state = after
    for key, value in changes.items():
        setattr(place, key, value)
    place.updated_at, place.updated_by = at, actor.user_id or None
    try:
        s.flush()
    except StaleDataError:
        # the same answer as two submissions racing for one version: someone else wrote first
        raise Conflict(
            "version_conflict", "另一位用户刚刚改变了该单位（新版本或流程状态），请重新读取后再改"
        ) from None
    journal(
        s,
        actor,
        f"rounds.{action}",
        f"round:{rnd.id}/unit:{unit_code}/scheme:{rnd.scheme_id}",
        "ok",
        before=before,
        after=after,
        **{k: v for k, v in changes.items() if isinstance(v, str | int) or v is None},
        **(note or {}),
    )
    return place


def describe(place: RoundUnit | None) -> dict:
    """A unit's state as the API and the pages show it."""
    state = state_of(place)
    return {
        "state": state,
        "state_words": state_words(state, place.returned_reason if place else None),
        "returned_reason": place.returned_reason if place else None,
        "self_version": place.self_version if place else None,
        "reviewed_version": place.reviewed_version if place else None,
        "official_score_id": place.official_score_id if place else None,
    }


__all__ = ["STATES", "advance", "describe", "open_round_of", "latest_round_of", "no_round"]


#: the states in which a unit's reviewed version is the office's word on its facts
REVIEWED = ("reviewed", "published", "appealed", "rechecked", "final")


def carried_over(s, rnd: Round, unit_id: int, previous_year: dict) -> dict:
    """Year on year: {fact: (value, where it came from)} for each fact of ``previous_year``
    ({fact: the fact it is the previous year's value of}) that the same unit's reviewed facts of
    a round of the year before have; the newest such round first, a final one before others."""
    found: dict = {}
    prior = s.scalars(
        select(Round)
        .where(Round.year == rnd.year - 1)
        .order_by((Round.stage == "final").desc(), Round.id.desc())
    )
    for old in prior:
        place = place_of(s, old, unit_id)
        if place is None or place.state not in REVIEWED or place.reviewed_version is None:
            continue
        facts = s.scalar(
            select(Submission.facts).where(
                Submission.unit_id == unit_id,
                Submission.scheme_id == old.scheme_id,
                Submission.version == place.reviewed_version,
            )
        )
        for name, source in previous_year.items():
            if name not in found and facts and facts.get(source) is not None:
                found[name] = (
                    facts[source],
                    f"取自{old.year}年度考核轮次“{old.title}”已评审的第{place.reviewed_version}版"
                    f"（{source}）",
                )
    return found
