"""Sign-in, rules (validate, reload, versions) and the journal."""

from __future__ import annotations

from flask import Response, request, url_for

from schemas import (
    HistoryCheckOut,
    JournalArgs,
    JournalOut,
    ReloadOut,
    RulesCompareArgs,
    RulesCompareOut,
    RulesValidateIn,
    RulesValidateOut,
    RuleVersionOut,
    TokenRequest,
    TokenResponse,
)
from schemas.jobs import ImpactIn, ImpactOut, JobDetailOut
from schemas.mapping import DraftMappingIn, DraftMappingOut
from service import impact, jobs, mapping
from service import operations as ops

from .common import Blueprint, actor, client_address, ctx

blp = Blueprint(
    "admin", __name__, url_prefix="/api", description="登录、规则管理与操作日志", public=("token",)
)


@blp.route("/auth/token", methods=["POST"])
@blp.arguments(TokenRequest)
@blp.errors(400, 401, 413, 429)
@blp.response(201, TokenResponse)
def token(body):
    """用户名和密码换取 API 令牌（有效期见 SCORING_TOKEN_DAYS）；每次登录都新发一个，可列出、可撤销。
    登录失败过多时返回 429，Retry-After 说明多少秒后可再试。"""
    return ops.issue_token(
        ctx(), body["username"], body["password"], client_address(), body.get("label", "")
    )


@blp.route("/rules/validate", methods=["POST"])
@blp.arguments(RulesValidateIn)
@blp.errors(400, 401, 403, 413)
@blp.response(200, RulesValidateOut)
def validate(body):
    """检查候选的规则文件（一个细则文件夹）而不加载：先检查文件（错误带文件、行、列），再运行其中
    全部测试用例（未通过的用例带文件、行和期望与实得的差别）。"""
    return ops.validate_rules(ctx(), actor(), body["files"])


@blp.route("/rules/reload", methods=["POST"])
@blp.response(200, ReloadOut)
@blp.errors(401, 403, 422, 503)
def reload():
    """重新加载规则目录，全有或全无：有错误或测试用例未通过时（422 invalid_rules 或
    failing_tests）当前规则继续使用，并说明原因。"""
    return ops.reload_rules(ctx(), actor())


@blp.route("/rules/versions")
@blp.response(200, RuleVersionOut(many=True))
@blp.errors(401, 403)
def versions():
    """加载过的全部规则版本（旧版本仍可用于重算）。"""
    return ops.rule_versions(ctx(), actor())


@blp.route("/rules/compare")
@blp.arguments(RulesCompareArgs, location="query")
@blp.response(200, RulesCompareOut)
@blp.errors(401, 403, 404, 422)
def compare(args):
    """比较两个规则版本（任意两个存档版本）：按条款列出的改动，每条一句中文说明和确切的前后值。"""
    return ops.compare_rule_versions(ctx(), actor(), args["old"], args["new"])


@blp.route("/rules/impact", methods=["POST"])
@blp.arguments(ImpactIn)
@blp.errors(400, 401, 403, 409, 413, 422)
@blp.response(201, JobDetailOut)
def start_impact(body):
    """影响预览：按原版本和新版本为最新考核轮次（或 year 年度的轮次）全部已评审单位评分并比较。

    给出 from 和 to（及可选的 mapping 事实对应），或给出 draft（规则草案编号：草案当前的文件存档为
    一个版本，与该细则在用的版本或草案复制自的版本比较，使用草案保存的事实对应）。新版本读取而
    已评审事实中没有、又没有对应的事实按缺失处理，不按0计。作为后台任务运行，立即返回任务
    （params 中记有所用的版本和事实对应）；结果见 GET /api/rules/impact/{job_id}，
    工作簿见 GET /api/rules/impact/{job_id}/workbook。"""
    if body.get("draft") is not None:
        params = impact.draft_params(ctx(), actor(), body["draft"], body.get("year"))
    else:
        params = {
            "from": body["from_"],
            "to": body["to"],
            "year": body.get("year"),
            "mapping": body.get("mapping"),
        }
    return jobs.start_job(ctx(), actor(), impact.KIND, params)


