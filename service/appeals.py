"""Appeals (申诉/复核): a unit contests its published official score clause by clause, and a
reviewer answers each clause.

During the appeal window (the unit 公示中, until the round's appeal deadline) the unit's submitter
(or an admin, for the unit) files one appeal: for each clause appealed a reason and evidence
references; the unit goes to 申诉中 in the same transaction.  A reviewer (or an admin) answers each
clause with 维持 (uphold) or 更正 (correct), always with a reason.  A 更正 carries the corrected
facts, only facts the clause reads, each changed one with its reason, and stores in one transaction
a new version of the unit's facts (role "review", its reason citing the appeal), which becomes the
reviewed version, and the official score computed from it under the round's scheme version, which
replaces the unit's official score.  Once every clause is answered the unit is 已复核, and the admin
publishes the round again (``rounds.publish_round``): the ranking shows the new score.

The unit reads the answers (its own unit only); filing and every answer are journaled.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from .access import Actor, check, check_own_unit, journal
from .db import Appeal, AppealItem, Round, Score, Submission, Unit, User, marks_of
from .domain.model import Clause, Scheme
from .domain.text import EVIDENCE_CHARS_MAX, EVIDENCE_ITEMS_MAX, REASON_CHARS_MAX, unstorable
from .exceptions import Conflict, Invalid, NotFound
from .operations import (
    Context,
    _check_facts,
    _journal_read,
    _latest_version,
    _refuse_tampered,
    _score,
    _unit_for,
    record_score,
)
from .rounds import get_round, round_scheme
from .roundstate import advance, allowed, describe, place_of

#: the answers to one clause of an appeal, with their words
ANSWERS = {"uphold": "维持", "correct": "更正"}
#: an appeal is open until every clause has its answer
APPEAL_STATES = {"open": "待答复", "answered": "已答复"}


def _text(text, field: str, what: str, problems: dict) -> str:
    text = (text or "").strip()
    if not text:
        problems.setdefault(field, []).append(f"必须写明{what}")
    elif unstorable(text):
        problems.setdefault(field, []).append(unstorable(text))
    elif len(text) > REASON_CHARS_MAX:
        problems.setdefault(field, []).append(f"不超过{REASON_CHARS_MAX}字")
    return text


def _not_read(clause: Clause) -> str:
    return f"条款“{clause.id}”不读取这项事实"


def _refs_problem(refs: list) -> str | None:
    """Why a fact's evidence references cannot be kept (the limits of a submission's), or None."""
    if len(refs) > EVIDENCE_ITEMS_MAX:
        return f"佐证材料不超过{EVIDENCE_ITEMS_MAX}条"
    for ref in refs:
        if not isinstance(ref, str) or not ref.strip():
            return "每条佐证材料应为非空文字"
        if unstorable(ref):
            return unstorable(ref)
        if len(ref) > EVIDENCE_CHARS_MAX:
            return f"每条佐证材料不超过{EVIDENCE_CHARS_MAX}字"
    return None


def _checked_items(scheme: Scheme, items: list) -> list[tuple[str, str, dict]]:
    """(clause id, reason, evidence) of each clause appealed; a 422 naming each bad field: a clause
    the round's scheme does not have, one appealed twice, a missing reason, evidence for a fact the
    clause does not read."""
    problems: dict = {}
    if not items:
        problems["items"] = ["至少申诉一个条款"]
    checked, seen = [], set()
    for i, item in enumerate(items):
        clause_id = item.get("clause", "")
        clause = scheme.clauses.get(clause_id)
        if clause is None:
            problems[f"items.{i}.clause"] = [f"本轮细则中没有条款“{clause_id}”"]
        elif clause_id in seen:
            problems[f"items.{i}.clause"] = [f"条款“{clause_id}”已在本次申诉中"]
        seen.add(clause_id)
        reason = _text(item.get("reason"), f"items.{i}.reason", "申诉理由", problems)
        evidence = {name: list(refs) for name, refs in (item.get("evidence") or {}).items()}
        for name, refs in evidence.items():
            why = _refs_problem(refs) or (
                _not_read(clause) if clause is not None and name not in clause.reads else None
            )
            if why:
                problems[f"items.{i}.evidence.{name}"] = [why]
        checked.append((clause_id, reason, evidence))
    if problems:
        raise Invalid("invalid_appeal", "申诉内容有误", problems)
    return checked


def file_appeal(ctx: Context, actor: Actor, round_id: int, unit_code: str, items: list) -> dict:
    """申诉: the unit appeals its published official score in the round, clause by clause
    (``items``: [{clause, reason, evidence}]); the unit goes to 申诉中 with the appeal's rows."""
    target = f"round:{round_id}/unit:{unit_code}"
    unit = _unit_for(ctx, actor, "appeals.file", unit_code, target)
    rnd = get_round(ctx, actor, round_id)
    checked = _checked_items(round_scheme(ctx, rnd), items)
    at = datetime.now(UTC)
    with ctx.db.transaction() as s:
        rnd = s.get(Round, rnd.id)
        # the cycle first: 409 from another state, 423 after the appeal deadline (named)
        place = advance(s, actor, rnd, unit.id, unit.code, "appeal", at)
        appeal = Appeal(
            round_id=rnd.id,
            unit_id=unit.id,
            filed_by=actor.user_id,
            filed_at=at,
            state="open",
            appealed_score_id=place.official_score_id,
            lock=0,
        )
        s.add(appeal)
        s.flush()
        for clause_id, reason, evidence in checked:
            s.add(AppealItem(appeal_id=appeal.id, clause_id=clause_id, reason=reason,
                             evidence=evidence))  # fmt: skip
        s.flush()
        journal(
            s, actor, "appeals.file", f"{target}/scheme:{rnd.scheme_id}", "ok",
            appeal=appeal.id, clauses=[c for c, _r, _e in checked],
            score=place.official_score_id,
        )  # fmt: skip
        return _shown(s, ctx, rnd, unit, [appeal])[0]


