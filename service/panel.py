"""Several reviewers scoring a clause (专家评审): each reviewer's own mark, and who may see whose.

A clause whose ``assessed`` rule declares a panel (``domain.panel``) is scored by that many
reviewers independently.  Each enters their own points and reason for the clause of a unit in a
round, and may replace them while the unit's review is open (the cycle's ``review`` step: the unit
has submitted, the review is not complete, the review deadline has not passed); every entry is
journaled with what it replaced.  Reviewers score blind: until a reviewer has entered their own
mark they see only how many marks are in, never the others' points; an admin or an auditor sees
every mark; the unit's own submitter sees them once the unit's score is published.

The marks feed the unit's score through ``db.marks_of`` (``operations.compute_score``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from .access import Actor, check, journal
from .db import PanelMark, Round, RoundUnit, User
from .domain.facts import check_value
from .domain.model import Rule, Scheme
from .domain.numbers import plain
from .domain.panel import MARKS_PUBLIC, panel_words
from .exceptions import Conflict, Invalid, NotFound
from .operations import Context, _journal_read, _unit_for
from .rounds import _reason, get_round, round_scheme
from .roundstate import allowed, place_of, state_of

#: who sees every mark of a clause at any time (they enter none, or oversee all)
SEE_ALL = {"admin", "auditor"}


@dataclass
class MarksView:
    """A clause's marks as one caller may see them."""

    round: int
    unit: str
    clause: str
    reviewers: int  # how many marks the panel takes
    entered: int  # how many are in (everyone may know this)
    panel: str  # the panel in words: "5名评审独立打分，去掉1个最高分和1个最低分后取平均"
    visible: bool  # False: the others' marks are withheld from this caller
    why_hidden: str
    marks: list  # of dicts: reviewer, reviewer_name, points, reason, entered_at, own

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _panel_rule(scheme: Scheme, clause_id: str) -> Rule:
    if clause_id not in scheme.clauses:
        raise NotFound("unknown_clause", f"细则“{scheme.id}”中没有编号为“{clause_id}”的条款")
    rule = scheme.panels.get(clause_id)
    if rule is None:
        raise Conflict(
            "not_a_panel_clause",
            f"条款“{clause_id}”不是由评审组打分的条款（它的规则没有设 panel），不能录入评审打分",
            {"clause": ["该条款没有评审组"]},
        )
    return rule


def _where(rnd: Round, unit_id: int, clause_id: str):
    return (
        PanelMark.round_id == rnd.id,
        PanelMark.unit_id == unit_id,
        PanelMark.clause_id == clause_id,
    )


def enter_mark(
    ctx: Context,
    actor: Actor,
    round_id: int,
    unit_code: str,
    clause_id: str,
    points,
    reason: str,
) -> dict:
    """The caller's own mark for a clause of a unit in a round, entered or replaced."""
    target = f"round:{round_id}/unit:{unit_code}/clause:{clause_id}"
    check(ctx.db, actor, "rounds.review", target)
    rnd = get_round(ctx, actor, round_id)
    unit = _unit_for(ctx, actor, "rounds.review", unit_code, target)
    scheme = round_scheme(ctx, rnd)
    rule = _panel_rule(scheme, clause_id)
    spec = scheme.facts[rule.value]
    value, problem = check_value(spec, points)
    problems = {"points": [f"{spec.label}{problem}"]} if problem else {}
    try:
        reason = _reason(reason)
    except Invalid as err:
        problems.update(err.fields)
    if problems:
        raise Invalid("invalid_mark", "评审打分有误", problems)
    assert isinstance(value, Decimal)
    at = datetime.now(UTC)
    try:
        with ctx.db.transaction() as s:
            entered = _store(s, actor, rnd, unit.id, clause_id, rule, value, reason, at, target)
    except IntegrityError:
        # the same reviewer entering twice at once: one insert won, this one saw no row
        raise Conflict(
            "version_conflict", "您的打分刚刚被另一个请求录入，请重新读取后再改"
        ) from None
    return {
        "round": rnd.id,
        "unit": unit.code,
        "clause": clause_id,
        "reviewer": actor.username,
        "points": value,
        "reason": reason,
        "entered_at": at,
        "entered": entered,
        "reviewers": rule.panel.reviewers,
    }