@blp.route("/rules/impact/<int(max=2147483647):job_id>")
@blp.response(200, ImpactOut)
@blp.errors(401, 403, 404)
def impact_result(job_id):
    """影响预览的结果：每个单位总分、名次、等级的前后对比，得分有变化的条款及两个版本的计分说明，
    新版本读取而事实中没有的事实（按缺失处理，不按0计）。任务未结束时为已完成部分。"""
    return impact.impact_result(ctx(), actor(), job_id)


@blp.route("/rules/impact/<int(max=2147483647):job_id>/workbook")
@blp.errors(401, 403, 404)
@blp.response(
    200,
    {"type": "string", "format": "binary"},
    content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    description="工作簿：“单位”表（前后总分、名次、等级）和“条款变化”表",
)
def impact_workbook(job_id):
    """影响预览的工作簿下载（.xlsx）。"""
    data = impact.workbook(impact.impact_result(ctx(), actor(), job_id))
    return Response(
        data,
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="impact-{job_id}.xlsx"'},
    )


@blp.route("/rules/drafts/<int(max=2147483647):draft_id>/mapping")
@blp.response(200, DraftMappingOut)
@blp.errors(401, 403, 404, 409)
def draft_mapping(draft_id):
    """规则草案的事实对应：草案读取而原版本（该细则在用的版本，或草案复制自的版本）没有的事实，
    每个事实可改名对应的原事实和已保存的对应，以及草案不再读取的原事实。"""
    return mapping.mapping_view(ctx(), actor(), draft_id)


@blp.route("/rules/drafts/<int(max=2147483647):draft_id>/mapping", methods=["PUT"])
@blp.arguments(DraftMappingIn)
@blp.response(200, DraftMappingOut)
@blp.errors(400, 401, 403, 404, 409, 413, 422)
def set_draft_mapping(body, draft_id):
    """保存规则草案的事实对应（整体替换）：每个新事实或来自一个类型相容的原事实（改名），或取
    一个固定值并写明理由（按新事实的类型和范围检查）。错误逐项指明 mapping.<事实名>；
    lock 不是最新时返回 409。影响预览（POST /api/rules/impact，{"draft": 编号}）使用它。"""
    mapping.set_mapping(ctx(), actor(), draft_id, body["lock"], body["mapping"])
    return mapping.mapping_view(ctx(), actor(), draft_id)


NEXT_PAGE_HEADERS = {
    "X-Next-Cursor": {
        "description": "下一页（更早的记录）的位置，作为 cursor 参数传回；最后一页没有此头",
        "schema": {"type": "string"},
    },
    "Link": {"description": '下一页的完整地址（rel="next"）', "schema": {"type": "string"}},
}


@blp.route("/journal")
@blp.arguments(JournalArgs, location="query")
@blp.response(200, JournalOut(many=True), headers=NEXT_PAGE_HEADERS)
@blp.errors(401, 403, 422)
def journal(args):
    """操作日志：每一次写入、每一次拒绝、其他角色每一次读取单位数据，最新的在前。

    按 id 键集翻页：响应头 X-Next-Cursor 给出下一页的位置（cursor），可按操作人、角色、单位、
    细则、动作、结果和时间段（since 含、until 不含）筛选。"""
    filters = {name: args.pop(name) for name in ops.JOURNAL_FILTERS}
    page = ops.read_journal(ctx(), actor(), filters=filters, **args)
    headers = {}
    if page.next_cursor is not None:
        query = {k: v for k, v in request.args.items() if k != "cursor"}
        link = url_for("admin.journal", **query, cursor=page.next_cursor)
        headers = {"X-Next-Cursor": page.next_cursor, "Link": f'<{link}>; rel="next"'}
    return page.entries, 200, headers


@blp.route("/journal/verify")
@blp.response(200, HistoryCheckOut)
@blp.errors(401, 403)
def verify_history():
    """核对历史链（事实提交、评分、操作日志）：指出第一条被改动、被删除或被插入的记录。"""
    return ops.verify_history(ctx(), actor())
