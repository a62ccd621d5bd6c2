"""Reloading rules parses and compiles only what changed (issue 12: a reload of unchanged rules
took 0.88 s, the whole directory parsed again in a child process, every case run again).

Schemes that loaded are kept by the SHA-256 of their files (``loader.scheme_key``); the contained
load sends only the scheme folders not kept to its child, so an unchanged directory forks
nothing; the composer gives exactly the nodes ruamel's own gives.  Errors are never kept: a
broken file is refused with its exact messages every time.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from service.rulefiles import RuleSetError, contained, loader
from service.rulefiles.reader import _compose

from ..conftest import MINIMAL, RULES

uncached = getattr(loader.load_files, "uncached", loader.load_files)  # conftest memoises too


@pytest.fixture()
def rules(tmp_path) -> Path:
    """Two scheme folders of a rules directory of their own."""
    root = tmp_path / "rules"
    shutil.copytree(MINIMAL, root / "a")
    shutil.copytree(RULES / "zhuanqiao" / "2018", root / "b")
    return root


@pytest.fixture()
def children(monkeypatch) -> list:
    """The scheme folders each contained load sent to a child, one list a child."""
    sent: list = []
    run = contained._run

    def counted(parts, *args, **kwargs):
        sent.append(sorted(parts))
        return run(parts, *args, **kwargs)

    monkeypatch.setattr(contained, "_run", counted)
    return sent


def _touch(path: Path, words: str = "# 修订\n") -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(words)


def test_the_same_files_give_the_same_scheme_object_and_changed_files_a_new_one():
    files = loader.read_tree(MINIMAL)
    first = uncached(files, "minimal", "")
    assert uncached(dict(files), "minimal", "") is first
    assert uncached(files, "elsewhere", "") is not first  # the name is in every message and trace
    changed = dict(files, **{"clauses/01-rate.yaml": files["clauses/01-rate.yaml"] + b"# x\n"})
    again = uncached(changed, "minimal", "")
    assert again is not first and again.version != first.version


def test_a_broken_scheme_is_refused_with_the_same_messages_every_time():
    files = dict(loader.read_tree(MINIMAL), **{"clauses/09-bad.yaml": b"id: 9\npionts: 3\n"})
    messages = []
    for _ in range(2):
        with pytest.raises(RuleSetError) as err:
            uncached(files, "minimal", "")
        messages.append([str(e) for e in err.value.errors])
    assert messages[0] == messages[1] and messages[0]


def test_an_unchanged_directory_is_reloaded_without_a_child(rules, children):
    first = contained.load_all(rules)
    again = contained.load_all(rules)
    assert children == [["a", "b"]]  # the first load only
    assert again == first
    assert all(again[sid] is first[sid] for sid in first)


def test_one_changed_scheme_alone_is_sent_to_the_child(rules, children):
    first = contained.load_all(rules)
    _touch(rules / "b" / "clauses" / sorted(p.name for p in (rules / "b" / "clauses").iterdir())[0])
    again = contained.load_all(rules)
    assert children[1:] == [["b"]]
    assert again["minimal"] is first["minimal"]
    assert again["zhuanqiao-2018"].version != first["zhuanqiao-2018"].version


def test_errors_of_a_partly_kept_directory_are_the_loader_s_in_its_order(rules, children):
    contained.load_all(rules)
    # a third folder repeating a kept scheme's id, and a broken clause in the other one
    shutil.copytree(rules / "b", rules / "c")
    _touch(rules / "a" / "clauses" / "01-rate.yaml", "pionts: 3\n")
    with pytest.raises(RuleSetError) as contained_err:
        contained.load_all(rules)
    with pytest.raises(RuleSetError) as direct_err:
        loader.load_tree(loader.read_tree(rules), rules.as_posix(), str(rules))
    assert [str(e) for e in contained_err.value.errors] == [str(e) for e in direct_err.value.errors]
    assert any("重复" in str(e) for e in direct_err.value.errors)
    assert children[-1] == ["a", "c"]  # b was kept: neither sent nor parsed


def test_a_candidate_is_checked_folder_by_folder_too(children):
    files = {f"minimal/{rel}": data for rel, data in loader.read_tree(MINIMAL).items()}
    files["minimal/scheme.yaml"] += f"# {uuid.uuid4()}\n".encode()  # bytes no test loaded before
    contained.load_tree(files, "candidate")
    contained.load_tree(files, "candidate")
    assert children == [["minimal"]]


def _shape(node):
    """Everything the reader reads of a node: kind, tag, text, style and marks, all the way down."""
    if isinstance(node.value, list):
        items = [
            (_shape(entry[0]), _shape(entry[1])) if isinstance(entry, tuple) else _shape(entry)
            for entry in node.value
        ]
        return type(node).__name__, node.tag, node.start_mark.index, node.end_mark.index, items
    return (
        type(node).__name__,
        node.tag,
        node.value,
        node.style,
        node.start_mark.line,
        node.start_mark.column,
        node.start_mark.index,
        node.end_mark.index,
    )


@pytest.mark.parametrize(
    "text",
    [
        "a: yes\nb: 1_000\nc: .inf\nd: ~\ne: 2001-12-14\nf: 0o17\ng: 017\nh: True\n",
        "%YAML 1.1\n---\na: yes\n",
        "- !!str 1\n- !foo x\n- 'q'\n- \"d\"\n- |\n  lit\n",
        "a: [1, {b: c}]\n",
    ],
)
def test_the_composer_gives_ruamel_s_nodes(text):
    yaml = YAML(typ="safe")
    yaml.version = (1, 2)
    assert _shape(_compose(text)) == _shape(yaml.compose(text))


def test_the_composer_gives_ruamel_s_nodes_for_every_shipped_file():
    for path in sorted(RULES.rglob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        yaml = YAML(typ="safe")
        yaml.version = (1, 2)
        assert _shape(_compose(text)) == _shape(yaml.compose(text)), path


def test_the_loading_process_is_kept_between_loads_and_replaced_when_found_dead(rules):
    """What it parsed stays with it: the next load of a changed scheme parses the changed file."""
    contained.load_all(rules)
    first = contained._loading[0].pid
    _touch(rules / "a" / "clauses" / "01-rate.yaml")
    assert contained.load_all(rules)["minimal"]
    assert contained._loading[0].pid == first
    # found dead between loads (killed, out of memory): replaced before the next, which costs
    # no load (a crash during a load is that load's error: tests/unit/test_contained.py)
    contained._loading[0].kill()
    contained._loading[0].join()
    _touch(rules / "a" / "clauses" / "01-rate.yaml", "# 再次修订\n")
    assert contained.load_all(rules)["minimal"]
    assert contained._loading[0].pid != first


def test_a_start_s_load_is_what_the_first_reload_finds(rules, children):
    """A worker's start loads in process (``loader.load_all``); its reload then starts no child,
    however the directory is written."""
    started = loader.load_all(rules)
    reloaded = contained.load_all(f"{rules}/")
    assert children == []
    assert all(reloaded[sid] is started[sid] for sid in started)


def test_between_loads_the_loading_process_keeps_each_file_s_latest_content_only(tmp_path):
    """``loader.keep_latest`` (run by the kept loading process after each load): an edited file's
    earlier content is dropped, every file's latest stays (the next edit parses one file), and
    no scheme is kept (the caller keeps them)."""
    root = tmp_path / "rules"
    shutil.copytree(MINIMAL, root / "a")
    clause = root / "a" / "clauses" / "01-rate.yaml"
    loader.forget()
    try:
        uncached(loader.read_tree(root / "a"), "a", "")
        for n in range(3):
            _touch(clause, f"# 修订 {n}\n")
            uncached(loader.read_tree(root / "a"), "a", "")
        names = [key[0] for key in loader._PARSED]
        assert names.count("a/clauses/01-rate.yaml") == 4  # every content read, kept
        loader.keep_latest()
        kept = {key[0]: key[1] for key in loader._PARSED}
        assert len(kept) == len(loader._PARSED) == len(set(names))  # one content a file
        assert kept["a/clauses/01-rate.yaml"] == clause.read_bytes()  # the latest
        assert not loader._SCHEMES
        # the scheme loads again as it was, parsing nothing: every file's latest content is there
        parsed = dict(loader._PARSED)
        assert uncached(loader.read_tree(root / "a"), "a", "").id == "minimal"
        assert dict(loader._PARSED).keys() == parsed.keys()
    finally:
        loader.forget()


def _rss(pid: int) -> int:
    import psutil

    return psutil.Process(pid).memory_info().rss


def test_the_kept_loading_process_memory_stays_flat_over_edits(tmp_path):
    """The six seed schemes loaded, then 20 reloads with a clause of the largest changed each
    time: the loading process grew 0.7 MiB a reload (13 MiB over 20; bounded only by 2,048 files
    and 64 schemes kept), and now stays within 8 MiB of where it started."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    schemes = contained.load_all(rules)  # a path of its own: every folder is sent to the child
    process = contained._loading[0]
    largest = max(schemes.values(), key=lambda scheme: len(scheme.matches))
    clause = rules / largest.files[-1]
    _touch(clause, "# 修订\n")
    contained.load_all(rules)  # the first edit: its other files were parsed at the first load
    start = _rss(process.pid)
    for n in range(20):
        _touch(clause, f"# 修订 {n}\n")
        assert contained.load_all(rules)[largest.id].version != largest.version
    assert contained._loading[0] is process  # the same process all along
    grown = (_rss(process.pid) - start) / (1 << 20)
    assert grown < 8, f"the loading process grew {grown:.1f} MiB over 20 reloads"


