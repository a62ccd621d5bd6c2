"""The admin pages: each view parses its input, calls ``service.operations``, renders.

Access control is the service's: an operation refused raises one of ``service.exceptions``
(``Forbidden`` for a submitter on another unit's page), shown here as a page in Chinese with
the status the API would give (``service.errors.STATUS``).
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from schemas import DB_INTEGER_MAX
from schemas.jobs import JobDetailOut
from service import jobs
from service import operations as ops
from service.access import check
from service.errors import status_of
from service.exceptions import (
    Conflict,
    Invalid,
    PreconditionRequired,
    ServiceError,
    TooManyAttempts,
    Unauthenticated,
)

from . import csrf, export, forms, present
from .auth import authenticate, ctx, current_actor, current_person, safe_next, sign_in, sign_out

log = logging.getLogger(__name__)

bp = Blueprint(
    "admin_web",
    __name__,
    url_prefix="/admin",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

PUBLIC = {"admin_web.login", "admin_web.static"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# --- every request ---------------------------------------------------------------------------


@bp.before_request
def _guard():
    csrf.protect()  # every POST of these pages carries the session's token (raises CSRFError)
    if request.endpoint not in PUBLIC and current_person() is None:
        return redirect(url_for("admin_web.login", next=request.full_path.rstrip("?")))


@bp.after_request
def _headers(response):
    if request.endpoint != "admin_web.static":
        response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    )
    return response


@bp.app_template_global()
def person():
    return current_person()


@bp.app_template_filter("pts")
def _pts(value):
    return present.pts(value)


@bp.app_template_filter("when")
def _when(value):
    return present.when(value)


@bp.app_template_filter("words")
def _words(text, facts):
    return present.humanize(text, facts)


@bp.app_template_filter("num")
def _num(value):
    return present.num(value)


def _error_page(status: int, title: str, message: str, fields=None, incident=None):
    return render_template(
        "admin/error.html",
        status=status,
        title=title,
        message=message,
        fields=fields or {},
        incident=incident,
    ), status


@bp.errorhandler(ServiceError)
def _service_error(err: ServiceError):
    titles = {
        401: "请先登录",
        403: "没有权限",
        404: "没有找到",
        409: "数据已被他人更新",
        422: "内容有误",
        429: "尝试次数过多",
        503: "评分引擎暂时不可用",
    }
    if isinstance(err, Unauthenticated):
        return redirect(url_for("admin_web.login", next=request.full_path.rstrip("?")))
    status = status_of(err)
    return _error_page(status, titles.get(status, "出错了"), err.message, err.fields, err.incident)


@bp.errorhandler(CSRFError)
def _csrf_error(err: CSRFError):
    return _error_page(
        400,
        "页面已过期或来源不明",
        "为保护您的账号，本次提交没有被接受（缺少或不匹配的安全令牌）。"
        "请返回上一页，刷新后再提交；如已退出登录，请重新登录。",
    )


@bp.errorhandler(HTTPException)
def _http_error(err: HTTPException):
    words = {
        400: "请求有误",
        403: "没有权限",
        404: "没有找到这个页面",
        405: "不支持这种操作",
        413: "提交的内容过大",
    }
    return _error_page(
        err.code or 500, words.get(err.code, "出错了"), words.get(err.code, err.description or "")
    )


@bp.errorhandler(Exception)
def _unexpected(err: Exception):
    incident = uuid.uuid4().hex[:12]
    log.exception("incident %s: unexpected error on an admin page", incident)
    return _error_page(
        500,
        "服务内部错误",
        "页面生成时出错，已记录。请稍后再试，或把事件编号告诉管理员。",
        incident=incident,
    )


# --- sign-in ------------------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login():
    target = safe_next(request.values.get("next"), bp.url_prefix)
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        try:
            user_id = authenticate(username, request.form.get("password", ""))
        except TooManyAttempts as err:  # locked: the form again, saying until when, and 429
            page = render_template(
                "admin/login.html", username=username, target=target, error=err.message
            )
            return page, 429, {"Retry-After": str(err.retry_after)}
        if user_id is None:
            return render_template(
                "admin/login.html", username=username, target=target, error="用户名或密码不对"
            ), 401
        sign_in(user_id)
        return redirect(target or url_for("admin_web.index"))
    if current_person() is not None:
        return redirect(target or url_for("admin_web.index"))
    return render_template("admin/login.html", username="", target=target, error=None)


@bp.post("/logout")
def logout():
    sign_out()
    return redirect(url_for("admin_web.login", out=1))


# --- home and units ---------------------------------------------------------------------------


@bp.get("/")
def index():
    me = current_person()
    if me.actor.role == "submitter":
        return redirect(url_for("admin_web.unit", code=me.unit_code))
    units = ops.list_units(ctx(), me.actor)
    check = ops.last_history_check(ctx(), me.actor) if me.can("journal.read") else None
    return render_template(
        "admin/index.html",
        units=units,
        schemes=ctx().registry.schemes().values(),
        history_check=check,
    )


@bp.get("/units/<code>")
def unit(code):
    me = current_person()
    row = ops.read_unit(ctx(), me.actor, code)
    status = []
    for scheme in ctx().registry.schemes().values():
        subs = ops.history(ctx(), me.actor, code, scheme.id) if me.can("submissions.read") else []
        scores = ops.list_scores(ctx(), me.actor, code, scheme.id) if me.can("scores.read") else []
        status.append((scheme, subs[-1] if subs else None, scores[-1] if scores else None))
    return render_template("admin/unit.html", unit=row, status=status)


# --- fact entry ----------------------------------------------------------------------------------


def _draft_shown(row):
    """A stored draft as the fact page shows it."""
    if row is None:
        return None
    return {
        "values": row.values,
        "evidence": row.evidence,
        "reason": row.reason,
        "reasons": row.reasons,
        "base": row.base_version,
        "saved": present.when(row.saved_at),
    }


def _may_draft():
    me = current_person()
    return me.can("submissions.write.self") or me.can("submissions.write.review")


def _facts_page(
    unit,
    scheme,
    rows,
    values,
    evidence,
    reason,
    base,
    errors=None,
    status=200,
    notice=None,
    draft=None,
    conflict=None,
    reasons=None,
):
    me = current_person()
    latest = rows[-1] if rows else None
    can_self = me.can("submissions.write.self")
    can_review = me.can("submissions.write.review")
    return render_template(
        "admin/facts.html",
        unit=unit,
        scheme=scheme,
        layout=forms.layout(scheme),
        rows=rows,
        latest=latest,
        values=values,
        not_applying=forms.not_applying(scheme, values),
        evidence=evidence,
        reason=reason,
        reasons=reasons or {},
        base=base,
        errors=errors or {},
        notice=notice,
        draft=draft,
        conflict=conflict,
        can_self=can_self,
        can_review=can_review,
        readonly=not (can_self or can_review),
        author=ops.author_name(ctx(), latest.author_id) if latest else None,
    ), status


@bp.get("/units/<code>/schemes/<scheme_id>/facts")
def facts(code, scheme_id):
    actor = current_actor()
    unit = ops.read_unit(ctx(), actor, code)
    scheme = ops.current_scheme(ctx(), scheme_id)
    rows = ops.history(ctx(), actor, code, scheme_id)
    latest = rows[-1] if rows else None
    draft = _draft_shown(ops.read_draft(ctx(), actor, code, scheme_id) if _may_draft() else None)
    if draft and not request.args.get("fresh"):
        return _facts_page(
            unit,
            scheme,
            rows,
            draft["values"],
            draft["evidence"],
            draft["reason"],
            latest.version if latest else 0,
            draft=draft,
            reasons=draft["reasons"],
        )
    values, evidence = forms.from_submission(latest.facts, latest.evidence) if latest else ({}, {})
    return _facts_page(
        unit,
        scheme,
        rows,
        values,
        evidence,
        "",
        latest.version if latest else 0,
        draft=draft,
    )


@bp.post("/units/<code>/schemes/<scheme_id>/facts")
def save_facts(code, scheme_id):
    actor = current_actor()
    # only 保存草稿 and the submit buttons post here; discarding a draft has its own page that asks
    # first, so no key press in this form (Enter submits with the first button) can discard one
    action = request.form.get("action", "")
    if action not in ("draft", "self", "review"):
        abort(400)
    unit = ops.read_unit(ctx(), actor, code)
    scheme = ops.current_scheme(ctx(), scheme_id)
    posted = forms.parse(forms.layout(scheme), request.form)
    try:
        if posted.problems:
            raise Invalid("invalid_form", "有内容超过长度限制", posted.problems)
        if action == "draft":
            ops.save_draft(
                ctx(),
                actor,
                code,
                scheme_id,
                posted.values,
                posted.evidence,
                posted.reason,
                posted.reasons,
                posted.base,
            )
            flash("草稿已保存在服务器上（尚未提交；退出登录或换一台电脑后仍可继续填写）。", "ok")
            return redirect(url_for("admin_web.facts", code=code, scheme_id=scheme_id) + "#top")
        row = ops.submit(
            ctx(),
            actor,
            code,
            scheme_id,
            action,
            posted.facts,
            posted.refs,
            posted.reason,
            ops.etag(posted.base),
            posted.reasons,
        )
    except (Conflict, Invalid, PreconditionRequired) as err:
        rows = ops.history(ctx(), actor, code, scheme_id)
        conflict = rows[-1] if not isinstance(err, Invalid) and rows else None
        return _facts_page(
            unit,
            scheme,
            rows,
            posted.values,
            posted.evidence,
            posted.reason,
            posted.base,
            errors=forms.field_errors(err.fields),
            status=status_of(err),
            notice=err.message,
            conflict=conflict,
            reasons=posted.reasons,
        )
    flash(f"已提交第{row.version}版（{present.ROLE_WORDS[row.role]}）。", "ok")
    return redirect(url_for("admin_web.score", code=code, scheme_id=scheme_id))


@bp.get("/units/<code>/schemes/<scheme_id>/facts/discard")
def discard_draft_page(code, scheme_id):
    """丢弃草稿 asks first, on a page of its own (works without script)."""
    actor = current_actor()
    unit = ops.read_unit(ctx(), actor, code)
    scheme = ops.current_scheme(ctx(), scheme_id)
    draft = _draft_shown(ops.read_draft(ctx(), actor, code, scheme_id))
    if draft is None:
        flash("没有可丢弃的草稿。", "warn")
        return redirect(url_for("admin_web.facts", code=code, scheme_id=scheme_id))
    return render_template("admin/discard_draft.html", unit=unit, scheme=scheme, draft=draft)


@bp.post("/units/<code>/schemes/<scheme_id>/facts/discard")
def discard_draft(code, scheme_id):
    actor = current_actor()
    if request.form.get("confirm") != "yes":  # not from the page that asks: ask first
        return redirect(url_for("admin_web.discard_draft_page", code=code, scheme_id=scheme_id))
    if ops.discard_draft(ctx(), actor, code, scheme_id):
        flash("草稿已丢弃，显示的是已提交的最新版本。", "ok")
    else:
        flash("没有可丢弃的草稿。", "warn")
    return redirect(url_for("admin_web.facts", code=code, scheme_id=scheme_id))


# --- explained score ------------------------------------------------------------------------------


@bp.get("/units/<code>/schemes/<scheme_id>/score")
def score(code, scheme_id):
    actor = current_actor()
    unit = ops.read_unit(ctx(), actor, code)
    scores = ops.list_scores(ctx(), actor, code, scheme_id)
    rows = ops.history(ctx(), actor, code, scheme_id)
    wanted = request.args.get("id", type=int)
    row = (
        next((s for s in scores if s.id == wanted), None)
        if wanted
        else (scores[-1] if scores else None)
    )
    if wanted and row is None:
        abort(404)
    scheme = ops.current_scheme(ctx(), scheme_id)
    view = standing = None
    if row is not None:
        facts = ops.scheme_by_version(ctx(), row.rules_version).facts
        view = present.score_view(row.trace, facts)
        if scheme.grading.method == "rank" and current_person().can(
            "ranking.read"
        ):  # the grade needs the ranking
            standing = next(
                (
                    e
                    for e in ops.ranking(ctx(), actor, scheme_id)["entries"]
                    if e["score_id"] == row.id
                ),
                None,
            )
    return render_template(
        "admin/score.html",
        unit=unit,
        scheme=scheme,
        row=row,
        view=view,
        scores=scores,
        latest=rows[-1] if rows else None,
        standing=standing,
        F=facts if row else {},
        computed_by=ops.author_name(ctx(), row.computed_by) if row else None,
    )


@bp.post("/units/<code>/schemes/<scheme_id>/score")
def compute(code, scheme_id):
    row = ops.compute_score(ctx(), current_actor(), code, scheme_id)
    flash(f"已按当前规则计算第{row.submission_version}版提交的得分。", "ok")
    return redirect(url_for("admin_web.score", code=code, scheme_id=scheme_id, id=row.id))


@bp.get("/units/<code>/schemes/<scheme_id>/score.xlsx")
def score_xlsx(code, scheme_id):
    actor = current_actor()
    unit = ops.read_unit(ctx(), actor, code)
    scores = ops.list_scores(ctx(), actor, code, scheme_id)
    wanted = request.args.get("id", type=int)
    row = (
        next((s for s in scores if s.id == wanted), None)
        if wanted
        else (scores[-1] if scores else None)
    )
    if row is None:
        abort(404)
    facts = ops.scheme_by_version(ctx(), row.rules_version).facts
    data = export.unit_workbook(
        row.trace["scheme_title"],
        unit.name,
        row.trace,
        {"submission_version": row.submission_version},
        facts,
    )
    return _download(data, f"{unit.name}-{scheme_id}-得分.xlsx")


def _download(data: bytes, filename: str) -> Response:
    response = Response(data, mimetype=XLSX)
    response.headers["Content-Disposition"] = export.attachment(filename)
    return response


# --- history ---------------------------------------------------------------------------------------


def _version_arg(name: str) -> int | None:
    """A version number from the query (``?from=3``), or None if not given; a number no version
    can have (beyond the databases' INTEGER, as the audit sent) is a 422 naming it, not a 500."""
    text = request.args.get(name, "").strip()
    if not text:
        return None
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= DB_INTEGER_MAX:
        raise Invalid(
            "invalid_version",
            f"版本号应为1到{DB_INTEGER_MAX}之间的整数",
            {name: [f"“{text[:20]}”不是有效的版本号"]},
        )
    return int(text)


@bp.get("/units/<code>/schemes/<scheme_id>/history")
def history(code, scheme_id):
    actor = current_actor()
    unit = ops.read_unit(ctx(), actor, code)
    rows = ops.history(ctx(), actor, code, scheme_id)
    scheme = ops.current_scheme(ctx(), scheme_id)
    a = _version_arg("from") or (rows[-2].version if len(rows) > 1 else None)
    b = _version_arg("to") or (rows[-1].version if len(rows) > 1 else None)
    diff = ops.compare(ctx(), actor, code, scheme_id, a, b) if a and b else None
    authors = {r.author_id: ops.author_name(ctx(), r.author_id) for r in rows}
    return render_template(
        "admin/history.html",
        unit=unit,
        scheme=scheme,
        rows=rows,
        diff=diff,
        a=a,
        b=b,
        authors=authors,
    )


# --- ranking -----------------------------------------------------------------------------------------


def _ranking_with_traces(scheme_id):
    # the traces come with the ranking under its one permission ("ranking.read", as on the API):
    # asking for each score on its own needed "scores.read" too, which the editor lacks
    ranking = ops.ranking(ctx(), current_actor(), scheme_id, with_traces=True)
    return ranking, ranking.pop("traces")


@bp.get("/schemes/<scheme_id>/ranking")
def ranking(scheme_id):
    data, traces = _ranking_with_traces(scheme_id)
    scheme = ops.current_scheme(ctx(), scheme_id)
    chart = present.ranking_chart(data["entries"], traces, scheme.unit, scheme.total)
    return render_template("admin/ranking.html", scheme=scheme, ranking=data, chart=chart)


@bp.get("/schemes/<scheme_id>/ranking.xlsx")
def ranking_xlsx(scheme_id):
    data, traces = _ranking_with_traces(scheme_id)
    scheme = ops.current_scheme(ctx(), scheme_id)
    return _download(
        export.ranking_workbook(
            scheme.title, data["version"], data["entries"], traces, scheme.facts
        ),
        f"{scheme_id}-考核结果.xlsx",
    )


# --- background jobs ---------------------------------------------------------------------------------


@bp.post("/schemes/<scheme_id>/recompute")
def recompute_all(scheme_id):
    """排名页的“重算全部得分”: start the job and go to its page, which follows its progress."""
    try:
        job = jobs.start_job(ctx(), current_actor(), "scores.recompute", {"scheme": scheme_id})
    except Conflict as err:  # nothing to recompute yet: said where the button is
        flash(err.message, "warn")
        return redirect(url_for("admin_web.ranking", scheme_id=scheme_id))
    flash(f"已开始重算：共 {job['total']} 个单位，进度每秒刷新。", "ok")
    return redirect(url_for("admin_web.job", job_id=job["id"]))


@bp.get("/jobs")
def job_list():
    views, _next = jobs.list_jobs(ctx(), current_actor())
    return render_template("admin/jobs.html", jobs=views)


@bp.get("/jobs/<int(max=2147483647):job_id>")
def job(job_id):
    view = jobs.read_job(ctx(), current_actor(), job_id)
    scheme_id = view["params"].get("scheme") if isinstance(view["params"], dict) else None
    scheme = ctx().registry.get(scheme_id) if isinstance(scheme_id, str) else None
    return render_template("admin/job.html", job=view, scheme=scheme)


@bp.get("/jobs/<int(max=2147483647):job_id>.json")
def job_json(job_id):
    """What the job page's script polls every second (the page's own session, no API token)."""
    return JobDetailOut().dump(jobs.read_job(ctx(), current_actor(), job_id))


@bp.post("/jobs/<int(max=2147483647):job_id>/cancel")
def job_cancel(job_id):
    jobs.cancel_job(ctx(), current_actor(), job_id)
    flash("任务已取消：已完成的项目保留，其余不再处理。", "ok")
    return redirect(url_for("admin_web.job", job_id=job_id))


# --- rules ----------------------------------------------------------------------------------------------


@bp.get("/schemes/<scheme_id>/rules")
def scheme_rules(scheme_id):
    actor = current_actor()
    check(ctx().db, actor, "schemes.read", f"scheme:{scheme_id}")
    scheme = ops.current_scheme(ctx(), scheme_id)
    return render_template(
        "admin/scheme_rules.html", scheme=scheme, words=present, layout=forms.layout(scheme)
    )


def _rules_files() -> dict:
    root = Path(ctx().registry.rules_dir)
    return {
        p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(root.rglob("*.y*ml"))
        if p.is_file()
    }


def _rules_page(check_result=None, reload_result=None, reload_errors=None, status=200):
    versions = ops.rule_versions(ctx(), current_actor())
    schemes = ctx().registry.schemes().values()
    return render_template(
        "admin/rules.html",
        versions=versions,
        schemes=schemes,
        serving={s.version for s in schemes},
        rules_dir=str(ctx().registry.rules_dir).rstrip("/") + "/",
        check_result=check_result,
        reload_result=reload_result,
        reload_errors=reload_errors,
    ), status


@bp.get("/rules")
def rules():
    return _rules_page()


@bp.get("/rules/check")
def rules_check():
    return _rules_page(check_result=ops.validate_rules(ctx(), current_actor(), _rules_files()))


@bp.post("/rules/reload")
def rules_reload():
    try:
        result = ops.reload_rules(ctx(), current_actor())
    except Invalid as err:
        return _rules_page(reload_errors=err.fields, status=422)
    return _rules_page(reload_result=result)


@bp.route("/<path:anything>")
def not_found(anything):
    abort(404)
