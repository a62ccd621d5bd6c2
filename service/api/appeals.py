"""Appeals (申诉): a unit appeals its published score clause by clause; a reviewer answers each
clause (维持 or 更正); the unit reads the answers."""

from __future__ import annotations

from flask.views import MethodView

from schemas import AnswerIn, AppealIn, AppealOut
from service import appeals

from .common import Blueprint, actor, ctx

blp = Blueprint("appeals", __name__, url_prefix="/api", description="申诉与复核")

_ROUND = "<int(max=2147483647):round_id>"
_APPEAL = "<int(max=2147483647):appeal_id>"


# one route for both methods: with a GET and a POST route on the same path, a round id beyond
# the converter's range matched neither and werkzeug answered 405 instead of 404
@blp.route(f"/rounds/{_ROUND}/units/<code>/appeals")
class Appeals(MethodView):
    @blp.errors(401, 403, 404)
    @blp.response(200, AppealOut(many=True))
    def get(self, round_id, code):
        """单位在本轮的申诉及逐条答复（单位填报人只能看本单位）。"""
        return appeals.list_appeals(ctx(), actor(), round_id, code)

    @blp.arguments(AppealIn)
    @blp.errors(400, 401, 403, 404, 409, 413, 422, 423)
    @blp.response(201, AppealOut)
    def post(self, body, round_id, code):
        """公示期内（申诉截止前）单位对已公示的正式得分逐条申诉：每个条款写明理由，可附佐证材料；
        单位进入“申诉中”。申诉截止后为 423（指明截止时间），单位不在“公示中”为 409，
        本轮细则没有的条款为 422（指明字段）。"""
        return appeals.file_appeal(ctx(), actor(), round_id, code, body["items"])


@blp.route(f"/appeals/{_APPEAL}/items/<clause>/answer", methods=["POST"])
@blp.arguments(AnswerIn)
@blp.errors(400, 401, 403, 404, 409, 413, 422)
@blp.response(200, AppealOut)
def answer(body, appeal_id, clause):
    """评审人逐条答复申诉：维持（写明理由），或更正（写明理由，给出本条款读取的事实改正后的值及
    每项理由）：更正生成新的已评审版本和正式得分，替换单位的正式得分。全部条款答复后单位为
    “已复核”，管理员重新发布公示。"""
    return appeals.answer_item(
        ctx(), actor(), appeal_id, clause, body["answer"], body["reason"], body["facts"],
        body["reasons"],
    )  # fmt: skip
