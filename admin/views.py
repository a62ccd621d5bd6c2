"""The admin pages: each view parses its input, calls ``service.operations``, renders.

Access control is the service's: an operation refused raises one of ``service.exceptions``
(``Forbidden`` for a submitter on another unit's page), shown here as a page in Chinese with
the status the API would give (``service.errors.STATUS``).
"""

from __future__ import annotations

import io
import logging
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_wtf.csrf import CSRFError
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from schemas import DB_INTEGER_MAX
from schemas.jobs import JobDetailOut
from service import evidence, impact, jobs, provenance, rounds, selfassessment
from service import operations as ops
from service.access import check
from service.domain.cycle import ROUND_STAGES
from service.errors import status_of
from service.exceptions import (
    Closed,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    PreconditionRequired,
    ServiceError,
    TooLarge,
    TooManyAttempts,
    Unauthenticated,
)

from . import csrf, export, forms, present
from .auth import authenticate, ctx, current_actor, current_person, safe_next, sign_in, sign_out
from .standing import STATE_BADGES, rounds_by_scheme, standing

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


@bp.app_template_filter("grade_words")
def _grade_words(entry):
    """The grade as every output writes it (the workbook's ``grade_words``: 待定, 优秀待定)."""
    return export.grade_words(entry)


@bp.app_template_filter("stage_words")
def _stage_words(stage):
    return ROUND_STAGES[stage]


