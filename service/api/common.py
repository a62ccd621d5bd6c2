"""What every view needs: the context and the caller."""

from __future__ import annotations

import json

import flask_smorest
from flask import Response, current_app, g, request
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

from schemas import Error
from service import jsonio
from service.access import Actor, actor_for_token, deny_anonymous
from service.exceptions import Invalid
from service.operations import Context


def ctx() -> Context:
    return current_app.extensions["scoring"]


def client_address() -> str:
    """The client's address as the nearest trusted proxy saw it (SCORING_PROXY_HOPS)."""
    return request.remote_addr or ""


def actor() -> Actor | None:
    """The caller, from ``Authorization: Bearer <token>``; None if absent or unknown."""
    if "actor" not in g:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        g.actor = actor_for_token(ctx().db, token) if token else None
    return g.actor


class ExactJSONParser(FlaskParser):
    """Request bodies: numbers read as exact decimals (not through a float, which would round
    1.99999999999999999 to 2 before the 15-digit check sees it), and a body that cannot be
    read (bad UTF-8, nested thousands deep, an integer of thousands of digits) is a 400."""

    def _raw_load_json(self, req):
        if not is_json_request(req):
            return core.missing
        try:
            # a chunked body over the limit was refused whole before (service.errors)
            return jsonio.loads(req.get_data(cache=True).decode("utf-8"))
        except jsonio.DuplicateKey as err:
            raise Invalid(
                "duplicate_key",
                f"请求体中的键“{err.key}”出现了不止一次，无法确定取哪一个值",
                {err.key: ["同一对象中重复的键"]},
            ) from None
        except json.JSONDecodeError:
            raise
        except (ValueError, RecursionError) as err:
            raise json.JSONDecodeError(
                f"unreadable JSON body ({type(err).__name__})", " ", 0
            ) from None


#: what each error status means on this API, for the OpenAPI document
ERROR_DOCS = {
    400: "请求体不是可读的 JSON（无法解析、编码错误或嵌套过深）",
    401: "未登录或令牌无效（Authorization: Bearer <令牌>）",
    403: "没有权限（单位填报人只能访问本单位）",
    404: "没有找到（单位、细则、提交或评分不存在）",
    409: "与现有数据冲突：重复的单位，提交所基于的版本已不是最新（ETag 为当前版本），"
    "或还没有可评分的提交；考核流程中当前状态不允许这一步（message 说明单位所处状态及由谁推进）",
    413: "请求体过大",
    422: "内容有误：fields 逐项说明",
    423: "截止时间已过，该阶段不再接受修改（message 与 fields 指明是哪个截止时间）",
    428: "已有提交时修改须带 If-Match 头",
    429: "尝试次数过多，请按 Retry-After 等待后再试",
    503: "评分引擎或规则暂时不可用（incident 为服务端事件编号），可稍后重试",
}


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = ExactJSONParser()

    def __init__(self, *args, public: tuple = (), **kwargs):
        """``public``: the views anybody may call; every other one needs a valid token."""
        super().__init__(*args, **kwargs)
        self.public = {f"{self.name}.{view}" for view in public}
        self.before_request(self._require_sign_in)

    def errors(self, *statuses: int):
        """Document the error answers a view really gives, each in the one error shape (every
        status a caller should handle is named, not left to a catch-all "default")."""

        def decorate(view):
            for status in sorted(statuses, reverse=True):
                view = self.alt_response(status, schema=Error, description=ERROR_DOCS[status])(view)
            return view

        return decorate

    def _require_sign_in(self):
        # before the body is read: a caller who is not signed in learns nothing from a 422
        # about the body of a call they may not make; the journal names the request itself, once
        # per client and window, the rest only counted (anonymous traffic cannot grow the journal
        # by a row per request: access.count_anonymous)
        if request.endpoint not in self.public and actor() is None:
            deny_anonymous(
                ctx().db,
                client_address(),
                f"{request.method} {request.path}",
                ctx().sign_in.denial_window_seconds,
            )


#: the second representation of an explained score: the same trace as text, for people (curl)
TEXT_DOC = {
    "schema": {"type": "string"},
    "content_type": "text/plain",
    "success": True,
    "description": "JSON：结构化的计分轨迹；text/plain（请求头 Accept: text/plain）：同一轨迹的可读中文文字",
}


def wants_text() -> bool:
    """The caller asked for the text of a score (``Accept: text/plain``) rather than its JSON."""
    return (
        request.accept_mimetypes.best_match(
            ["application/json", "text/plain"], default="application/json"
        )
        == "text/plain"
    )


def text_response(text: str, status: int = 200, headers: dict | None = None) -> Response:
    return Response(text + "\n", status=status, headers=headers, mimetype="text/plain")
