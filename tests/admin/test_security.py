"""Sign-in, sessions and CSRF on the admin pages (Flask test client).

Sessions are rows of ``admin_sessions`` (any host serves any request); someone who only reads
the sign-in page stores nothing; a session ends after its idle time and after its absolute
lifetime; sign-in is throttled as the API's is.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import select, update

from service.db import AdminSession, JournalEntry, Submission, Unit, now

from .conftest import SCHEME, csrf_token, session_cookie, sign_in


def _session_files(app) -> set:
    """The stored sessions (their keys), whatever holds them."""
    with app.extensions["scoring"].db.transaction() as s:
        return set(s.scalars(select(AdminSession.id)))


def _row_of(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def test_pages_need_sign_in(client):
    r = client.get("/admin/units/gucun")
    assert r.status_code == 302 and r.headers["Location"].startswith(
        "/admin/login?next=/admin/units/gucun"
    )


def test_a_post_without_the_token_is_refused(app, client):  # writes: gucun / baoshan-2022-b1
    page = client.get("/admin/login")
    refused = client.post("/admin/login", data={"username": "reviewer", "password": "secret"})
    assert refused.status_code == 400 and "安全令牌" in refused.text
    assert client.get("/admin/").status_code == 302  # not signed in

    wrong = client.post(
        "/admin/login", data={"username": "reviewer", "password": "secret", "csrf_token": "x" * 40}
    )
    assert wrong.status_code == 400

    assert sign_in(client, "submitter").status_code == 302  # 顾村镇's own self-assessment
    form = {"action": "self", "base_version": "0", "f.org_leadership_score": "3"}
    r = client.post(f"/admin/units/gucun/schemes/{SCHEME}/facts", data=form)
    assert r.status_code == 400 and "安全令牌" in r.text
    with app.extensions["scoring"].db.transaction() as s:
        stored = (
            s.query(Submission)
            .join(Unit, Unit.id == Submission.unit_id)
            .filter(Unit.code == "gucun")
            .count()
        )
    assert stored == 0  # nothing was stored
    assert client.post("/admin/logout").status_code == 400  # sign-out is a form too
    assert client.get("/admin/units/gucun").status_code == 200  # still signed in

    token = csrf_token(client.get(f"/admin/units/gucun/schemes/{SCHEME}/facts").text)
    r = client.post(f"/admin/units/gucun/schemes/{SCHEME}/facts", data=dict(form, csrf_token=token))
    assert r.status_code == 302  # the same form with the token goes through
    assert page.status_code == 200


def test_the_json_api_is_exempt_from_csrf_and_sets_no_cookie(
    client,
):  # writes: bsip / baoshan-2022-b1
    r = client.post("/api/auth/token", json={"username": "admin", "password": "secret"})
    assert r.status_code == 201, r.json
    assert "Set-Cookie" not in r.headers
    token = r.json["token"]
    r = client.post(
        f"/api/units/bsip/schemes/{SCHEME}/submissions",
        headers={"Authorization": f"Bearer {token}"},
        json={"role": "self", "facts": {"org_leadership_score": 3}},
    )
    assert r.status_code == 201, r.json
    assert "Set-Cookie" not in r.headers


def test_the_session_is_renewed_at_sign_in(app, client):
    existing = _session_files(app)
    client.get("/admin/login")
    before = session_cookie(client).value
    assert _session_files(app) == existing  # reading the sign-in page stores nothing
    old_token = csrf_token(client.get("/admin/login").text)

    r = sign_in(client, "reviewer")
    assert r.status_code == 302 and r.headers["Location"] == "/admin/"
    after = session_cookie(client).value
    assert after != before
    assert _session_files(app) - existing == {_row_of(after)}  # one row, under the new id only

    # the id from before sign-in gives nothing: an attacker who planted it is not signed in
    other = app.test_client()
    other.set_cookie("scoring_admin", before, path="/admin")
    assert other.get("/admin/").status_code == 302
    # and the token of the old session is worthless in the new one
    assert client.post("/admin/logout", data={"csrf_token": old_token}).status_code == 400
    assert client.get("/admin/").status_code == 200


def test_cookie_flags(app, client):
    page = client.get("/admin/login")
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/admin" in cookie
    assert "Secure" not in cookie  # plain http on a developer machine
    app.config["SESSION_COOKIE_SECURE"] = True  # production: SCORING_COOKIE_SECURE=1
    try:
        fresh = app.test_client().get("/admin/login")
        assert "Secure" in fresh.headers["Set-Cookie"]
    finally:
        app.config["SESSION_COOKIE_SECURE"] = False


def test_sign_out_ends_the_session_on_the_server(app, client):
    existing = _session_files(app)
    sign_in(client, "auditor")
    cookie = session_cookie(client).value
    assert len(_session_files(app) - existing) == 1
    token = csrf_token(client.get("/admin/").text)
    r = client.post("/admin/logout", data={"csrf_token": token})
    assert r.status_code == 302 and "/admin/login" in r.headers["Location"]
    assert _session_files(app) - existing == set()
    replay = app.test_client()
    replay.set_cookie("scoring_admin", cookie, path="/admin")
    assert replay.get("/admin/").status_code == 302  # a copied cookie is worthless after sign-out


def test_wrong_password_and_unknown_user(client):
    r = sign_in(client, "reviewer", "wrong")
    assert r.status_code == 401 and "用户名或密码不对" in r.text
    r = sign_in(client, "nobody", "secret")
    assert r.status_code == 401 and "用户名或密码不对" in r.text
    r = sign_in(client, "review\x00er", "secret")  # a NUL PostgreSQL could not even look up
    assert r.status_code == 401 and "用户名或密码不对" in r.text
    assert client.get("/admin/").status_code == 302


def test_no_open_redirect_after_sign_in(client):
    page = client.get("/admin/login?next=https://evil.example/")
    r = client.post(
        "/admin/login",
        data={
            "username": "reviewer",
            "password": "secret",
            "next": "//evil.example/",
            "csrf_token": csrf_token(page.text),
        },
    )
    assert r.headers["Location"] == "/admin/"
    client.post("/admin/logout", data={"csrf_token": csrf_token(client.get("/admin/").text)})
    page = client.get("/admin/login")
    r = client.post(
        "/admin/login",
        data={
            "username": "reviewer",
            "password": "secret",
            "next": "/admin/units/gucun",
            "csrf_token": csrf_token(page.text),
        },
    )
    assert r.headers["Location"] == "/admin/units/gucun"


def test_a_submitter_sees_only_their_own_unit(client):
    sign_in(client, "submitter")
    home = client.get("/admin/")
    assert home.status_code == 302 and home.headers["Location"] == "/admin/units/gucun"
    assert client.get("/admin/units/gucun").status_code == 200
    for path in (
        "/admin/units/dachang",
        f"/admin/units/dachang/schemes/{SCHEME}/facts",
        f"/admin/units/dachang/schemes/{SCHEME}/score",
        f"/admin/units/dachang/schemes/{SCHEME}/history",
    ):
        r = client.get(path)
        assert r.status_code == 403, path
        assert "没有权限" in r.text and "只能访问本单位" in r.text
    assert (
        client.get(f"/admin/schemes/{SCHEME}/ranking").status_code == 403
    )  # ranking is for the office


def test_security_headers(client):
    sign_in(client, "reviewer")
    r = client.get("/admin/")
    assert r.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert r.headers["Cache-Control"] == "no-store"


def test_anonymous_page_views_store_nothing_and_their_form_still_works(app):
    existing = _session_files(app)
    for _ in range(30):
        page = app.test_client().get("/admin/login")
        assert page.status_code == 200 and "Set-Cookie" in page.headers
        assert app.test_client().get("/admin/units/gucun").status_code == 302
    assert _session_files(app) == existing  # not one row for thirty visitors
    # the anonymous cookie carries the form's CSRF token, signed: a forged one is refused
    client = app.test_client()
    page = client.get("/admin/login")
    forged = app.test_client()
    forged.set_cookie("scoring_admin", session_cookie(client).value[:-3] + "abc", path="/admin")
    refused = forged.post(
        "/admin/login",
        data={"username": "auditor", "password": "secret", "csrf_token": csrf_token(page.text)},
    )
    assert refused.status_code == 400
    r = client.post(
        "/admin/login",
        data={"username": "auditor", "password": "secret", "csrf_token": csrf_token(page.text)},
    )
    assert r.status_code == 302 and client.get("/admin/").status_code == 200


def test_a_session_ends_after_its_absolute_lifetime_and_its_idle_time(app):
    db = app.extensions["scoring"].db
    for column, age in (
        ("created_at", app.config["ADMIN_SESSION_MAX_HOURS"]),
        ("seen_at", app.config["ADMIN_SESSION_HOURS"]),
    ):
        client = app.test_client()
        sign_in(client, "auditor")
        assert client.get("/admin/").status_code == 200
        key = _row_of(session_cookie(client).value)
        with db.transaction() as s:  # as if signed in (or last seen) that long ago, a minute more
            s.execute(
                update(AdminSession)
                .where(AdminSession.id == key)
                .values({column: now() - timedelta(hours=age, minutes=1)})
            )
        assert client.get("/admin/").status_code == 302, column
        assert key not in _session_files(app)


def test_sign_in_on_the_page_is_throttled_and_journaled(app):
    address = {"REMOTE_ADDR": "10.20.30.40"}
    client = app.test_client()
    limit = app.extensions["scoring"].sign_in.per_account
    for _ in range(limit):
        page = client.get("/admin/login", environ_base=address)
        r = client.post(
            "/admin/login",
            data={
                "username": "editor",
                "password": "wrong-guess",
                "csrf_token": csrf_token(page.text),
            },
            environ_base=address,
        )
        assert r.status_code == 401
    page = client.get("/admin/login", environ_base=address)
    r = client.post(
        "/admin/login",
        data={"username": "editor", "password": "secret", "csrf_token": csrf_token(page.text)},
        environ_base=address,
    )
    assert r.status_code == 429 and 0 < int(r.headers["Retry-After"]) <= 900
    assert "登录失败次数过多" in r.text and "分钟后" in r.text
    assert 'name="username"' in r.text  # the form again, with the name kept
    assert client.get("/admin/").status_code == 302
    with app.extensions["scoring"].db.transaction() as s:
        rows = list(
            s.scalars(
                select(JournalEntry).where(
                    JournalEntry.action == "sign-in", JournalEntry.target == "user:editor"
                )
            )
        )
    assert [(e.outcome, e.detail["address"], e.detail["via"]) for e in rows][-limit - 1 :] == [
        ("failed", "10.20.30.40", "admin")
    ] * limit + [("throttled", "10.20.30.40", "admin")]


def test_a_locked_name_no_database_can_store_is_a_429_not_a_500(app):
    """A NUL in the name (PostgreSQL refuses it in any text) is counted and journaled under a
    stand-in, also once the name is locked."""
    address = {"REMOTE_ADDR": "10.20.30.41"}
    client = app.test_client()
    statuses = []
    for _ in range(app.extensions["scoring"].sign_in.per_account + 1):
        page = client.get("/admin/login", environ_base=address)
        r = client.post(
            "/admin/login",
            data={"username": "edi\x00tor", "password": "x", "csrf_token": csrf_token(page.text)},
            environ_base=address,
        )
        statuses.append(r.status_code)
    assert statuses[-2:] == [401, 429]


def test_ended_sessions_are_purged(app):
    db = app.extensions["scoring"].db
    moment = now()
    with db.transaction() as s:
        for i in range(3):
            s.add(
                AdminSession(
                    id=f"{i:064d}",
                    user_id=None,
                    data={},
                    created_at=moment - timedelta(hours=20),
                    seen_at=moment - timedelta(hours=9),
                    expires_at=moment - timedelta(hours=1),
                )
            )
    app.session_interface._last_prune = float("-inf")  # the sweep is due (it runs every 10 min)
    client = app.test_client()
    sign_in(client, "auditor")
    left = _session_files(app)
    assert not {f"{i:064d}" for i in range(3)} & left
    assert _row_of(session_cookie(client).value) in left
