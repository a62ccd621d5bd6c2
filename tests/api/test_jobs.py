"""Background jobs (service/jobs.py), on SQLite and on PostgreSQL: the first kind (recompute the
official score of every reviewed unit of a scheme's newest round) through the API with its progress and per-unit failures; claims and leases
(two workers racing for one job, a stalled worker losing its job and writing nothing, a worker
process SIGKILLed mid-job and another finishing it with every item done once); cancel; a kind
or an item that breaks; paging; and a job queued in a process waking that process's worker.

Workers are stepped by hand here (``Worker.run_once`` / ``run``): the test apps run none of
their own (``Settings.job_workers`` is 0 unless asked)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from service import jobs
from service.access import Actor
from service.db import Job, JobItem, JournalEntry, Score, Unit

from ..unit.test_scoring import FULL
from .conftest import make_api

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = "gumeilu-2022"
SHIPPED_FACTS = {"leader_evaluation_score": 4.5, "leader_evaluation_reason": "工作扎实"}


def _submit(api, unit: str, scheme: str, facts: dict) -> None:
    """A unit's self-assessment (entered by the admin) with its review completed: what the job
    recomputes official scores of."""
    made = api.post(
        f"/api/units/{unit}/schemes/{scheme}/submissions",
        "admin",
        json={"role": "self", "facts": facts},
    )
    assert made.status_code == 201, made.json
    done = api.post(f"/api/rounds/{api.round_of(scheme)}/units/{unit}/review-complete", "reviewer")
    assert done.status_code == 200, done.json


def _scores(api, scheme: str) -> dict[str, int]:
    """unit code -> how many scores of ``scheme`` it has."""
    with api.ctx.db.transaction() as s:
        return dict(
            s.execute(
                select(Unit.code, func.count(Score.id))
                .join(Score, Score.unit_id == Unit.id)
                .where(Score.scheme_id == scheme)
                .group_by(Unit.code)
            ).all()
        )


def _journal(api, since: int = 0) -> list[JournalEntry]:
    with api.ctx.db.transaction() as s:
        return list(
            s.scalars(
                select(JournalEntry)
                .where(JournalEntry.id > since, JournalEntry.action.startswith("jobs."))
                .order_by(JournalEntry.id)
            )
        )


def _actor(api, username: str) -> Actor:
    from service.db import User

    with api.ctx.db.transaction() as s:
        user = s.scalar(select(User).where(User.username == username))
    return Actor(user.id, user.username, user.role, user.unit_id)


def _start(api, scheme: str = SHIPPED, as_: str = "reviewer") -> dict:
    started = api.post(
        "/api/jobs", as_, json={"kind": "scores.recompute", "params": {"scheme": scheme}}
    )
    assert started.status_code == 201, started.json
    return started.json


# --- the first kind, through the API ------------------------------------------------------------


def test_recompute_every_unit_with_progress_and_failures_per_unit(api_on_copy):
    api = api_on_copy
    _submit(api, "gucun", "minimal", {**FULL, "awards": 50})
    _submit(api, "dachang", "minimal", {**FULL, "awards": 1})
    # 宝山工业园区 never submitted and is not an item
    before = _journal(api)[-1].id if _journal(api) else 0

    job = _start(api, "minimal")
    # after the job was started, a reviewer reopens 顾村镇's review: its item cannot give it an
    # official score any more (only a reviewed version may), and fails alone
    reopened = api.post(
        f"/api/rounds/{api.round_of('minimal')}/units/gucun/reopen", "reviewer",
        json={"reason": "复核获奖证书"},
    )  # fmt: skip
    assert reopened.status_code == 200, reopened.json
    assert (job["state"], job["total"], job["done"], job["failed"], job["percent"]) == (
        "queued", 2, 0, 0, 0,
    )  # fmt: skip
    assert (job["kind"], job["created_by"], job["params"]) == (
        "scores.recompute", "reviewer", {"scheme": "minimal"},
    )  # fmt: skip
    url = f"/api/jobs/{job['id']}"

    # one item, then the worker hands the job back: any reader sees it half done
    assert jobs.Worker(api.ctx).run_once(limit=1) is True
    half = api.get(url, "auditor").json
    assert (half["state"], half["done"] + half["failed"], half["total"], half["percent"]) == (
        "running", 1, 2, 50,
    )  # fmt: skip
    assert half["started_at"] and half["finished_at"] is None and half["claims"] == 1

    # another worker resumes it at the item not yet done
    assert jobs.Worker(api.ctx).run_once() is True
    ended = api.get(url, "auditor").json
    assert (ended["state"], ended["done"], ended["failed"], ended["remaining"]) == (
        "done", 1, 1, 0,
    )  # fmt: skip
    assert ended["percent"] == 100 and ended["finished"] and ended["claims"] == 2
    assert ended["result"] == {"done": 1, "failed": 1}
    (failure,) = ended["failures"]
    assert (failure["key"], failure["label"]) == ("gucun", "顾村镇")
    assert failure["message"].startswith("单位当前状态为“评审中”，不能计算正式得分")
    assert _scores(api, "minimal") == {"dachang": 1}  # 顾村镇's failure stored nothing

    entries = _journal(api, before)
    assert [(e.action, e.actor, e.outcome) for e in entries] == [
        ("jobs.start", "reviewer", "ok"),
        ("jobs.run", "（后台任务）", "ok"),
        ("jobs.run", "（后台任务）", "ok"),
        ("jobs.end", "（后台任务）", "ok"),
    ]
    assert {e.target for e in entries} == {f"job:{job['id']}/scheme:minimal"}
    assert {e.scheme for e in entries} == {"minimal"}  # the journal's scheme filter finds them
    assert [e.detail["resumed"] for e in entries[1:3]] == [False, True]
    assert (entries[-1].detail["done"], entries[-1].detail["failed"]) == (1, 1)
    # the score an item wrote is the starter's, journaled as any score is
    with api.ctx.db.transaction() as s:
        writes = s.scalars(
            select(JournalEntry).where(
                JournalEntry.action == "scores.write", JournalEntry.id > before
            )
        ).all()
    assert [(e.actor, e.unit) for e in writes] == [("reviewer", "dachang")]


def test_a_job_with_wrong_parameters_is_refused_whole(api):
    def post(body, as_="reviewer"):
        return api.post("/api/jobs", as_, json=body)

    unknown = post({"kind": "scores.replay-everything"})
    assert unknown.status_code == 422 and "scores.recompute" in str(unknown.json["error"]["fields"])
    missing = post({"kind": "scores.recompute"})
    assert missing.status_code == 422 and "params.scheme" in missing.json["error"]["fields"]
    nowhere = post({"kind": "scores.recompute", "params": {"scheme": "nowhere"}})
    assert nowhere.status_code == 422 and "params.scheme" in nowhere.json["error"]["fields"]
    empty = post({"kind": "scores.recompute", "params": {"scheme": SHIPPED}})
    assert empty.status_code == 409 and "没有可以重算" in empty.json["error"]["message"]
    no_kind = post({"params": {}})
    assert no_kind.status_code == 422 and "kind" in no_kind.json["error"]["fields"]
    # who may not start it is refused before anything about the job is looked at
    _submit(api, "gucun", SHIPPED, SHIPPED_FACTS)
    refused = post({"kind": "scores.recompute", "params": {"scheme": SHIPPED}}, "submitter")
    assert refused.status_code == 403
    assert api.get("/api/jobs", "submitter").status_code == 403
    with api.ctx.db.transaction() as s:
        assert s.scalar(select(func.count(Job.id))) == 0
        assert s.scalar(select(func.count(JobItem.id))) == 0


# --- claims and leases ----------------------------------------------------------------------------


def _race(worker, barrier, won: list) -> None:
    barrier.wait()  # every worker claims at the same moment
    claimed = worker.claim()
    if claimed is not None:
        won.append((worker.owner, claimed.id))


def test_workers_racing_for_a_job_claim_it_once(api):
    _submit(api, "gucun", SHIPPED, SHIPPED_FACTS)
    for _round in range(3):
        job = _start(api)
        workers = [jobs.Worker(api.ctx) for _ in range(4)]
        barrier = threading.Barrier(len(workers))
        won: list = []
        threads = [threading.Thread(target=_race, args=(w, barrier, won)) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(won) == 1 and won[0][1] == job["id"], won
        seen = api.get(f"/api/jobs/{job['id']}", "admin").json
        assert (seen["state"], seen["lease_owner"], seen["claims"]) == ("running", won[0][0], 1)


@pytest.fixture
def counting_kind():
    """A kind of job for the machinery alone: ``n`` items; an item named in ``break`` raises an
    unexpected error, and a job with ``broken`` set cannot go on at all."""
    calls: list = []
    lock = threading.Lock()

    def run_item(run, params, key):
        with lock:
            calls.append((run.job_id, key))
        time.sleep(float(params.get("sleep", 0)))  # JSON numbers read back as exact decimals
        if params.get("broken"):
            raise jobs.KindBroken("所依据的数据已撤回，任务无法继续")
        if key in params.get("break", []):
            raise RuntimeError("boom")
        return {"key": key}

    kind = jobs.register(
        jobs.Kind(
            name="test.count",
            title="测试任务",
            permission="scores.recompute",
            check=lambda ctx, params: params,
            items=lambda ctx, params: [(f"k{n}", f"第{n}项") for n in range(1, params["n"] + 1)],
            run_item=run_item,
            target=lambda params: "test",
            summarize=lambda results: {"keys": [r["key"] for r in results]},
        )
    )
    yield calls
    jobs.KINDS.pop(kind.name)


def test_two_workers_sharing_the_queue_do_every_item_once(api, counting_kind):
    started = [
        jobs.start_job(api.ctx, _actor(api, "admin"), "test.count", {"n": 6, "sleep": 0.005})
        for _ in range(3)
    ]

    def work(worker):
        while worker.run_once():
            pass

    threads = [threading.Thread(target=work, args=(jobs.Worker(api.ctx),)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    expected = sorted((job["id"], f"k{n}") for job in started for n in range(1, 7))
    assert sorted(counting_kind) == expected  # every item run, none twice
    for job in started:
        seen = jobs.peek(api.ctx, job["id"])
        assert (seen["state"], seen["done"], seen["claims"]) == ("done", 6, 1)
        assert seen["result"]["keys"] == [f"k{n}" for n in range(1, 7)]


def test_a_stalled_worker_loses_its_job_and_its_item_is_not_written(api):
    for unit in ("gucun", "dachang", "bsip"):
        _submit(api, unit, SHIPPED, SHIPPED_FACTS)
    job = _start(api)
    stalled = jobs.Worker(api.ctx, lease_seconds=0.3)
    taken = stalled.claim()
    assert taken is not None
    other = jobs.Worker(api.ctx, lease_seconds=30)
    assert other.claim() is None  # the lease is live: nobody else may take it
    time.sleep(0.4)  # the stalled worker renews nothing: its lease runs out
    resumed = other.claim()
    assert resumed is not None and resumed.claims == 2
    # the stalled worker wakes up and tries its first item: the score is rolled back with it
    assert stalled.run(taken) == "lost"
    assert _scores(api, SHIPPED) == {}
    assert other.run(resumed) == "done"
    assert _scores(api, SHIPPED) == {"gucun": 1, "dachang": 1, "bsip": 1}
    seen = api.get(f"/api/jobs/{job['id']}", "auditor").json
    assert (seen["state"], seen["done"], seen["claims"]) == ("done", 3, 2)


def test_an_admin_cancels_a_running_job_and_its_worker_stops(api):
    for unit in ("gucun", "dachang"):
        _submit(api, unit, SHIPPED, SHIPPED_FACTS)
    job = _start(api)
    url = f"/api/jobs/{job['id']}/cancel"
    worker = jobs.Worker(api.ctx)
    claimed = worker.claim()
    assert api.post(url, "reviewer").status_code == 403  # only an admin cancels
    assert api.post("/api/jobs/999999/cancel", "admin").status_code == 404
    cancelled = api.post(url, "admin")
    assert cancelled.status_code == 200, cancelled.json
    assert (cancelled.json["state"], cancelled.json["cancelled_by"]) == ("cancelled", "admin")
    assert cancelled.json["finished_at"] is not None
    assert worker.run(claimed) == "lost"  # its next item finds the job gone, and writes nothing
    assert _scores(api, SHIPPED) == {}
    again = api.post(url, "admin")
    assert again.status_code == 409 and again.json["error"]["message"] == "任务已取消，不能再取消"
    assert worker.run_once() is False  # a cancelled job is never claimed again
    denied, entry = [e for e in _journal(api) if e.action == "jobs.cancel"]
    assert (denied.actor, denied.outcome) == ("reviewer", "denied")
    assert (entry.actor, entry.outcome, entry.detail["was"]) == ("admin", "ok", "running")


def test_an_item_that_breaks_is_listed_and_a_kind_that_breaks_fails_the_job(api, counting_kind):
    admin = _actor(api, "admin")
    items = jobs.start_job(api.ctx, admin, "test.count", {"n": 3, "break": ["k2"]})
    broken = jobs.start_job(api.ctx, admin, "test.count", {"n": 3, "broken": True})
    worker = jobs.Worker(api.ctx)
    assert worker.run_once() and worker.run_once()

    first = api.get(f"/api/jobs/{items['id']}", "admin").json
    assert (first["state"], first["done"], first["failed"]) == ("done", 2, 1)
    (failure,) = first["failures"]
    assert failure["label"] == "第2项" and "服务内部错误（事件编号" in failure["message"]

    second = api.get(f"/api/jobs/{broken['id']}", "admin").json
    assert (second["state"], second["error"]) == ("failed", "所依据的数据已撤回，任务无法继续")
    ends = [e for e in _journal(api) if e.action == "jobs.end"]
    assert [(e.outcome, e.detail["state"]) for e in ends] == [("ok", "done"), ("failed", "failed")]


def test_jobs_are_listed_newest_first_in_pages(api, counting_kind):
    admin = _actor(api, "admin")
    made = [jobs.start_job(api.ctx, admin, "test.count", {"n": 1})["id"] for _ in range(3)]
    first = api.get("/api/jobs?limit=2", "auditor")
    assert first.status_code == 200
    assert [j["id"] for j in first.json] == made[::-1][:2]
    assert "failures" not in first.json[0]
    rest = api.get(f"/api/jobs?limit=2&cursor={first.headers['X-Next-Cursor']}", "auditor")
    assert [j["id"] for j in rest.json] == made[:1] and "X-Next-Cursor" not in rest.headers
    assert api.get("/api/jobs?state=nonsense", "auditor").status_code == 422
    queued = api.get("/api/jobs?state=queued&kind=test.count", "auditor").json
    assert len(queued) == 3


def test_a_job_queued_in_a_process_wakes_its_worker_at_once(api):
    _submit(api, "gucun", SHIPPED, SHIPPED_FACTS)
    runner = jobs.Runner(
        api.ctx, threads=1, poll_seconds=60
    )  # it would not look again for a minute
    runner.ensure_started()
    try:
        time.sleep(0.2)  # the worker has looked, found nothing, and sleeps
        sent = time.monotonic()
        job = _start(api)
        while time.monotonic() - sent < 20:
            if api.get(f"/api/jobs/{job['id']}", "admin").json["state"] == "done":
                break
            time.sleep(0.05)
        assert api.get(f"/api/jobs/{job['id']}", "admin").json["state"] == "done"
        assert time.monotonic() - sent < 10
    finally:
        runner.stop()


# --- a worker process killed in the middle of a job -------------------------------------------------


def _worker_process(url: str, tmp_path: Path, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCORING_")}
    env.update(
        SCORING_DATABASE_URL=url,
        SCORING_INSTANCE_DIR=str(tmp_path / "instance"),
        SCORING_ENGINE_WORKERS="1",
        SCORING_SECRET_KEY="jobs-test",
        PYTHONUNBUFFERED="1",
    )
    log = open(tmp_path / f"worker-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "run", "--until-empty", *args],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the kill takes its engine process too
    )


def _kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


@pytest.mark.e2e
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_worker_killed_mid_job_is_finished_by_another_each_item_once(tmp_path, engine, database):
    api = make_api(tmp_path, database, engine)
    url = api.ctx.db.url
    units = ["gucun", "dachang", "bsip"]
    for n in range(1, 6):
        made = api.post(
            "/api/units",
            "admin",
            json={"code": f"u{n}", "name": f"测试镇{n}", "kind": "town", "district": "宝山区"},
        )
        assert made.status_code == 201, made.json
        units.append(f"u{n}")
    for unit in units:
        _submit(api, unit, SHIPPED, SHIPPED_FACTS)
    job = _start(api)
    processes = []
    try:
        # the first worker goes slowly (0.4 s after each item) and is killed after its third
        first = _worker_process(url, tmp_path, "--lease", "2", "--pause-per-item", "0.4")
        processes.append(first)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and jobs.peek(api.ctx, job["id"])["done"] < 3:
            assert first.poll() is None, "the first worker ended before it was killed"
            time.sleep(0.05)
        _kill(first)
        halfway = jobs.peek(api.ctx, job["id"])
        assert halfway["state"] == "running" and 3 <= halfway["done"] < len(units)
        assert sum(_scores(api, SHIPPED).values()) == halfway["done"]

        # another worker takes the job over once the dead one's lease has run out, and finishes it
        second = _worker_process(url, tmp_path, "--lease", "2")
        processes.append(second)
        assert second.wait(90) == 0
        ended = jobs.peek(api.ctx, job["id"])
        assert (ended["state"], ended["done"], ended["failed"], ended["claims"]) == (
            "done", len(units), 0, 2,
        )  # fmt: skip
        assert _scores(api, SHIPPED) == dict.fromkeys(units, 1)  # each unit scored once
        runs = [e for e in _journal(api) if e.action == "jobs.run"]
        assert [e.detail["resumed"] for e in runs] == [False, True]
        assert runs[0].detail["worker"] != runs[1].detail["worker"]
        assert runs[1].detail["done"] == halfway["done"]  # resumed where the dead one stopped
        with api.ctx.db.transaction() as s:
            writes = s.scalar(
                select(func.count(JournalEntry.id)).where(JournalEntry.action == "scores.write")
            )
        assert writes == len(units)
    finally:
        for process in processes:
            _kill(process)
        api.ctx.db.engine.dispose()


@pytest.mark.e2e
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_gunicorn_workers_run_a_job_started_through_the_api_once(tmp_path, engine, database):
    """The service as deployed (gunicorn, two workers, SCORING_JOB_WORKERS unset: one job thread in
    each): a job started through the API is run by one of them, without any separate worker."""
    from .servers import Server

    api = make_api(tmp_path, database, engine)
    units = ("gucun", "dachang", "bsip")
    for unit in units:
        _submit(api, unit, SHIPPED, SHIPPED_FACTS)
    server = Server(tmp_path, api.ctx.db.url, workers=2).start()
    try:
        auth = {"Authorization": f"Bearer {api.tokens['reviewer']}"}
        status, job = server.request(
            "POST", "/api/jobs", {"kind": "scores.recompute", "params": {"scheme": SHIPPED}}, auth
        )
        assert status == 201, job
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, seen = server.request("GET", f"/api/jobs/{job['id']}", None, auth)
            if seen["finished"]:
                break
            time.sleep(0.1)
        assert (seen["state"], seen["done"], seen["claims"]) == ("done", 3, 1), server.log()
        assert _scores(api, SHIPPED) == dict.fromkeys(units, 1)
        assert [e.action for e in _journal(api)] == ["jobs.start", "jobs.run", "jobs.end"]
        assert "Traceback" not in server.log()
    finally:
        server.kill()
        api.ctx.db.engine.dispose()


def test_a_stopping_process_hands_its_job_over_at_once(api, counting_kind):
    """A service process that stops (gunicorn restarting a worker, a deploy) finishes the item in
    hand and gives its job back: another worker resumes it now, not after the lease."""
    job = jobs.start_job(api.ctx, _actor(api, "admin"), "test.count", {"n": 30, "sleep": 0.05})
    runner = jobs.Runner(api.ctx, threads=1, poll_seconds=60)
    runner.ensure_started()
    deadline = time.monotonic() + 20
    while jobs.peek(api.ctx, job["id"])["done"] < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    runner.stop(wait=10)
    handed = jobs.peek(api.ctx, job["id"])
    assert handed["state"] == "running" and 2 <= handed["done"] < 30
    taken = jobs.Worker(api.ctx).claim()  # at once: the lease was given back
    assert taken is not None and taken.claims == 2


def test_a_job_fails_whole_when_its_starter_is_disabled_or_it_keeps_dying(api, counting_kind):
    from service.access import set_user_enabled

    # the items' writes would be the starter's: a disabled account's job does not go on
    _submit(api, "gucun", SHIPPED, SHIPPED_FACTS)
    job = _start(api)  # by the reviewer
    set_user_enabled(api.ctx.db, _actor(api, "admin"), "reviewer", False)
    assert jobs.Worker(api.ctx).run_once()
    seen = jobs.peek(api.ctx, job["id"])
    assert (seen["state"], seen["done"]) == ("failed", 0)
    assert seen["error"] == "发起任务的账号已停用或已删除，任务不能以其名义继续"
    assert _scores(api, SHIPPED) == {}

    # a job that every worker dies in (its lease run out again and again) stops being taken over
    looping = jobs.start_job(api.ctx, _actor(api, "admin"), "test.count", {"n": 2})
    with api.ctx.db.transaction() as s:
        s.get(Job, looping["id"]).claims = jobs.MAX_CLAIMS
    assert jobs.Worker(api.ctx).run_once()
    seen = jobs.peek(api.ctx, looping["id"])
    assert (seen["state"], seen["claims"], seen["done"]) == ("failed", jobs.MAX_CLAIMS + 1, 0)
    assert seen["error"].startswith(f"任务已被接手{jobs.MAX_CLAIMS}次仍未完成")
    assert counting_kind == []  # no item was run