def test_the_web_worker_s_memory_stays_flat_over_edits(tmp_path):
    """The caller's side of a reload (``operations.reload_rules``): the contained load, then the
    registry serving what loaded.  With a clause of the largest seed scheme changed before each of
    20 reloads, the worker kept every version it had loaded (the loader's schemes up to 64, the
    registry's all of them): 0.65 MiB a reload, 13 MiB over 20.  Now a version no longer served,
    and asked for by no one, is freed, and the worker stays within 8 MiB of where it started."""
    import gc
    import os
    import weakref

    from service.registry import Registry

    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    registry = Registry(rules)
    registry.swap(contained.load_all(rules))
    largest = max(registry.schemes().values(), key=lambda scheme: len(scheme.matches))
    clause = rules / largest.files[-1]
    _touch(clause, "# 修订\n")
    registry.swap(contained.load_all(rules))  # the first edit: the loading process parsed it all
    gc.collect()
    start = _rss(os.getpid())
    served = []
    for n in range(20):
        _touch(clause, f"# 修订 {n}\n")
        registry.swap(contained.load_all(rules))
        served.append(weakref.ref(registry.get(largest.id)))
    gc.collect()
    grown = (_rss(os.getpid()) - start) / (1 << 20)
    freed = [ref() is None for ref in served]
    assert freed == [True] * 19 + [False], "every version no longer served is freed"
    assert registry.by_version(largest.version) is largest  # still held (here): found again
    assert grown < 8, f"the worker grew {grown:.1f} MiB over 20 reloads"


