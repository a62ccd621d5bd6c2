"""Loading candidate rule files where a crash or a hang cannot take the caller with it.

The loader parses text that an editor uploads.  Its YAML parser is C code (libyaml through
ruamel.yaml.clib): the loader bounds what reaches it (size, nesting, characters), but a fault
left in C code kills the whole process, and a web worker must not die of an upload.  So the web
paths (validate, reload) load in a child process with a deadline and a memory ceiling, as
``service/engine/pool.py`` contains durable-rules: the child returns the loaded schemes or the
error list; a child that crashes, runs out of memory or misses its deadline becomes one clear
error ("规则文件无法解析：…"), and the caller carries on.

The loading process is forked from a small server process started once (multiprocessing's
``forkserver``, with the loader imported in advance), so starting one costs a fork, not a Python
start-up: measured in ``tests/test_contained.py``.  It is kept between loads, with what it
parsed (issue 12): a reload or a validation after one changed file parses that file alone,
and schemes loaded before are not sent to it at all (``_load``).  One that crashes, runs out of
memory or misses its deadline is ended, and the next load starts another.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
from pathlib import Path

from service.domain.model import Scheme

from ..preload import FORKSERVER_PRELOAD
from . import loader
from .errors import RuleFileError, RuleSetError

#: Seconds a load may take.  All six shipped schemes load in about 0.7 s.
DEADLINE = 30.0
#: Address space of the loading process.  Files are bounded at 1 MiB each (64 MiB together);
#: the shipped rules load in about 300 MiB of address space.
MEMORY_LIMIT = 2 << 30

_context_lock = threading.Lock()
_context: mp.context.BaseContext | None = None


def _mp_context() -> mp.context.BaseContext:
    global _context
    with _context_lock:
        if _context is None:
            ctx: mp.context.BaseContext
            if "forkserver" in mp.get_all_start_methods():
                ctx = mp.get_context("forkserver")
                ctx.set_forkserver_preload(FORKSERVER_PRELOAD)
            else:  # pragma: no cover - not Linux
                ctx = mp.get_context("spawn")
            _context = ctx
        return _context


#: Seconds the loading process waits for the next load before it ends (and frees its memory).
IDLE = 600.0


def _load_parts(conn, parts: dict | None, path: str | None) -> bool:  # pragma: no cover - child
    """Load ``parts`` and send what came of it; False if the process should end after it (it ran
    out of memory or met a loader bug: nothing of it is trusted for the next load)."""
    from .loader import load_part

    try:
        outcomes = {
            folder: load_part(folder, own, path or "") for folder, own in (parts or {}).items()
        }
        conn.send(("ok", outcomes))
        return True
    except RuleSetError as err:  # pragma: no cover - load_part returns a folder's errors
        conn.send(("errors", err.errors))
        return True
    except MemoryError:
        conn.send(("failed", "内存不足（规则文件过大或过于复杂）"))
    except RecursionError:
        conn.send(("failed", "规则文件嵌套过深"))
    except Exception as err:  # a loader bug: said as such, never a dead worker
        conn.send(("failed", f"读取规则时出现内部错误（{type(err).__name__}: {str(err)[:200]}）"))
    return False


def _serve(conn) -> None:  # pragma: no cover - runs in the child
    """The loading process: one load after another, its caches kept in between (the files it
    parsed, the schemes it loaded), so a changed scheme parses only its changed files; it ends
    when its parent closes the pipe, or after ``IDLE`` seconds without a load.  Between loads it
    keeps each file's latest content only (``loader.keep_latest``)."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    except (ImportError, ValueError, OSError):
        pass
    try:
        while conn.poll(IDLE):
            parts, path, _label = conn.recv()
            if not _load_parts(conn, parts, path):
                return
            # after the answer is sent (no load waits for it): memory stays flat over edits
            loader.keep_latest()
    except (EOFError, OSError, KeyboardInterrupt):
        return
    finally:
        conn.close()


def _unloadable(label: str, why: str) -> RuleSetError:
    return RuleSetError([RuleFileError(label, 1, 1, f"规则文件无法解析：{why}；当前规则未受影响")])


_loading_lock = threading.Lock()
_loading: tuple | None = None  # (process, connection, parent's pid) of the loading process


