"""The review cycle's pages (issue 9): the steps a reviewer takes on a unit (退回, 完成评审,
重新打开评审), the rounds (考核轮次) with an admin's form to open one, and a round's status board
(every unit × state, a chart of the counts, deadlines with overdue units, search and filter, moving
a deadline with its reason, 发布公示 and 定稿, links to the appeals of units 申诉中/已复核 with their
counts, and 按本轮规则重算正式得分: the ``scores.recompute`` job, whose progress the board shows from
the database, so after a reload too).

Every step calls ``service.rounds``; a refusal of the cycle (403 not this role, 409 not from this
state, 423 past a deadline) comes back as the page the form was on, with the service's message and
what was typed, never as a lost form.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from flask import flash, redirect, render_template, request, url_for

from service import jobs, rounds
from service.access import check
from service.domain.cycle import CHINA, DEADLINES, ROUND_STAGES, STATES, RoundDates
from service.errors import status_of
from service.exceptions import Closed, Conflict, Invalid

from .auth import ctx, current_actor, current_person
from .standing import STATE_BADGES, overdue
from .views import bp, score_page, unit_page

#: the errors a step's form shows on its own page (the rest: the error page, e.g. 403)
SHOWN = (Conflict, Closed, Invalid)


def _back(code: str, scheme_id: str):
    """Where a step's form came from: the unit's page, its facts page or its score page."""
    back = request.form.get("back")
    if back in ("score", "facts"):
        return redirect(url_for(f"admin_web.{back}", code=code, scheme_id=scheme_id))
    return redirect(url_for("admin_web.unit", code=code) + f"#scheme-{scheme_id}")


def _refused(err, code: str, scheme_id: str, step: str):
    typed = {step: request.form.get("reason", "")} if "reason" in request.form else {}
    if request.form.get("back") == "score":
        return score_page(code, scheme_id, err.message, status_of(err))
    return unit_page(code, err.message, status_of(err), typed, scheme_id)


def _step(round_id: int, code: str, step: str, call, words: str):
    actor = current_actor()
    rnd = rounds.get_round(ctx(), actor, round_id)
    try:
        call(ctx(), actor, round_id, code)
    except SHOWN as err:
        return _refused(err, code, rnd.scheme_id, step)
    flash(words, "ok")
    return _back(code, rnd.scheme_id)


@bp.post("/rounds/<int:round_id>/units/<code>/return")
def round_return(round_id, code):
    reason = request.form.get("reason", "")
    return _step(
        round_id,
        code,
        "return",
        lambda c, a, r, u: rounds.return_submission(c, a, r, u, reason),
        "已退回自评，单位可以修改后重新提交，并会看到退回理由。",
    )


@bp.post("/rounds/<int:round_id>/units/<code>/complete")
def round_complete(round_id, code):
    return _step(
        round_id,
        code,
        "complete_review",
        rounds.complete_review,
        "已完成评审：最新版本为已评审的版本，可以计算正式得分。",
    )


@bp.post("/rounds/<int:round_id>/units/<code>/reopen")
def round_reopen(round_id, code):
    reason = request.form.get("reason", "")
    return _step(
        round_id,
        code,
        "reopen_review",
        lambda c, a, r, u: rounds.reopen_review(c, a, r, u, reason),
        "已重新打开评审；原正式得分已作废，评审完成后须重新计算。",
    )


# --- the rounds ----------------------------------------------------------------------------


def _moment(text: str, name: str, problems: dict) -> datetime | None:
    """A ``datetime-local`` input's value, read as Beijing time (the offices' clock)."""
    text = (text or "").strip()
    if not text:
        problems.setdefault(name, []).append("必填")
        return None
    for pattern in ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=CHINA)
        except ValueError:
            continue
    problems.setdefault(name, []).append(f"“{text[:30]}”不是日期时间（应如 2026-03-31T17:00）")
    return None


def local_input(moment: datetime | None) -> str:
    """A moment as a ``datetime-local`` input shows it: Beijing time."""
    return moment.astimezone(CHINA).strftime("%Y-%m-%dT%H:%M") if moment else ""


def _rounds_page(errors=None, typed=None, notice=None, status=200):
    actor = current_actor()
    found = rounds.list_rounds(ctx(), actor)
    schemes = ctx().registry.schemes()
    return render_template(
        "admin/rounds.html",
        rounds=found,
        schemes=schemes.values(),
        stages=ROUND_STAGES,
        deadlines=DEADLINES,
        errors=errors or {},
        typed=typed or {},
        notice=notice,
    ), status


@bp.get("/rounds")
def rounds_list():
    return _rounds_page()


@bp.post("/rounds")
def round_open():
    """An admin opens a round: scheme, year, title and the five dates (Beijing time)."""
    actor = current_actor()
    form = request.form
    typed = {k: form.get(k, "") for k in ("scheme", "year", "title", *DEADLINES)}
    problems: dict = {}
    year_text = typed["year"].strip()
    year = int(year_text) if year_text.isascii() and year_text.isdigit() else None
    if year is None:
        problems["year"] = ["应为四位数的年度，如 2026"]
    moments = {name: _moment(typed[name], name, problems) for name in DEADLINES}
    scheme_id = typed["scheme"]
    if scheme_id not in ctx().registry.schemes():
        problems["scheme"] = ["请选择一套正在使用的细则"]
    try:
        if problems:
            # the role is checked before the form's content: a non-admin learns nothing more
            check(ctx().db, actor, "rounds.write", "rounds")
            raise Invalid("invalid_round", "考核轮次的信息有误", problems)
        rnd = rounds.open_round(
            ctx(), actor, scheme_id, year, typed["title"], RoundDates(**moments)
        )
    except SHOWN as err:
        return _rounds_page(err.fields, typed, err.message, status_of(err))
    flash(f"已开启考核轮次“{rnd.title}”。", "ok")
    return redirect(url_for("admin_web.round_board", round_id=rnd.id))


def _board_page(round_id: int, notice=None, errors=None, typed=None, status=200):
    actor = current_actor()
    rnd, rows = rounds.board(ctx(), actor, round_id)
    now = datetime.now(CHINA)
    everyone = [
        {
            "row": r,
            "state": r.place.state if r.place else "none",
            "words": r.as_dict()["state_words"],
            "overdue": overdue(rnd, r.place.state if r.place else "none", now),
        }
        for r in rows
    ]
    counts = Counter(e["state"] for e in everyone)
    query = request.args.get("q", "").strip()
    wanted = request.args.get("state", "")
    if wanted == "overdue":
        shown = [e for e in everyone if e["overdue"]]
    else:
        shown = [e for e in everyone if not wanted or e["state"] == wanted]
    if query:
        shown = [e for e in shown if query in e["row"].unit.name or query in e["row"].unit.code]
    largest = max(counts.values(), default=0)
    latest = _is_latest(rnd)
    return render_template(
        "admin/round.html",
        rnd=rnd,
        rows=shown,
        total=len(everyone),
        counts=[(s, w, counts.get(s, 0)) for s, w in STATES.items()],
        largest=largest,
        overdue_count=sum(1 for e in everyone if e["overdue"]),
        badges=STATE_BADGES,
        states=STATES,
        stages=ROUND_STAGES,
        deadlines=[(name, words, getattr(rnd, name)) for name, words in DEADLINES.items()],
        now=now,
        changes=rounds.deadline_changes(ctx(), actor, round_id),
        author=_namer(),
        query=query,
        wanted=wanted,
        notice=notice,
        errors=errors or {},
        typed=typed or {},
        local_input=local_input,
        is_admin=current_person().can("rounds.write"),
        may_publish=current_person().can("rounds.publish"),
        appeal_counts=[(s, STATES[s], counts.get(s, 0)) for s in APPEAL_STATES],
        may_recompute=current_person().can(RECOMPUTE) and latest,
        recompute=_latest_recompute(rnd) if latest else None,
    ), status


#: the states of a unit with appeals in the round: the board links them to their appeal page
APPEAL_STATES = ("appealed", "rechecked")
RECOMPUTE = "scores.recompute"


def _is_latest(rnd) -> bool:
    """Whether ``rnd`` is its scheme's newest round: the one the recompute job works on."""
    newest = rounds.list_rounds(ctx(), current_actor(), rnd.scheme_id)
    return bool(newest) and newest[0].id == rnd.id


