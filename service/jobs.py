"""Background jobs: bulk actions (recompute every unit's score, replay a round…) that run item by
item, on any host, with their progress in the database.

A job is rows, never a host's memory: ``jobs`` (its kind, parameters, state, counts, timing and
lease) and ``job_items`` (one per unit or score, pending until done or failed).  Any host shows
any job's progress, and a job outlives the host that ran it:

- **Claiming.** A worker takes the oldest job that is queued, or running under a lease that ran
  out (its host died), with one conditional ``UPDATE … WHERE id = … AND (queued OR lease
  expired) RETURNING`` (SQLite 3.35+ and PostgreSQL alike): of two workers racing for a job the
  database lets exactly one match, so two gunicorn workers or two hosts never run a job at once.
  An idle worker only reads (one indexed SELECT per poll) and never takes a write lock.
- **Leases.** The worker renews its lease (``lease_until``) as it goes, at least every third of
  the lease; a worker that finds its lease gone (cancelled, or taken over after a stall) stops.
- **Items exactly once.** An item is marked done in the same transaction as its own write (the
  score it computes), by an UPDATE that matches only while the item is pending and this worker
  holds the job; if it matches nothing the whole transaction rolls back.  So an item is never
  done twice, not even by a worker that stalled past its lease while another took over, and a
  host killed mid-item leaves that item pending for whoever resumes the job.
- **Failures** of one item are recorded with a Chinese message and the job goes on; it ends
  ``done`` with its failures listed, or ``failed`` only when the kind itself cannot go on.
- **Kinds** are registered by name (``register``): how to check the parameters, which items,
  how to run one item, who may start it (a permission of ``service.access.PERMISSIONS``).

Every start, run (claim), cancel and end of a job is journaled.  A worker runs in every service
process (``Runner``, a daemon thread; ``SCORING_JOB_WORKERS``) or in the foreground
(``flask jobs run``); a job started in a process wakes that process's worker at once, the others
find it within ``POLL_SECONDS``.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import and_, exists, func, insert, or_, select, update

from . import operations as ops
from .access import Actor, check, journal
from .db import Job, JobItem, RoundUnit, Unit, User, now
from .exceptions import Conflict, Invalid, NotFound, ServiceError
from .roundstate import latest_round_of

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
STATES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)
FINISHED = (DONE, FAILED, CANCELLED)
STATE_WORDS = {
    QUEUED: "排队中",
    RUNNING: "运行中",
    DONE: "已完成",
    FAILED: "失败",
    CANCELLED: "已取消",
}
PENDING = "pending"  # an item not yet done or failed

LEASE_SECONDS = 30.0  # how long a job stays with a worker that stops renewing (a dead host)
POLL_SECONDS = 2.0  # how often an idle worker looks for work another process queued
BATCH = 20  # items read at a time
MAX_CLAIMS = 10  # a job taken over this often without finishing fails instead of looping
#: who the journal names for what a worker does (the items' own writes are the starter's)
WORKER = Actor(0, "（后台任务）", "system", None)
PAGE, PAGE_MAX = 50, 200
HANDOVER_SECONDS = 5.0  # how long an exiting process waits for its workers to give their jobs back


class LeaseLost(Exception):
    """This worker no longer holds the job: it was cancelled, or another worker took it over."""


class KindBroken(Exception):
    """Raised by a kind that cannot go on at all (not one item's fault): the job fails."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Kind:
    """What a kind of job is: ``check(ctx, params)`` the parameters as kept (raises ``Invalid``
    naming ``params.<name>``); ``items(ctx, params)`` the items as (key, label) in order;
    ``run_item(run, params, key)`` one item's work, its result (a dict for the job's record), or
    raises (a ``ServiceError``'s message is the item's failure); ``target(params)`` what the
    journal names; ``summarize(results)``, optional, what the job's summary adds at its end."""

    name: str
    title: str  # in Chinese, for the pages: 重算全部单位的最新得分
    permission: str  # who may start it: a name of service.access.PERMISSIONS
    check: Callable
    items: Callable
    run_item: Callable
    target: Callable
    summarize: Callable | None = None


KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    KINDS[kind.name] = kind
    return kind


@dataclass
class ItemRun:
    """One item being run: the context, who started the job (the item's writes are theirs), and
    ``complete`` to call inside the item's own write transaction."""

    ctx: ops.Context
    actor: Actor
    job_id: int
    item_id: int
    owner: str
    finished: bool = False

    def complete(self, session, result: dict | None = None) -> None:
        """Mark the item done in ``session``'s transaction, the one that makes the item's write;
        raises ``LeaseLost`` (rolling that write back) if the item is no longer this worker's."""
        _finish_item(session, self, DONE, result=result)
        self.finished = True


def _finish_item(session, run: ItemRun, state: str, result=None, message=None) -> None:
    table = JobItem.__table__
    held = exists().where(Job.id == run.job_id, Job.lease_owner == run.owner, Job.state == RUNNING)
    changed = session.execute(
        update(table)
        .where(table.c.id == run.item_id, table.c.state == PENDING, held)
        .values(state=state, result=result, message=message, finished_at=now())
    ).rowcount
    if changed != 1:
        raise LeaseLost(f"job {run.job_id}: item {run.item_id} is not this worker's any more")


# --- starting, reading and cancelling (the service layer of jobs) --------------------------------


def start_job(ctx: ops.Context, actor: Actor | None, kind_name: str, params: dict) -> dict:
    """Queue a job of ``kind_name`` (its items fixed now, so its total is known) and wake this
    process's worker.  Nothing is stored if the parameters are wrong or there is nothing to do."""
    kind = KINDS.get(kind_name)
    if kind is None:
        check(ctx.db, actor, "jobs.read", "jobs")  # a stranger learns nothing, not even the kinds
        raise Invalid(
            "unknown_job_kind",
            f"没有名为“{str(kind_name)[:50]}”的任务类型",
            {"kind": [f"可用：{'、'.join(sorted(KINDS))}"]},
        )
    check(ctx.db, actor, kind.permission, f"jobs/kind:{kind.name}")
    params = kind.check(ctx, params if isinstance(params, dict) else {})
    items = kind.items(ctx, params)
    target = kind.target(params)
    with ctx.db.transaction() as s:
        job = Job(
            kind=kind.name,
            params=params,
            target=target,
            state=QUEUED,
            total=len(items),
            done=0,
            failed=0,
            created_by=actor.user_id,
            claims=0,
        )
        s.add(job)
        s.flush()
        if items:
            rows = [
                {"job_id": job.id, "seq": n, "key": key, "label": label, "state": PENDING}
                for n, (key, label) in enumerate(items, 1)
            ]
            s.execute(insert(JobItem.__table__), rows)
        journal(
            s, actor, "jobs.start", f"job:{job.id}/{target}", "ok", kind=kind.name, total=len(items)
        )
        view = _view(s, job, failures=True)
    notify()
    return view


def read_job(ctx: ops.Context, actor: Actor | None, job_id: int) -> dict:
    """A job's state, progress, timing and failures, as any host sees it."""
    check(ctx.db, actor, "jobs.read", f"job:{job_id}")
    with ctx.db.transaction() as s:
        job = s.get(Job, job_id)
        if job is None:
            raise NotFound("unknown_job", f"没有编号为 {job_id} 的任务")
        return _view(s, job, failures=True)


def list_jobs(
    ctx: ops.Context,
    actor: Actor | None,
    limit: int = PAGE,
    cursor: int | None = None,
    kind: str | None = None,
    state: str | None = None,
) -> tuple[list[dict], int | None]:
    """A page of jobs, newest first (keyset paging on the id: ``cursor`` is the id the page starts
    below, as the previous page gave it); the cursor of the next page, None on the last."""
    check(ctx.db, actor, "jobs.read", "jobs")
    if not 1 <= limit <= PAGE_MAX:
        raise Invalid("invalid_limit", f"每页条数应在1到{PAGE_MAX}之间", {"limit": ["超出范围"]})
    query = select(Job).order_by(Job.id.desc()).limit(limit + 1)
    if cursor is not None:
        query = query.where(Job.id < cursor)
    if kind is not None:
        query = query.where(Job.kind == kind)
    if state is not None:
        query = query.where(Job.state == state)
    with ctx.db.transaction() as s:
        rows = list(s.scalars(query))
        more = len(rows) > limit
        rows = rows[:limit]
        views = [_view(s, job, failures=False) for job in rows]
    return views, (rows[-1].id if more else None)


def cancel_job(ctx: ops.Context, actor: Actor | None, job_id: int) -> dict:
    """Cancel a queued or running job: its worker stops at its next item (the item in flight
    commits whole or rolls back whole, never half).  A job that has ended cannot be cancelled
    (409)."""
    check(ctx.db, actor, "jobs.cancel", f"job:{job_id}")
    moment = now()
    with ctx.db.transaction() as s:
        job = s.get(Job, job_id)
        if job is None:
            raise NotFound("unknown_job", f"没有编号为 {job_id} 的任务")
        # conditional: a worker ending the job meanwhile wins, and the cancel is refused below
        changed = s.execute(
            update(Job.__table__)
            .where(Job.id == job_id, Job.state.in_((QUEUED, RUNNING)))
            .values(
                state=CANCELLED,
                finished_at=moment,
                cancelled_by=actor.user_id,
                lease_owner=None,
                lease_until=None,
            )
        ).rowcount
        if changed == 1:
            was = job.state
            s.refresh(job)
            done, failed = _counts(s, job.id)
            job.done, job.failed = done, failed
            journal(
                s, actor, "jobs.cancel", f"job:{job.id}/{job.target}", "ok",
                kind=job.kind, was=was, done=done, failed=failed, total=job.total,
            )  # fmt: skip
            return _view(s, job, failures=True)
        s.refresh(job)
        state = job.state
    raise Conflict("job_finished", f"任务{STATE_WORDS.get(state, state)}，不能再取消")


def peek(ctx: ops.Context, job_id: int) -> dict:
    """A job as ``read_job`` shows it, for the operator's command line (no caller to check)."""
    with ctx.db.transaction() as s:
        job = s.get(Job, job_id)
        if job is None:
            raise NotFound("unknown_job", f"没有编号为 {job_id} 的任务")
        return _view(s, job, failures=True)


def unfinished(ctx: ops.Context) -> bool:
    """Whether any job is queued or running (on any host)."""
    with ctx.db.engine.connect() as connection:
        found = connection.execute(
            select(Job.id)
            .where(Job.state.in_((QUEUED, RUNNING)), Job.kind.in_(sorted(KINDS)))
            .limit(1)
        ).scalar()
    return found is not None


def _counts(s, job_id: int) -> tuple[int, int]:
    rows = dict(
        s.execute(
            select(JobItem.state, func.count())
            .where(JobItem.job_id == job_id)
            .group_by(JobItem.state)
        ).all()
    )
    return rows.get(DONE, 0), rows.get(FAILED, 0)


def _seconds(start: datetime | None, end: datetime | None) -> Decimal | None:
    """Seconds from ``start`` to ``end`` (or to now, while it runs), to a tenth."""
    if start is None:
        return None
    return Decimal(((end or now()) - start).total_seconds()).quantize(Decimal("0.1"))


def _view(s, job: Job, failures: bool) -> dict:
    """A job as the API and the pages show it: plain values."""
    done, failed = _counts(s, job.id)  # the items themselves, not the last heartbeat's copy
    kind = KINDS.get(job.kind)
    users = dict(
        s.execute(
            select(User.id, User.username).where(
                User.id.in_([u for u in (job.created_by, job.cancelled_by) if u is not None])
            )
        ).all()
    )
    view = {
        "id": job.id,
        "kind": job.kind,
        "title": kind.title if kind else job.kind,
        "params": job.params,
        "target": job.target,
        "state": job.state,
        "state_words": STATE_WORDS.get(job.state, job.state),
        "finished": job.state in FINISHED,
        "total": job.total,
        "done": done,
        "failed": failed,
        "remaining": max(job.total - done - failed, 0),
        "percent": (100 * (done + failed) // job.total) if job.total else 100,
        "created_by": users.get(job.created_by, str(job.created_by)),
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "heartbeat_at": job.heartbeat_at,
        "seconds": _seconds(job.started_at, job.finished_at),
        "lease_owner": job.lease_owner,
        "lease_until": job.lease_until,
        "claims": job.claims,
        "cancelled_by": users.get(job.cancelled_by) if job.cancelled_by else None,
        "result": job.result,
        "error": job.error,
    }
    if failures:
        view["failures"] = [
            {"key": key, "label": label, "message": message, "at": at}
            for key, label, message, at in s.execute(
                select(JobItem.key, JobItem.label, JobItem.message, JobItem.finished_at)
                .where(JobItem.job_id == job.id, JobItem.state == FAILED)
                .order_by(JobItem.seq)
            )
        ]
    return view


# --- the worker: claims a job, runs its items, renews its lease ----------------------------------


@dataclass
class Claimed:
    id: int
    kind: str
    params: dict
    target: str
    created_by: int
    claims: int


class Worker:
    """Runs jobs from the shared queue.  ``run_once`` claims one job and runs it to its end, or
    until its lease is lost or the worker is asked to stop; any number of workers, in any number
    of processes and hosts, may share one database."""

    def __init__(
        self,
        ctx: ops.Context,
        owner: str | None = None,
        lease_seconds: float = LEASE_SECONDS,
        batch: int = BATCH,
        pause: float = 0.0,
    ):
        self.ctx = ctx
        # host, process and a random part: two threads of one process are two owners
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease = timedelta(seconds=lease_seconds)
        self.batch = batch
        self.pause = pause  # tests only: seconds to wait after each item (a job to kill midway)
        self.stopping = threading.Event()

    def _claimable(self, moment: datetime):
        return and_(
            Job.kind.in_(sorted(KINDS)),  # a kind this host's code knows (an upgrade in progress)
            or_(Job.state == QUEUED, and_(Job.state == RUNNING, Job.lease_until < moment)),
        )

    def claim(self) -> Claimed | None:
        """Take the oldest claimable job (None: there is none, or another worker took it first)."""
        moment = now()
        with self.ctx.db.engine.connect() as connection:  # a read first: idle costs no write lock
            candidate = connection.execute(
                select(Job.id).where(self._claimable(moment)).order_by(Job.id).limit(1)
            ).scalar()
        if candidate is None:
            return None
        table = Job.__table__
        with self.ctx.db.transaction() as s:
            row = s.execute(
                update(table)
                .where(table.c.id == candidate, self._claimable(moment))
                .values(
                    state=RUNNING,
                    lease_owner=self.owner,
                    lease_until=moment + self.lease,
                    heartbeat_at=moment,
                    started_at=func.coalesce(table.c.started_at, moment),
                    claims=table.c.claims + 1,
                )
                .returning(
                    table.c.id,
                    table.c.kind,
                    table.c.params,
                    table.c.target,
                    table.c.created_by,
                    table.c.claims,
                )  # fmt: skip
            ).first()
            if row is None:  # another worker matched it first
                return None
            job = Claimed(*row)
            done, failed = _counts(s, job.id)
            journal(
                s, WORKER, "jobs.run", f"job:{job.id}/{job.target}", "ok",
                worker=self.owner, claims=job.claims, resumed=job.claims > 1,
                done=done, failed=failed,
            )  # fmt: skip
        return job

    def run_once(self, limit: int | None = None) -> bool:
        """Claim a job and run it; False if there was none to claim."""
        for _attempt in range(3):  # losing a race for one job: try the next
            job = self.claim()
            if job is not None:
                self.run(job, limit)
                return True
            if not self.has_claimable():
                return False
        return False

    def has_claimable(self) -> bool:
        with self.ctx.db.engine.connect() as connection:
            found = connection.execute(select(Job.id).where(self._claimable(now())).limit(1))
            return found.scalar() is not None

    def run(self, job: Claimed, limit: int | None = None) -> str:
        """Run a claimed job's pending items (at most ``limit``, then hand it back); what became
        of it: done, failed, lost (cancelled or taken over) or stopped (handed back)."""
        kind = KINDS[job.kind]
        actor = self._starter(job)
        if actor is None:
            return self._fail(job, "发起任务的账号已停用或已删除，任务不能以其名义继续")
        if job.claims > MAX_CLAIMS:
            return self._fail(
                job,
                f"任务已被接手{job.claims - 1}次仍未完成（每次都在运行中中断），已停止；"
                "请查看服务器日志",
            )
        ran, beat = 0, time.monotonic()
        try:
            while not self.stopping.is_set() and (limit is None or ran < limit):
                ops.sync_rules(self.ctx)  # the rule set in force, as a request would serve
                items = self._pending(job.id)
                if not items:
                    return self._end(job, kind)
                for item_id, key in items:
                    self._run_item(job, kind, actor, item_id, key)
                    ran += 1
                    if self.pause:
                        time.sleep(self.pause)
                    if self.stopping.is_set() or (limit is not None and ran >= limit):
                        break
                    if time.monotonic() - beat > self.lease.total_seconds() / 3:
                        beat = self._heartbeat(job.id)
                beat = self._heartbeat(job.id)
        except LeaseLost:
            log.info("job %s: no longer held by %s (cancelled or taken over)", job.id, self.owner)
            return "lost"
        except KindBroken as err:
            return self._fail(job, err.message)
        self.release(job.id)
        return "stopped"

    def _starter(self, job: Claimed) -> Actor | None:
        with self.ctx.db.transaction() as s:
            user = s.get(User, job.created_by)
        if user is None or not user.active or user.disabled_at is not None:
            return None
        return Actor(user.id, user.username, user.role, user.unit_id)

    def _pending(self, job_id: int) -> list[tuple[int, str]]:
        with self.ctx.db.engine.connect() as connection:
            return [
                (row.id, row.key)
                for row in connection.execute(
                    select(JobItem.id, JobItem.key)
                    .where(JobItem.job_id == job_id, JobItem.state == PENDING)
                    .order_by(JobItem.seq)
                    .limit(self.batch)
                )
            ]

    def _run_item(self, job: Claimed, kind: Kind, actor: Actor, item_id: int, key: str) -> None:
        run = ItemRun(self.ctx, actor, job.id, item_id, self.owner)
        try:
            result = kind.run_item(run, job.params, key)
        except (LeaseLost, KindBroken):
            raise
        except ServiceError as err:
            self._item_failed(run, err.message)
            return
        except Exception:
            incident = uuid.uuid4().hex[:12]
            log.exception("incident %s: job %s, item %s (%s) broke", incident, job.id, item_id, key)
            self._item_failed(run, f"服务内部错误（事件编号 {incident}），已记录")
            return
        if not run.finished:  # a kind that writes nothing of its own: done on its own
            with self.ctx.db.transaction() as s:
                run.complete(s, result)

    def _item_failed(self, run: ItemRun, message: str) -> None:
        with self.ctx.db.transaction() as s:
            _finish_item(s, run, FAILED, message=message)

    def _heartbeat(self, job_id: int) -> float:
        """Renew the lease and copy the counts onto the job; ``LeaseLost`` if it is not ours."""
        moment = now()
        counted = (
            select(func.count())
            .where(JobItem.job_id == job_id, JobItem.state == DONE)
            .scalar_subquery()
        )
        failed = (
            select(func.count())
            .where(JobItem.job_id == job_id, JobItem.state == FAILED)
            .scalar_subquery()
        )
        with self.ctx.db.transaction() as s:
            changed = s.execute(
                update(Job.__table__)
                .where(Job.id == job_id, Job.lease_owner == self.owner, Job.state == RUNNING)
                .values(
                    heartbeat_at=moment,
                    lease_until=moment + self.lease,
                    done=counted,
                    failed=failed,
                )
            ).rowcount
        if changed != 1:
            raise LeaseLost(f"job {job_id}")
        return time.monotonic()

    def _close(self, job: Claimed, state: str, outcome: str, **detail) -> str:
        """End a job this worker holds: its state, counts and summary, journaled together."""
        moment = now()
        with self.ctx.db.transaction() as s:
            done, failed = _counts(s, job.id)
            summary = {"done": done, "failed": failed, **detail.pop("summary", {})}
            changed = s.execute(
                update(Job.__table__)
                .where(Job.id == job.id, Job.lease_owner == self.owner, Job.state == RUNNING)
                .values(
                    state=state,
                    finished_at=moment,
                    heartbeat_at=moment,
                    done=done,
                    failed=failed,
                    result=summary,
                    error=detail.get("error"),
                    lease_owner=None,
                    lease_until=None,
                )  # fmt: skip
            ).rowcount
            if changed != 1:
                raise LeaseLost(f"job {job.id}")
            journal(
                s, WORKER, "jobs.end", f"job:{job.id}/{job.target}", outcome,
                state=state, worker=self.owner, **summary, **detail,
            )  # fmt: skip
        return state

    def _end(self, job: Claimed, kind: Kind) -> str:
        summary = {}
        if kind.summarize is not None:
            with self.ctx.db.transaction() as s:
                results = list(
                    s.scalars(
                        select(JobItem.result)
                        .where(JobItem.job_id == job.id, JobItem.state == DONE)
                        .order_by(JobItem.seq)
                    )
                )
            summary = kind.summarize(results)
        return self._close(job, DONE, "ok", summary=summary)

    def _fail(self, job: Claimed, message: str) -> str:
        try:
            return self._close(job, FAILED, "failed", error=message)
        except LeaseLost:
            return "lost"

    def release(self, job_id: int) -> None:
        """Give a job back (this worker is stopping): its lease ends now, so another worker
        resumes it at once instead of after the lease."""
        with self.ctx.db.transaction() as s:
            s.execute(
                update(Job.__table__)
                .where(Job.id == job_id, Job.lease_owner == self.owner, Job.state == RUNNING)
                .values(lease_until=now())
            )


# --- the worker thread of a service process ---------------------------------------------------

_RUNNERS: weakref.WeakSet = weakref.WeakSet()


def notify() -> None:
    """Wake the workers of this process (a job was just queued here): no waiting for the poll."""
    for runner in list(_RUNNERS):
        runner.wake.set()


class Runner:
    """``threads`` workers as daemon threads of a service process, started after the process
    forked (gunicorn): ``ensure_started`` is cheap and called again on every request.  When the
    process exits (gunicorn restarting a worker, a deploy) each worker finishes the item in hand
    and gives its job back, so another process resumes it at once rather than after the lease."""

    def __init__(self, ctx: ops.Context, threads: int = 1, poll_seconds: float = POLL_SECONDS):
        self.ctx, self.threads, self.poll = ctx, threads, poll_seconds
        self.wake = threading.Event()
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._workers: list[Worker] = []
        self._threads: list[threading.Thread] = []
        _RUNNERS.add(self)

    def ensure_started(self) -> None:
        if self._pid == os.getpid() or self.threads <= 0:
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._workers = [Worker(self.ctx) for _ in range(self.threads)]
            self._threads = [
                threading.Thread(
                    target=self._loop, args=(worker,), name=f"scoring-jobs-{n}", daemon=True
                )
                for n, worker in enumerate(self._workers)
            ]
            for thread in self._threads:
                thread.start()
            atexit.register(self.stop, HANDOVER_SECONDS)

    def stop(self, wait: float = 0.0) -> None:
        """Ask the workers to stop after their item in hand, and wait up to ``wait`` seconds."""
        for worker in self._workers:
            worker.stopping.set()
        self.wake.set()
        deadline = time.monotonic() + wait
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))

    def _loop(self, worker: Worker) -> None:
        while not worker.stopping.is_set():
            self.wake.clear()  # before looking: a job queued while we look wakes the next wait
            try:
                ran = worker.run_once()
            except Exception:  # the database away for a moment: look again after the poll
                log.exception("job worker %s: could not claim or run a job", worker.owner)
                ran = False
            if not ran:
                self.wake.wait(self.poll)