@bp.app_template_global()
def print_date():
    """The day a page is printed on (the day it was rendered, Beijing time), for its print footer."""
    return datetime.now(present.CST).strftime("%Y-%m-%d")


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


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_err):
    limit = evidence.megabytes(_store().max_bytes)
    return _error_page(
        413,
        "上传的文件过大",
        f"一份佐证材料不超过 {limit}，一次保存或提交所附的文件合计也不超过 {limit}。"
        "本次提交没有被接受：请返回上一页，压缩或拆分文件，或分几次上传。",
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
    return unit_page(code)


def unit_page(code, notice=None, status=200, typed=None, scheme_id=None):
    """The unit's page: every scheme with its round, the unit's state, its latest submission, its
    official score (or latest preview) and the steps of the cycle open to the user; ``notice``: a
    refusal to show (with the reasons as typed, ``typed``, in the form of ``scheme_id``)."""
    me = current_person()
    row = ops.read_unit(ctx(), me.actor, code)
    in_rounds = rounds_by_scheme(me.actor)
    rows = []
    for scheme in ctx().registry.schemes().values():
        subs = ops.history(ctx(), me.actor, code, scheme.id) if me.can("submissions.read") else []
        scores = ops.list_scores(ctx(), me.actor, code, scheme.id) if me.can("scores.read") else []
        place = (
            standing(me.actor, code, scheme.id, in_rounds[scheme.id])
            if scheme.id in in_rounds
            else None
        )
        rows.append((scheme, subs[-1] if subs else None, shown_score(scores, place), place))
    page = render_template(
        "admin/unit.html",
        unit=row,
        status=rows,
        links={scheme.id: cycle_links(code, place) for scheme, _s, _c, place in rows},
        notice=notice,
        typed=typed or {},
        notice_scheme=scheme_id,
    )
    return page, status


#: the states after publication in which a unit's appeals may exist (filed, answered, or in the
#: published ranking again after a 复核): its page lists them, or says the window has closed
APPEAL_STATES = ("published", "appealed", "rechecked", "final")


def cycle_links(code: str, place) -> dict:
    """The cycle's pages a unit's page links to for this user: ``appeals`` (申诉) once the unit's
    score is published (公示中 within the appeal window: it may appeal; 申诉中, 已复核, or after:
    its appeals and their answers), and ``marks`` (评审组打分) when the round's scheme has clauses
    a panel scores; each None when not offered."""
    me = current_person()
    links: dict = {"appeals": None, "appeal_words": "", "marks": None}
    if place is None:
        return links
    rnd = place.round
    if me.can("appeals.read") and place.state in APPEAL_STATES:
        links["appeals"] = url_for("admin_web.appeals_page", round_id=rnd.id, code=code)
        window = datetime.now(UTC) <= _aware(rnd.appeal_deadline) and rnd.stage != "final"
        if place.state == "published" and window and me.can("appeals.file"):
            links["appeal_words"] = "提出申诉"
        elif place.state == "appealed" and me.can("appeals.answer"):
            links["appeal_words"] = "答复申诉"
        else:
            links["appeal_words"] = "申诉与复核"
    if me.can("scores.read") and rounds.round_scheme(ctx(), rnd).panels:
        links["marks"] = url_for("admin_web.panel_page", round_id=rnd.id, code=code)
    return links


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def shown_score(scores, place):
    """The score a page shows by default: the unit's official score in the round, else its
    latest score (a preview, labelled so)."""
    if place is not None and place.official_score_id:
        found = next((s for s in scores if s.id == place.official_score_id), None)
        if found is not None:
            return found
    return scores[-1] if scores else None


# --- fact entry ----------------------------------------------------------------------------------


# --- evidence files -----------------------------------------------------------------------------

FILE_PREFIX = "u."  # the file input of a fact's evidence: u.<fact name>


def _store() -> evidence.EvidenceStore:
    return current_app.extensions["evidence"]


@bp.url_value_preprocessor
def _upload_body_limit(endpoint, _values):
    # before every before_request (the CSRF check reads the form): the fact form carries files, so
    # its body may be one evidence file larger than other pages' bodies, and no larger; only as
    # multipart (a form without files keeps the ordinary limit)
    if endpoint == "admin_web.save_facts" and request.mimetype == "multipart/form-data":
        request.max_content_length = (
            _store().max_bytes + current_app.config["SCORING_SETTINGS"].max_body_bytes
        )


def _files_of(unit, scheme_id: str, evidence_by_fact) -> dict:
    """{fact name: [file record]} of the uploaded files (``file:<id>``) that evidence references,
    whether stored lists of references or the text typed in the form; for a page that has read
    the unit's submissions already."""
    refs = {
        name: evidence.referenced_ids(
            {name: items if isinstance(items, list) else _split_typed(items)}
        )
        for name, items in (evidence_by_fact or {}).items()
    }
    found = evidence.files_by_id(ctx(), unit, scheme_id, [i for ids in refs.values() for i in ids])
    return {name: [found[i] for i in ids if i in found] for name, ids in refs.items() if ids}


def _split_typed(text) -> list:
    """The references typed in a form's evidence field, as the form's parser splits them."""
    return [x.strip() for x in forms._SPLIT.split(text or "") if x.strip()]


def _attach_uploads(actor, code: str, scheme_id: str, layout, posted) -> None:
    """The files chosen in the form, each kept as evidence for its fact and referenced in that
    fact's evidence (``file:<id>``) as if typed there; a file refused is named on its fact (422),
    the others are kept and referenced, so nothing chosen or typed is lost on the page shown."""
    problems: dict = {}
    for name in layout.fields:
        for sent in request.files.getlist(FILE_PREFIX + name):
            if not isinstance(sent, FileStorage) or not sent.filename:
                continue  # no file chosen
            try:
                row, _new = evidence.upload(
                    ctx(), _store(), actor, code, scheme_id, sent.stream, sent.filename, fact=name
                )
            except (Invalid, TooLarge) as err:
                problems.setdefault(f"evidence.{name}", []).append(
                    f"“{sent.filename[:60]}”未能上传：{err.message}"
                )
                continue
            ref = f"file:{row.id}"
            if ref not in posted.refs.get(name, []):
                posted.refs.setdefault(name, []).append(ref)
                typed = posted.evidence.get(name, "").strip()
                posted.evidence[name] = f"{typed}；{ref}" if typed else ref
    if problems:
        raise Invalid("invalid_evidence_file", "有文件未能上传", problems)


@bp.get("/evidence/<int(max=2147483647):file_id>")
def evidence_file(file_id):
    """An evidence file, as an attachment, to whoever may read the unit's submissions."""
    row, _unit, data = evidence.open_file(ctx(), _store(), current_actor(), file_id)
    response = send_file(
        io.BytesIO(data),
        mimetype=row.content_type,
        as_attachment=True,
        download_name=row.name,
        etag=row.sha256,
        conditional=False,
    )
    response.headers["Content-Security-Policy"] = "sandbox"
    return response


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
    refused=False,
):
    me = current_person()
    latest = rows[-1] if rows else None
    place = standing(me.actor, unit.code, scheme.id)
    may_self = me.can("submissions.write.self")
    may_review = me.can("submissions.write.review")
    # the buttons the cycle takes now: a unit submits until it has submitted, a reviewer reviews
    # what was submitted (a past deadline is the service's to refuse, with the page kept)
    can_self = may_self and place is not None and place.may("submit_self")
    can_review = may_review and place is not None and place.may("review")
    self_values, changed, baseline = _review_marks(rows, place) if can_review else ({}, {}, None)
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
        role_readonly=not (may_self or may_review),
        st=place,
        refused=refused,
        self_values=self_values,
        changed=changed,
        baseline=baseline,
        author=ops.author_name(ctx(), latest.author_id) if latest else None,
        files=_files_of(unit, scheme.id, evidence),
        file_prefix=FILE_PREFIX,
    ), status