def list_appeals(ctx: Context, actor: Actor, round_id: int, unit_code: str) -> list[dict]:
    """A unit's appeals in a round with their answers, oldest first (a submitter: their own unit)."""
    target = f"round:{round_id}/unit:{unit_code}"
    unit = _unit_for(ctx, actor, "appeals.read", unit_code, target)
    rnd = get_round(ctx, actor, round_id)
    with ctx.db.transaction() as s:
        _journal_read(s, actor, "appeals.read", unit, f"{target}/scheme:{rnd.scheme_id}")
        appeals = list(
            s.scalars(
                select(Appeal)
                .where(Appeal.round_id == rnd.id, Appeal.unit_id == unit.id)
                .order_by(Appeal.id)
            )
        )
        return _shown(s, ctx, rnd, unit, appeals)


def answer_item(
    ctx: Context,
    actor: Actor,
    appeal_id: int,
    clause_id: str,
    answer: str,
    reason: str,
    facts: dict | None = None,
    reasons: dict | None = None,
) -> dict:
    """答复: 维持 (``answer`` "uphold") or 更正 ("correct", with the corrected ``facts`` and a
    reason per changed fact in ``reasons``) one clause of an appeal, with ``reason``.  A 更正 stores
    the new reviewed version and the official score computed from it; the last answer moves the
    unit to 已复核.  The appeal as ``list_appeals`` shows it."""
    target = f"appeal:{appeal_id}"
    check(ctx.db, actor, "appeals.answer", target)  # before the lookup: no existence oracle
    facts, reasons = dict(facts or {}), dict(reasons or {})
    problems: dict = {}
    reason = _text(reason, "reason", "答复理由", problems)
    if answer not in ANSWERS:
        problems["answer"] = ["应为 uphold（维持）或 correct（更正）"]
    elif answer == "uphold" and (facts or reasons):
        problems["facts"] = ["维持原评分时不改事实；要改事实请答复“更正”"]
    if problems:
        raise Invalid("invalid_answer", "答复内容有误", problems)
    with ctx.db.transaction() as s:
        appeal = s.get(Appeal, appeal_id)
        if appeal is None:
            raise NotFound("unknown_appeal", f"没有编号为 {appeal_id} 的申诉")
        unit, rnd = s.get(Unit, appeal.unit_id), s.get(Round, appeal.round_id)
        item = _item(s, appeal, clause_id)
        place = place_of(s, rnd, unit.id)
        reviewed = s.scalar(
            select(Submission).where(
                Submission.unit_id == unit.id,
                Submission.scheme_id == rnd.scheme_id,
                Submission.version == place.reviewed_version,
            )
        )
    target = f"{target}/round:{rnd.id}/unit:{unit.code}/scheme:{rnd.scheme_id}"
    check_own_unit(ctx.db, actor, "appeals.answer", target, unit)
    _not_answered(item, clause_id)
    # 409 unless the unit is 申诉中 (and the round not final): the same words as every step
    allowed(rnd, place, "answer_appeal", actor.role, datetime.now(UTC))
    correction = None
    if answer == "correct":
        scheme = round_scheme(ctx, rnd)
        _refuse_tampered(ctx, actor, reviewed, target)
        values, why = _corrected(scheme, scheme.clauses[clause_id], reviewed.facts, facts, reasons)
        # computed before the transaction (the engine is slow next to a row); stored only if the
        # reviewed version is still the one it was computed from
        with ctx.db.transaction() as s:
            marks = marks_of(s, rnd.id, unit.id)  # a panel clause keeps its reviewers' marks
        correction = (scheme, values, why, _score(ctx, scheme, unit.name, values, marks))
    try:
        with ctx.db.transaction() as s:
            return _answer(s, ctx, actor, appeal_id, item.id, clause_id, answer, reason,
                           reviewed, correction, target)  # fmt: skip
    except IntegrityError:  # another writer took the version number first
        raise Conflict("version_conflict", "另一位用户刚刚提交了新版本，请重新读取后再改") from None


