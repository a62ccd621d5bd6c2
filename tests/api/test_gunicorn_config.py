"""The service's gunicorn settings (gunicorn.conf.py, read by gunicorn started in the project's
folder with no ``-c``), for real: every worker, once its application is loaded, freezes what
it holds (``gc.freeze``), so the cyclic collector's full collections no longer walk the
application's few hundred thousand long-lived objects (164-519 ms each, measured, every few
thousand answers; 0.4 ms frozen), and the worker serves as before."""

from __future__ import annotations

import re
import time

import pytest

from service.commands import upgrade

from .servers import Server

pytestmark = pytest.mark.e2e  # real gunicorn workers: `pytest -m "not e2e"` leaves it out

_FROZE = re.compile(r"\[(\d+)\] \[INFO\] froze (\d+) objects of the worker's start")


def test_every_worker_freezes_its_start_and_serves(tmp_path):
    url = f"sqlite:///{tmp_path / 'scoring.db'}"
    upgrade(url)
    server = Server(tmp_path, url, workers=2)
    try:
        server.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the second worker may start after the first answers
            froze = {
                int(pid): int(n)
                for pid, n in _FROZE.findall(server.log_path.read_text(errors="replace"))
            }
            if len(froze) == 2:
                break
            time.sleep(0.1)
        assert set(froze) == server.worker_pids(), server.log()
        # the modules, the Flask app and the six shipped schemes: well over 100,000 objects each
        assert all(n > 100_000 for n in froze.values()), froze
        status, body = server.request("GET", "/api/health")
        assert status == 200 and body["schemes"] >= 6
    finally:
        server.kill()
