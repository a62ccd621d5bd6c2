"""Assessment rounds (考核轮次): opening one, moving its deadlines, and the steps of the review cycle
that are not a submission or a score (退回, 完成评审, 重新打开评审, 发布公示, 定稿), and the round's
board of every unit and its state.

An admin opens a round for a scheme's current version and a year, with its dates; the version is
pinned (archived) so every score of the round is computed under it, whatever is served later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from . import releases
from .access import Actor, check, journal
from .db import DeadlineChange, Round, RoundUnit, Score, Submission, Unit
from .domain.cycle import DEADLINES, ROUND_STAGES, RoundDates, shown
from .domain.text import REASON_CHARS_MAX, unstorable
from .exceptions import Conflict, Invalid, NotFound
from .operations import (
    Context,
    _archive,
    _journal_read,
    _unit_for,
    current_scheme,
    previous_year_facts,
    round_scheme,
    scheme_by_version,
)
from .roundstate import advance, describe, place_of

#: a year a round may be for (the schemes are yearly; this keeps out typing slips like 20225)
YEARS = range(2000, 2101)


def _reason(text: str, field: str = "reason") -> str:
    text = (text or "").strip()
    problems = []
    if not text:
        problems.append("必须写明理由")
    elif unstorable(text):
        problems.append(unstorable(text))
    elif len(text) > REASON_CHARS_MAX:
        problems.append(f"不超过{REASON_CHARS_MAX}字")
    if problems:
        raise Invalid("reason_required", "须写明理由", {field: problems})
    return text


def open_round(
    ctx: Context, actor: Actor, scheme_id: str, year: int, title: str, dates: RoundDates
) -> Round:
    """Open a round of ``scheme_id``'s current version for ``year``."""
    check(ctx.db, actor, "rounds.write", f"scheme:{scheme_id}")
    scheme = current_scheme(ctx, scheme_id)
    problems = dates.problems()
    if year not in YEARS:
        problems["year"] = [f"应在{YEARS.start}至{YEARS.stop - 1}之间"]
    # the default names the year once: a scheme's own title often starts with it ("2022年度…")
    title = (title or "").strip() or (
        scheme.title if str(year) in scheme.title else f"{year}年度{scheme.title}"
    )
    if unstorable(title) or len(title) > 300:
        problems["title"] = [unstorable(title) or "不超过300字"]
    if problems:
        raise Invalid("invalid_round", "考核轮次的信息有误", problems)
    # the version in force for that year (a release approved with an effective year), which is
    # not always the one served now: a 2022 round opened late keeps the 2022 rules
    version, folder = releases.version_and_folder_for_year(ctx, scheme_id, year)
    scheme = scheme_by_version(ctx, version, folder)
    try:
        with ctx.db.transaction() as s:
            _archive(s, scheme)
            rnd = Round(
                scheme_id=scheme.id,
                rules_version=scheme.version,
                folder=folder,
                year=year,
                title=title,
                stage="open",
                created_by=actor.user_id,
                **{name: getattr(dates, name) for name in DEADLINES},
            )
            s.add(rnd)
            s.flush()
            journal(
                s,
                actor,
                "rounds.open",
                f"round:{rnd.id}/scheme:{scheme.id}",
                "ok",
                year=year,
                rules_version=scheme.version,
                **{name: getattr(dates, name).isoformat() for name in DEADLINES},
            )
    except IntegrityError:
        raise Conflict(
            "duplicate_round",
            f"细则“{scheme_id}”已有{year}年度的考核轮次",
            {"year": ["已有这一年度的轮次"]},
        ) from None
    return rnd


def list_rounds(ctx: Context, actor: Actor, scheme_id: str | None = None) -> list[Round]:
    check(ctx.db, actor, "rounds.read", "rounds")
    with ctx.db.transaction() as s:
        query = select(Round).order_by(Round.year.desc(), Round.id.desc())
        if scheme_id is not None:
            query = query.where(Round.scheme_id == scheme_id)
        return list(s.scalars(query))


def get_round(ctx: Context, actor: Actor, round_id: int) -> Round:
    check(ctx.db, actor, "rounds.read", f"round:{round_id}")
    with ctx.db.transaction() as s:
        rnd = s.get(Round, round_id)
    if rnd is None:
        raise NotFound("unknown_round", f"没有编号为 {round_id} 的考核轮次")
    return rnd


def deadline_changes(ctx: Context, actor: Actor, round_id: int) -> list[DeadlineChange]:
    get_round(ctx, actor, round_id)
    with ctx.db.transaction() as s:
        return list(
            s.scalars(
                select(DeadlineChange)
                .where(DeadlineChange.round_id == round_id)
                .order_by(DeadlineChange.id)
            )
        )