def _latest_recompute(rnd) -> dict | None:
    """The newest recompute job of the round's scheme started since the round was opened, for
    the board to show its progress (None: none, or the user may not read jobs)."""
    if not current_person().can("jobs.read"):
        return None
    found, _next = jobs.list_jobs(ctx(), current_actor(), kind=RECOMPUTE)
    opened = _utc(rnd.created_at)
    for job in found:  # newest first
        if _utc(job["created_at"]) < opened:
            break
        if isinstance(job["params"], dict) and job["params"].get("scheme") == rnd.scheme_id:
            return job
    return None


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _namer():
    from service import operations as ops

    cache: dict = {}

    def name(user_id):
        if user_id not in cache:
            cache[user_id] = ops.author_name(ctx(), user_id)
        return cache[user_id]

    return name


@bp.get("/rounds/<int:round_id>")
def round_board(round_id):
    return _board_page(round_id)


@bp.post("/rounds/<int:round_id>/deadlines")
def round_deadline(round_id):
    """An admin moves one deadline, with a reason."""
    actor = current_actor()
    typed = {k: request.form.get(k, "") for k in ("deadline", "new", "reason")}
    problems: dict = {}
    new = _moment(typed["new"], "new", problems)
    try:
        check(ctx().db, actor, "rounds.write", f"round:{round_id}")
        if problems:
            raise Invalid("invalid_deadline", "新的截止时间有误", problems)
        rounds.extend_deadline(ctx(), actor, round_id, typed["deadline"], new, typed["reason"])
    except SHOWN as err:
        return _board_page(round_id, err.message, err.fields, typed, status_of(err))
    flash(f"已调整{DEADLINES.get(typed['deadline'], '')}。", "ok")
    return redirect(url_for("admin_web.round_board", round_id=round_id) + "#deadlines")