def _item(s, appeal: Appeal, clause_id: str) -> AppealItem:
    item = s.scalar(
        select(AppealItem).where(
            AppealItem.appeal_id == appeal.id, AppealItem.clause_id == clause_id
        )
    )
    if item is None:
        raise NotFound(
            "unknown_appeal_item",
            f"第{appeal.id}号申诉没有申诉条款“{clause_id}”",
            {"clause": ["不是本申诉的条款"]},
        )
    return item


def _not_answered(item: AppealItem, clause_id: str) -> None:
    if item.answer is not None:
        raise Conflict(
            "already_answered",
            f"条款“{clause_id}”的申诉已答复（{ANSWERS[item.answer]}），不能再答复",
            {"clause": [f"已{ANSWERS[item.answer]}"]},
        )


def _corrected(
    scheme: Scheme, clause: Clause, before: dict, facts: dict, reasons: dict
) -> tuple[dict, dict]:
    """The facts after a 更正 (the reviewed ones with ``facts`` changed) and {fact: reason} of each
    changed one; a 422 naming each bad field: a fact the clause does not read, a value the scheme
    refuses, a change without its reason, a 更正 that changes nothing."""
    problems: dict = {}
    for prefix, names in (("facts", facts), ("reasons", reasons)):
        for name in names:
            if name not in clause.reads:
                problems[f"{prefix}.{name}"] = [_not_read(clause) + "；更正只改本条款读取的事实"]
    if not facts:
        problems["facts"] = ["更正时必填：本条款读取的事实改正后的值"]
    if problems:
        raise Invalid("invalid_correction", "更正内容有误", problems)
    values = _check_facts(scheme, {**before, **facts})
    changed = sorted(n for n in facts if before.get(n) != values.get(n))
    if not changed:
        raise Invalid(
            "nothing_corrected",
            "更正没有改动任何事实；不改事实请答复“维持”",
            {"facts": ["与已评审的值相同"]},
        )
    why = {}
    for name in changed:
        text = reasons.get(name)
        text = text.strip() if isinstance(text, str) else ""
        if not text:
            problems[f"reasons.{name}"] = ["改动了此项，须写明理由"]
        why[name] = text
    if problems:
        raise Invalid("reason_required", "更正的每一项都须写明理由", problems)
    return values, why


