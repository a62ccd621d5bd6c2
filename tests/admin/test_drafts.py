"""Fact-entry drafts kept on the server (issue 9): they survive sign-out and another browser, are
one per user, unit and scheme, go with the submission that uses them (and stay when it is refused),
are seen only by their author, and no key press discards one (discarding asks on its own page).

Each test uses its own unit and scheme pair, so the module's shared database keeps them apart.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from admin import forms
from service import operations as ops
from service.access import Actor
from service.db import Draft, JournalEntry, User
from service.exceptions import Forbidden, Invalid

from .conftest import csrf_token, self_submit, sign_in


def _actor(app, username):
    with app.extensions["scoring"].db.transaction() as s:
        user = s.query(User).filter_by(username=username).one()
    return Actor(user.id, user.username, user.role, user.unit_id)


def _page(unit, scheme):
    return f"/admin/units/{unit}/schemes/{scheme}/facts"


def _post(client, unit, scheme, data):
    page = client.get(_page(unit, scheme))
    assert page.status_code == 200, page.text[:500]
    base = page.text.split('name="base_version" value="')[1].split('"')[0]
    body = {"csrf_token": csrf_token(page.text), "base_version": base}
    body.update(data)
    return client.post(_page(unit, scheme), data=body)


def _drafts(app, unit=None, scheme=None):
    ctx = app.extensions["scoring"]
    with ctx.db.transaction() as s:
        query = select(Draft)
        if scheme:
            query = query.where(Draft.scheme_id == scheme)
        return list(s.scalars(query))


def _form_of(text: str) -> str:
    """The fact form's HTML (from its opening tag to its end)."""
    start = text.index('<form method="post" data-facts')
    return text[start : text.index("</form>", start)]


def test_a_draft_survives_sign_out_and_another_browser(app):
    scheme = "zhenxing-2010"
    first = app.test_client()
    sign_in(first, "submitter")
    r = _post(
        first, "gucun", scheme, {"action": "draft", "f.inspection_rate": "96.5", "reason": "草拟"}
    )
    assert r.status_code == 302, r.text[:2000]
    page = first.get(_page("gucun", scheme))
    r = first.post("/admin/logout", data={"csrf_token": csrf_token(page.text)})
    assert r.status_code == 302

    second = app.test_client()  # another browser: no cookie of the first
    sign_in(second, "submitter")
    page = second.get(_page("gucun", scheme))
    assert "草稿" in page.text and 'value="96.5"' in page.text and ">草拟</textarea>" in page.text
    (row,) = _drafts(app, scheme=scheme)
    assert row.values == {"inspection_rate": "96.5"} and row.base_version == 0
    assert row.saved_at is not None


def test_saving_again_replaces_the_draft(app, client):
    scheme = "gumeilu-2022"
    sign_in(client, "reviewer")
    for rate in ("1", "2"):
        field = next(iter(app.extensions["scoring"].registry.get(scheme).facts))
        r = _post(client, "dachang", scheme, {"action": "draft", f"f.{field}": rate})
        assert r.status_code == 302, r.text[:2000]
    (row,) = _drafts(app, scheme=scheme)
    assert row.values == {field: "2"}


def test_enter_in_a_field_saves_the_draft_and_no_button_of_the_form_discards_it(app, client):
    scheme = "shuangtaizi-2016"
    sign_in(client, "submitter")
    field = next(iter(app.extensions["scoring"].registry.get(scheme).facts))
    assert _post(client, "gucun", scheme, {"action": "draft", f"f.{field}": "x"}).status_code == 302
    page = client.get(_page("gucun", scheme))
    assert "正在显示您于" in page.text  # the draft is shown
    form = _form_of(page.text)
    # a browser submits a form with its first submit button on Enter: it must keep the typing
    buttons = re.findall(r"<button[^>]*type=\"submit\"[^>]*>", form)
    assert buttons and 'value="draft"' in buttons[0], buttons
    assert 'value="discard"' not in form
    # what Enter posts keeps the draft (saved again, not gone)
    body = {"csrf_token": csrf_token(page.text), "base_version": "0", "action": "draft"}
    body[f"f.{field}"] = "x"
    assert client.post(_page("gucun", scheme), data=body).status_code == 302
    assert len(_drafts(app, scheme=scheme)) == 1
    # and the old discard action of the form is refused, not obeyed
    body["action"] = "discard"
    assert client.post(_page("gucun", scheme), data=body).status_code == 400
    assert len(_drafts(app, scheme=scheme)) == 1


