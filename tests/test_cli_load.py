"""``scoring score`` loads the one scheme it names (issue 12): the other schemes' folders are not
parsed, so an error in one of them does not stop scoring this one; an error in this one is
reported at its file:line:column exactly as ``scoring check`` reports it; an unknown id names the
ids there are.  ``loader.load_one`` gives the very scheme ``load_all`` gives."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from service import cli
from service.rulefiles import loader
from service.rulefiles.loader import NoSuchScheme, declared_id, load_all, load_one

from .conftest import MINIMAL, ROOT, RULES
from .test_cli import FACTS


def _score(*args) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.main, ["score", *map(str, args), "--oracle"])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def _check(rules: Path) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "service.cli", "check", "--no-tests", "--rules", str(rules)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 1
    return [line for line in proc.stderr.splitlines() if ".yaml:" in line]


def _scheme(rules: Path, folder: str, scheme_id: str) -> Path:
    """A copy of the fixture scheme under ``rules/folder`` with the id ``scheme_id``."""
    target = rules / folder
    shutil.copytree(MINIMAL, target)
    path = target / "scheme.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("id: minimal", f"id: {scheme_id}", 1),
        encoding="utf-8",
    )
    return target


def _break(folder: Path) -> None:
    """A misspelt key in a clause: 07-accidents.yaml:4:1."""
    path = folder / "clauses" / "07-accidents.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("points: 3", "pionts: 3"), encoding="utf-8"
    )


@pytest.fixture()
def facts(tmp_path) -> Path:
    path = tmp_path / "units.json"
    units = {"甲": FACTS, "乙": {**FACTS, "accidents": 3}}
    path.write_text(json.dumps({"units": units}, ensure_ascii=False), encoding="utf-8")
    return path


def test_a_broken_other_scheme_does_not_stop_scoring_this_one(tmp_path, facts):
    rules = tmp_path / "rules"
    _scheme(rules, "a-minimal", "minimal")
    _break(_scheme(rules, "b-other", "other"))
    (rules / "c-garbage").mkdir()
    (rules / "c-garbage" / "scheme.yaml").write_text("id: garbage\ntitle: [\n", encoding="utf-8")
    broken = _check(rules)  # the whole directory does not load
    assert {line.split("/")[0] for line in broken} == {"b-other", "c-garbage"}

    code, out, err = _score("minimal", facts, "--rules", rules)
    assert code == 0, err
    alone = tmp_path / "alone"
    _scheme(alone, "a-minimal", "minimal")
    assert (code, out) == (0, _score("minimal", facts, "--rules", alone)[1])
    assert "总分" in out and "名次" in out


def test_an_error_in_the_named_scheme_is_reported_as_check_reports_it(tmp_path, facts):
    rules = tmp_path / "rules"
    _break(_scheme(rules, "a-minimal", "minimal"))
    _scheme(rules, "b-other", "other")
    code, out, err = _score("minimal", facts, "--rules", rules)
    assert code == 1 and out == ""
    expected = (
        "a-minimal/clauses/07-accidents.yaml:4:1: 条款文件中没有键“pionts”。是否想写“points”？"
    )
    assert expected in err.splitlines()
    assert err.splitlines()[:-1] == _check(rules)
    assert err.splitlines()[-1] == f"细则“minimal”有 {len(_check(rules))} 处错误，未加载。"


def test_an_unknown_id_names_the_ids_there_are(tmp_path, facts):
    rules = tmp_path / "rules"
    _scheme(rules, "a", "minimal")
    _break(_scheme(rules, "b", "other"))
    _scheme(rules, "c", "third")
    code, out, err = _score("nope", facts, "--rules", rules)
    assert code == 1 and out == ""
    assert "没有编号为“nope”的细则（有：minimal、other、third）" in err
    # a folder whose id only its (broken) file can tell is named as one that could not be read
    anchored = rules / "d" / "scheme.yaml"
    anchored.parent.mkdir()
    anchored.write_text("id: &x fourth\ntitle: [\n", encoding="utf-8")
    code, _, err = _score("nope", facts, "--rules", rules)
    assert code == 1
    assert "（有：minimal、other、third）；另有 1 个细则文件夹有错误，读不出编号：d" in err
    # the shipped rules: every id, in folder order, as the whole directory lists them
    code, _, err = _score("nope", facts, "--rules", RULES)
    assert code == 1 and f"（有：{'、'.join(load_all(RULES))}）" in err


def test_the_same_id_in_two_folders_is_refused_as_check_refuses_it(tmp_path, facts):
    rules = tmp_path / "rules"
    _scheme(rules, "a", "minimal")
    _scheme(rules, "b", "minimal")
    _scheme(rules, "c", "other")
    code, out, err = _score("minimal", facts, "--rules", rules)
    assert code == 1 and out == ""
    assert "b/scheme.yaml:1:1: 细则编号“minimal”与 a/scheme.yaml 重复" in err
    assert _check(rules) == err.splitlines()[:-1]
    assert _score("other", facts, "--rules", rules)[0] == 0


def test_a_zip_of_a_scheme_folder_still_scores(tmp_path, facts):
    bundle = tmp_path / "minimal.zip"
    with zipfile.ZipFile(bundle, "w") as z:
        for path in sorted(MINIMAL.rglob("*.yaml")):
            z.write(path, f"minimal/{path.relative_to(MINIMAL).as_posix()}")
    code, out, err = _score("minimal", facts, "--rules", bundle)
    assert code == 0, err
    assert "总分" in out
    code, _, err = _score("nope", facts, "--rules", bundle)
    assert code == 1 and "没有编号为“nope”的细则（有：minimal）" in err


def test_load_one_gives_the_scheme_load_all_gives_parsing_only_its_folder(monkeypatch):
    every = load_all(RULES)
    read: list[str] = []
    parse = loader._read

    def counted(file, data, objspec, errors):
        read.append(file)
        return parse(file, data, objspec, errors)

    monkeypatch.setattr(loader, "_read", counted)
    monkeypatch.setattr(loader, "load_files", loader.load_files.uncached)  # not the tests' memo
    loader.forget()  # parsed for real, not from the loader's own memory
    for scheme_id, scheme in every.items():
        read.clear()
        one = load_one(RULES, scheme_id)
        assert one.version == scheme.version and one.path == scheme.path
        assert [c.file for c in one.clauses.values()] == [c.file for c in scheme.clauses.values()]
        folder = Path(scheme.path).relative_to(RULES).as_posix()
        assert read and all(f.startswith(folder + "/") for f in read)
    with pytest.raises(NoSuchScheme) as unknown:
        load_one(RULES, "nope")
    assert unknown.value.ids == list(every) and unknown.value.unreadable == []


def test_a_header_that_misleads_falls_back_to_loading_everything(tmp_path, monkeypatch):
    """Should a header's id line ever say one id and the YAML another, the folder loaded is
    found to be another scheme and the whole directory decides, as it did before."""
    rules = tmp_path / "rules"
    _scheme(rules, "a", "other")
    _scheme(rules, "b", "minimal")
    monkeypatch.setattr(loader, "declared_id", lambda data: "minimal")  # every header lies
    assert load_one(rules, "minimal").path == str(rules / "b")
    with pytest.raises(NoSuchScheme) as unknown:
        load_one(rules, "nope")
    assert unknown.value.ids == ["minimal"]  # what the headers say: nothing was loaded
    monkeypatch.setattr(loader, "declared_id", lambda data: "other")
    loads = []
    monkeypatch.setattr(loader, "load_all", lambda root: loads.append(root) or load_all(root))
    # folder b says "other" but is "minimal": the whole directory is loaded, and a is "other"
    assert load_one(rules, "other").path == str(rules / "a") and loads == [rules]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# 注释\nid: shuangtaizi-2016\ntitle: x\n", "shuangtaizi-2016"),
        ('id: "gumeilu-2022"  # 编号\n', "gumeilu-2022"),
        ("id: 'a b'\n", "a b"),
        ("id:   2016   \n", "2016"),
        ("\ufeffid: x\n", "x"),
        ("title: t\nid: x # c\n", "x"),
        ("id: x\nid: y\n", None),  # twice: YAML refuses it; the load says so
        ("id:\n  x\n", None),  # on the next line
        ("id: x\n  y\n", None),  # continued: "x y"
        ("id: &a x\n", None),
        ("id: !!str x\n", None),
        ('id: "x\\u0041"\n', None),
        ("id: [x]\n", None),
        ("id: x,y\n", None),
        ('"id": x\n', None),  # a quoted key: the line at the margin is not a plain key
        ('title: "a\nid: b"\n', None),  # inside a quoted scalar
        ("title: [a,\nid: b]\n", None),  # inside a flow sequence
        ("<<: *base\nid: x\n", None),
        ("? id\n: x\n", None),
        ("categories:\n- id: A\nid: x\n", "x"),  # a list item at the margin
        ("id: a: b\n", None),
        ("---\nid: x\n", None),
        ("  id: x\n", None),  # not at the top level
        ("{id: x}\n", None),
        ("title: t\n", None),
        (b"id: \xff\n", None),
        (None, None),
    ],
)
def test_declared_id_reads_only_what_it_is_sure_of(text, expected):
    assert declared_id(text) == expected


def test_where_the_walk_could_not_look_the_whole_directory_decides(tmp_path, facts):
    """A link in the rules directory (which ``read_tree`` refuses) may hide a scheme folder: the
    scheme found elsewhere still scores; an id not found makes the whole directory load, which
    says what stands in the way."""
    rules = tmp_path / "rules"
    _scheme(rules, "a", "minimal")
    _scheme(tmp_path, "elsewhere", "other")
    (rules / "b").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert _score("minimal", facts, "--rules", rules)[0] == 0
    code, out, err = _score("other", facts, "--rules", rules)
    assert code == 1 and out == ""
    assert "b:1:1: 是符号链接：规则文件夹中只能有普通文件和文件夹" in err
