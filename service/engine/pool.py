"""durable-rules contained at process level.

A crash (SIGSEGV, abort) or a hang (the C loop holds the GIL, so no Python
signal can interrupt it) inside the engine must not take the caller down nor
produce a score.  Each evaluation therefore runs in a worker process with a
deadline; a worker that dies or misses its deadline is killed and replaced,
the caller gets ``EngineUnavailable`` with an incident id, and the next call
is served by a fresh worker.

Workers hold compiled rulesets keyed by scheme version.  ``retire(key)``
releases a version in every worker (``delete_ruleset``), lazily at each
worker's next request, so an old version keeps serving calls already under
way and its memory is then given back.

Several threads may call ``match`` at once: each call takes a whole worker
for itself, so facts of concurrent callers never meet in one engine session.

The deadline covers the whole call: sending the request, computing and
receiving the answer.  The caller's end of each worker's socket is
non-blocking and every wait polls against the call's deadline, so a stopped
worker, or one that stops reading half-way through a request larger than the
socket's buffer, costs the caller the deadline and no more (a blocking send
waited for such a worker for ever, with other callers queued behind it).

Nobody spins.  Caller and worker each sleep in the kernel (``poll``, a blocking
``recv``) until the other's bytes arrive, and the kernel wakes the sleeper.  Both
used to wait awake for a few milliseconds first (2 ms the caller, 3 ms the
worker) to shave the wake-up off one unit after another; on this 2-core machine
under load that burnt the very cores the other side needed, and the contained
engine slowed 4x (``python -m tools.roundtrip`` measures it, with and without
another process holding a core).

A worker counts every request it takes (``accepted``, in memory shared with
the caller) before it computes anything.  A worker found dead before it took
a call, even one killed an instant before the call (still unreaped, so it
looked alive), has computed nothing for it: the call is retried once on a
fresh worker and costs nothing.  Only a death after the worker took the call
costs that call: its input may be what killed it, so it is never retried.
"""

from __future__ import annotations

import logging
import math
import multiprocessing as mp
import pickle
import queue
import select
import socket
import struct
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..preload import FORKSERVER_PRELOAD

log = logging.getLogger(__name__)


class EngineUnavailable(RuntimeError):
    """The engine crashed, hung or refused this evaluation; no score was produced."""

    def __init__(self, message: str, incident: str, kind: str):
        super().__init__(f"{message}（事件编号 {incident}）")
        self.message, self.incident, self.kind = message, incident, kind


#: every message on a worker's socket: its length, then the pickled message
_HEADER = struct.Struct("!Q")


# --- the worker side -----------------------------------------------------------------


def _rss() -> int:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE")


#: glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_heap(limit: int = 64 << 20) -> bool:
    """Keep freed memory in this process's heap instead of handing it back to the kernel.

    durable-rules allocates and frees a few hundred KB on every evaluation.  With glibc's
    defaults a process with a small heap (a freshly spawned engine worker) maps that memory
    and gives it back every time: about 250 page faults and 0.4 ms of system time per
    evaluation, measured here, which made an evaluation cost 2.5 times what it cost in a
    process with a larger heap.  Chunks up to ``limit`` now stay in the heap (no mmap), and
    the heap is not trimmed below ``limit``, so the next evaluation reuses the same pages;
    memory stays flat at the working set.  False where the C library has no mallopt."""
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, limit)) and bool(
            libc.mallopt(_M_TRIM_THRESHOLD, limit)
        )
    except (OSError, AttributeError, TypeError):
        return False


class _Reader:
    """The worker's end of its socket, read in blocking calls (the worker has nothing else to
    do): one ``recv`` usually brings a whole request, header and body, instead of one for each."""

    def __init__(self, sock: socket.socket):
        self.sock, self.buf = sock, bytearray()

    def message(self):
        buf = self.buf
        while True:
            if len(buf) >= _HEADER.size:
                (size,) = _HEADER.unpack_from(buf)
                end = _HEADER.size + size
                if len(buf) >= end:
                    msg = pickle.loads(memoryview(buf)[_HEADER.size : end])
                    del buf[:end]
                    return msg
            chunk = self.sock.recv(1 << 16)  # sleeps in the kernel until the caller writes
            if not chunk:
                raise EOFError
            buf += chunk


