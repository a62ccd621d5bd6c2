"""Units, their submissions (append-only, versioned) and their scores."""

from __future__ import annotations

from decimal import Decimal

from flask import g, request

from schemas import (
    CompareArgs,
    CompareOut,
    ReplayOut,
    ScoreOut,
    ScoreRequest,
    SubmissionIn,
    SubmissionOut,
    UnitIn,
    UnitOut,
)
from service import audit, provenance
from service import operations as ops
from service.domain.numbers import plain
from service.domain.trace import render_data

from .common import TEXT_DOC, Blueprint, actor, ctx, text_response, wants_text

blp = Blueprint("units", __name__, url_prefix="/api", description="被考核单位、事实提交与评分")


def _exact(value):
    """A number as the exact digits the API writes; a stored 96 reads back as an int, 87.5 as a Decimal."""
    return (
        plain(Decimal(value))
        if isinstance(value, (int, Decimal)) and not isinstance(value, bool)
        else value
    )


def _author(user_id: int) -> str:
    """A user's name, asked of the database once per request however many rows name them."""
    names = g.setdefault("author_names", {})
    if user_id not in names:
        names[user_id] = ops.author_name(ctx(), user_id)
    return names[user_id]


def _submission(row, unit_code: str) -> dict:
    return {
        "unit": unit_code,
        "scheme": row.scheme_id,
        "version": row.version,
        "role": row.role,
        "author": _author(row.author_id),
        "created_at": row.created_at,
        "facts": {k: _exact(v) for k, v in row.facts.items()},
        "evidence": row.evidence,
        "reason": row.reason,
        "reasons": row.reasons or {},
    }


def _score(row, unit_code: str) -> dict:
    # the exact total is the trace's (the column is for querying; databases pad or round it)
    return {
        "id": row.id,
        "unit": unit_code,
        "scheme": row.scheme_id,
        "total": row.trace["total"],
        "grade": row.grade,
        "complete": row.complete,
        "rules_version": row.rules_version,
        "submission_version": row.submission_version,
        "engine_version": row.engine_version,
        "computed_by": _author(row.computed_by),
        "created_at": row.created_at,
        "round": row.round_id,
        "kind": row.kind,
        "kind_words": ops.SCORE_KINDS.get(row.kind) if row.kind else None,
        "trace": row.trace,
    }


@blp.route("/units")
@blp.response(200, UnitOut(many=True))
@blp.errors(401)
def list_units():
    """被考核单位（单位填报人只看到本单位）。"""
    return ops.list_units(ctx(), actor())


@blp.route("/units", methods=["POST"])
@blp.arguments(UnitIn)
@blp.errors(400, 401, 403, 409, 413)
@blp.response(201, UnitOut)
def create_unit(body):
    """新增被考核单位（管理员）。"""
    return ops.create_unit(ctx(), actor(), **body)


@blp.route("/units/<code>")
@blp.response(200, UnitOut)
@blp.errors(401, 403, 404)
def get_unit(code):
    return ops.read_unit(ctx(), actor(), code)


@blp.route("/units/<code>/schemes/<scheme_id>/submissions")
@blp.response(200, SubmissionOut(many=True))
@blp.errors(401, 403, 404)
def list_submissions(code, scheme_id):
    """某单位某细则的全部提交，按版本排列（谁、何时、以何身份、理由）。"""
    rows = ops.history(ctx(), actor(), code, scheme_id)
    return [_submission(r, code) for r in rows]


@blp.route("/units/<code>/schemes/<scheme_id>/submissions", methods=["POST"])
@blp.arguments(SubmissionIn)
@blp.errors(400, 401, 403, 404, 409, 413, 423, 428)
@blp.response(201, SubmissionOut)
@blp.doc(
    parameters=[
        {
            "in": "header",
            "name": "If-Match",
            "schema": {"type": "string"},
            "description": '当前版本的 ETag（如 "3"）；已有提交时必填',
        }
    ]
)
def submit(body, code, scheme_id):
    """提交一版事实（自评或评审）。只追加不覆盖；并发修改时后到者得到 409。"""
    row = ops.submit(
        ctx(),
        actor(),
        code,
        scheme_id,
        body["role"],
        body["facts"],
        body["evidence"],
        body["reason"],
        request.headers.get("If-Match"),
        body["reasons"],
    )
    return _submission(row, code), 201, {"ETag": ops.etag(row.version)}


