"""Several reviewers scoring a clause (专家评审): each reviewer's own mark, read blind."""

from __future__ import annotations

from schemas import MarkIn, MarkOut, MarksOut
from service import panel

from .common import Blueprint, actor, ctx

blp = Blueprint("panel", __name__, url_prefix="/api", description="评审组打分（专家评审）")

_MARKS = "/rounds/<int(max=2147483647):round_id>/units/<code>/clauses/<clause>/marks"


@blp.route(_MARKS, methods=["PUT", "POST"])
@blp.arguments(MarkIn)
@blp.errors(400, 401, 403, 404, 409, 413, 422, 423)
@blp.response(200, MarkOut)
def enter_mark(body, round_id, code, clause):
    """评审人录入（或在完成评审前修改）自己对本单位这一条款的打分和理由；条款须设评审组（panel），
    单位须已提交自评且尚未完成评审，评审截止时间之前。评审组人数已满时 409。"""
    return panel.enter_mark(ctx(), actor(), round_id, code, clause, body["points"], body["reason"])


@blp.route(_MARKS)
@blp.errors(401, 403, 404, 409)
@blp.response(200, MarksOut)
def read_marks(round_id, code, clause):
    """本条款的评审打分。评审人录入自己的打分之前只看到自己的（和已收到几份）；管理员、审计人员看到全部；
    单位填报人在本单位得分公示后才看到。"""
    return panel.read_marks(ctx(), actor(), round_id, code, clause)
