"""The service for real: gunicorn as its own process group on 127.0.0.1 and a free port.

Every wait is bounded, and ``kill`` takes the master, its workers and their
durable-rules processes with one SIGKILL of the process group.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")
START_TIMEOUT = 60.0  # seconds for the server to answer /api/health
REQUEST_TIMEOUT = 20.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """gunicorn with ``workers`` sync workers, each logging the requests it serves under its pid."""

    def __init__(
        self, workdir: Path, url: str, pause: float = 0.0, workers: int = 1, env: dict | None = None
    ):
        self.workdir, self.url, self.pause, self.workers = workdir, url, pause, workers
        self.extra_env = env or {}
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.log_path = workdir / f"server-{uuid.uuid4().hex[:6]}.log"

    def start(self) -> Server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCORING_")}
        env.update(
            SCORING_INSTANCE_DIR=str(self.workdir / "instance"),
            SCORING_DATABASE_URL=self.url,
            SCORING_ENGINE_WORKERS="1",
            SCORING_SECRET_KEY="crash-test",
            PYTHONUNBUFFERED="1",
        )
        if self.pause:
            env["SCORING_TEST_PAUSE_IN_SUBMIT"] = str(self.pause)
        env.update(self.extra_env)
        env = {k: v for k, v in env.items() if v is not None}  # None: leave unset
        for _attempt in range(3):  # the free port may be taken between choosing and binding it
            self.port = _free_port()
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    [
                        str(GUNICORN),
                        "--workers",
                        str(self.workers),
                        "--bind",
                        f"127.0.0.1:{self.port}",
                        "--timeout",
                        "60",
                        "--graceful-timeout",
                        "1",
                        "--log-level",
                        "info",
                        "--access-logfile",
                        "-",
                        "--access-logformat",
                        "served-by %(p)s %(m)s %(U)s %(s)s",
                        "wsgi:app",
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )  # its own process group: one SIGKILL takes master and workers
            if self._wait_ready():
                return self
            self.kill()
        raise AssertionError(f"the server did not start; its log:\n{self.log()}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                status, _body = self.request("GET", "/api/health", timeout=2)
                if status == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.1)
        return False

    def request(
        self, method: str, path: str, body=None, headers=None, timeout: float = REQUEST_TIMEOUT
    ):
        """(status, JSON body or None), on a connection of its own."""
        status, _headers, data = self.raw(
            method,
            path,
            json.dumps(body, ensure_ascii=False).encode() if body is not None else None,
            {"Content-Type": "application/json", **(headers or {})},
            timeout,
        )
        return status, (json.loads(data) if data else None)

    def raw(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers=None,
        timeout: float = REQUEST_TIMEOUT,
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.headers, response.read()
        finally:
            conn.close()

    def served_by(self, method: str, path: str) -> set[int]:
        """pids of the workers that served ``method path`` so far (from the access log)."""
        found = set()
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split()
            if (
                len(parts) >= 5
                and parts[0] == "served-by"
                and parts[2] == method
                and parts[3] == path
            ):
                found.add(int(parts[1].strip("<>")))  # gunicorn writes the pid as <1234>
        return found

    def worker_pids(self) -> set[int]:
        """The gunicorn workers (the master's children; their durable-rules processes are grandchildren)."""
        import psutil

        return {p.pid for p in psutil.Process(self.proc.pid).children()}

    def kill(self) -> None:
        """SIGKILL the whole process group (master, workers, anything they started); wait for it to be gone."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
            self.proc.kill()
            self.proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the workers are gone too, not only the master
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:  # pragma: no cover
            raise AssertionError("processes of the killed server are still alive")

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:]
        except OSError:
            return ""