def _review_marks(rows, place):
    """For the reviewer's form: ({fact: the unit's self-assessed value, as text}, {fact: the value
    it had before, as text} for every fact the latest version changed since the last reviewed
    version (or the self-assessment when none was reviewed), that version)."""
    by_version = {r.version: r for r in rows}
    own = by_version.get(place.self_version) if place else None
    base = by_version.get(place.reviewed_version or place.self_version) if place else None
    latest = rows[-1] if rows else None
    self_values = {n: forms.to_text(v) for n, v in (own.facts if own else {}).items()}
    changed = {}
    if base is not None and latest is not None and latest.version != base.version:
        for name in set(base.facts) | set(latest.facts):
            if base.facts.get(name) != latest.facts.get(name):
                changed[name] = forms.to_text(base.facts.get(name))
    return self_values, changed, base


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
        _attach_uploads(actor, code, scheme_id, forms.layout(scheme), posted)
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
    except (Conflict, Closed, Forbidden, Invalid, PreconditionRequired) as err:
        if isinstance(err, Forbidden) and err.code != "not_your_step":
            raise  # not this unit's user: the error page, nothing of the unit shown
        rows = ops.history(ctx(), actor, code, scheme_id)
        stale = isinstance(err, PreconditionRequired) or err.code == "version_conflict"
        conflict = rows[-1] if stale and rows else None
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
            refused=isinstance(err, Closed | Forbidden)
            or (isinstance(err, Conflict) and not stale),
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
    return score_page(code, scheme_id)


def score_page(code, scheme_id, notice=None, status=200):
    """The explained score: the unit's official score in the round unless another is asked for
    (``?id=``); with none, its latest preview, labelled 预览; ``notice``: a refusal to show."""
    actor = current_actor()
    unit = ops.read_unit(ctx(), actor, code)
    scores = ops.list_scores(ctx(), actor, code, scheme_id)
    rows = ops.history(ctx(), actor, code, scheme_id)
    scheme = ops.current_scheme(ctx(), scheme_id)
    place = standing(actor, code, scheme_id)
    wanted = request.args.get("id", type=int)
    row = (
        next((s for s in scores if s.id == wanted), None) if wanted else shown_score(scores, place)
    )
    if wanted and row is None:
        abort(404)
    view = ranked = None
    if row is not None:
        facts = ops.scheme_by_version(ctx(), row.rules_version).facts
        view = present.score_view(row.trace, facts)
        ranked = _ranked_entry(actor, scheme, row.id)
    scored = next((r for r in rows if row and r.version == row.submission_version), None)
    return render_template(
        "admin/score.html",
        unit=unit,
        scheme=scheme,
        files=_files_of(unit, scheme_id, scored.evidence) if scored else {},
        row=row,
        view=view,
        scores=scores,
        latest=rows[-1] if rows else None,
        standing=ranked,
        st=place,
        notice=notice,
        F=facts if row else {},
        computed_by=ops.author_name(ctx(), row.computed_by) if row else None,
        links=cycle_links(code, place),
    ), status