def _answer(s, ctx, actor, appeal_id, item_id, clause_id, answer, reason, reviewed, correction,
            target) -> dict:  # fmt: skip
    """The answer's writes, in session ``s``: one transaction."""
    # take the appeal first: answers to one appeal take turns (db.Appeal.lock), so the last of
    # two concurrent answers sees the other and moves the unit on
    s.execute(update(Appeal).where(Appeal.id == appeal_id).values(lock=Appeal.lock + 1))
    appeal, item = s.get(Appeal, appeal_id), s.get(AppealItem, item_id)
    _not_answered(item, clause_id)
    rnd, unit = s.get(Round, appeal.round_id), s.get(Unit, appeal.unit_id)
    at = datetime.now(UTC)
    if correction is not None:
        scheme, values, why, result = correction
        place = place_of(s, rnd, unit.id)
        if place is None or place.reviewed_version != reviewed.version:
            raise Conflict(
                "version_conflict", "该单位的已评审版本刚刚变了，请重新读取后再答复"
            )  # pragma: no cover - only a writer outside the cycle could move it meanwhile
        version = _latest_version(s, unit.id, rnd.scheme_id) + 1
        submission = Submission(
            unit_id=unit.id,
            scheme_id=rnd.scheme_id,
            version=version,
            role="review",
            author_id=actor.user_id,
            facts=values,
            evidence=dict(reviewed.evidence or {}),
            reason=f"第{appeal.id}号申诉条款“{clause_id}”答复更正：{reason}",
            reasons=why,
            round_id=rnd.id,
        )
        s.add(submission)
        s.flush()
        journal(
            s, actor, "submissions.write", f"unit:{unit.code}/scheme:{rnd.scheme_id}", "ok",
            version=version, role="review", round=rnd.id, appeal=appeal.id,
        )  # fmt: skip
        score = record_score(s, actor, rnd, unit, scheme, submission, result, "official",
                             action="correct_appeal", reviewed_version=version)  # fmt: skip
        item.new_submission_version, item.new_score_id = version, score.id
    item.answer, item.answer_reason = answer, reason
    item.answered_by, item.answered_at = actor.user_id, at
    s.flush()
    journal(
        s, actor, "appeals.answer", target, "ok", appeal=appeal.id, clause=clause_id,
        answer=answer, reason=reason, version=item.new_submission_version,
        score=item.new_score_id,
    )  # fmt: skip
    waiting = s.scalar(
        select(func.count())
        .select_from(AppealItem)
        .where(AppealItem.appeal_id == appeal.id, AppealItem.answer.is_(None))
    )
    if not waiting:
        appeal.state = "answered"
        advance(s, actor, rnd, unit.id, unit.code, "answer_appeal", at, note={"appeal": appeal.id})
    return _shown(s, ctx, rnd, unit, [appeal])[0]


def _shown(s, ctx: Context, rnd: Round, unit: Unit, appeals: list) -> list[dict]:
    """Appeals as the API and the pages show them, with the unit's state in the round now."""
    ids = [a.id for a in appeals]
    items: dict = {}
    for item in s.scalars(
        select(AppealItem).where(AppealItem.appeal_id.in_(ids)).order_by(AppealItem.id)
    ):
        items.setdefault(item.appeal_id, []).append(item)
    user_ids = {a.filed_by for a in appeals} | {
        i.answered_by for group in items.values() for i in group if i.answered_by
    }
    users = dict(s.execute(select(User.id, User.username).where(User.id.in_(user_ids))).all())
    score_ids = {a.appealed_score_id for a in appeals} | {
        i.new_score_id for group in items.values() for i in group if i.new_score_id
    }
    totals = {
        sid: str(total)
        for sid, total in s.execute(select(Score.id, Score.total).where(Score.id.in_(score_ids)))
    }
    place = describe(place_of(s, rnd, unit.id))
    scheme = round_scheme(ctx, rnd) if appeals else None
    shown = []
    for appeal in appeals:
        shown.append(
            {
                "id": appeal.id,
                "round": rnd.id,
                "unit": unit.code,
                "scheme": rnd.scheme_id,
                "filed_by": users.get(appeal.filed_by),
                "filed_at": appeal.filed_at,
                "state": appeal.state,
                "state_words": APPEAL_STATES[appeal.state],
                "appealed_score_id": appeal.appealed_score_id,
                "appealed_total": totals.get(appeal.appealed_score_id),
                "unit_state": place["state"],
                "unit_state_words": place["state_words"],
                "official_score_id": place["official_score_id"],
                "items": [_item_shown(i, scheme, users, totals) for i in items.get(appeal.id, [])],
            }
        )
    return shown


def _item_shown(item: AppealItem, scheme: Scheme, users: dict, totals: dict) -> dict:
    clause = scheme.clauses.get(item.clause_id)
    return {
        "clause": item.clause_id,
        "clause_title": clause.title if clause is not None else "",
        "reason": item.reason,
        "evidence": item.evidence,
        "answer": item.answer,
        "answer_words": ANSWERS.get(item.answer, "待答复"),
        "answer_reason": item.answer_reason,
        "answered_by": users.get(item.answered_by),
        "answered_at": item.answered_at,
        "new_submission_version": item.new_submission_version,
        "new_score_id": item.new_score_id,
        "new_total": totals.get(item.new_score_id),
    }