def test_discarding_asks_first_and_is_journaled(app, client):
    scheme = "zhuanqiao-2018"
    ctx = app.extensions["scoring"]
    sign_in(client, "submitter")
    field = next(iter(ctx.registry.get(scheme).facts))
    assert _post(client, "gucun", scheme, {"action": "draft", f"f.{field}": "y"}).status_code == 302
    page = client.get(_page("gucun", scheme))
    link = f"/admin/units/gucun/schemes/{scheme}/facts/discard"
    assert f'href="{link}"' in page.text
    ask = client.get(link)
    assert ask.status_code == 200 and "丢弃后无法恢复" in ask.text
    assert len(_drafts(app, scheme=scheme)) == 1  # asking changes nothing
    # a post that did not come from the page that asks is sent there
    r = client.post(link, data={"csrf_token": csrf_token(ask.text)})
    assert r.status_code == 302 and r.headers["Location"].endswith(link)
    assert len(_drafts(app, scheme=scheme)) == 1
    r = client.post(link, data={"csrf_token": csrf_token(ask.text), "confirm": "yes"})
    assert r.status_code == 302
    assert _drafts(app, scheme=scheme) == []
    assert 'value="y"' not in client.get(_page("gucun", scheme)).text
    with ctx.db.transaction() as s:
        actions = list(
            s.scalars(
                select(JournalEntry.action).where(
                    JournalEntry.scheme == scheme, JournalEntry.action.like("drafts.%")
                )
            )
        )
    assert actions == ["drafts.write", "drafts.discard"]


def test_a_refused_submission_keeps_the_draft_and_a_submission_removes_it(app, client):
    scheme = "baoshan-2022-c1"
    self_submit(app, "bsip", scheme, {})  # a reviewer reviews what the unit submitted
    sign_in(client, "reviewer")
    fields = forms.layout(app.extensions["scoring"].registry.get(scheme)).fields
    number = next(n for n, f in fields.items() if f.input == "number")
    r = _post(client, "bsip", scheme, {"action": "draft", f"f.{number}": "abc"})
    assert r.status_code == 302
    refused = _post(client, "bsip", scheme, {"action": "review", f"f.{number}": "abc"})
    assert refused.status_code == 422  # not a number: nothing submitted
    assert len(_drafts(app, scheme=scheme)) == 1
    r = _post(client, "bsip", scheme, {"action": "review", f"f.{number}": "1", "reason": "核查"})
    assert r.status_code == 302, r.text[:2000]
    assert _drafts(app, scheme=scheme) == []


def test_a_draft_is_seen_only_by_its_author_and_kept_only_by_who_may_submit(app, client):
    scheme = "baoshan-2022-b1"
    ctx = app.extensions["scoring"]
    submitter, admin = _actor(app, "submitter"), _actor(app, "admin")
    field = next(iter(ctx.registry.get(scheme).facts))
    ops.save_draft(ctx, submitter, "gucun", scheme, {field: "mine"}, {}, "", {}, 0)
    assert ops.read_draft(ctx, submitter, "gucun", scheme).values == {field: "mine"}
    assert ops.read_draft(ctx, admin, "gucun", scheme) is None
    sign_in(client, "admin")
    assert 'value="mine"' not in client.get(_page("gucun", scheme)).text
    assert ops.discard_draft(ctx, admin, "gucun", scheme) is False  # not the admin's to discard
    assert ops.read_draft(ctx, submitter, "gucun", scheme) is not None
    with pytest.raises(Forbidden):  # another unit's
        ops.save_draft(ctx, submitter, "dachang", scheme, {}, {}, "", {}, 0)
    with pytest.raises(Forbidden):  # a role that may not submit facts
        ops.save_draft(ctx, _actor(app, "auditor"), "gucun", scheme, {}, {}, "", {}, 0)