def extend_deadline(
    ctx: Context, actor: Actor, round_id: int, deadline: str, new: datetime, reason: str
) -> Round:
    """Move one of a round's deadlines, with a reason (journaled and kept in its own history)."""
    check(ctx.db, actor, "rounds.write", f"round:{round_id}")
    if deadline not in DEADLINES:
        raise Invalid(
            "unknown_deadline",
            f"没有名为“{deadline}”的截止时间",
            {"deadline": [f"可用：{'、'.join(DEADLINES)}"]},
        )
    reason = _reason(reason)
    with ctx.db.transaction() as s:
        rnd = s.get(Round, round_id)
        if rnd is None:
            raise NotFound("unknown_round", f"没有编号为 {round_id} 的考核轮次")
        if rnd.stage == "final":
            raise Conflict("round_final", "考核轮次已定稿，不能再改截止时间", {"round": ["已定稿"]})
        old = getattr(rnd, deadline)
        values = {name: getattr(rnd, name) for name in DEADLINES}
        values[deadline] = new
        problems = RoundDates(**values).problems()
        if problems:
            raise Invalid("invalid_round", "截止时间的先后不对", problems)
        setattr(rnd, deadline, new)
        s.add(
            DeadlineChange(
                round_id=rnd.id,
                deadline=deadline,
                old=old,
                new=new,
                reason=reason,
                changed_by=actor.user_id,
            )
        )
        s.flush()
        journal(
            s,
            actor,
            "rounds.deadline",
            f"round:{rnd.id}/scheme:{rnd.scheme_id}",
            "ok",
            deadline=deadline,
            old=shown(old),
            new=shown(new),
            reason=reason,
        )
    return rnd


# --- the steps of the cycle a reviewer or an admin takes on one unit --------------------------


def _step(
    ctx: Context,
    actor: Actor,
    round_id: int,
    unit_code: str,
    action: str,
    note: dict | None = None,
    **changes,
) -> RoundUnit:
    get_round(ctx, actor, round_id)
    unit = _unit_for(ctx, actor, "rounds.review", unit_code, f"round:{round_id}/unit:{unit_code}")
    with ctx.db.transaction() as s:
        rnd = s.get(Round, round_id)
        if action == "complete_review":
            changes["reviewed_version"] = _latest_version_of(s, rnd, unit)
        return advance(s, actor, rnd, unit.id, unit.code, action, note=note, **changes)


def _latest_version_of(s, rnd: Round, unit: Unit) -> int:
    version = s.scalar(
        select(Submission.version)
        .where(Submission.unit_id == unit.id, Submission.scheme_id == rnd.scheme_id)
        .order_by(Submission.version.desc())
        .limit(1)
    )
    if version is None:
        raise Conflict("no_submission", "该单位还没有提交事实，无法完成评审")
    return version


def return_submission(
    ctx: Context, actor: Actor, round_id: int, unit_code: str, reason: str
) -> RoundUnit:
    """退回: the unit may change its facts again, and reads the reason."""
    reason = _reason(reason)
    return _step(ctx, actor, round_id, unit_code, "return", returned_reason=reason)


def complete_review(ctx: Context, actor: Actor, round_id: int, unit_code: str) -> RoundUnit:
    """完成评审: the unit's latest version of facts is the reviewed one, the only one official
    scores are computed from."""
    return _step(ctx, actor, round_id, unit_code, "complete_review")


def reopen_review(
    ctx: Context, actor: Actor, round_id: int, unit_code: str, reason: str
) -> RoundUnit:
    """重新打开评审 (before the review deadline): the official score computed so far is dropped."""
    reason = _reason(reason)
    return _step(
        ctx,
        actor,
        round_id,
        unit_code,
        "reopen_review",
        note={"reason": reason},
        official_score_id=None,
    )


# --- the round as a whole -----------------------------------------------------------------------


@dataclass
class BoardRow:
    unit: Unit
    place: RoundUnit | None
    official: Score | None

    def as_dict(self) -> dict:
        return {
            "unit": self.unit.code,
            "name": self.unit.name,
            **describe(self.place),
            "official_total": str(self.official.total) if self.official is not None else None,
            "updated_at": self.place.updated_at.isoformat() if self.place else None,
        }


def board(ctx: Context, actor: Actor, round_id: int) -> tuple[Round, list[BoardRow]]:
    """Every unit and its state in the round (a unit's submitter: their own unit only)."""
    rnd = get_round(ctx, actor, round_id)
    with ctx.db.transaction() as s:
        query = select(Unit).order_by(Unit.code)
        if actor.role == "submitter":
            query = query.where(Unit.id == actor.unit_id)
        units = list(s.scalars(query))
        places = {
            p.unit_id: p for p in s.scalars(select(RoundUnit).where(RoundUnit.round_id == rnd.id))
        }
        ids = [p.official_score_id for p in places.values() if p.official_score_id]
        scores = {sc.id: sc for sc in s.scalars(select(Score).where(Score.id.in_(ids)))}
    rows = []
    for unit in units:
        place = places.get(unit.id)
        official = (
            scores.get(place.official_score_id) if place and place.official_score_id else None
        )
        rows.append(BoardRow(unit, place, official))
    return rnd, rows