def worker_main(sock: socket.socket, accepted) -> None:  # pragma: no cover - runs in the child
    import json
    from decimal import Decimal

    from service.engine import durable

    keep_heap()

    rulesets: dict[str, durable.Ruleset] = {}
    released = 0
    reader = _Reader(sock)

    def send(message) -> None:
        data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
        sock.sendall(_HEADER.pack(len(data)) + data)

    while True:
        try:
            msg = reader.message()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        # taken: from here on the caller must not retry this call elsewhere
        accepted.value += 1
        op = msg[0]
        if op == "match":
            _, key, definition, batch, retire = msg
            for old in retire:
                rs = rulesets.pop(old, None)
                if rs is not None:
                    rs.release()
                    released += 1
            try:
                rs = rulesets.get(key)
                if rs is None:
                    if definition is None:
                        send(("need", key))
                        continue
                    # decimals stay decimals: a float threshold would be refused (and could round)
                    rs = rulesets[key] = durable.Ruleset(
                        key, json.loads(definition, parse_float=Decimal)
                    )
                last = len(batch) - 1
                out = [list(rs.evaluate_raw(f, keep=i == last)) for i, f in enumerate(batch)]
                send(("ok", out))
                if batch:
                    # after the answer, off the caller's time: the last session's state deleted
                    # and the next call's session opened (most likely for the same version)
                    rs.open_ahead()
            except durable.EngineError as err:
                send(("error", str(err)))
            except Exception as err:  # engine errors surface as plain exceptions
                send(("error", f"{type(err).__name__}: {err}"))
        elif op == "stats":
            for old in msg[1]:
                rs = rulesets.pop(old, None)
                if rs is not None:
                    rs.release()
                    released += 1
            send(("ok", {"rss": _rss(), "rulesets": sorted(rulesets), "released": released}))
        elif op == "stop":
            return


# --- the parent side ------------------------------------------------------------------


