"""Sign-in that holds up, on SQLite and on PostgreSQL (the audit's findings 1 to 3).

- failed sign-ins are throttled per account and per client address, with counters in the
  database; a locked account or address gets 429 with Retry-After, before any password hash is
  computed; every sign-in is journaled (ok, failed, throttled) with the client address;
- anonymous refusals are counted per client and window, not journaled one row per request;
- API tokens expire, carry a label, are listed (never the secret) and revoked; a sign-in makes a
  new token and reuses none;
- an administrator disables and enables accounts (API and command line): disabling revokes every
  token and ends every session, enabling revives none of them;
- passwords are at least SCORING_PASSWORD_MIN_LENGTH characters wherever they are set.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from service import operations as ops
from service.access import SignInLimits
from service.db import AdminSession, DenialCount, JournalEntry, SignInCounter, Token, User, now

from .conftest import _fresh_postgres
from .shapes import assert_error

PASSWORD = "secret"


def _sign_in(api, username, password=PASSWORD, address="127.0.0.1", **extra):
    return api.client.post(
        "/api/auth/token",
        json={"username": username, "password": password, **extra},
        environ_base={"REMOTE_ADDR": address},
    )


def _journal(api, action=None) -> list[JournalEntry]:
    with api.ctx.db.transaction() as s:
        query = select(JournalEntry).order_by(JournalEntry.id)
        if action:
            query = query.where(JournalEntry.action == action)
        return list(s.scalars(query))


def _count(api, table) -> int:
    with api.ctx.db.transaction() as s:
        return s.scalar(select(func.count()).select_from(table))


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


# --- finding 1: brute force ----------------------------------------------------------------------


def test_an_account_is_locked_after_repeated_failures_before_any_hash_is_computed(api, monkeypatch):
    hashed = []
    real = ops.check_password_hash
    monkeypatch.setattr(
        ops, "check_password_hash", lambda *a: hashed.append(1) or real(*a)
    )  # counts the expensive hashes; the real one runs
    limit = api.ctx.sign_in.per_account
    for _ in range(limit):
        assert_error(_sign_in(api, "admin", "wrong-guess"), 401, "bad_credentials", ["password"])
    assert len(hashed) == limit

    locked = _sign_in(api, "admin")  # the right password, too late
    assert_error(locked, 429, "too_many_sign_ins")
    assert 0 < int(locked.headers["Retry-After"]) <= api.ctx.sign_in.window_seconds
    assert "分钟后" in locked.json["error"]["message"]
    assert len(hashed) == limit  # refused without computing a hash
    assert_error(
        _sign_in(api, "admin", address="10.9.9.9"), 429, "too_many_sign_ins"
    )  # any address

    # another account from the same address is not locked
    assert _sign_in(api, "reviewer").status_code == 201

    rows = [
        (e.actor, e.outcome, e.target, e.detail.get("address")) for e in _journal(api, "sign-in")
    ]
    assert rows == (
        [("（未登录）", "failed", "user:admin", "127.0.0.1")] * limit
        + [("（未登录）", "throttled", "user:admin", "127.0.0.1")]
        + [("（未登录）", "throttled", "user:admin", "10.9.9.9")]
        + [("reviewer", "ok", "user:reviewer", "127.0.0.1")]
    )


def test_an_address_is_locked_after_failures_on_many_accounts(api):
    limit = api.ctx.sign_in.per_address
    for i in range(limit):
        assert _sign_in(api, f"guess-{i}", address="10.0.0.7").status_code == 401
    assert_error(_sign_in(api, "admin", address="10.0.0.7"), 429, "too_many_sign_ins")
    assert _sign_in(api, "admin", address="10.0.0.8").status_code == 201  # others go on


def test_the_lock_ends_with_its_window_and_a_success_clears_the_account(api):
    api.ctx.sign_in = SignInLimits(window_seconds=1, per_account=2, per_address=50)
    for _ in range(2):
        _sign_in(api, "editor", "wrong-guess")
    assert _sign_in(api, "editor").status_code == 429
    time.sleep(1.2)
    assert _sign_in(api, "editor").status_code == 201
    _sign_in(api, "editor", "wrong-guess")
    assert _sign_in(api, "editor").status_code == 201  # one failure: not locked
    with api.ctx.db.transaction() as s:
        keys = set(s.scalars(select(SignInCounter.key)))
    assert "account:editor" not in keys and "address:127.0.0.1" in keys


def test_throttled_sign_ins_are_journaled_once_per_window_and_counted(api):
    for _ in range(api.ctx.sign_in.per_account):
        _sign_in(api, "auditor", "wrong-guess")
    before = len(_journal(api))
    for _ in range(30):
        assert _sign_in(api, "auditor").status_code == 429
    assert len(_journal(api)) - before <= 2  # one, or two if a window ended meanwhile
    with api.ctx.db.transaction() as s:
        counted = s.scalar(
            select(func.sum(DenialCount.count)).where(DenialCount.action == "sign-in")
        )
    assert counted == 30


# --- finding 2: anonymous traffic ----------------------------------------------------------------


def test_anonymous_refusals_are_counted_not_journaled_one_row_each(api):
    before = len(_journal(api))
    for i in range(40):
        r = api.client.get("/api/units", environ_base={"REMOTE_ADDR": "10.1.1.1"})
        assert_error(r, 401, "unauthenticated")
        r = api.client.get(
            f"/api/units/u{i}",
            headers=_bearer("forged-" + "x" * 30),
            environ_base={"REMOTE_ADDR": "10.1.1.1"},
        )
        assert_error(r, 401, "unauthenticated")
    entries = _journal(api)[before:]
    assert 1 <= len(entries) <= 2  # the first of the window (two if the minute turned)
    first = entries[0]
    assert (first.action, first.outcome, first.target) == (
        "authenticate",
        "denied",
        "GET /api/units",
    )
    assert first.detail["address"] == "10.1.1.1"
    with api.ctx.db.transaction() as s:
        rows = list(s.scalars(select(DenialCount).where(DenialCount.address == "10.1.1.1")))
    assert sum(r.count for r in rows) == 80 and len(rows) <= 2
    assert rows[-1].last_target == "GET /api/units/u39"

    # another client gets its own first row
    api.client.get("/api/units", environ_base={"REMOTE_ADDR": "10.1.1.2"})
    assert [e.detail["address"] for e in _journal(api)[before + len(entries) :]] == ["10.1.1.2"]


# --- finding 3: tokens, accounts, passwords ------------------------------------------------------


def test_tokens_expire_are_listed_without_their_secret_and_revoked(api):
    first = _sign_in(api, "reviewer", label="报送脚本")
    second = _sign_in(api, "reviewer")
    assert first.status_code == second.status_code == 201
    one, two = first.json, second.json
    assert one["token"] != two["token"] and one["id"] != two["id"]  # a sign-in reuses nothing
    assert one["label"] == "报送脚本" and two["label"] == "sign-in"
    lifetime = aware(two["expires_at"]) - now()
    assert timedelta(days=29, hours=23) < lifetime <= timedelta(days=30)

    assert api.get("/api/units", headers=_bearer(one["token"])).status_code == 200
    listed = api.get("/api/auth/tokens", headers=_bearer(two["token"]))
    assert listed.status_code == 200
    mine = {t["id"]: t for t in listed.json}
    assert {one["id"], two["id"]} <= set(mine)
    assert all(
        set(t) == {"id", "label", "created_at", "last_used_at", "expires_at"} for t in listed.json
    )
    assert one["token"] not in listed.text and two["token"] not in listed.text
    assert mine[one["id"]]["last_used_at"] is not None and mine[one["id"]]["label"] == "报送脚本"
    assert all(t["id"] not in mine for t in api.get("/api/auth/tokens", "editor").json)  # own only

    # revoke one's own: that token stops at once, the other goes on
    assert (
        api.call(
            "DELETE", f"/api/auth/tokens/{one['id']}", headers=_bearer(two["token"])
        ).status_code
        == 204
    )
    assert_error(api.get("/api/units", headers=_bearer(one["token"])), 401, "unauthenticated")
    assert api.get("/api/units", headers=_bearer(two["token"])).status_code == 200
    assert one["id"] not in {
        t["id"] for t in api.get("/api/auth/tokens", headers=_bearer(two["token"])).json
    }

    # someone else's: refused (exists or not), unless an administrator revokes it
    assert_error(api.call("DELETE", f"/api/auth/tokens/{two['id']}", "editor"), 403, "forbidden")
    assert_error(api.call("DELETE", "/api/auth/tokens/999999", "editor"), 403, "forbidden")
    assert_error(api.call("DELETE", "/api/auth/tokens/999999", "admin"), 404, "unknown_token")
    assert api.call("DELETE", f"/api/auth/tokens/{two['id']}", "admin").status_code == 204
    assert_error(api.get("/api/units", headers=_bearer(two["token"])), 401, "unauthenticated")
    revoked = [
        (e.actor, e.target, e.detail["user"])
        for e in _journal(api, "tokens.revoke")
        if e.outcome == "ok"
    ]
    assert revoked == [
        ("reviewer", f"token:{one['id']}", "reviewer"),
        ("admin", f"token:{two['id']}", "reviewer"),
    ]

    # expiry: a token past its end is refused
    third = _sign_in(api, "reviewer").json
    assert api.get("/api/units", headers=_bearer(third["token"])).status_code == 200
    with api.ctx.db.transaction() as s:
        s.execute(
            update(Token)
            .where(Token.id == third["id"])
            .values(expires_at=now() - timedelta(seconds=1))
        )
    assert_error(api.get("/api/units", headers=_bearer(third["token"])), 401, "unauthenticated")


def test_disabling_revokes_everything_and_enabling_revives_nothing(api):
    old = api.tokens["editor"]
    signed_in = _sign_in(api, "editor").json["token"]
    page = api.app.test_client()  # an admin-page session of the editor
    form = page.get("/admin/login").text
    token = form.split('name="csrf_token" value="')[1].split('"')[0]
    assert (
        page.post(
            "/admin/login", data={"username": "editor", "password": PASSWORD, "csrf_token": token}
        ).status_code
        == 302
    )
    assert page.get("/admin/").status_code == 200
    assert _count(api, AdminSession) == 1

    assert_error(api.post("/api/users/editor/disable", "reviewer"), 403, "forbidden")
    done = api.post("/api/users/editor/disable", "admin")
    assert done.status_code == 200 and done.json["active"] is False and done.json["disabled_at"]
    for t in (old, signed_in):
        assert_error(api.get("/api/schemes", headers=_bearer(t)), 401, "unauthenticated")
    assert page.get("/admin/").status_code == 302  # the session ended
    assert _count(api, AdminSession) == 0
    assert_error(_sign_in(api, "editor"), 401, "bad_credentials")
    assert_error(api.post("/api/users/admin/disable", "admin"), 422, "cannot_disable_self")
    assert_error(api.post("/api/users/nobody/disable", "admin"), 404, "unknown_user")

    enabled = api.post("/api/users/editor/enable", "admin")
    assert (
        enabled.status_code == 200
        and enabled.json["active"] is True
        and enabled.json["disabled_at"] is None
    )
    for t in (old, signed_in):  # nothing comes back to life
        assert_error(api.get("/api/schemes", headers=_bearer(t)), 401, "unauthenticated")
    assert page.get("/admin/").status_code == 302
    fresh = _sign_in(api, "editor")
    assert fresh.status_code == 201
    assert api.get("/api/schemes", headers=_bearer(fresh.json["token"])).status_code == 200
    actions = [
        (e.action, e.target, e.detail)
        for e in _journal(api)
        if e.action.startswith("users.") and e.outcome == "ok"
    ]
    assert actions == [
        ("users.disable", "user:editor", {"tokens_revoked": 2, "sessions_ended": 1}),
        ("users.enable", "user:editor", {"tokens_revoked": 0, "sessions_ended": 0}),
    ]


def test_the_command_line_disables_enables_and_refuses_short_passwords(api):
    cli = api.app.test_cli_runner()
    short = cli.invoke(args=["create-user", "newbie", "--role", "editor", "--password", "x"])
    assert short.exit_code != 0 and "至少需要10个字符" in short.output
    nine = cli.invoke(args=["create-user", "newbie", "--role", "editor", "--password", "123456789"])
    assert nine.exit_code != 0
    with api.ctx.db.transaction() as s:
        assert s.scalar(select(User).where(User.username == "newbie")) is None  # nothing stored
    made = cli.invoke(
        args=["create-user", "newbie", "--role", "editor", "--password", "long-enough-1"]
    )
    assert made.exit_code == 0, made.output
    token = made.output.strip()
    assert api.get("/api/schemes", headers=_bearer(token)).status_code == 200

    off = cli.invoke(args=["disable-user", "newbie"])
    assert off.exit_code == 0, off.output
    assert_error(api.get("/api/schemes", headers=_bearer(token)), 401, "unauthenticated")
    on = cli.invoke(args=["enable-user", "newbie"])
    assert on.exit_code == 0, on.output
    assert_error(api.get("/api/schemes", headers=_bearer(token)), 401, "unauthenticated")
    assert _sign_in(api, "newbie", "long-enough-1").status_code == 201
    unknown = cli.invoke(args=["disable-user", "nobody"])
    assert unknown.exit_code != 0 and "nobody" in unknown.output
    journaled = [(e.actor, e.action) for e in _journal(api) if e.action.startswith("users.")]
    assert journaled == [("（命令行）", "users.disable"), ("（命令行）", "users.enable")]


def aware(text: str):
    from datetime import datetime

    return datetime.fromisoformat(text)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_upgrade_gives_old_tokens_an_end_and_revokes_those_of_disabled_users(
    tmp_path, database
):
    """Tokens made before 0004 never expired: after the upgrade they end in 30 days; a user
    disabled in SQL before it is disabled as of the upgrade, their tokens revoked."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from service.access import actor_for_token, hash_token
    from service.commands import MIGRATIONS
    from service.db import Database

    url = f"sqlite:///{tmp_path / 'old.db'}" if database == "sqlite" else _fresh_postgres()
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "0003")
    db = Database(url)
    with db.engine.begin() as c:
        for uid, name, active in ((1, "kept", True), (2, "gone", False)):
            c.execute(
                text(
                    "INSERT INTO users (id, username, display_name, role, active, created_at)"
                    " VALUES (:id, :name, :name, 'auditor', :active, :at)"
                ),
                {"id": uid, "name": name, "active": active, "at": now()},
            )
            c.execute(
                text(
                    "INSERT INTO tokens (user_id, token_hash, label, created_at)"
                    " VALUES (:id, :hash, 'old', :at)"
                ),
                {"id": uid, "hash": hash_token(f"token-of-{name}"), "at": now()},
            )
    command.upgrade(config, "head")
    kept = actor_for_token(db, "token-of-kept")
    assert kept is not None and kept.username == "kept"
    assert actor_for_token(db, "token-of-gone") is None
    with db.transaction() as s:
        ends = {t.user_id: t for t in s.scalars(select(Token))}
        gone = s.scalar(select(User).where(User.username == "gone"))
    assert timedelta(days=29) < ends[1].expires_at - now() <= timedelta(days=30)
    assert ends[1].revoked_at is None and ends[2].revoked_at is not None
    assert gone.disabled_at is not None
    # enabling the user again revives nothing
    with db.transaction() as s:
        s.execute(update(User).where(User.id == 2).values(active=True, disabled_at=None))
    assert actor_for_token(db, "token-of-gone") is None
    db.engine.dispose()


