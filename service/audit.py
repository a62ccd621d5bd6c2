"""The auditor's desk (issue 11): a stored score replayed and compared clause by clause, the replay of
a round's official scores as a background job (``scores.replay``), and what the audit workbook of a
round holds.

A replay recomputes a stored score under its own rules version (from the archive when it is no
longer served), from the very submission it was computed from, with the panel's marks as they are
now, and compares the result with the stored trace: "已复现" when they are the same, else each
clause whose points, status or explanation differ, with the numbers and why — the facts the clause
read differ, the panel's marks changed, the engine is another one, or (same rules version, same
facts, same engine) the program computes differently now.  A replay writes nothing but its journal
row (a read, "scores.replay"), whoever runs it.
"""

from __future__ import annotations

from sqlalchemy import select

from . import operations as ops
from . import provenance
from .access import Actor, check, check_own_unit, journal
from .db import (
    Appeal,
    AppealItem,
    Job,
    JobItem,
    PanelMark,
    Round,
    RoundUnit,
    Score,
    Submission,
    Unit,
    User,
    intact,
    marks_of,
)
from .domain.trace import to_data
from .exceptions import Conflict, Invalid, NotFound
from .jobs import FINISHED, ItemRun, Kind, register, start_job
from .roundstate import describe

#: the causes of a difference, in words
CAUSE_WORDS = {
    "facts": "事实不同",
    "panel": "评审组打分不同",
    "engine": "计算引擎不同",
    "program": "规则版本和事实都相同，计分程序的结果不同",
    "tampered": "保存的评分记录与写入时不符（被改动过）",
}
REPRODUCED = "已复现"
#: the job kind and the permission that starts it and reads its report
KIND = "scores.replay"
PERMISSION = "scores.replay"
#: who reads a round's audit (the workbook: every unit's facts, marks, appeals and replay)
AUDIT = "audit.read"


# --- one score ---------------------------------------------------------------------------------


def _panel_of(clause: dict) -> list:
    return [r.get("panel") for r in clause.get("rules") or [] if r.get("panel") is not None]


def _fact_changes(before: dict, after: dict) -> list:
    return [
        {"fact": name, "stored": before.get(name), "replayed": after.get(name)}
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    ]


def compare_traces(stored: dict, again: dict, engine_then: str, engine_now: str) -> dict:
    """Where a replayed trace differs from the stored one: the clauses (points, status,
    explanation, with their causes), the facts, the other top-level parts, and the causes."""
    engine_changed = engine_then != engine_now
    old = {c["id"]: c for c in stored.get("clauses") or []}
    new = {c["id"]: c for c in again.get("clauses") or []}
    clauses, causes = [], set()
    for cid in list(old) + [c for c in new if c not in old]:
        a, b = old.get(cid) or {}, new.get(cid) or {}
        if a == b:
            continue
        why = []
        facts = _fact_changes(a.get("facts") or {}, b.get("facts") or {})
        if facts or a.get("missing") != b.get("missing"):
            why.append("facts")
        if _panel_of(a) != _panel_of(b):
            why.append("panel")
        if not why:
            why.append("engine" if engine_changed else "program")
        causes.update(why)
        clauses.append(
            {
                "clause": cid,
                "title": (b or a).get("title", ""),
                "stored_points": a.get("points"),
                "replayed_points": b.get("points"),
                "stored_status": a.get("status"),
                "replayed_status": b.get("status"),
                "stored_explanation": a.get("explanation", ""),
                "replayed_explanation": b.get("explanation", ""),
                "facts": facts,
                "causes": why,
                "causes_words": [CAUSE_WORDS[c] for c in why],
            }
        )
    facts = _fact_changes(stored.get("facts") or {}, again.get("facts") or {})
    if facts:
        causes.add("facts")
    differences = sorted(k for k in set(stored) | set(again) if stored.get(k) != again.get(k))
    if differences and not causes:  # e.g. only the grade: same facts and rules, other result
        causes.add("engine" if engine_changed else "program")
    if differences and engine_changed:
        causes.add("engine")
    order = list(CAUSE_WORDS)
    return {
        "differences": differences,
        "clauses": clauses,
        "facts": facts,
        "causes": sorted(causes, key=order.index),
    }


