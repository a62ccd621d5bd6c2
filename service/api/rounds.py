"""Assessment rounds (考核轮次): open one, move a deadline, each unit's state and the steps of the
review cycle (退回, 完成评审, 重新打开评审), publication (发布公示) and finalisation (定稿)."""

from __future__ import annotations

from schemas import DeadlineIn, PreviousYearOut, ReasonIn, RoundIn, RoundOut, RoundUnitOut
from service import rounds
from service.domain.cycle import DEADLINES, RoundDates

from .common import Blueprint, actor, ctx

blp = Blueprint("rounds", __name__, url_prefix="/api", description="考核轮次与评审流程")

_ID = "<int(max=2147483647):round_id>"


@blp.route("/rounds")
@blp.errors(401)
@blp.response(200, RoundOut(many=True))
def list_rounds():
    """所有考核轮次，新的在前。"""
    return rounds.list_rounds(ctx(), actor())


@blp.route("/rounds", methods=["POST"])
@blp.arguments(RoundIn)
@blp.errors(400, 401, 403, 404, 409, 413, 422)
@blp.response(201, RoundOut)
def open_round(body):
    """管理员为一套细则的当前版本开启某一年度的考核轮次，并给出各阶段的截止时间（该版本被固定，
    本轮所有得分都按它计算）。"""
    dates = RoundDates(**{name: body[name] for name in DEADLINES})
    return rounds.open_round(ctx(), actor(), body["scheme"], body["year"], body["title"], dates)


@blp.route(f"/rounds/{_ID}")
@blp.errors(401, 403, 404)
@blp.response(200, RoundOut)
def get_round(round_id):
    return rounds.get_round(ctx(), actor(), round_id)


@blp.route(f"/rounds/{_ID}/deadlines", methods=["POST"])
@blp.arguments(DeadlineIn)
@blp.errors(400, 401, 403, 404, 409, 413, 422)
@blp.response(200, RoundOut)
def move_deadline(body, round_id):
    """管理员延长（或调整）一个截止时间，须写明理由；记入日志和截止时间变更记录。"""
    return rounds.extend_deadline(
        ctx(), actor(), round_id, body["deadline"], body["new"], body["reason"]
    )


@blp.route(f"/rounds/{_ID}/units")
@blp.errors(401, 403, 404)
@blp.response(200, RoundUnitOut(many=True))
def board(round_id):
    """本轮每个单位及其状态（单位填报人只看到本单位）。"""
    _rnd, rows = rounds.board(ctx(), actor(), round_id)
    return [row.as_dict() for row in rows]


@blp.route(f"/rounds/{_ID}/units/<code>")
@blp.errors(401, 403, 404)
@blp.response(200, RoundUnitOut)
def unit_state(round_id, code):
    return rounds.unit_place(ctx(), actor(), round_id, code)


@blp.route(f"/rounds/{_ID}/units/<code>/previous-year")
@blp.errors(401, 403, 404)
@blp.response(200, PreviousYearOut)
def previous_year(round_id, code):
    """与上年度相比：本单位上一年度考核轮次已评审的事实中，本轮细则用作“上年度值”的那些
    （previous_year），提交时由系统带入，不必再填。"""
    return {"facts": rounds.previous_year(ctx(), actor(), round_id, code)}


def _place(round_id, code):
    return rounds.unit_place(ctx(), actor(), round_id, code)


@blp.route(f"/rounds/{_ID}/units/<code>/return", methods=["POST"])
@blp.arguments(ReasonIn)
@blp.errors(400, 401, 403, 404, 409, 413, 422, 423)
@blp.response(200, RoundUnitOut)
def return_submission(body, round_id, code):
    """评审人退回单位的自评（写明理由，单位可见）；单位可再修改事实并重新提交。"""
    rounds.return_submission(ctx(), actor(), round_id, code, body["reason"])
    return _place(round_id, code)


@blp.route(f"/rounds/{_ID}/units/<code>/review-complete", methods=["POST"])
@blp.errors(401, 403, 404, 409, 423)
@blp.response(200, RoundUnitOut)
def complete_review(round_id, code):
    """评审人完成评审：单位最新一版事实成为已评审版本，正式得分只按它计算。"""
    rounds.complete_review(ctx(), actor(), round_id, code)
    return _place(round_id, code)


@blp.route(f"/rounds/{_ID}/units/<code>/reopen", methods=["POST"])
@blp.arguments(ReasonIn)
@blp.errors(400, 401, 403, 404, 409, 413, 422, 423)
@blp.response(200, RoundUnitOut)
def reopen_review(body, round_id, code):
    """评审截止前重新打开评审（写明理由）；已算出的正式得分作废，须重新评审、计算。"""
    rounds.reopen_review(ctx(), actor(), round_id, code, body["reason"])
    return _place(round_id, code)


@blp.route(f"/rounds/{_ID}/publish", methods=["POST"])
@blp.errors(401, 403, 404, 409)
@blp.response(200, RoundOut)
def publish(round_id):
    """管理员发布公示：已评审并有正式得分的单位进入公示；申诉答复后再次发布即重新公布排名。"""
    return rounds.publish_round(ctx(), actor(), round_id)


@blp.route(f"/rounds/{_ID}/finalize", methods=["POST"])
@blp.errors(401, 403, 404, 409)
@blp.response(200, RoundOut)
def finalize(round_id):
    """申诉期结束、申诉都已答复后，管理员定稿。"""
    return rounds.finalize_round(ctx(), actor(), round_id)
