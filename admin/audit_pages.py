"""The auditor's desk in the pages (issue 11): each fact's provenance on the score page and its whole
history on a page of its own, 复核 (replay) of a stored score, the replay of a round's official
scores as a background job with its printable report (page and workbook), the journal with its
filters, keyset paging over the whole history and its export, the history chain's tamper check, and
the audit workbook of a round.

Everything calls ``service.audit`` / ``service.provenance`` / ``service.operations``: access control
and the journal are the API's own.  An auditor reads all of it and changes nothing (a replay is
journaled as a read; running the tamper check is an admin's).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import flash, redirect, render_template, request, url_for

from service import audit, jobs, provenance, rounds
from service import operations as ops
from service.access import ROLES, check
from service.domain.cycle import CHINA
from service.exceptions import Conflict, Invalid

from . import export
from .auth import ctx, current_actor, current_person
from .views import _download, bp

#: the journal page's sizes: a page, and the most rows one export writes (bounded, said so)
JOURNAL_PAGE, EXPORT_MAX = 100, 50_000
OUTCOMES = {"ok": "成功", "denied": "拒绝", "failed": "失败"}
ROLE_CHOICES = {**{r: r for r in ROLES}, "system": "system"}


# --- provenance ----------------------------------------------------------------------------------


@bp.app_template_global()
def fact_sources(row, unit) -> dict:
    """The provenance of a stored score's facts, for the score page (its read is the page's own)."""
    return provenance.of_score(ctx(), row, unit)


@bp.get("/units/<code>/schemes/<scheme_id>/facts/<fact>/history")
def fact_history(code, scheme_id, fact):
    actor = current_actor()
    unit = ops.read_unit(ctx(), actor, code)
    data = provenance.fact_history(ctx(), actor, code, scheme_id, fact)
    scheme = ctx().registry.get(scheme_id)
    return render_template(
        "admin/audit_fact.html",
        unit=unit,
        scheme=scheme,
        scheme_id=scheme_id,
        data=data,
        score_id=request.args.get("score", type=int),
    )


# --- replay --------------------------------------------------------------------------------------


@bp.post("/scores/<int(max=2147483647):score_id>/replay")
def score_replay(score_id):
    """复核: the score recomputed under its own rules version and facts, compared; changes nothing."""
    result = audit.replay_score(ctx(), current_actor(), score_id)
    return render_template("admin/audit_replay.html", r=result)


@bp.post("/rounds/<int(max=2147483647):round_id>/replay")
def round_replay(round_id):
    """复核本轮全部正式得分: the ``scores.replay`` job, then its page, which follows its progress."""
    try:
        job = audit.start_round_replay(ctx(), current_actor(), round_id)
    except (Conflict, Invalid) as err:
        flash(err.message, "warn")
        return redirect(url_for("admin_web.audit_index"))
    flash(f"已开始复核：共 {job['total']} 个正式得分，进度每秒刷新；完成后可查看和打印报告。", "ok")
    return redirect(url_for("admin_web.job", job_id=job["id"]))


@bp.get("/replays/<int(max=2147483647):job_id>")
def replay_report(job_id):
    report = audit.replay_report(ctx(), current_actor(), job_id)
    return render_template("admin/audit_replay_report.html", report=report)


@bp.get("/replays/<int(max=2147483647):job_id>.xlsx")
def replay_report_xlsx(job_id):
    report = audit.replay_report(ctx(), current_actor(), job_id)
    return _download(export.replay_workbook(report), f"复核报告-{job_id}.xlsx")


# --- the audit of a round --------------------------------------------------------------------------


@bp.get("/audit")
def audit_index():
    """The auditor's desk: every round with its audit workbook and the replay of its scores, the
    replay jobs, the journal and the tamper check."""
    actor = current_actor()
    check(ctx().db, actor, audit.AUDIT, "audit")
    found = rounds.list_rounds(ctx(), actor)
    replays = []
    if current_person().can("jobs.read"):
        views, _next = jobs.list_jobs(ctx(), actor)
        replays = [j for j in views if j["kind"] == audit.KIND]
    return render_template(
        "admin/audit_index.html",
        rounds=found,
        replays=replays,
        last=audit.last_check(ctx(), actor),
    )


@bp.get("/rounds/<int(max=2147483647):round_id>/audit.xlsx")
def round_audit_xlsx(round_id):
    data = audit.round_audit(ctx(), current_actor(), round_id)
    title = data["round"]["title"]
    return _download(export.audit_workbook(data), f"{title}-审计工作簿.xlsx")


# --- the journal ---------------------------------------------------------------------------------


def _day(text: str, name: str, problems: dict, after: bool = False):
    """A date typed in a filter (Beijing time): the start of that day, or of the next (``after``:
    an "until" day is included whole)."""
    text = (text or "").strip()
    if not text:
        return None
    for pattern in ("%Y-%m-%d", "%Y-%m-%dT%H:%M"):
        try:
            moment = datetime.strptime(text, pattern).replace(tzinfo=CHINA)
            return moment + timedelta(days=1) if after and pattern == "%Y-%m-%d" else moment
        except ValueError:
            continue
    problems.setdefault(name, []).append(f"“{text[:30]}”不是日期（应如 2026-03-31）")
    return None


def _journal_query() -> tuple[dict, dict, dict]:
    """(what was typed, the service's filters and times, problems) of the journal's query string."""
    typed = {
        k: request.args.get(k, "").strip()
        for k in ("actor", "role", "unit", "scheme", "action", "outcome", "since", "until")
    }
    problems: dict = {}
    if typed["role"] and typed["role"] not in ROLE_CHOICES and typed["role"] != "anonymous":
        problems["role"] = ["不是可选的角色"]
    if typed["outcome"] and typed["outcome"] not in OUTCOMES:
        problems["outcome"] = ["应为 成功、拒绝 或 失败"]
    for name in ("actor", "unit", "scheme", "action"):
        if len(typed[name]) > 300 or "\x00" in typed[name]:
            problems[name] = ["不超过300字，且不含控制字符"]
    filters = {
        name: (typed[name] or None)
        for name in ("actor", "unit", "scheme", "action", "outcome")
        if name not in problems
    }
    filters["role"] = "" if typed["role"] == "anonymous" else (typed["role"] or None)
    if "role" in problems:
        filters["role"] = None
    since = _day(typed["since"], "since", problems)
    until = _day(typed["until"], "until", problems, after=True)
    return typed, {"filters": filters, "since": since, "until": until}, problems


@bp.get("/journal")
def journal():
    actor = current_actor()
    typed, query, problems = _journal_query()
    cursor = request.args.get("cursor") or None
    page = None
    if not problems:
        try:
            page = ops.read_journal(ctx(), actor, JOURNAL_PAGE, cursor, **query)
        except Invalid as err:
            problems = err.fields or {"cursor": [err.message]}
    else:
        check(ctx().db, actor, "journal.read", "journal")  # the page itself is a reader's
    shown = {k: v for k, v in typed.items() if v}
    return render_template(
        "admin/audit_journal.html",
        typed=typed,
        shown=shown,
        problems=problems,
        page=page,
        cursor=cursor,
        roles=ROLES,
        outcomes=OUTCOMES,
        last=audit.last_check(ctx(), actor),
        export_max=EXPORT_MAX,
    ), (422 if problems else 200)


@bp.get("/journal.xlsx")
def journal_xlsx():
    """The entries the filters select, newest first, read page by page (keyset) and written as they
    come; at most ``EXPORT_MAX`` rows (the sheet says when there were more)."""
    actor = current_actor()
    check(ctx().db, actor, "journal.read", "journal")  # before the workbook is begun
    _typed, query, problems = _journal_query()
    if problems:
        raise Invalid("invalid_filter", "筛选条件有误", problems)

    def entries():
        cursor, count = None, 0
        while True:
            page = ops.read_journal(ctx(), actor, 1000, cursor, **query)
            for entry in page.entries:
                if count == EXPORT_MAX:
                    yield None  # more than the export holds
                    return
                count += 1
                yield entry
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    words = "；".join(f"{k}={v}" for k, v in _typed.items() if v) or "全部"
    data = export.journal_workbook(entries(), words, EXPORT_MAX)
    return _download(data, "操作日志.xlsx")


@bp.post("/journal/verify")
def journal_verify():
    """核对历史链 (an admin): the result is journaled and shown as the last check."""
    result = audit.run_history_check(ctx(), current_actor())
    if result["ok"]:
        flash(f"历史链完好：核对了 {result['rows']} 条记录，用时 {result['seconds']} 秒。", "ok")
    else:
        problem = result["problem"] or {}
        flash(f"历史链有断裂：{problem.get('message', '')}", "bad")
    return redirect(url_for("admin_web.journal"))