def _load_score(ctx: ops.Context, actor: Actor | None, score_id: int) -> tuple[Score, Unit]:
    """The score and its unit, for a caller who may replay it (checked before the lookup: no
    existence oracle); a row changed since it was written is refused (409)."""
    target = f"score:{score_id}"
    check(ctx.db, actor, PERMISSION, target)
    with ctx.db.transaction() as s:
        row = s.get(Score, score_id)
        unit = s.get(Unit, row.unit_id) if row else None
    check_own_unit(ctx.db, actor, PERMISSION, target, unit)
    if row is None:
        raise NotFound("unknown_score", f"没有编号为 {score_id} 的评分")
    # a score row changed since it was written is still replayed (against what it says now, which
    # is the point), and said so: the header, the log and a failed history.check in the journal
    return ops._served(ctx, actor, [row], target)[0], unit


def recompute(ctx: ops.Context, actor: Actor, row: Score, unit: Unit) -> dict:
    """Replay a stored score (the caller has checked that it may): the comparison, no journal."""
    # the folder the trace names the clause files by: a replay names them the same way
    first_file = next((c.get("file", "") for c in row.trace.get("clauses", [])), "")
    folder = first_file.rsplit("/clauses/", 1)[0] if "/clauses/" in first_file else "scheme"
    scheme = ops.scheme_by_version(ctx, row.rules_version, folder)
    with ctx.db.transaction() as s:
        submission = s.get(Submission, row.submission_id)
        marks = marks_of(s, row.round_id, unit.id) if row.round_id else {}
    ops._refuse_tampered(ctx, actor, submission, f"score:{row.id}")
    withheld = any(  # a preview that showed no marks, as it was computed
        (r.get("panel") or {}).get("status") == "withheld"
        for c in row.trace.get("clauses", [])
        for r in c.get("rules", [])
    )
    result = ops._score(ctx, scheme, unit.name, submission.facts, marks, withheld)
    again = to_data(result)
    stored = dict(row.trace)
    compared = compare_traces(stored, again, row.engine_version, result.matcher)
    if not intact(row):
        compared["causes"] = ["tampered", *compared["causes"]]
    reproduced = not compared["differences"] and intact(row)
    words = REPRODUCED
    if not reproduced:
        causes = "、".join(CAUSE_WORDS[c] for c in compared["causes"])
        shown = "、".join(c["clause"] for c in compared["clauses"][:10])
        more = "等" if len(compared["clauses"]) > 10 else ""
        parts = [f"{len(compared['clauses'])} 个条款不同（{shown}{more}）"] if shown else []
        if not shown and compared["differences"]:
            parts.append(f"不同的部分：{'、'.join(compared['differences'])}")
        if causes:
            parts.append(f"原因：{causes}")
        words = "未复现：" + "；".join(parts)
    return {
        "score": row.id,
        "rules_version": row.rules_version,
        "reproduced": reproduced,
        "stored_total": stored.get("total"),
        "replayed_total": again.get("total"),
        **compared,
        "unit": unit.code,
        "unit_name": unit.name,
        "scheme": row.scheme_id,
        "round": row.round_id,
        "kind": row.kind,
        "submission_version": row.submission_version,
        "engine_version": row.engine_version,
        "replayed_engine": result.matcher,
        "words": words,
    }


def replay_score(ctx: ops.Context, actor: Actor | None, score_id: int) -> dict:
    """Recompute a stored score under its own rules version and facts and compare (``scores.
    replay``): "已复现", or each clause and number that differs and why.  Writes nothing but its
    journal row, a read."""
    row, unit = _load_score(ctx, actor, score_id)
    out = recompute(ctx, actor, row, unit)
    with ctx.db.transaction() as s:
        journal(
            s,
            actor,
            PERMISSION,
            f"unit:{unit.code}/scheme:{row.scheme_id}/score:{row.id}",
            "ok",
            score=row.id,
            reproduced=out["reproduced"],
            clauses=[c["clause"] for c in out["clauses"]][:50],
            causes=out["causes"],
        )
    return out


# --- a round's official scores, replayed as a background job ---------------------------------


def _round_param(ctx: ops.Context, params: dict) -> dict:
    value = params.get("round")
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2147483647:
        raise Invalid(
            "invalid_params", "请指定考核轮次编号", {"params.round": ["必填：考核轮次编号（整数）"]}
        )
    with ctx.db.transaction() as s:
        rnd = s.get(Round, value)
    if rnd is None:
        raise Invalid(
            "unknown_round", f"没有编号为 {value} 的考核轮次", {"params.round": ["不存在"]}
        )
    return {"round": rnd.id, "scheme": rnd.scheme_id}


