"""Serving the app on 127.0.0.1 in a thread and driving Debian's Chromium with Playwright.

Used by the screenshots command and the end-to-end tests.  The browser is
always ``/usr/bin/chromium`` (Debian's package; no browser is downloaded), on a
fresh profile, with the launch flags this machine needs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading

from werkzeug.serving import make_server

CHROMIUM = os.environ.get("SCORING_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1366, "height": 768}


@contextlib.contextmanager
def serve(app):
    """The app on http://127.0.0.1:<free port>, served by a werkzeug thread; yields the base URL."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="admin-test-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


@contextlib.contextmanager
def chromium():
    """A Playwright browser context on Debian's Chromium with a fresh user-data-dir (Chinese locale, 1366×768)."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                args=FLAGS,
                viewport=VIEWPORT,
                locale="zh-CN",
                timezone_id="Asia/Shanghai",
                accept_downloads=True,
            )
            context.set_default_timeout(15_000)
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def sign_in(page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/admin/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def sign_out(page) -> None:
    page.click("header .me button")
    page.wait_for_load_state()
