"""A scheme version is its files: hashed, parsed and archived from the same bytes.

The archive (the rule_versions table) must give back a scheme with the very
same version, whatever the files look like: Windows line ends, a byte-order
mark, Chinese file names; and an edit on disk after loading changes nothing
that was loaded.
"""

from __future__ import annotations

import shutil

from service.rulefiles.loader import load_files, load_scheme, snapshot, version_of

from .conftest import MINIMAL, RULES


def _copy(tmp_path, source=MINIMAL):
    folder = tmp_path / "rules" / "minimal"
    shutil.copytree(source, folder)
    return folder


def test_archived_texts_give_back_the_same_version(tmp_path, shipped):
    for scheme in shipped.values():
        again = load_files(scheme.texts, scheme.files[0].rsplit("/", 1)[0])
        assert again.version == scheme.version
        assert again.files == scheme.files  # the trace names the same files
    assert sorted(shipped["gumeilu-2022"].texts) == sorted(
        snapshot(RULES / "minhang-gumeilu" / "2022")
    )


def test_windows_line_ends_and_a_byte_order_mark_survive_the_archive(tmp_path):
    folder = _copy(tmp_path)
    for path in folder.rglob("*.yaml"):
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    scheme = load_scheme(folder, tmp_path / "rules")
    assert scheme.version == version_of(folder)
    assert all(text.startswith("\ufeff") and "\r\n" in text for text in scheme.texts.values())
    # the archive stores text (JSON); reading it back must not turn "\r\n" into "\n"
    assert load_files(dict(scheme.texts), "minimal").version == scheme.version


def test_an_edit_on_disk_after_loading_changes_nothing_loaded(tmp_path):
    folder = _copy(tmp_path)
    scheme = load_scheme(folder, tmp_path / "rules")
    before = dict(scheme.texts)
    (folder / "scheme.yaml").write_text(
        (folder / "scheme.yaml").read_text(encoding="utf-8") + "\n# 改过\n", encoding="utf-8"
    )
    assert scheme.texts == before
    assert load_files(scheme.texts, "minimal").version == scheme.version != version_of(folder)
