"""What every view needs: the context and the caller."""

from __future__ import annotations

import json
from decimal import Decimal

import flask_smorest
from flask import Response, current_app, g, request
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

from service.access import Actor, actor_for_token, deny_anonymous
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
            return json.loads(req.get_data(cache=True).decode("utf-8"), parse_float=Decimal)
        except json.JSONDecodeError:
            raise
        except (ValueError, RecursionError) as err:
            raise json.JSONDecodeError(
                f"unreadable JSON body ({type(err).__name__})", " ", 0
            ) from None


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = ExactJSONParser()

    def __init__(self, *args, public: tuple = (), **kwargs):
        """``public``: the views anybody may call; every other one needs a valid token."""
        super().__init__(*args, **kwargs)
        self.public = {f"{self.name}.{view}" for view in public}
        self.before_request(self._require_sign_in)

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