def _store(s, actor, rnd, unit_id, clause_id, rule, value, reason, at, target) -> int:
    """Enter or replace the caller's mark in transaction ``s``; how many marks are in after it."""
    # the unit's place, locked (PostgreSQL: FOR UPDATE) so that marks of one unit are entered one
    # at a time; the unit must be under review (submitted, not complete, before the deadline)
    place = s.scalar(
        select(RoundUnit)
        .where(RoundUnit.round_id == rnd.id, RoundUnit.unit_id == unit_id)
        .with_for_update()
    )
    allowed(s.get(Round, rnd.id), place, "review", actor.role, at)
    where = _where(rnd, unit_id, clause_id)
    mark = s.scalar(select(PanelMark).where(*where, PanelMark.reviewer_id == actor.user_id))
    before = {"points": mark.points, "reason": mark.reason} if mark else None
    if mark is None:
        mark = PanelMark(
            round_id=rnd.id, unit_id=unit_id, clause_id=clause_id, reviewer_id=actor.user_id
        )
        s.add(mark)
    mark.points, mark.reason, mark.entered_at = plain(value), reason, at
    s.flush()
    # counted after the write: on SQLite the write waits for the database's lock, and a count in
    # the same transaction then sees every mark committed before it (a count first could not)
    entered = s.scalar(select(func.count()).select_from(PanelMark).where(*where))
    if before is None and entered > rule.panel.reviewers:
        raise Conflict(
            "panel_full",
            f"条款“{clause_id}”的评审组为{rule.panel.reviewers}人，已有{entered - 1}名评审打分，"
            "不能再录入",
            {"clause": [f"已有{entered - 1}份打分"]},
        )
    journal(s, actor, "panel.mark", target + f"/scheme:{rnd.scheme_id}", "ok",
            round=rnd.id, clause=clause_id, points=plain(value), reason=reason,
            replaced=before)  # fmt: skip
    return entered


def read_marks(ctx: Context, actor: Actor, round_id: int, unit_code: str, clause_id: str) -> dict:
    """A clause's marks as the caller may see them (blind until one's own is in)."""
    target = f"round:{round_id}/unit:{unit_code}/clause:{clause_id}"
    check(ctx.db, actor, "scores.read", target)
    rnd = get_round(ctx, actor, round_id)
    unit = _unit_for(ctx, actor, "scores.read", unit_code, target)
    rule = _panel_rule(round_scheme(ctx, rnd), clause_id)
    with ctx.db.transaction() as s:
        rows = list(
            s.execute(
                select(PanelMark, User.username, User.display_name)
                .join(User, User.id == PanelMark.reviewer_id)
                .where(*_where(rnd, unit.id, clause_id))
                .order_by(PanelMark.id)
            )
        )
        state = state_of(place_of(s, rnd, unit.id))
        _journal_read(s, actor, "scores.read", unit, target + f"/scheme:{rnd.scheme_id}")
    own = any(mark.reviewer_id == actor.user_id for mark, _u, _n in rows)
    visible, why = _may_see(actor, own, state)
    marks = [
        {
            "reviewer": username,
            "reviewer_name": name or username,
            "points": Decimal(mark.points),
            "reason": mark.reason,
            "entered_at": mark.entered_at,
            "own": mark.reviewer_id == actor.user_id,
        }
        for mark, username, name in rows
        if visible or mark.reviewer_id == actor.user_id
    ]
    return MarksView(
        rnd.id, unit.code, clause_id, rule.panel.reviewers, len(rows),
        panel_words(rule.panel), visible, why, marks,
    ).as_dict()  # fmt: skip


def _may_see(actor: Actor, own: bool, state: str) -> tuple[bool, str]:
    """Whether the caller sees the others' marks, and if not, why not."""
    if actor.role in SEE_ALL:
        return True, ""
    if actor.role == "submitter":
        if state in MARKS_PUBLIC:
            return True, ""
        return False, "评审打分在本单位得分公示后才能查看"
    if own:
        return True, ""
    return False, "录入您自己的打分后才能看到其他评审的打分"