class _NotTaken(Exception):
    """The worker died before it took the request: nothing was computed for it."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


@dataclass
class _Worker:
    process: mp.Process
    sock: socket.socket
    accepted: object  # the worker's count of requests taken (shared memory)
    sent: int = 0  # requests sent to it
    loaded: set = field(default_factory=set)
    calls: int = 0
    readable: select.poll = field(default_factory=select.poll)
    writable: select.poll = field(default_factory=select.poll)

    def __post_init__(self):
        self.sock.setblocking(False)
        self.readable.register(self.sock, select.POLLIN)
        self.writable.register(self.sock, select.POLLOUT)

    def wait(self, poller: select.poll, until: float) -> None:
        """Sleep until the socket is ready or the deadline passes (then TimeoutError).  Bytes
        already there are taken even past the deadline: a caller that scored its guesses
        (``scoring._while_matching``) may come for an answer the worker gave in time."""
        left = until - time.monotonic()
        if not poller.poll(max(0, math.ceil(left * 1000))) and time.monotonic() >= until:
            raise TimeoutError

    def send(self, message, until: float) -> None:
        data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
        view = memoryview(_HEADER.pack(len(data)) + data)
        self.sent += 1
        while True:
            try:
                view = view[self.sock.send(view) :]
            except BlockingIOError:
                pass
            if not view:
                return
            self.wait(self.writable, until)

    def receive(self, until: float):
        # the answer is not there yet when the request has just gone: sleep in poll() first (the
        # kernel wakes us when it comes, or at the deadline) rather than try a recv bound to fail
        buf, need, size = bytearray(), _HEADER.size, -1
        self.wait(self.readable, until)
        while True:
            try:
                chunk = self.sock.recv(max(need - len(buf), 65536) if size < 0 else need - len(buf))
            except BlockingIOError:
                self.wait(self.readable, until)
                continue
            if not chunk:
                raise EOFError
            buf += chunk
            if size < 0 and len(buf) >= _HEADER.size:
                (size,) = _HEADER.unpack_from(buf)
                need = _HEADER.size + size
            if len(buf) >= need:
                return pickle.loads(memoryview(buf)[_HEADER.size : need])

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:  # pragma: no cover
            pass


class _Call:
    """One evaluation in one worker: the request sent when made (``EnginePool.begin``), the
    answer read by ``result``; the caller may work in between, and the worker stays the call's
    until its answer is read (or dropped, ``discard``), so no other call reads it."""

    def __init__(self, pool: EnginePool, worker: _Worker, key: str, definition: str, batch: list):
        self.pool, self.key, self.definition, self.batch = pool, key, definition, batch
        self.timeout = pool.deadline + pool.per_unit * len(batch)
        self.until = time.monotonic() + self.timeout
        self.retire: list[str] = []
        self.worker: _Worker | None = worker
        try:
            self._guarded(receive=False)
        except BaseException:
            self._give_back()
            raise

    def _send(self) -> None:
        pool, worker = self.pool, self.worker
        assert worker is not None
        with pool._lock:
            self.retire = sorted(pool._retired & worker.loaded)
        send_def = self.definition if self.key not in worker.loaded else None
        pool._send(worker, ("match", self.key, send_def, self.batch, self.retire), self.until)

    def _receive(self):
        pool, worker = self.pool, self.worker
        assert worker is not None
        reply = pool._receive(worker, self.until)
        worker.loaded -= set(self.retire)
        if reply[0] == "need":  # the worker released it meanwhile: send it again
            pool._send(worker, ("match", self.key, self.definition, self.batch, []), self.until)
            reply = pool._receive(worker, self.until)
        worker.loaded.add(self.key)
        worker.calls += 1
        return reply

    def _guarded(self, receive: bool):
        """Send the request (``receive``: read the answer), a worker's failure turned into an
        incident and the worker replaced.  A worker found dead before it took the request has
        computed nothing for it (killed an instant ago, not yet reaped): a fresh worker serves
        it, once.  A death after it took the request costs the call: its input may be what
        killed it, so it is never retried."""
        pool = self.pool
        try:
            try:
                return self._receive() if receive else self._send()
            except _NotTaken as dead:
                self.worker = pool._replace(self.worker)
                pool._incident(
                    "crash",
                    "空闲的规则引擎进程已退出，已重启引擎进程",
                    f"{dead.detail}; found dead before it took the call",
                )
                self._send()
                return self._receive() if receive else None
        except TimeoutError:
            self.worker = pool._replace(self.worker)
            raise pool._incident(
                "hang", f"规则引擎在{self.timeout:.1f}秒内没有完成计算，已重启引擎进程"
            ) from None
        except (_NotTaken, EOFError, OSError) as err:
            detail = err.detail if isinstance(err, _NotTaken) else None
            if detail is None:
                self.worker.process.join(timeout=2)
                detail = f"exit code {self.worker.process.exitcode}; {type(err).__name__}"
            self.worker = pool._replace(self.worker)
            raise pool._incident("crash", "规则引擎进程意外退出，已重启引擎进程", detail) from None

    def result(self) -> list[set]:
        """The fired rules of each unit of the batch (waiting for the answer); the worker is
        given back."""
        if self.worker is None:
            raise RuntimeError("this call's answer was read already")
        try:
            reply = self._guarded(receive=True)
        finally:
            self._give_back()
        if reply[0] == "error":
            raise self.pool._incident("error", "规则引擎未能完整处理这些事实，本次不计分", reply[1])
        return [set(fired) for fired in reply[1]]

    def discard(self) -> None:
        """The answer is read and dropped (it must not be left for the worker's next call)."""
        if self.worker is not None:
            try:
                self.result()
            except EngineUnavailable:
                pass

    def _give_back(self) -> None:
        if self.worker is not None:
            self.pool._idle.put(self.worker)
            self.worker = None


class _Matching:
    """A batch under way in one or more workers (``EnginePool.start``): ``scoring.Matching``.
    ``parts``: a call under way for each chunk, or a chunk still to send (no worker was idle)."""

    def __init__(self, pool: EnginePool, key: str, definition: str, parts: list):
        self.pool, self.key, self.definition, self.parts = pool, key, definition, parts

    def result(self) -> list[set]:
        answers: list = [None] * len(self.parts)
        failure: EngineUnavailable | None = None
        # every call under way first, each giving its worker back, then the chunks not yet sent
        for i, part in enumerate(self.parts):
            if isinstance(part, _Call):
                try:
                    answers[i] = part.result()
                except EngineUnavailable as err:
                    failure = failure or err
        if failure is not None:
            raise failure
        for i, part in enumerate(self.parts):
            if not isinstance(part, _Call):
                answers[i] = self.pool.match_raw(self.key, self.definition, part)
        return [fired for answer in answers for fired in answer]

    def discard(self) -> None:
        for part in self.parts:
            if isinstance(part, _Call):
                part.discard()

    def disagreed(self, position: int, guessed: set, fired: set) -> None:
        """Python's reading of the conditions (``scoring.match_here``) differed from the engine's
        for one unit: the engine's answer was used; the difference is an incident to look into."""
        self.pool._incident(
            "disagreement",
            "规则引擎与 Python 对条件的判断不一致，已按规则引擎的结果计分",
            f"unit {position} of the batch; only the engine: {sorted(fired - guessed)}; "
            f"only Python: {sorted(guessed - fired)}",
        )


class EnginePool:
    """A few worker processes running durable-rules, each used by one caller at a time."""

    name = "durable-rules 2.0.28 (contained)"

    def __init__(
        self,
        size: int = 2,
        deadline: float = 5.0,
        per_unit: float = 0.05,
        start_method: str = "spawn",
    ):
        self.size, self.deadline, self.per_unit = size, deadline, per_unit
        self.split_at = (
            50  # batches of at least 2 x this many units are shared out over the workers
        )
        self._ctx = mp.get_context(start_method)
        if start_method == "forkserver":
            # a fresh worker is then a fork of one clean server process that has already
            # imported the engine, so a replacement after a crash or hang is ready in
            # about 50 ms instead of after starting an interpreter and importing durable-rules
            # and Flask (via the service package) again: 0.3-0.6 s measured on this machine.
            # The tests use it; the service keeps "spawn", under which every engine process is a
            # direct child of its gunicorn worker (what tools/loadbench looks for).  The preload
            # list is the process's, and applies if its fork server is not yet running.
            self._ctx.set_forkserver_preload(FORKSERVER_PRELOAD)
        # last in, first out: a caller scoring one unit after another gets the worker
        # that just served it, still awake; concurrent callers still get one each
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._retired: set[str] = set()
        self._pending_retire: dict[int, set] = {}
        self._definitions: dict[str, str] = {}
        self._lock = threading.Lock()
        self._closed = False
        self.incidents: list[dict] = []
        self.spawned = 0
        for w in [self._spawn() for _ in range(size)]:
            self._idle.put(w)

    # workers

    def _spawn(self) -> _Worker:
        # a socket pair rather than multiprocessing's pipe: the caller's end can be
        # non-blocking, so no send or receive can outlast the call's deadline
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        accepted = self._ctx.RawValue("Q", 0)
        process = self._ctx.Process(
            target=worker_main,
            args=(child, accepted),
            daemon=True,
            name="durable-rules worker",
        )
        try:
            process.start()
        finally:
            child.close()
        self.spawned += 1
        return _Worker(process, parent, accepted)

    def _replace(self, worker: _Worker) -> _Worker:
        try:
            worker.process.kill()
        except Exception:  # pragma: no cover - already gone
            pass
        worker.process.join(timeout=5)
        worker.close()
        return self._spawn()

    def _incident(self, kind: str, message: str, detail: str = "") -> EngineUnavailable:
        incident = uuid.uuid4().hex[:12]
        self.incidents.append(
            {
                "id": incident,
                "kind": kind,
                "message": message,
                "detail": detail,
                "time": time.time(),
            }
        )
        log.error("engine incident %s (%s): %s %s", incident, kind, message, detail)
        return EngineUnavailable(message, incident, kind)

    def _definition(self, scheme) -> str:
        key = scheme.program_name
        text = self._definitions.get(key)
        if text is None:
            from service.engine.durable import compile_ruleset, dumps

            text = self._definitions[key] = dumps(compile_ruleset(scheme.matches))
        return text

    # calls

    def _call(self, worker: _Worker, message, until: float):
        """Send ``message`` and wait for the answer, all of it before ``until`` (monotonic)."""
        self._send(worker, message, until)
        return self._receive(worker, until)

    def _send(self, worker: _Worker, message, until: float) -> None:
        try:
            worker.send(message, until)
        except (EOFError, OSError) as err:
            self._not_taken(worker, err)
            raise

    def _receive(self, worker: _Worker, until: float):
        try:
            return worker.receive(until)
        except (EOFError, OSError) as err:
            self._not_taken(worker, err)
            raise

    @staticmethod
    def _not_taken(worker: _Worker, err: Exception) -> None:
        """Raise ``_NotTaken`` when the worker ended before it took the request sent last."""
        if isinstance(err, TimeoutError):
            return
        worker.process.join(timeout=2)  # the socket closes before the exit status is reaped
        detail = f"exit code {worker.process.exitcode}; {type(err).__name__}"
        if worker.accepted.value < worker.sent:
            raise _NotTaken(detail) from None

    def _take(self, wait: bool = True) -> _Worker | None:
        """An idle worker, for one call (waiting for one while all are busy; without ``wait``,
        None then)."""
        try:
            worker = self._idle.get(block=wait)
        except queue.Empty:
            return None
        if (
            not worker.process.is_alive()
        ):  # died while idle (killed, out of memory): nobody's call lost
            code = worker.process.exitcode
            worker = self._replace(worker)
            self._incident(
                "crash", "空闲的规则引擎进程已退出，已重启引擎进程", f"exit code {code}; found idle"
            )
        return worker

    def begin(
        self, key: str, definition: str, batch: Sequence[Sequence[str]], wait: bool = True
    ) -> _Call | None:
        """Send pre-serialised facts to a worker and return at once: ``result()`` reads the
        answer.  The worker is the call's until then, and the deadline runs from now.  Without
        ``wait``: None when no worker is idle now."""
        if self._closed:
            raise RuntimeError("engine pool is closed")
        worker = self._take(wait)
        return None if worker is None else _Call(self, worker, key, definition, list(batch))

    def match_raw(self, key: str, definition: str, batch: Sequence[Sequence[str]]) -> list[set]:
        """Evaluate pre-serialised facts under the ruleset ``definition`` known as ``key``."""
        call = self.begin(key, definition, batch)
        assert call is not None  # it waited for a worker
        return call.result()

    def start(self, scheme, batch: Sequence[Sequence[dict]]) -> _Matching:
        """Send a batch's facts and return at once (``scoring.Remote``): the workers compute while
        the caller goes on, and ``result()`` waits for their answers.  A large batch is shared out
        over the workers, which run side by side, each chunk in a whole worker of its own."""
        from service.engine.durable import dumps_fact

        key, definition = scheme.program_name, self._definition(scheme)
        payload = [[dumps_fact(f) for f in facts] for facts in batch]
        if len(payload) < 2 * self.split_at or self.size < 2:
            return _Matching(self, key, definition, [self.begin(key, definition, payload)])
        size = -(-len(payload) // self.size)
        chunks = [payload[i : i + size] for i in range(0, len(payload), size)]
        # the first chunk waits for a worker; the others take one only if it is idle now, else
        # they run once the calls under way are answered: a caller never holds a worker while
        # it waits for another (two such callers would wait for each other for ever)
        parts: list = [self.begin(key, definition, chunks[0])]
        try:
            for chunk in chunks[1:]:
                call = self.begin(key, definition, chunk, wait=False)
                parts.append(call if call is not None else chunk)
        except BaseException:
            for part in parts:
                if isinstance(part, _Call):
                    part.discard()
            raise
        return _Matching(self, key, definition, parts)

    def match(self, scheme, batch: Sequence[Sequence[dict]]) -> list[set]:
        return self.start(scheme, batch).result()

    def retire(self, key: str) -> None:
        """Release a scheme version in every worker (at each worker's next call)."""
        with self._lock:
            self._retired.add(key)
            self._definitions.pop(key, None)

    def serve(self, key: str) -> None:
        """A version served again (a rule set put back in force) is no longer retired: it would be
        released after every call and compiled again before the next."""
        with self._lock:
            self._retired.discard(key)

    def stats(self) -> list[dict]:
        """Each worker's resident memory and loaded rulesets, after releasing retired versions."""
        taken = [self._idle.get() for _ in range(self.size)]
        try:
            out = []
            for w in taken:
                with self._lock:
                    retire = sorted(self._retired & w.loaded)
                reply = self._call(w, ("stats", retire), time.monotonic() + self.deadline)
                w.loaded -= set(retire)
                out.append(dict(reply[1], pid=w.process.pid, calls=w.calls))
            return out
        finally:
            for w in taken:
                self._idle.put(w)

    def pids(self) -> list[int]:
        taken = [self._idle.get() for _ in range(self.size)]
        try:
            return [w.process.pid for w in taken]
        finally:
            for w in taken:
                self._idle.put(w)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for _ in range(self.size):
            w = self._idle.get()
            try:
                w.send(("stop",), time.monotonic() + 1)
            except Exception:
                pass
            w.process.join(timeout=2)
            if w.process.is_alive():
                w.process.kill()
                w.process.join()
            w.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