@bp.post("/units/<code>/schemes/<scheme_id>/score")
def compute(code, scheme_id):
    """计算正式得分 (``kind`` official) or 计算预览 (preview); without ``kind``, the service decides
    (official when the unit is reviewed and the user may compute it).  A refusal of the cycle is
    shown on the page the button was on."""
    kind = request.form.get("kind") or None
    try:
        row = ops.compute_score(ctx(), current_actor(), code, scheme_id, kind=kind)
    except (Conflict, Closed, Invalid) as err:
        if request.form.get("back") == "unit":
            return unit_page(code, err.message, status_of(err))
        return score_page(code, scheme_id, err.message, status_of(err))
    words = "正式得分" if row.kind == "official" else "预览（不计入排名）"
    flash(f"已按考核轮次的规则计算第{row.submission_version}版提交的{words}。", "ok")
    return redirect(url_for("admin_web.score", code=code, scheme_id=scheme_id, id=row.id))


@bp.get("/units/<code>/schemes/<scheme_id>/score.xlsx")
def score_xlsx(code, scheme_id):
    actor = current_actor()
    unit = ops.read_unit(ctx(), actor, code)
    scores = ops.list_scores(ctx(), actor, code, scheme_id)
    place = standing(actor, code, scheme_id)
    wanted = request.args.get("id", type=int)
    row = (
        next((s for s in scores if s.id == wanted), None) if wanted else shown_score(scores, place)
    )
    if row is None:
        abort(404)
    facts = ops.scheme_by_version(ctx(), row.rules_version).facts
    scored = ops.get_submission(ctx(), actor, code, scheme_id, row.submission_version)
    official = place is not None and place.official_score_id == row.id
    meta = {
        "submission_version": row.submission_version,
        "kind_words": "正式得分" if official else "预览",
    }
    if place is not None:
        meta["round"] = _round_info(place.round)
        meta["state_words"] = place.state_words
    # the grade as the score page shows it (by rank: the ranking's)
    entry = _ranked_entry(actor, ops.current_scheme(ctx(), scheme_id), row.id)
    meta.update({k: v for k, v in (entry or {}).items() if k not in meta})
    own = (
        selfassessment.self_assessed(ctx(), actor, scheme_id, code).get(code) if official else None
    )
    data = export.unit_workbook(
        row.trace["scheme_title"],
        unit.name,
        row.trace,
        meta,
        facts,
        files=_files_of(unit, scheme_id, scored.evidence),
        compared=official,
        own=own,
        # the score page's own provenance, from the same function: the sheet cannot say otherwise
        sources=provenance.of_score(ctx(), row, unit),
    )
    return _download(data, f"{unit.name}-{scheme_id}-{'得分' if official else '预览'}.xlsx")


def _round_info(rnd) -> dict:
    """A round as the outputs name it (``export.round_words``)."""
    return {"title": rnd.title, "year": rnd.year, "stage_words": ROUND_STAGES[rnd.stage]}


def _ranked_entry(actor, scheme, score_id: int) -> dict | None:
    """The ranking's entry of the score ``score_id`` (its rank and grade) when the grade is by rank
    and so needs the ranking, for who may read it: the score page and its workbook both take the
    grade from here, so they say the same."""
    if scheme.grading.method != "rank" or not current_person().can("ranking.read"):
        return None
    entries = ops.ranking(ctx(), actor, scheme.id)["entries"]
    return next((e for e in entries if e["score_id"] == score_id), None)


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
        files={r.version: _files_of(unit, scheme_id, r.evidence) for r in rows},
        unit=unit,
        scheme=scheme,
        rows=rows,
        diff=diff,
        a=a,
        b=b,
        authors=authors,
        st=standing(actor, code, scheme_id),
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
    return render_template(
        "admin/ranking.html", scheme=scheme, ranking=data, chart=chart, badges=STATE_BADGES
    )


@bp.get("/schemes/<scheme_id>/ranking.xlsx")
def ranking_xlsx(scheme_id):
    data, traces = _ranking_with_traces(scheme_id)
    scheme = ops.current_scheme(ctx(), scheme_id)
    return _download(
        export.ranking_workbook(
            scheme.title,
            data["version"],
            data["entries"],
            traces,
            scheme.facts,
            data["round"],
            data["unranked"],
            selfassessment.self_assessed(ctx(), current_actor(), scheme_id),
        ),
        f"{scheme_id}-考核结果.xlsx",
    )


# --- background jobs ---------------------------------------------------------------------------------