def _official_scores(ctx: ops.Context, params: dict) -> list[tuple[str, str]]:
    """(score id, unit name) of every official score of the round, by unit code."""
    with ctx.db.transaction() as s:
        rows = s.execute(
            select(RoundUnit.official_score_id, Unit.name)
            .join(Unit, Unit.id == RoundUnit.unit_id)
            .where(RoundUnit.round_id == params["round"], RoundUnit.official_score_id.is_not(None))
            .order_by(Unit.code)
        ).all()
    if not rows:
        raise Conflict("nothing_to_replay", "这个考核轮次还没有正式得分，没有可以复核的")
    return [(str(score_id), name) for score_id, name in rows]


def _replay_one(run: ItemRun, params: dict, key: str) -> dict:
    out = replay_score(run.ctx, run.actor, int(key))
    kept = {
        k: out[k]
        for k in ("score", "unit", "unit_name", "reproduced", "stored_total", "replayed_total",
                  "clauses", "facts", "causes", "differences", "rules_version",
                  "submission_version", "engine_version", "replayed_engine", "words")
    }  # fmt: skip
    with run.ctx.db.transaction() as s:  # the item's record: nothing else is written
        run.complete(s, kept)
    return kept


def _summarize(results: list) -> dict:
    same = sum(1 for r in results if r and r.get("reproduced"))
    return {"reproduced": same, "not_reproduced": len(results) - same}


REPLAY_SCORES = register(
    Kind(
        name=KIND,
        title="复核本轮全部正式得分：按各自的规则版本和事实重算并比较",
        permission=PERMISSION,
        check=_round_param,
        items=_official_scores,
        run_item=_replay_one,
        target=lambda params: f"round:{params['round']}/scheme:{params['scheme']}",
        summarize=_summarize,
    )
)


def start_round_replay(ctx: ops.Context, actor: Actor | None, round_id: int) -> dict:
    """The replay job of a round's official scores (a round that does not exist: 404, after the
    permission, so a caller who may not ask learns nothing)."""
    check(ctx.db, actor, PERMISSION, f"round:{round_id}")
    with ctx.db.transaction() as s:
        if s.get(Round, round_id) is None:
            raise NotFound("unknown_round", f"没有编号为 {round_id} 的考核轮次")
    return start_job(ctx, actor, KIND, {"round": round_id})


def replay_report(ctx: ops.Context, actor: Actor | None, job_id: int) -> dict:
    """A replay job's report: the round, every score replayed so far with its result, failures."""
    check(ctx.db, actor, PERMISSION, f"job:{job_id}")
    with ctx.db.transaction() as s:
        job = s.get(Job, job_id)
        if job is None or job.kind != KIND:
            raise NotFound("unknown_job", f"没有编号为 {job_id} 的复核任务")
        rnd = s.get(Round, job.params["round"])
        items = list(
            s.execute(
                select(JobItem.key, JobItem.label, JobItem.state, JobItem.result, JobItem.message)
                .where(JobItem.job_id == job_id)
                .order_by(JobItem.seq)
            )
        )
        starter = s.get(User, job.created_by)
        view = {
            "job": job.id,
            "state": job.state,
            "finished": job.state in FINISHED,
            "created_by": starter.username if starter else str(job.created_by),
            "created_at": job.created_at,
            "finished_at": job.finished_at,
            "total": job.total,
        }
    rows = [dict(result, state=state) for _k, _l, state, result, _m in items if state == "done"]
    view.update(
        round=_round_words(rnd),
        scores=rows,
        reproduced=sum(1 for r in rows if r["reproduced"]),
        not_reproduced=sum(1 for r in rows if not r["reproduced"]),
        pending=sum(1 for i in items if i[2] == "pending"),
        failures=[
            {"score": int(k), "unit_name": label, "message": message}
            for k, label, state, _r, message in items
            if state == "failed"
        ],
    )
    return view


def _round_words(rnd: Round | None) -> dict | None:
    summary = ops.round_summary(rnd)
    return None if summary is None else {**summary, "scheme": rnd.scheme_id}


# --- the audit of a round: what its workbook holds ---------------------------------------------