def test_a_user_name_no_database_can_store_is_a_404_not_a_500(api):
    for verb in ("disable", "enable"):
        assert_error(api.post(f"/api/users/no%00body/{verb}", "admin"), 404, "unknown_user")


def test_behind_a_proxy_the_client_address_is_the_one_it_saw_and_the_key_is_stored(
    tmp_path, engine
):
    """SCORING_PROXY_HOPS=1: the address the load balancer appended, not one the client wrote
    itself; no SCORING_SECRET_KEY: the key kept in the database signs."""
    from service.access import stored_secret
    from service.app import create_app
    from service.commands import add_user, upgrade
    from service.config import Settings

    from ..conftest import MINIMAL

    url = f"sqlite:///{tmp_path / 'proxy.db'}"
    upgrade(url)
    settings = Settings(
        rules_dir=MINIMAL,
        engine_workers=1,
        engine_deadline=10,
        database_url=url,
        instance_dir=tmp_path / "instance",
        proxy_hops=1,
    )
    app = create_app(settings, engine=engine)
    db = app.extensions["scoring"].db
    add_user(db, "someone", "auditor", None, "long-enough-1")
    assert app.secret_key == stored_secret(db)
    client = app.test_client()
    forwarded = {"X-Forwarded-For": "1.2.3.4, 203.0.113.9"}  # the client wrote 1.2.3.4
    r = client.post(
        "/api/auth/token", json={"username": "someone", "password": "nope"}, headers=forwarded
    )
    assert r.status_code == 401
    with db.transaction() as s:
        entry = s.scalars(select(JournalEntry).where(JournalEntry.action == "sign-in")).one()
    assert entry.detail["address"] == "203.0.113.9"
    db.engine.dispose()