def _start(target):
    ctx = _mp_context()
    parent, child = ctx.Pipe(duplex=True)
    process = ctx.Process(  # type: ignore[attr-defined]  # BaseContext lacks the attribute in typeshed
        target=target, args=(child,), daemon=True, name="rule loader"
    )
    process.start()
    child.close()
    return process, parent


def _stop(process, conn) -> None:
    conn.close()
    if process.is_alive():
        process.kill()
    process.join(timeout=5)


def _run(parts: dict, path: str | None, label: str, deadline: float, target=_serve) -> dict:
    """Load ``parts`` ({scheme folder: its files}) in the loading process: {folder: scheme or
    its errors}.  The process is started at the first load and kept; one that crashed, ran out
    of memory, missed its deadline or ended idle is replaced at the next load.  ``target``: the
    process's main function, a parameter for the tests, which make it crash (a process of its
    own for that one call)."""
    global _loading
    with _loading_lock:
        own = target is not _serve
        if own:
            process, conn = _start(target)
        else:
            if _loading is not None and _loading[2] != os.getpid():
                _loading = None  # a fork of the process that started it: that one's, not ours
            if _loading is not None and not _loading[0].is_alive():
                _stop(*_loading[:2])
                _loading = None
            if _loading is None:
                _loading = (*_start(_serve), os.getpid())
            process, conn = _loading[:2]
        done = False
        try:
            try:
                conn.send((parts, path, label))
            except (BrokenPipeError, OSError):
                pass  # died already: said below, from its exit code
            if not conn.poll(deadline):
                raise _unloadable(label, f"读取超过{deadline:g}秒仍未完成，已中止")
            try:
                kind, payload = conn.recv()
            except (EOFError, OSError):
                process.join(timeout=5)
                code = process.exitcode
                signal_words = (
                    f"信号 {-code}" if code is not None and code < 0 else f"退出码 {code}"
                )
                raise _unloadable(label, f"读取规则的进程意外退出（{signal_words}）") from None
            done = kind != "failed"
        finally:
            if own or not done:
                _stop(process, conn)
                if not own:
                    _loading = None
    if kind == "ok":
        return payload
    if kind == "errors":
        raise RuleSetError(payload)
    raise _unloadable(label, payload)


def _load(files: dict, label: str, path: str, deadline: float) -> dict:
    """The schemes of a rules directory's files, all or nothing, as ``loader.load_tree`` gives
    them; only the scheme folders not loaded lately (``loader.known_scheme``) are parsed, in a
    child.  Unchanged schemes are neither sent nor parsed nor compiled again: a reload of
    unchanged rules forks nothing (issue 12), and the child's schemes are kept here, where the
    next reload finds them (a child's own memory dies with it)."""
    parts = loader.scheme_parts(files)
    outcomes: dict = {}
    unknown: dict = {}
    keys: dict = {}
    for folder, own in parts:
        keys[folder] = loader.scheme_key(own, folder, loader.folder_path(path, folder))
        scheme = loader.known_scheme(keys[folder])
        if scheme is not None:
            outcomes[folder] = scheme
        else:
            unknown[folder] = own
    if unknown:
        fresh = _run(unknown, path, label, deadline)
        for folder, outcome in fresh.items():
            if isinstance(outcome, Scheme):
                loader.keep_scheme(keys[folder], outcome)
        outcomes.update(fresh)
    return loader.gather([(folder, outcomes[folder]) for folder, _ in parts], label)


def load_tree(files: dict, label: str = ".", deadline: float = DEADLINE) -> dict:
    """``loader.load_tree`` in a child process: the schemes, or ``RuleSetError``."""
    data = {rel: (d.encode("utf-8") if isinstance(d, str) else d) for rel, d in files.items()}
    return _load(data, label, "", deadline)


def load_all(root: Path | str, deadline: float = DEADLINE) -> dict:
    """``loader.load_all`` in a child process: the schemes, or ``RuleSetError``.  The files are
    read here (reading is bounded and follows no link, ``loader.read_tree``); parsing, where a
    fault in C code could kill the process, happens in the child."""
    files = loader.read_tree(root)
    return _load(files, Path(root).as_posix(), str(Path(root)), deadline)  # as loader.load_all
