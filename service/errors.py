"""One JSON error shape for every error the service returns.

    {"error": {"status": 422, "code": "invalid_facts", "message": "...",
               "fields": {"facts.actual": ["..."]}, "incident": null}}

No stack trace ever reaches a client: unexpected errors are logged with an
incident id and answered with that id only.
"""

from __future__ import annotations

import logging
import uuid

from flask import jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from .exceptions import (
    Closed,
    Conflict,
    Forbidden,
    Inconsistent,
    Invalid,
    NotFound,
    PreconditionRequired,
    ServiceError,
    TooLarge,
    TooManyAttempts,
    Unauthenticated,
    Unavailable,
)

log = logging.getLogger(__name__)

MESSAGES = {
    400: "请求格式不对",
    401: "需要登录（请在 Authorization 头中提供令牌）",
    403: "没有权限",
    404: "没有找到",
    405: "不支持这个方法",
    409: "数据已被他人更新，请重新读取后再提交",
    413: "请求体过大",
    415: "请求体应为 JSON",
    422: "提交的内容有误",
    423: "已过截止时间，不能再修改",
    428: "修改已有数据时须带 If-Match 头",
    429: "尝试次数过多，请稍后再试",
    500: "服务内部错误",
    503: "评分引擎暂时不可用",
}


# The one place the service layer's exceptions become HTTP statuses (the admin pages read it too).
STATUS: dict[type[ServiceError], int] = {
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    Closed: 423,
    Invalid: 422,
    PreconditionRequired: 428,
    TooManyAttempts: 429,
    Inconsistent: 500,
    Unavailable: 503,
}


def status_of(err: ServiceError) -> int:
    for cls in type(err).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def headers_of(err: ServiceError) -> dict:
    headers = {}
    if isinstance(err, Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    if err.retry_after is not None:
        headers["Retry-After"] = str(err.retry_after)
    if err.current_version is not None:
        headers["ETag"] = err.current_version
    return headers


def error_response(status: int, code: str, message: str, fields=None, incident=None, headers=None):
    body = {
        "error": {
            "status": status,
            "code": code,
            "message": message,
            "fields": fields or {},
            "incident": incident,
        }
    }
    response = jsonify(body)
    response.status_code = status
    for k, v in (headers or {}).items():
        response.headers[k] = v
    return response


def register(app) -> None:
    @app.before_request
    def _whole_body_or_413():
        # a chunked body (no Content-Length) is cut at the size limit by Werkzeug without a word:
        # JSON cut short answered 400 instead of 413, and a form cut after its first fields would
        # still parse and submit some of the facts. Read it here (forms and JSON then read the
        # cached bytes) and refuse it whole; a body of exactly the limit is refused too, as the
        # cut cannot be told from the end
        limit = request.max_content_length
        if (
            request.content_length is None
            and limit is not None
            and _chunked()
            and len(request.get_data(cache=True)) >= limit
        ):
            raise RequestEntityTooLarge()

    @app.after_request
    def _api_headers(response):
        # every API answer: its type is what it says (no sniffing a text/plain score into HTML), and
        # nothing of it is cached on the way, tokens, scores and errors alike
        if request.path == "/api" or request.path.startswith("/api/"):
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(ServiceError)
    def _service_error(err: ServiceError):
        return error_response(
            status_of(err), err.code, err.message, err.fields, err.incident, headers_of(err)
        )

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        status = err.code or 500
        fields = {}
        data = getattr(err, "data", None) or {}
        messages = data.get("messages") if isinstance(data, dict) else None
        if messages:  # webargs/marshmallow validation: {"json": {"field": ["..."]}}
            for _location, per_field in messages.items():
                fields.update(_flatten(per_field))
        code = {422: "invalid_request"}.get(status, (err.name or "error").lower().replace(" ", "_"))
        # what the exception says beside its body: Allow on a 405, WWW-Authenticate on a 401
        headers = {k: v for k, v in err.get_headers() if k.lower() != "content-type"}
        return error_response(
            status, code, MESSAGES.get(status, err.description or "出错了"), fields, headers=headers
        )

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        incident = uuid.uuid4().hex[:12]
        log.exception("incident %s: unexpected error", incident)
        return error_response(
            500, "internal_error", f"{MESSAGES[500]}（事件编号 {incident}）", incident=incident
        )


def _chunked() -> bool:
    return "chunked" in request.headers.get("Transfer-Encoding", "").lower()


def _flatten(messages, prefix: str = "") -> dict:
    out = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    else:
        out[prefix or "_"] = messages if isinstance(messages, list) else [str(messages)]
    return out
