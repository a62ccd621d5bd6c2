"""A unit's place in the review cycle as the pages show it: the round (考核轮次) its facts belong
to, its state in words, the reason it was returned, and the steps of the cycle this user may
take on it now.

What a step is allowed to do is the cycle's (``service.domain.cycle.ACTIONS``); the pages offer a
button only where the cycle would take it (the state is one the action starts from, the user's role
one of its roles, the round not final).  A deadline is not judged here: a step past its deadline is
still offered and refused by the service with a message naming the deadline, which the page shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from service import rounds
from service.access import Actor
from service.db import Round
from service.domain.cycle import ACTIONS, DEADLINES, NEXT_STEP, STATES, shown

from .auth import ctx

#: the badge colour of each state (admin.css: ok green, warn amber, bad red, blue)
STATE_BADGES = {
    "none": "",
    "draft": "warn",
    "submitted": "blue",
    "in_review": "blue",
    "reviewed": "ok",
    "published": "ok",
    "appealed": "bad",
    "rechecked": "ok",
    "final": "ok",
}

REVIEW_STEPS = {"complete_review", "compute_official", "return", "reopen_review"}


@dataclass
class Standing:
    """One unit's place in one round, for one viewer."""

    round: Round
    state: str
    state_words: str
    returned_reason: str | None
    self_version: int | None
    reviewed_version: int | None
    official_score_id: int | None
    actions: set = field(default_factory=set)  # the cycle's steps open to this viewer

    @property
    def badge(self) -> str:
        return STATE_BADGES.get(self.state, "")

    @property
    def next_step(self) -> str:
        return NEXT_STEP.get(self.state, "")

    @property
    def review_steps(self) -> set:
        """The steps a unit's page offers as buttons (a submission and 发布 have pages of their own)."""
        return self.actions & REVIEW_STEPS

    def may(self, action: str) -> bool:
        return action in self.actions


def open_to(role: str, state: str, rnd: Round) -> set:
    """The cycle's steps a ``role`` may take on a unit in ``state`` (deadlines aside)."""
    if rnd.stage == "final":
        return set()
    return {a.name for a in ACTIONS.values() if state in a.starts and role in a.roles}


def rounds_by_scheme(actor: Actor) -> dict:
    """{scheme id: the round its facts are entered in now (the newest not final), or else its
    newest}: the round a unit's pages show."""
    found: dict = {}
    for rnd in rounds.list_rounds(ctx(), actor):  # newest first
        current = found.get(rnd.scheme_id)
        if current is None or (current.stage == "final" and rnd.stage != "final"):
            found[rnd.scheme_id] = rnd
    return found


def standing(actor: Actor, code: str, scheme_id: str, rnd: Round | None = None) -> Standing | None:
    """The unit's place in ``rnd`` (by default the scheme's round now), None when there is none."""
    rnd = rnd or rounds_by_scheme(actor).get(scheme_id)
    if rnd is None:
        return None
    place = rounds.unit_place(ctx(), actor, rnd.id, code)
    return Standing(
        rnd,
        place["state"],
        place["state_words"],
        place["returned_reason"],
        place["self_version"],
        place["reviewed_version"],
        place["official_score_id"],
        open_to(actor.role, place["state"], rnd),
    )


def overdue(rnd: Round, state: str, at: datetime | None = None) -> str | None:
    """Why a unit in ``state`` is late in ``rnd`` (None when it is not): still 未填报/草稿 after the
    self-assessment deadline, still 已提交自评/评审中 after the review deadline."""
    at = at or datetime.now(UTC)
    if state in ("none", "draft") and at > _aware(rnd.self_deadline):
        return f"{DEADLINES['self_deadline']}（{shown(_aware(rnd.self_deadline))}）已过，仍{STATES[state]}"
    if state in ("submitted", "in_review") and at > _aware(rnd.review_deadline):
        return f"{DEADLINES['review_deadline']}（{shown(_aware(rnd.review_deadline))}）已过，仍{STATES[state]}"
    return None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