def round_audit(ctx: ops.Context, actor: Actor | None, round_id: int) -> dict:
    """Every unit of a round with its official score (rules version, submission version, engine,
    who computed it, when), the facts its clauses read with their provenance, each reviewer's
    points where a panel scored, its appeals and their answers, and the score replayed now.
    ``audit.read``; each unit's data read is journaled (one row per unit)."""
    check(ctx.db, actor, AUDIT, f"round:{round_id}")
    with ctx.db.transaction() as s:
        rnd = s.get(Round, round_id)
        if rnd is None:
            raise NotFound("unknown_round", f"没有编号为 {round_id} 的考核轮次")
        units = list(s.scalars(select(Unit).order_by(Unit.code)))
        places = {
            p.unit_id: p for p in s.scalars(select(RoundUnit).where(RoundUnit.round_id == round_id))
        }
        score_ids = [p.official_score_id for p in places.values() if p.official_score_id]
        scores = {sc.id: sc for sc in s.scalars(select(Score).where(Score.id.in_(score_ids)))}
        names = dict(s.execute(select(User.id, User.username)).all())
        marks: dict = {}
        for mark in s.scalars(
            select(PanelMark).where(PanelMark.round_id == round_id).order_by(PanelMark.id)
        ):
            marks.setdefault(mark.unit_id, []).append(
                {
                    "clause": mark.clause_id,
                    "reviewer": names.get(mark.reviewer_id, str(mark.reviewer_id)),
                    "points": mark.points,
                    "reason": mark.reason,
                    "entered_at": mark.entered_at,
                }
            )
        appeals: dict = {}
        for appeal, item in s.execute(
            select(Appeal, AppealItem)
            .join(AppealItem, AppealItem.appeal_id == Appeal.id)
            .where(Appeal.round_id == round_id)
            .order_by(Appeal.id, AppealItem.id)
        ):
            appeals.setdefault(appeal.unit_id, []).append(
                {
                    "appeal": appeal.id,
                    "filed_by": names.get(appeal.filed_by, str(appeal.filed_by)),
                    "filed_at": appeal.filed_at,
                    "clause": item.clause_id,
                    "reason": item.reason,
                    "answer": item.answer,
                    "answer_words": {"uphold": "维持", "correct": "更正"}.get(
                        item.answer, "待答复"
                    ),
                    "answer_reason": item.answer_reason,
                    "answered_by": names.get(item.answered_by) if item.answered_by else None,
                    "answered_at": item.answered_at,
                    "new_submission_version": item.new_submission_version,
                    "new_score_id": item.new_score_id,
                }
            )
        for unit in units:
            if unit.id in places:
                ops._journal_read(s, actor, AUDIT, unit, f"unit:{unit.code}/scheme:{rnd.scheme_id}/round:{rnd.id}")  # fmt: skip
    rows = []
    for unit in units:
        place = places.get(unit.id)
        if place is None:
            continue
        state = describe(place)
        score = scores.get(place.official_score_id) if place.official_score_id else None
        row = {
            "unit": unit.code,
            "unit_name": unit.name,
            "state": state["state"],
            "state_words": state["state_words"],
            "reviewed_version": place.reviewed_version,
            "score": None,
            "marks": marks.get(unit.id, []),
            "appeals": appeals.get(unit.id, []),
        }
        if score is not None:
            ops._served(ctx, actor, [score], f"score:{score.id}")
            row["score"] = {
                "id": score.id,
                "total": score.trace["total"],
                "grade": score.grade,
                "complete": score.complete,
                "rules_version": score.rules_version,
                "submission_version": score.submission_version,
                "engine_version": score.engine_version,
                "computed_by": names.get(score.computed_by, str(score.computed_by)),
                "computed_at": score.created_at,
            }
            row["provenance"] = provenance.of_score(ctx, score, unit)
            row["titles"] = {c["id"]: c.get("title", "") for c in score.trace.get("clauses", [])}
            try:
                row["replay"] = recompute(ctx, actor, score, unit)
            except Conflict as err:  # a changed row: said, not computed from
                row["replay"] = {"reproduced": False, "words": err.message, "clauses": [],
                                 "causes": [], "facts": [], "differences": []}  # fmt: skip
        rows.append(row)
    return {"round": _round_words(rnd), "units": rows}


# --- the tamper check of the history chain ---------------------------------------------------


def run_history_check(ctx: ops.Context, actor: Actor | None) -> dict:
    """Walk the history chain now (an admin or an auditor: ``history.verify``); the result is
    journaled, where ``last_check`` reads it."""
    check(ctx.db, actor, "history.verify", "history")
    return ops.verify_history(ctx, actor)


def last_check(ctx: ops.Context, actor: Actor | None) -> dict:
    """The last check of the history chain as the API and the pages show it (``journal.read``)."""
    entry = ops.last_history_check(ctx, actor)
    if entry is None:
        return {"checked": False}
    detail = entry.detail or {}
    return {
        "checked": True,
        "ok": entry.outcome == "ok",
        "at": entry.at,
        "actor": entry.actor,
        "rows": detail.get("rows"),
        "head_seq": detail.get("head_seq"),
        "head_hash": detail.get("head_hash"),
        "problem": detail.get("problem"),
    }
