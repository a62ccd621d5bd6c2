"""Candidate rule files are loaded in a child process: a crash or a hang there is one clear
error for the caller, who carries on (service/rulefiles/contained.py)."""

from __future__ import annotations

import multiprocessing.forkserver
import os
import signal
import time

import pytest

from service.rulefiles import RuleSetError, contained
from service.rulefiles.loader import load_tree, read_tree

from ..conftest import MINIMAL


def _segfault(conn, *_args):  # runs in the child
    os.kill(os.getpid(), signal.SIGSEGV)


def _hang(conn, *_args):  # runs in the child
    time.sleep(60)


def _blow_memory(conn, *_args):  # runs in the child, under the memory ceiling
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (contained.MEMORY_LIMIT, contained.MEMORY_LIMIT))
    try:
        hog = bytearray(contained.MEMORY_LIMIT * 2)
        conn.send(("ok", len(hog)))
    except MemoryError:
        conn.send(("failed", "内存不足（规则文件过大或过于复杂）"))


def test_the_contained_load_gives_what_the_loader_gives():
    files = read_tree(MINIMAL)
    (scheme,) = contained.load_tree(files).values()
    (direct,) = load_tree(files).values()
    assert (scheme.id, scheme.version, list(scheme.clauses)) == (
        direct.id,
        direct.version,
        list(direct.clauses),
    )


def test_errors_come_back_as_the_loader_s_errors():
    files = dict(read_tree(MINIMAL), **{"clauses/09-deep.yaml": b"[" * 30000})
    with pytest.raises(RuleSetError) as err:
        contained.load_tree(files)
    assert [str(e) for e in err.value.errors] == [
        "clauses/09-deep.yaml:1:39: 列表与映射嵌套过深：规则文件最多嵌套40层，请检查括号“[”“{”是否配对、缩进是否正确"
    ]


@pytest.mark.parametrize(
    "target, words",
    [
        (_segfault, "规则文件无法解析：读取规则的进程意外退出（信号 11）；当前规则未受影响"),
        (_blow_memory, "规则文件无法解析：内存不足（规则文件过大或过于复杂）；当前规则未受影响"),
    ],
)
def test_a_crash_in_the_child_is_an_error_and_the_next_load_works(target, words):
    with pytest.raises(RuleSetError) as err:
        contained._run({}, None, "candidate", 10, target=target)
    assert [str(e) for e in err.value.errors] == [f"candidate:1:1: {words}"]
    assert contained.load_tree(read_tree(MINIMAL))  # carries on


def test_a_hang_is_cut_at_the_deadline():
    started = time.perf_counter()
    with pytest.raises(RuleSetError) as err:
        contained._run({}, None, "candidate", 0.5, target=_hang)
    assert time.perf_counter() - started < 5
    assert [str(e) for e in err.value.errors] == [
        "candidate:1:1: 规则文件无法解析：读取超过0.5秒仍未完成，已中止；当前规则未受影响"
    ]


def test_a_contained_load_forks_a_server_that_has_the_loader_imported_already():
    """What keeps containment cheap (about 20 ms a load, 7 ms of it the load itself, measured by
    ``python -m tools.bench``; not timed here): one fork server per process, started once, with
    the loader preloaded, so each load costs a fork and the transfer, not a Python start."""
    files = read_tree(MINIMAL)
    contained.load_tree(files)
    context = contained._mp_context()
    assert context is contained._mp_context()  # one per process
    assert context.get_start_method() == "forkserver"
    # whichever of the engine pool and the loader started the process's one fork server first
    preloaded = multiprocessing.forkserver._forkserver._preload_modules
    assert {"service.rulefiles.loader", "service.engine.durable"} <= set(preloaded)
    assert contained.load_tree(files)["minimal"].id == "minimal"