@blp.route("/units/<code>/schemes/<scheme_id>/submissions/latest")
@blp.response(200, SubmissionOut)
@blp.errors(401, 403, 404)
def latest_submission(code, scheme_id):
    row = ops.latest_submission(ctx(), actor(), code, scheme_id)
    return _submission(row, code), 200, {"ETag": ops.etag(row.version)}


# a version beyond the databases' INTEGER cannot exist: 404, not a database error (500)
@blp.route("/units/<code>/schemes/<scheme_id>/submissions/<int(max=2147483647):version>")
@blp.response(200, SubmissionOut)
@blp.errors(401, 403, 404)
def get_submission(code, scheme_id, version):
    row = ops.get_submission(ctx(), actor(), code, scheme_id, version)
    return _submission(row, code), 200, {"ETag": ops.etag(version)}


@blp.route("/units/<code>/schemes/<scheme_id>/compare")
@blp.arguments(CompareArgs, location="query")
@blp.errors(401, 403, 404)
@blp.response(200, CompareOut)
def compare(args, code, scheme_id):
    """比较任意两版提交的事实。"""
    out = ops.compare(ctx(), actor(), code, scheme_id, args["a"], args["b"])
    out["changes"] = [
        dict(c, **{"from": _exact(c["from"]), "to": _exact(c["to"])}) for c in out["changes"]
    ]
    return out


@blp.route("/units/<code>/schemes/<scheme_id>/scores", methods=["POST"])
@blp.arguments(ScoreRequest)
@blp.errors(400, 401, 403, 404, 409, 413, 422, 503)
@blp.response(201, ScoreOut)
@blp.alt_response(201, **TEXT_DOC)
def compute(body, code, scheme_id):
    """在这套细则当前的考核轮次中，按本轮的规则版本评分并保存：分数、完整轨迹、规则版本、提交版本、
    引擎版本。正式得分（official）由评审人或管理员按已评审版本计算，是排名所用的分数；其余为预览
    （preview），不参与排名。"""
    row = ops.compute_score(
        ctx(), actor(), code, scheme_id, body.get("submission_version"), body.get("kind")
    )
    return text_response(render_data(row.trace), 201) if wants_text() else _score(row, code)


@blp.route("/units/<code>/schemes/<scheme_id>/scores")
@blp.response(200, ScoreOut(many=True))
@blp.errors(401, 403, 404)
def list_scores(code, scheme_id):
    return [_score(r, code) for r in ops.list_scores(ctx(), actor(), code, scheme_id)]


# an id beyond the databases' INTEGER is no score (404), not a database error (500)
@blp.route("/scores/<int(max=2147483647):score_id>")
@blp.response(200, ScoreOut)
@blp.errors(401, 403, 404)
@blp.alt_response(200, **TEXT_DOC)
def get_score(score_id):
    """一个已保存的评分及其完整轨迹；`Accept: text/plain` 则为可读文字。"""
    row, unit = ops.get_score(ctx(), actor(), score_id)
    if wants_text():
        return text_response(render_data(row.trace))
    # where each fact came from, derived on read (the stored trace and its hash are untouched)
    from .audit import exact_sources

    return dict(
        _score(row, unit.code), provenance=exact_sources(provenance.of_score(ctx(), row, unit))
    )


@blp.route("/scores/<int(max=2147483647):score_id>/replay", methods=["POST"])
@blp.response(200, ReplayOut)
@blp.errors(401, 403, 404, 503)
def replay(score_id):
    """按评分当时的规则版本重算，核对是否完全一致：“已复现”，或哪些条款的得分、状态、说明不同，
    数值和原因（事实不同、评审组打分不同、计算引擎不同，或同一规则版本和事实下计分程序的结果不同）。
    不改动任何数据，作为一次读取记入操作日志。"""
    return audit.replay_score(ctx(), actor(), score_id)
