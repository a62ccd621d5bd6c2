"""The job page of the admin pages, without a browser: the ranking page's 重算正式得分 starts the
job and goes to its page; the page draws the progress as a bar (SVG) with its counts and per-unit
failures, follows the job (a script polling its JSON every second; a meta refresh without
script) and, the job being rows of the database, shows the same after a reload; an admin cancels
there; who may not read jobs gets 403.  Workers are stepped by hand (the test app runs none)."""

from __future__ import annotations

import re
import time

import pytest

from service import jobs, rounds
from service.access import Actor
from service.cli import read_facts_file
from service.config import PROJECT_ROOT

from .conftest import SCHEME, csrf_token, round_of, self_submit, sign_in

EXAMPLES = read_facts_file(PROJECT_ROOT / "examples" / f"{SCHEME}.yaml")


def _actor(app, username):
    from service.db import User

    with app.extensions["scoring"].db.transaction() as s:
        user = s.query(User).filter_by(username=username).one()
    return Actor(user.id, user.username, user.role, user.unit_id)


def _bar(page: str) -> tuple[str, str, str]:
    """(items handled, done bar width, failed bar width) as the page draws them."""
    handled = re.search(r'role="progressbar"[^>]*aria-valuenow="(\d+)"', page, re.S)
    done = re.search(r'width="([\d.]+)" height="28" fill="#23804a"', page)
    failed = re.search(r'width="([\d.]+)" height="28" fill="#b3261e"', page)
    assert handled and done and failed, page[:2000]
    return handled.group(1), done.group(1), failed.group(1)


@pytest.fixture(scope="module")
def submitted(app):
    ctx = app.extensions["scoring"]
    reviewer = _actor(app, "reviewer")
    for code, name in (("dachang", "大场镇"), ("bsip", "宝山工业园区")):
        self_submit(app, code, SCHEME, EXAMPLES[name])  # reviewed: what the job recomputes
        rounds.complete_review(ctx, reviewer, round_of(app, SCHEME), code)
    return ctx


def test_the_ranking_page_starts_a_recompute_whose_page_follows_it(app, client, submitted):
    ctx = submitted
    sign_in(client, "reviewer")
    ranking = client.get(f"/admin/schemes/{SCHEME}/ranking")
    assert ranking.status_code == 200 and 'id="recompute-all"' in ranking.text
    assert "重算正式得分" in ranking.text
    started = client.post(
        f"/admin/schemes/{SCHEME}/recompute", data={"csrf_token": csrf_token(ranking.text)}
    )
    assert started.status_code == 302
    path = started.headers["Location"]
    job_id = int(path.rsplit("/", 1)[1])

    page = client.get(path)
    assert page.status_code == 200
    assert "按本轮规则重算已评审单位的正式得分" in page.text and "排队中" in page.text
    assert "已开始重算：共 2 个单位" in page.text
    assert _bar(page.text) == ("0", "0.0", "0.0")
    # it follows the job: a script polls the JSON; without script, the page refreshes itself
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in page.text
    assert f'data-url="/admin/jobs/{job_id}.json"' in page.text
    assert 'data-finished="no"' in page.text and "/admin/static/job.js" in page.text
    script = client.get("/admin/static/job.js")
    assert script.status_code == 200 and "fetch(url" in script.text and "1000" in script.text

    # one unit done: the JSON the script reads and the page after a reload agree
    jobs.Worker(ctx).run_once(limit=1)
    polled = client.get(f"/admin/jobs/{job_id}.json")
    assert polled.status_code == 200 and polled.is_json
    assert (polled.json["state"], polled.json["done"], polled.json["total"]) == ("running", 1, 2)
    assert polled.json["percent"] == 50 and polled.json["failures"] == []
    assert _bar(client.get(path).text) == ("1", "500.0", "0.0")

    # finished: the whole bar, no refresh, no polling, and the job's summary
    jobs.Worker(ctx).run_once()
    done = client.get(path).text
    assert _bar(done) == ("2", "1000.0", "0.0") and "已完成" in done
    assert "http-equiv" not in done and 'data-finished="yes"' in done
    assert "中断后由其他进程接续 1 次" in done  # the second worker resumed what the first left
    assert 'id="cancel-job"' not in done
    listed = client.get("/admin/jobs")
    assert listed.status_code == 200 and f'href="/admin/jobs/{job_id}"' in listed.text
    assert "<progress" in listed.text