@bp.post("/rounds/<int:round_id>/publish")
def round_publish(round_id):
    try:
        rounds.publish_round(ctx(), current_actor(), round_id)
    except SHOWN as err:
        return _board_page(round_id, err.message, err.fields, status=status_of(err))
    flash("已发布公示：已评审并计算正式得分的单位进入公示。", "ok")
    return redirect(url_for("admin_web.round_board", round_id=round_id))


@bp.post("/rounds/<int(max=2147483647):round_id>/recompute")
def round_recompute(round_id):
    """按本轮规则重算正式得分: the ``scores.recompute`` job for the round's scheme (its newest round:
    this one), then the job's page, which follows it; the board shows its progress too."""
    actor = current_actor()
    rnd = rounds.get_round(ctx(), actor, round_id)
    try:
        check(ctx().db, actor, RECOMPUTE, f"round:{round_id}")
        if not _is_latest(rnd):
            raise Conflict(
                "not_the_latest_round",
                f"“{rnd.title}”不是细则{rnd.scheme_id}最新的考核轮次：重算只针对最新的考核轮次，"
                "请在最新轮次的状态页发起",
                {"round": ["不是最新的考核轮次"]},
            )
        job = jobs.start_job(ctx(), actor, RECOMPUTE, {"scheme": rnd.scheme_id})
    except SHOWN as err:
        return _board_page(round_id, err.message, err.fields, status=status_of(err))
    flash(f"已开始按本轮规则重算正式得分：共 {job['total']} 个单位，进度每秒刷新。", "ok")
    return redirect(url_for("admin_web.job", job_id=job["id"]))


@bp.post("/rounds/<int:round_id>/finalize")
def round_finalize(round_id):
    try:
        rounds.finalize_round(ctx(), current_actor(), round_id)
    except SHOWN as err:
        return _board_page(round_id, err.message, err.fields, status=status_of(err))
    flash("考核轮次已定稿。", "ok")
    return redirect(url_for("admin_web.round_board", round_id=round_id))