def test_an_edit_undone_finds_the_version_still_served_without_a_child(rules, children):
    """The loader holds each folder's last scheme; the one before it is found again while it
    is held elsewhere (here: served, after a reload whose cases failed), never parsed again."""
    clause = rules / "a" / "clauses" / "01-rate.yaml"
    served = contained.load_all(rules)["minimal"]
    before = clause.read_bytes()
    _touch(clause)
    failed = contained.load_all(rules)["minimal"]  # loaded, but not served (say its cases failed)
    assert failed is not served
    clause.write_bytes(before)
    assert contained.load_all(rules)["minimal"] is served
    assert children == [["a", "b"], ["a"]]  # the undone edit sent nothing


def _edited(registry, rules: Path, clause: Path, words: str) -> None:
    _touch(clause, words)
    registry.swap(contained.load_all(rules))


def test_a_version_asked_for_while_served_is_kept_when_a_reload_retires_it(rules):
    """A round pinned to the version served when it opened scores by it after the rules change
    (``operations.round_scheme``: asked for by version): that one is kept, from memory, and a
    version only served is freed once another replaces it."""
    import gc
    import weakref

    from service.registry import Registry

    clause = rules / "a" / "clauses" / "01-rate.yaml"
    registry = Registry(rules)
    registry.swap(contained.load_all(rules))
    pinned = registry.get("minimal").version
    assert registry.by_version(pinned).version == pinned  # the round's requests
    kept = weakref.ref(registry.get("minimal"))
    _edited(registry, rules, clause, "# 修订 1\n")
    only_served = weakref.ref(registry.get("minimal"))
    _edited(registry, rules, clause, "# 修订 2\n")
    gc.collect()
    assert kept() is not None and registry.by_version(pinned) is kept()
    assert only_served() is None
    # other workers' publications (``operations.sync_rules``): loaded from the archive,
    # remembered, served, then replaced: freed too (the loader holds its folder's last only)
    synced = []
    for n in range(2):
        _touch(clause, f"# 发布 {n}\n")
        published = uncached(loader.read_tree(rules / "a"), "a", "")
        registry.remember(published)
        registry.swap({"minimal": published, "zhuanqiao-2018": registry.get("zhuanqiao-2018")})
        synced.append(weakref.ref(published))
    del published
    _edited(registry, rules, clause, "# 修订 3\n")
    gc.collect()
    assert synced[0]() is None
    assert registry.by_version(pinned) is kept()


def test_the_registry_holds_no_more_than_kept_versions_it_does_not_serve(rules):
    """Replays and comparisons of many archived versions: the ``KEPT`` asked for last are held,
    the others freed (a replay loads them from the archive again)."""
    import gc
    import weakref

    from service.registry import Registry

    registry = Registry(rules)
    clause = rules / "a" / "clauses" / "01-rate.yaml"
    asked = []
    for n in range(Registry.KEPT + 2):
        _touch(clause, f"# 修订 {n}\n")
        scheme = uncached(loader.read_tree(rules / "a"), "a", "")
        registry.remember(scheme)
        asked.append(weakref.ref(scheme))
    del scheme
    gc.collect()
    assert [ref() is not None for ref in asked] == [False] * 2 + [True] * Registry.KEPT