def test_failures_are_listed_by_unit_and_an_admin_cancels(app, client, submitted):
    ctx = submitted
    admin = _actor(app, "admin")
    # an item that cannot be done (here: its unit is no longer found) is listed by name and reason
    job = jobs.start_job(ctx, admin, "scores.recompute", {"scheme": SCHEME})
    worker = jobs.Worker(ctx)
    claimed = worker.claim()
    with ctx.db.transaction() as s:
        from service.db import JobItem

        s.query(JobItem).filter_by(job_id=job["id"], key="bsip").update({"key": "gone"})
    assert worker.run(claimed) == "done"
    sign_in(client, "auditor")
    page = client.get(f"/admin/jobs/{job['id']}")
    assert page.status_code == 200
    assert _bar(page.text) == ("2", "500.0", "500.0")
    failures = page.text.split('id="job-failures"')[1].split("</tbody>")[0]
    assert "宝山工业园区" in failures and "没有代码为“gone”的单位" in failures

    # a queued job: the admin sees 取消任务, the auditor does not; cancelled, it says by whom
    queued = jobs.start_job(ctx, admin, "scores.recompute", {"scheme": SCHEME})
    url = f"/admin/jobs/{queued['id']}"
    assert 'id="cancel-job"' not in client.get(url).text
    client = app.test_client()  # another browser
    sign_in(client, "admin")
    page = client.get(url)
    assert 'id="cancel-job"' in page.text
    cancelled = client.post(f"{url}/cancel", data={"csrf_token": csrf_token(page.text)})
    assert cancelled.status_code == 302
    after = client.get(url).text
    assert "已取消" in after and "由 admin 取消" in after and "http-equiv" not in after


def test_who_may_not_read_jobs_gets_403(app, client, submitted):
    job = jobs.start_job(submitted, _actor(app, "admin"), "scores.recompute", {"scheme": SCHEME})
    sign_in(client, "submitter")
    assert client.get(f"/admin/jobs/{job['id']}").status_code == 403
    assert client.get(f"/admin/jobs/{job['id']}.json").status_code == 403
    client = app.test_client()
    sign_in(client, "editor")
    assert client.get("/admin/jobs").status_code == 403
    ranking = client.get(f"/admin/schemes/{SCHEME}/ranking")
    assert ranking.status_code == 200 and 'id="recompute-all"' not in ranking.text
    refused = client.post(
        f"/admin/schemes/{SCHEME}/recompute", data={"csrf_token": csrf_token(ranking.text)}
    )
    assert refused.status_code == 403
    jobs.cancel_job(
        submitted, _actor(app, "admin"), job["id"]
    )  # the next test's worker takes the oldest


@pytest.mark.e2e
def test_in_a_browser_the_bar_moves_without_a_reload(app, submitted):
    """Headless Chromium on the job page while a worker runs slowly (2.5 s an item): the bar and the
    counts change in place (the same document, its script polling), and the page ends finished."""
    import os
    import threading

    from tools.browser import CHROMIUM, chromium, serve
    from tools.browser import sign_in as browser_sign_in

    from .conftest import PASSWORD

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing")
    ctx = submitted
    with serve(app) as base, chromium() as context:
        page = context.new_page()
        page.on("dialog", lambda d: d.accept())
        browser_sign_in(page, base, "reviewer", PASSWORD)
        page.goto(f"{base}/admin/schemes/{SCHEME}/ranking")
        page.click("#recompute-all button")
        page.wait_for_url("**/admin/jobs/*")
        assert page.inner_text("#job-state") == "排队中"
        page.evaluate("window.stayed = true")  # gone if the page reloads
        worker = jobs.Worker(ctx, pause=2.5)
        thread = threading.Thread(target=worker.run_once, daemon=True)
        thread.start()
        deadline = time.monotonic() + 15  # polled from here: the page's CSP forbids eval
        while page.inner_text("#job-done") != "1" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert page.inner_text("#job-done") == "1"
        assert page.evaluate("window.stayed") is True  # updated in place
        assert page.get_attribute("#job-bar-done", "width") == "500.0"
        assert page.inner_text("#job-state") == "运行中"
        thread.join(30)
        page.wait_for_selector("#job[data-finished='yes']", timeout=15000)
        assert page.inner_text("#job-state") == "已完成"
        assert page.get_attribute("#job-bar-done", "width") == "1000.0"


def test_nothing_to_recompute_says_so_on_the_ranking_page(app, client, submitted):
    """A scheme no unit has submitted yet: the button explains on the ranking page, not on an
    error page titled as if someone else had changed the data."""
    sign_in(client, "reviewer")
    ranking = client.get("/admin/schemes/gumeilu-2022/ranking")
    answer = client.post(
        "/admin/schemes/gumeilu-2022/recompute", data={"csrf_token": csrf_token(ranking.text)}
    )
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith("/admin/schemes/gumeilu-2022/ranking")
    shown = client.get(answer.headers["Location"]).text
    assert "这套细则最新的考核轮次还没有已评审的单位，没有可以重算的正式得分" in shown
