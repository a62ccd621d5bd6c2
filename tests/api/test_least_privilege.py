"""On PostgreSQL the service runs as a role that owns nothing: the migrations run as the tables'
owner (SCORING_MIGRATION_DATABASE_URL), and db-upgrade grants the service's role SELECT and
INSERT on the append-only tables, so TRUNCATE, UPDATE, DELETE, DISABLE TRIGGER and DROP TRIGGER
on them are refused to it, while the service itself works as before."""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import DBAPIError

from service.commands import upgrade
from service.db import APPEND_ONLY

from ..apps import make_app
from .conftest import POSTGRES_URL, _fresh_postgres

HISTORY = (
    "submissions",
    "scores",
    "journal",
    "rule_versions",
    "rule_sets",
    "evidence_blobs",
    "evidence_files",
    "round_deadline_changes",
)


@pytest.fixture
def roles(tmp_path):
    """(owner URL, service URL) on a fresh schema; the service's role made for this test only."""
    if not POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail("SCORING_TEST_POSTGRES_URL is not set: CI must test PostgreSQL")
        pytest.skip("SCORING_TEST_POSTGRES_URL not set")
    owner_url = _fresh_postgres()
    name = f"scoring_svc_{uuid.uuid4().hex[:10]}"
    password = uuid.uuid4().hex
    owner = create_engine(owner_url)
    try:
        with owner.begin() as connection:
            connection.execute(text(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'"))
    except DBAPIError as err:
        owner.dispose()
        message = f"the tests' database user cannot create roles (.ci/postgres.sh gives CREATEROLE): {err}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    service_url = (
        make_url(owner_url)
        .set(username=name, password=password)
        .render_as_string(hide_password=False)
    )
    yield owner_url, service_url, name
    with owner.begin() as connection:
        schema = connection.execute(text("SELECT current_schema()")).scalar_one()
        for kind in ("TABLES", "SEQUENCES"):
            connection.execute(text(f'REVOKE ALL ON ALL {kind} IN SCHEMA "{schema}" FROM {name}'))
        connection.execute(text(f'REVOKE ALL ON SCHEMA "{schema}" FROM {name}'))
        connection.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :n"),
            {"n": name},
        )
        connection.execute(text(f"DROP ROLE {name}"))
    owner.dispose()


def test_the_service_role_may_add_to_history_but_never_rewrite_it(roles, tmp_path, engine):
    owner_url, service_url, name = roles
    assert upgrade(owner_url, service_url) == []  # no warning: the service's role owns nothing
    app, tokens = make_app(tmp_path, service_url, engine)  # the app as the service's role
    client = app.test_client()

    def call(method, path, who, **kw):
        return client.open(
            path, method=method, headers={"Authorization": f"Bearer {tokens[who]}"}, **kw
        )

    base = "/api/units/gucun/schemes/gumeilu-2022"
    made = call(
        "POST",
        f"{base}/submissions",
        "submitter",
        json={"role": "self", "facts": {"leader_evaluation_score": 4}},
    )
    assert made.status_code == 201, made.json
    assert call("POST", f"{base}/scores", "submitter", json={}).status_code == 201
    assert call("GET", "/api/journal/verify", "auditor").json["ok"] is True

    service = app.extensions["scoring"].db.engine
    with service.connect() as connection:
        assert connection.execute(text("SELECT current_user")).scalar_one() == name
        owned = connection.execute(
            text("SELECT count(*) FROM pg_class WHERE pg_get_userbyid(relowner) = current_user")
        ).scalar_one()
    assert owned == 0
    assert set(HISTORY) == set(APPEND_ONLY)
    refused = []
    for table in HISTORY:
        for statement in (
            f"TRUNCATE {table}",
            f"UPDATE {table} SET {_a_column(table)} = {_a_column(table)}",
            f"DELETE FROM {table}",
            f"ALTER TABLE {table} DISABLE TRIGGER ALL",
            f"DROP TRIGGER {table}_no_update ON {table}",
        ):
            try:
                with service.begin() as connection:
                    connection.execute(text(statement))
            except DBAPIError as err:
                assert "permission denied" in str(err) or "must be owner" in str(err), (
                    statement,
                    err,
                )
                refused.append(statement)
    assert len(refused) == 5 * len(HISTORY)
    # the chain head it may move on, nothing else about it: no new head, none removed
    for statement in (
        "DELETE FROM history_head",
        "INSERT INTO history_head VALUES (2, 0, '', '', 0)",
    ):
        with pytest.raises(DBAPIError, match="permission denied"), service.begin() as connection:
            connection.execute(text(statement))
    assert call("GET", "/api/journal/verify", "admin").json["ok"] is True
    app.extensions["scoring"].db.engine.dispose()


def test_db_upgrade_migrates_as_the_owner_and_grants_the_service(
    roles, tmp_path, engine, monkeypatch
):
    """``flask db-upgrade`` with SCORING_MIGRATION_DATABASE_URL: the migrations as the owner, the
    grants to the role of SCORING_DATABASE_URL, then the rules published as the service."""
    from service.app import create_app

    owner_url, service_url, name = roles
    monkeypatch.setenv("SCORING_DATABASE_URL", service_url)
    monkeypatch.setenv("SCORING_MIGRATION_DATABASE_URL", owner_url)
    monkeypatch.setenv("SCORING_INSTANCE_DIR", str(tmp_path / "instance"))
    monkeypatch.setenv("SCORING_SECRET_KEY", "test")
    app = create_app(engine=engine)
    result = app.test_cli_runner().invoke(args=["db-upgrade"])
    assert result.exit_code == 0, result.output
    assert "警告" not in result.output
    owner = create_engine(owner_url)
    with owner.connect() as connection:
        tables = (
            connection.execute(
                text(
                    "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class"
                    " WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r'"
                )
            )
            .scalars()
            .all()
        )
        published = connection.execute(text("SELECT count(*) FROM rule_sets")).scalar_one()
    owner.dispose()
    assert tables == [make_url(owner_url).username] and published == 1
    app.extensions["scoring"].db.engine.dispose()


def _a_column(table: str) -> str:
    from service.db import Base

    return next(c.name for c in Base.metadata.tables[table].columns if not c.primary_key)