@bp.post("/schemes/<scheme_id>/recompute")
def recompute_all(scheme_id):
    """排名页的“重算正式得分”: start the job and go to its page, which follows its progress."""
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


def _rules_page(
    check_result=None,
    reload_result=None,
    reload_errors=None,
    reload_refusal=None,
    status=200,
    comparison=None,
    compare_error="",
):
    from .rule_pages import drafts_section  # the rule editor's module (it imports this one)

    versions = ops.rule_versions(ctx(), current_actor())
    schemes = ctx().registry.schemes().values()
    drafts = drafts_section()  # reads the rules directory's status once, for the note too
    # what the pages published is served even where the rules directory says otherwise: say so
    disk_differs = [d for d in drafts.get("disk") or [] if d["differs"]]
    return render_template(
        "admin/rules.html",
        **drafts,
        versions=versions,
        disk_differs=disk_differs,
        schemes=schemes,
        serving={s.version for s in schemes},
        rules_dir=str(ctx().registry.rules_dir).rstrip("/") + "/",
        check_result=check_result,
        reload_result=reload_result,
        reload_errors=reload_errors,
        comparison=comparison,
        compare_error=compare_error,
        compare_from=request.args.get("from", ""),
        compare_to=request.args.get("to", ""),
        reload_refusal=reload_refusal,
    ), status


@bp.get("/rules")
def rules():
    return _rules_page()


@bp.get("/rules/check")
def rules_check():
    return _rules_page(check_result=ops.validate_rules(ctx(), current_actor(), _rules_files()))


@bp.get("/rules/compare")
def rules_compare():
    """The rules page with two versions compared, grouped by clause (a GET form: works without
    script, and the address can be sent to a colleague)."""
    old, new = request.args.get("from", ""), request.args.get("to", "")
    if not (_VERSION.fullmatch(old) and _VERSION.fullmatch(new)):
        return _rules_page(compare_error="请选择要比较的两个版本。", status=422)
    try:
        comparison = ops.compare_rule_versions(ctx(), current_actor(), old, new)
    except NotFound as err:
        return _rules_page(compare_error=err.message, status=404)
    return _rules_page(comparison=comparison)


_VERSION = re.compile(r"[0-9a-f]{64}")


@bp.post("/rules/reload")
def rules_reload():
    try:
        result = ops.reload_rules(ctx(), current_actor())
    except Invalid as err:
        # broken files, or failing test cases: the message says which, the fields where
        return _rules_page(reload_errors=err.fields, reload_refusal=err.message, status=422)
    return _rules_page(reload_result=result)


@bp.post("/rules/impact")
def rules_impact_start():
    """The rules page's 影响预览: start the job over the reviewed units, go to its result page
    (which shows its progress: an editor may start one but not read the job list)."""
    year = request.form.get("year", "").strip()
    params = {"from": request.form.get("from", ""), "to": request.form.get("to", "")}
    if year:
        if not year.isdigit():
            flash("年度应为整数，如 2023", "bad")
            return redirect(url_for("admin_web.rules") + "#impact")
        params["year"] = int(year)
    try:
        job = jobs.start_job(ctx(), current_actor(), impact.KIND, params)
    except (Invalid, Conflict) as err:  # said on the page the form is on
        flash(err.message, "bad")
        return redirect(url_for("admin_web.rules") + "#impact")
    flash(f"已开始影响预览：共 {job['total']} 个单位。", "ok")
    return redirect(url_for("admin_web.rules_impact", job_id=job["id"]))


@bp.get("/rules/impact/<int(max=2147483647):job_id>")
def rules_impact(job_id):
    return render_template(
        "admin/impact.html", impact=impact.impact_result(ctx(), current_actor(), job_id)
    )


@bp.get("/rules/impact/<int(max=2147483647):job_id>.xlsx")
def rules_impact_xlsx(job_id):
    data = impact.workbook(impact.impact_result(ctx(), current_actor(), job_id))
    return _download(data, f"影响预览-{job_id}.xlsx")


@bp.route("/<path:anything>")
def not_found(anything):
    abort(404)


# the rule editor's pages (drafts, clauses, files: issue 10) are views of this blueprint too
from . import rule_pages  # noqa: E402,F401
