"""Sign-in, rules (validate, reload, versions) and the journal."""
from __future__ import annotations

from sqlalchemy import select
from werkzeug.security import check_password_hash

from schemas import (JournalOut, ReloadOut, RulesValidateIn, RulesValidateOut, RuleVersionOut, TokenRequest,
                     TokenResponse)
from service import operations as ops
from service.access import check, new_token
from service.db import JournalEntry, Unit, User
from service.errors import ApiError

from .common import Blueprint, actor, ctx

blp = Blueprint("admin", __name__, url_prefix="/api", description="登录、规则管理与操作日志")


@blp.route("/auth/token", methods=["POST"])
@blp.arguments(TokenRequest)
@blp.response(201, TokenResponse)
def token(body):
    """用户名和密码换取 API 令牌。"""
    db = ctx().db
    with db.transaction() as s:
        user = s.scalar(select(User).where(User.username == body["username"], User.active.is_(True)))
        unit = s.get(Unit, user.unit_id) if user and user.unit_id else None
    if user is None or not user.password_hash or not check_password_hash(user.password_hash, body["password"]):
        raise ApiError(401, "bad_credentials", "用户名或密码不对", {"password": ["用户名或密码不对"]})
    return {"token": new_token(db, user.id, "sign-in"), "role": user.role, "unit": unit.code if unit else None}


@blp.route("/rules/validate", methods=["POST"])
@blp.arguments(RulesValidateIn)
@blp.response(200, RulesValidateOut)
def validate(body):
    """检查候选的规则文件（一个细则文件夹）而不加载：错误带文件、行、列。"""
    return ops.validate_rules(ctx(), actor(), body["files"])


@blp.route("/rules/reload", methods=["POST"])
@blp.response(200, ReloadOut)
def reload():
    """重新加载规则目录，全有或全无：有错误时当前规则继续使用，并说明原因。"""
    return ops.reload_rules(ctx(), actor())


@blp.route("/rules/versions")
@blp.response(200, RuleVersionOut(many=True))
def versions():
    """加载过的全部规则版本（旧版本仍可用于重算）。"""
    return ops.rule_versions(ctx(), actor())


@blp.route("/journal")
@blp.response(200, JournalOut(many=True))
def journal():
    """操作日志：每一次写入与每一次拒绝（最近500条）。"""
    check(ctx().db, actor(), "journal.read", "journal")
    with ctx().db.transaction() as s:
        return list(s.scalars(select(JournalEntry).order_by(JournalEntry.id.desc()).limit(500)))
