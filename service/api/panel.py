"""Several reviewers scoring a clause (专家评审): each reviewer's own mark, read blind."""

from __future__ import annotations

from flask.views import MethodView

from schemas import MarkIn, MarkOut, MarksOut
from service import panel

from .common import Blueprint, actor, ctx

blp = Blueprint("panel", __name__, url_prefix="/api", description="评审组打分（专家评审）")

_MARKS = "/rounds/<int(max=2147483647):round_id>/units/<code>/clauses/<clause>/marks"


_ENTER = """评审人录入（或在完成评审前修改）自己对本单位这一条款的打分和理由；条款须设评审组（panel），
单位须已提交自评且尚未完成评审，评审截止时间之前。评审组人数已满时 409。"""


# one route for every method: with separate routes on the same path, a round id beyond the
# converter's range matched none and werkzeug answered 405 instead of 404
@blp.route(_MARKS)
class Marks(MethodView):
    @blp.errors(401, 403, 404, 409)
    @blp.response(200, MarksOut)
    def get(self, round_id, code, clause):
        """本条款的评审打分。评审人录入自己的打分之前只看到自己的（和已收到几份）；管理员、审计人员看到
        全部；单位填报人在本单位得分公示后才看到。"""
        return panel.read_marks(ctx(), actor(), round_id, code, clause)

    @blp.arguments(MarkIn)
    @blp.errors(400, 401, 403, 404, 409, 413, 422, 423)
    @blp.response(200, MarkOut)
    @blp.doc(description=_ENTER)
    def put(self, body, round_id, code, clause):
        return panel.enter_mark(
            ctx(), actor(), round_id, code, clause, body["points"], body["reason"]
        )

    @blp.arguments(MarkIn)
    @blp.errors(400, 401, 403, 404, 409, 413, 422, 423)
    @blp.response(200, MarkOut)
    @blp.doc(description=_ENTER)
    def post(self, body, round_id, code, clause):
        return panel.enter_mark(
            ctx(), actor(), round_id, code, clause, body["points"], body["reason"]
        )
