"""What every view needs: the context and the caller."""
from __future__ import annotations

from typing import Optional

from flask import current_app, g, request

from service.access import Actor, actor_for_token
from service.operations import Context


def ctx() -> Context:
    return current_app.extensions["scoring"]


def actor() -> Optional[Actor]:
    """The caller, from ``Authorization: Bearer <token>``; None if absent or unknown."""
    if "actor" not in g:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        g.actor = actor_for_token(ctx().db, token) if token else None
    return g.actor
