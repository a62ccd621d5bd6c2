"""Sign-in, rules (validate, reload, versions) and the journal."""

from __future__ import annotations

from schemas import (
    JournalOut,
    ReloadOut,
    RulesValidateIn,
    RulesValidateOut,
    RuleVersionOut,
    TokenRequest,
    TokenResponse,
)
from service import operations as ops

from .common import Blueprint, actor, ctx

blp = Blueprint(
    "admin", __name__, url_prefix="/api", description="登录、规则管理与操作日志", public=("token",)
)


@blp.route("/auth/token", methods=["POST"])
@blp.arguments(TokenRequest)
@blp.errors(400, 401, 413, 429)
@blp.response(201, TokenResponse)
def token(body):
    """用户名和密码换取 API 令牌。"""
    return ops.issue_token(ctx(), body["username"], body["password"])


@blp.route("/rules/validate", methods=["POST"])
@blp.arguments(RulesValidateIn)
@blp.errors(400, 401, 403, 413)
@blp.response(200, RulesValidateOut)
def validate(body):
    """检查候选的规则文件（一个细则文件夹）而不加载：错误带文件、行、列。"""
    return ops.validate_rules(ctx(), actor(), body["files"])


@blp.route("/rules/reload", methods=["POST"])
@blp.response(200, ReloadOut)
@blp.errors(401, 403, 422, 503)
def reload():
    """重新加载规则目录，全有或全无：有错误时当前规则继续使用，并说明原因。"""
    return ops.reload_rules(ctx(), actor())


@blp.route("/rules/versions")
@blp.response(200, RuleVersionOut(many=True))
@blp.errors(401, 403)
def versions():
    """加载过的全部规则版本（旧版本仍可用于重算）。"""
    return ops.rule_versions(ctx(), actor())


@blp.route("/journal")
@blp.response(200, JournalOut(many=True))
@blp.errors(401, 403)
def journal():
    """操作日志：每一次写入与每一次拒绝（最近500条）。"""
    return ops.read_journal(ctx(), actor())