# --- the first kind: the official scores of a round, under the round's rules ------------------


def _scheme_param(ctx: ops.Context, params: dict) -> dict:
    scheme = params.get("scheme")
    if not isinstance(scheme, str) or not scheme.strip():
        raise Invalid("invalid_params", "请指定细则编号", {"params.scheme": ["必填：细则编号"]})
    if ctx.registry.get(scheme) is None:
        raise Invalid(
            "unknown_scheme",
            f"没有编号为“{scheme[:100]}”的细则",
            {"params.scheme": [f"可用：{'、'.join(ctx.registry.schemes())}"]},
        )
    return {"scheme": scheme}


def _reviewed_units(ctx: ops.Context, params: dict) -> list[tuple[str, str]]:
    """The units of the scheme's newest round whose official score may be computed (reviewed,
    or rechecked after an appeal): an official score comes from a reviewed version only."""
    with ctx.db.transaction() as s:
        rnd = latest_round_of(s, params["scheme"])
        rows = (
            s.execute(
                select(Unit.code, Unit.name)
                .join(RoundUnit, RoundUnit.unit_id == Unit.id)
                .where(
                    RoundUnit.round_id == rnd.id,
                    RoundUnit.state.in_(("reviewed", "rechecked")),
                )
                .order_by(Unit.code)
            ).all()
            if rnd is not None
            else []
        )
    if not rows:
        raise Conflict(
            "nothing_to_recompute",
            "这套细则最新的考核轮次还没有已评审的单位，没有可以重算的正式得分",
        )
    return [(code, name) for code, name in rows]


def _recompute_one(run: ItemRun, params: dict, key: str) -> dict:
    outcome: dict = {}

    def done(session, score) -> None:
        outcome.update(
            score=score.id, total=str(score.total), grade=score.grade,
            submission_version=score.submission_version,
        )  # fmt: skip
        run.complete(session, outcome)

    ops.compute_score(run.ctx, run.actor, key, params["scheme"], kind="official", within=done)
    return outcome


RECOMPUTE_SCORES = register(
    Kind(
        name="scores.recompute",
        title="按本轮规则重算已评审单位的正式得分",
        permission="scores.recompute",
        check=_scheme_param,
        items=_reviewed_units,
        run_item=_recompute_one,
        target=lambda params: f"scheme:{params['scheme']}",
    )
)