def test_a_draft_gets_the_storable_text_and_length_checks_of_a_submission(app, client):
    scheme = "baoshan-2022-b1"
    ctx = app.extensions["scoring"]
    reviewer = _actor(app, "reviewer")
    field = next(iter(ctx.registry.get(scheme).facts))
    with pytest.raises(Invalid) as err:
        ops.save_draft(ctx, reviewer, "bsip", scheme, {field: "a\x00b"}, {}, "x" * 2001, {}, 0)
    assert set(err.value.fields) == {f"facts.{field}", "reason"}
    assert "U+0000" in err.value.fields[f"facts.{field}"][0]
    with pytest.raises(Invalid) as err:
        ops.save_draft(ctx, reviewer, "bsip", scheme, {"no_such_fact": "1"}, {}, "", {}, 0)
    assert "facts.no_such_fact" in err.value.fields
    sign_in(client, "reviewer")
    r = _post(client, "bsip", scheme, {"action": "draft", "reason": "z" * 2001})
    assert r.status_code == 422 and "理由不超过2000字" in r.text
    r = _post(client, "bsip", scheme, {"action": "draft", "reason": "a\x01b"})
    assert r.status_code == 422 and "U+0001" in r.text
    with ctx.db.transaction() as s:
        assert (
            s.scalar(
                select(func.count())
                .select_from(Draft)
                .where(Draft.user_id == reviewer.user_id, Draft.scheme_id == scheme)
            )
            == 0
        )


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_drafts_migration_moves_the_drafts_signed_in_sessions_held(tmp_path, database):
    """Whoever was signed in with a draft when the service was upgraded still has it after."""
    import json

    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, text

    from service.commands import MIGRATIONS

    from ..api.conftest import _fresh_postgres

    def at(url, revision):
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
        command.upgrade(config, revision)

    url = f"sqlite:///{tmp_path / 'old.db'}" if database == "sqlite" else _fresh_postgres()
    at(url, "0006")
    engine = create_engine(url)

    def draft(rate):
        return {
            "values": {"inspection_rate": rate},
            "evidence": {},
            "reason": "草拟",
            "reasons": {},
            "base": 1,
            "saved": "2026-11-29 10:00",
        }

    sessions = [  # id, user, seen, data
        (
            "a",
            1,
            "2026-11-29 09:00:00+00",
            {"csrf": "t", "drafts": {"gucun|zhenxing-2010": draft("1")}},
        ),
        (
            "b",
            1,
            "2026-11-29 11:00:00+00",
            {"drafts": {"gucun|zhenxing-2010": draft("2"), "nosuch|zhenxing-2010": draft("3")}},
        ),
        ("c", None, "2026-11-29 12:00:00+00", {"drafts": {"gucun|zhenxing-2010": draft("4")}}),
    ]
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO units (code, name, kind, district, created_at, code_key, name_key) "
                "VALUES ('gucun', '顾村镇', 'town', '宝山区', CURRENT_TIMESTAMP, 'gucun', '顾村镇')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO users (id, username, display_name, role, unit_id, active, created_at) "
                "VALUES (1, 'submitter', '填报人', 'submitter', 1, true, CURRENT_TIMESTAMP)"
            )
        )
        for sid, user, seen, data in sessions:
            connection.execute(
                text(
                    "INSERT INTO admin_sessions (id, user_id, data, created_at, seen_at, "
                    "expires_at) VALUES (:id, :user, :data, :seen, :seen, :seen)"
                ),
                {"id": sid, "user": user, "data": json.dumps(data), "seen": seen},
            )
    at(url, "head")
    with engine.connect() as connection:
        rows = connection.execute(
            text('SELECT user_id, scheme_id, "values", reason, base_version FROM drafts')
        ).all()
        kept = dict(connection.execute(text("SELECT id, data FROM admin_sessions")).all())
    engine.dispose()
    assert len(rows) == 1  # one per user, unit and scheme: the session seen last
    user_id, scheme_id, values, reason, base = rows[0]
    values = json.loads(values) if isinstance(values, str) else values
    assert (user_id, scheme_id, values, reason, base) == (
        1,
        "zhenxing-2010",
        {"inspection_rate": "2"},
        "草拟",
        1,
    )
    a = kept["a"] if isinstance(kept["a"], dict) else json.loads(kept["a"])
    assert a == {"csrf": "t"}  # the session keeps the rest of its data, without the drafts
