"""API tokens of the signed-in user (listed, revoked) and accounts disabled or enabled."""

from __future__ import annotations

from schemas import TokenOut, UserStateOut
from service import access

from .common import Blueprint, actor, ctx

blp = Blueprint("auth", __name__, url_prefix="/api", description="令牌与账号")


@blp.route("/auth/tokens")
@blp.response(200, TokenOut(many=True))
@blp.errors(401)
def tokens():
    """本人仍有效的 API 令牌：名称、创建时间、最近使用时间、到期时间（不含令牌本身）。"""
    return access.list_tokens(ctx().db, actor())


@blp.route("/auth/tokens/<int(max=2147483647):token_id>", methods=["DELETE"])
@blp.response(204)
@blp.errors(401, 403, 404)
def revoke(token_id):
    """撤销一个令牌：本人的；管理员可撤销任何人的。撤销后立即失效。"""
    access.revoke_token(ctx().db, actor(), token_id)


@blp.route("/users/<username>/disable", methods=["POST"])
@blp.response(200, UserStateOut)
@blp.errors(401, 403, 404)
def disable(username):
    """停用账号（仅管理员）：其全部令牌立即撤销、网页会话立即结束。"""
    return access.set_user_enabled(ctx().db, actor(), username, enabled=False)


@blp.route("/users/<username>/enable", methods=["POST"])
@blp.response(200, UserStateOut)
@blp.errors(401, 403, 404)
def enable(username):
    """重新启用账号（仅管理员）：停用前的令牌和会话不会恢复，须重新登录。"""
    return access.set_user_enabled(ctx().db, actor(), username, enabled=True)
