"""考核管理网页 (the admin web page): server-rendered Chinese pages under ``/admin``.

``init_app(app)`` is all ``service.app.create_app`` calls.  It sets:

- sessions in the database (``admin.sessions``): the cookie holds a random id only,
  HttpOnly, SameSite=Lax, path ``/admin``, Secure when ``SCORING_COOKIE_SECURE=1``
  (set it in production behind HTTPS); renewed at sign-in, destroyed at sign-out,
  ended after ``SCORING_SESSION_HOURS`` (default 8) idle hours and in any case
  ``SCORING_SESSION_MAX_HOURS`` (default 12) after sign-in; nothing is stored for
  someone who only reads the sign-in page;
- CSRF tokens (Flask-WTF ``CSRFProtect``) checked on every form of these pages
  and never on the JSON API, which keeps its bearer tokens;
- the blueprint (``admin.views``): sign-in, units, fact entry, explained scores,
  history, ranking, rules and Excel downloads; ``admin.roundpages`` adds the review
  cycle's pages to it (the reviewer's steps on a unit, the rounds and their status
  boards), ``admin.appeal_pages`` the appeals, ``admin.panel_pages`` the panel's marks, and ``admin.standing`` says where a unit is in its round on every page.

The pages call ``service.operations`` for everything they do, so access
control, validation and the journal are the API's own.
"""

from __future__ import annotations

from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()


def init_app(app) -> None:
    from . import (
        appeal_pages,  # noqa: F401  (the appeal page's views, on the same blueprint)
        impact_pages,  # noqa: F401  (a draft's impact preview and fact mapping, same blueprint)
        panel_pages,  # noqa: F401  (the panel's marks: several reviewers, on the same blueprint)
        roundpages,  # noqa: F401  (its routes are the blueprint's)
    )
    from .sessions import DatabaseSessionInterface
    from .views import bp

    settings = app.config["SCORING_SETTINGS"]
    app.config.update(
        SESSION_COOKIE_NAME="scoring_admin",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.cookie_secure,
        ADMIN_SESSION_HOURS=settings.session_idle_hours,
        ADMIN_SESSION_MAX_HOURS=settings.session_hours,
    )
    # CSRF: checked by the admin blueprint only (the JSON API is exempt by construction);
    # a token lives as long as the server-side session it belongs to
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    app.session_interface = DatabaseSessionInterface(cookie_path=bp.url_prefix)
    csrf.init_app(app)
    app.register_blueprint(bp)