def publish_round(ctx: Context, actor: Actor, round_id: int) -> Round:
    """发布公示: every reviewed unit with its official score goes to 公示中 (again after appeals:
    the ranking is republished).  Refused while a reviewed unit has no official score from its
    reviewed version: the ranking would not be what the office decided."""
    check(ctx.db, actor, "rounds.publish", f"round:{round_id}")
    with ctx.db.transaction() as s:
        rnd = s.get(Round, round_id)
        if rnd is None:
            raise NotFound("unknown_round", f"没有编号为 {round_id} 的考核轮次")
        if rnd.stage == "final":
            raise Conflict("round_final", "考核轮次已定稿", {"round": ["已定稿"]})
        places = list(s.scalars(select(RoundUnit).where(RoundUnit.round_id == rnd.id)))
        missing = []
        # 已复核 units go out again with the official score their appeal's answers left
        republished = ("reviewed", "rechecked")
        for place in places:
            if place.state not in republished:
                continue
            score = s.get(Score, place.official_score_id) if place.official_score_id else None
            if score is None or score.submission_version != place.reviewed_version:
                missing.append(s.get(Unit, place.unit_id).name)
        if missing:
            raise Conflict(
                "official_scores_missing",
                f"以下单位已评审但还没有按评审版本计算正式得分：{'、'.join(missing)}；请先计算",
                {"units": missing},
            )
        if not any(p.state in ("reviewed", "published", "rechecked", "appealed") for p in places):
            raise Conflict(
                "nothing_reviewed", "还没有任何单位完成评审，不能发布", {"round": ["无已评审单位"]}
            )
        moved = []
        for place in places:
            if place.state in republished:
                unit = s.get(Unit, place.unit_id)
                advance(s, actor, rnd, unit.id, unit.code, "publish")
                moved.append(unit.code)
        again = rnd.stage == "published"
        rnd.stage, rnd.published_at = "published", datetime.now(UTC)
        journal(
            s,
            actor,
            "rounds.publish",
            f"round:{rnd.id}/scheme:{rnd.scheme_id}",
            "ok",
            units=moved,
            republished=again,
        )
    return rnd


def finalize_round(ctx: Context, actor: Actor, round_id: int) -> Round:
    """定稿: after the appeal window, with every appeal answered."""
    check(ctx.db, actor, "rounds.publish", f"round:{round_id}")
    at = datetime.now(UTC)
    with ctx.db.transaction() as s:
        rnd = s.get(Round, round_id)
        if rnd is None:
            raise NotFound("unknown_round", f"没有编号为 {round_id} 的考核轮次")
        if rnd.stage != "published":
            raise Conflict(
                "not_published",
                f"考核轮次当前为“{ROUND_STAGES[rnd.stage]}”，只有公示后才能定稿",
                {"round": [ROUND_STAGES[rnd.stage]]},
            )
        if at <= rnd.appeal_deadline:
            raise Conflict(
                "appeal_window_open",
                f"申诉截止时间（{shown(rnd.appeal_deadline)}）未到，不能定稿",
                {"appeal_deadline": [shown(rnd.appeal_deadline)]},
            )
        places = list(s.scalars(select(RoundUnit).where(RoundUnit.round_id == rnd.id)))
        waiting = [s.get(Unit, p.unit_id).name for p in places if p.state == "appealed"]
        if waiting:
            raise Conflict(
                "appeals_open",
                f"以下单位的申诉还没有答复：{'、'.join(waiting)}",
                {"units": waiting},
            )
        for place in places:
            if place.state in ("published", "rechecked"):
                unit = s.get(Unit, place.unit_id)
                advance(s, actor, rnd, unit.id, unit.code, "finalize", at)
        rnd.stage, rnd.finalized_at = "final", at
        journal(s, actor, "rounds.finalize", f"round:{rnd.id}/scheme:{rnd.scheme_id}", "ok")
    return rnd


def unit_place(ctx: Context, actor: Actor, round_id: int, unit_code: str) -> dict:
    """One unit's state in a round, as ``describe`` says it."""
    rnd = get_round(ctx, actor, round_id)
    unit = _unit_for(ctx, actor, "rounds.read", unit_code, f"round:{round_id}/unit:{unit_code}")
    with ctx.db.transaction() as s:
        place = place_of(s, rnd, unit.id)
    return {"round": rnd.id, "unit": unit.code, **describe(place)}


def previous_year(ctx: Context, actor: Actor, round_id: int, unit_code: str) -> dict:
    """Year on year: the previous year's values the product carries into a unit's facts in this
    round ({fact: {"value", "source"}}), for the form to show instead of asking for them."""
    rnd = get_round(ctx, actor, round_id)
    unit = _unit_for(
        ctx, actor, "submissions.read", unit_code, f"round:{round_id}/unit:{unit_code}"
    )
    with ctx.db.transaction() as s:
        _journal_read(s, actor, "submissions.read", unit, f"round:{round_id}/unit:{unit.code}")
    carried = previous_year_facts(ctx, rnd, unit, round_scheme(ctx, rnd))
    return {name: {"value": value, "source": source} for name, (value, source) in carried.items()}
