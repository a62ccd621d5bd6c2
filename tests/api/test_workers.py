"""Several gunicorn workers serve as one service.

Each worker builds its own app, so anything a worker keeps to itself must not
be something the service promises as a whole.  For real, with gunicorn and two
sync workers on 127.0.0.1 (on SQLite and on PostgreSQL), requests sent from
several threads at once so that both workers serve them (the access log names
the worker of every request, and the test checks both did):

- a sign-in form served by one worker is accepted by the other: no secret key
  is configured, and the key made once and kept in the database is the same for
  all (the instance folder holds nothing: tests/api/test_hosts.py runs two hosts);
- a rules reload in one worker is served by every worker (none answers with
  the old version once the reload has answered);
- a worker that gunicorn restarts while the rules directory is broken serves
  the rule set in force, like the other worker, instead of failing to start.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import threading
import time
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from service.commands import add_user, upgrade
from service.db import Database, RuleSet

from ..conftest import MINIMAL
from .conftest import _fresh_postgres
from .servers import Server

pytestmark = pytest.mark.e2e  # real gunicorn workers: `pytest -m "not e2e"` leaves it out

THREADS, ROUNDS = 6, 4
PASSWORD = "secret-password"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _in_parallel(call, threads=THREADS, rounds=ROUNDS) -> list:
    results, errors = [], []

    def run():
        try:
            for _ in range(rounds):
                results.append(call())
        except Exception as err:  # re-raised below
            errors.append(err)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(120)
    if errors:
        raise errors[0]
    return results


def _sign_in(server: Server) -> int:
    status, headers, page = server.raw("GET", "/admin/login")
    assert status == 200
    cookie = headers["Set-Cookie"].split(";", 1)[0]
    token = _CSRF.search(page.decode()).group(1)
    form = urlencode({"username": "admin", "password": PASSWORD, "csrf_token": token}).encode()
    status, headers, _page = server.raw(
        "POST",
        "/admin/login",
        form,
        {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"},
    )
    return status


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_two_workers_serve_as_one(tmp_path, database):
    url = f"sqlite:///{tmp_path / 'scoring.db'}" if database == "sqlite" else _fresh_postgres()
    rules = tmp_path / "rules"
    shutil.copytree(MINIMAL, rules / "minimal")
    upgrade(url)
    token = add_user(Database(url), "admin", "admin", None, PASSWORD)
    auth = {"Authorization": f"Bearer {token}"}
    server = Server(
        tmp_path,
        url,
        workers=2,
        env={
            "SCORING_RULES_DIR": str(rules),
            "SCORING_RULES_CHECK_SECONDS": "0",
            "SCORING_SECRET_KEY": None,  # not configured: the key kept in the database
        },
    )
    try:
        server.start()
        # gunicorn forks its workers one after the other, and the first may answer before the
        # second has started: wait (bounded) until both have answered
        deadline = time.monotonic() + 60
        while True:
            workers = server.worker_pids()
            if len(workers) == 2 and server.served_by("GET", "/api/health") >= workers:
                break
            assert time.monotonic() < deadline, server.log()
            _in_parallel(lambda: server.request("GET", "/api/health"), rounds=1)

        # 1. sign-in forms, each served by one worker and posted to whichever takes it
        assert set(_in_parallel(lambda: _sign_in(server))) == {302}
        assert server.served_by("POST", "/admin/login") == workers, server.log()
        instance = tmp_path / "instance"  # nothing a second host would need: no key, no sessions
        assert not instance.exists() or list(instance.iterdir()) == []

        # 2. a reload in one worker is what every worker serves. Rule sets are numbered by the
        # database, and on PostgreSQL the start's losing publisher used up a number of the
        # sequence: the reload publishes the next rule set, not necessarily number 2
        in_force = server.request("GET", "/api/health")[1]["rule_set"]
        first = server.request("GET", "/api/schemes/minimal", headers=auth)[1]["version"]
        scheme_file = rules / "minimal" / "scheme.yaml"
        scheme_file.write_text(
            scheme_file.read_text(encoding="utf-8").replace(
                "title: 测试用细则", "title: 测试用细则（修订）"
            ),
            encoding="utf-8",
        )
        status, reloaded = server.request("POST", "/api/rules/reload", headers=auth)
        assert status == 200, reloaded
        assert list(reloaded["changes"]) == ["minimal"] and reloaded["rule_set"] > in_force
        published = reloaded["rule_set"]
        with Database(
            url
        ).transaction() as s:  # exactly one publication, following the one in force
            assert s.get(RuleSet, published).follows == in_force
            assert s.scalar(select(func.count()).select_from(RuleSet)) == 2
        second = reloaded["changes"]["minimal"]["to"]
        assert second != first
        seen = _in_parallel(lambda: server.request("GET", "/api/schemes/minimal", headers=auth)[1])
        assert {(s["version"], s["title"]) for s in seen} == {(second, "测试用细则（修订）")}
        assert server.served_by("GET", "/api/schemes/minimal") == workers, server.log()

        # 3. a worker restarted while the directory is broken serves the rule set in force
        scheme_file.write_text("id: minimal\ntitle: [unclosed\n", encoding="utf-8")
        victim = sorted(workers)[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = server.worker_pids()
            if len(now) == 2 and victim not in now:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"gunicorn did not replace the killed worker:\n{server.log()}")
        replacement = (now - workers).pop()
        health = []
        while replacement not in server.served_by(
            "GET", "/api/health"
        ):  # it answers once it has started
            assert time.monotonic() < deadline, server.log()
            health += _in_parallel(lambda: server.request("GET", "/api/health")[1], rounds=2)
        health += _in_parallel(lambda: server.request("GET", "/api/health")[1], rounds=2)
        assert {(h["rule_set"], h["schemes"]) for h in health} == {(published, 1)}
        assert "规则目录有错误，未加载；继续使用当前发布的规则" in server.log_path.read_text(
            encoding="utf-8"
        )
        assert {
            server.request("GET", "/api/schemes/minimal", headers=auth)[1]["version"]
            for _ in range(6)
        } == {second}
    finally:
        server.kill()
