"""Rule files through the API: validate, reload all-or-nothing, versions, and replay across versions.

Runs on a private copy of the fixture scheme ``tests/fixtures/minimal`` (``api_on_copy``),
whose files each test edits.  Expected totals are computed from the rule files as they
stand at each step (``expected_total``), not copied from responses.
"""

from __future__ import annotations

import hashlib
import shutil
from decimal import Decimal
from pathlib import Path

from ruamel.yaml import YAML

from service.app import create_app
from service.config import Settings
from service.db import RuleVersion

from ..apps import ROUND_DATES
from ..conftest import MINIMAL
from ..unit.test_scoring import FULL
from .conftest import Api
from .shapes import assert_all_well_formed, assert_error, check_every_response

SCHEME = "minimal"


def files_of(folder: Path) -> dict:
    return {
        p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(folder.rglob("*.yaml"))
    }


def content_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.yaml")):
        digest.update(
            path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes() + b"\0"
        )
    return digest.hexdigest()


def position(text: str, needle: str) -> tuple[int, int]:
    """1-based line and column of the first ``needle`` in ``text``."""
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number, line.index(needle) + 1
    raise AssertionError(f"{needle!r} not in text")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, (path, old)
    path.write_text(text.replace(old, new), encoding="utf-8")


def expected_total(folder: Path, facts: dict) -> Decimal:
    """Total of FULL-like facts (full marks in every basic clause) by the scheme's files as they are now:
    20 basic points, plus the awards clause (each x count, clause cap) under the bonus pool's cap,
    minus the accidents clause (each x count, up to its cap)."""
    yaml = YAML(typ="safe")
    scheme = yaml.load((folder / "scheme.yaml").read_text(encoding="utf-8"))
    awards = yaml.load((folder / "clauses/06-awards.yaml").read_text(encoding="utf-8"))["rules"][0]
    accidents = yaml.load((folder / "clauses/07-accidents.yaml").read_text(encoding="utf-8"))[
        "rules"
    ][0]
    pool_cap = next(
        Decimal(str(c["cap"])) for c in scheme["categories"] if c.get("kind") == "bonus"
    )
    bonus = min(
        pool_cap, min(Decimal(str(awards["cap"])), Decimal(str(awards["each"])) * facts["awards"])
    )
    deduction = min(
        Decimal(str(accidents["cap"])), -Decimal(str(accidents["each"])) * facts["accidents"]
    )
    assert all(facts[k] == FULL[k] for k in FULL if k not in ("awards", "accidents"))
    return Decimal(scheme["total"]) + bonus - deduction


def what_if(api, facts) -> Decimal:
    response = api.post(f"/api/schemes/{SCHEME}/evaluate", "editor", json={"facts": facts})
    assert response.status_code == 200, response.json
    return Decimal(response.json["result"]["total"])


def served_version(api) -> str:
    return api.get(f"/api/schemes/{SCHEME}", "auditor").json["version"]


# --- validate --------------------------------------------------------------------------------


def test_validate_a_candidate_scheme_folder(api_on_copy, tmp_path):
    api = api_on_copy
    seen = check_every_response(api)
    good = files_of(MINIMAL)
    assert "scheme.yaml" in good and "clauses/01-rate.yaml" in good
    before = served_version(api)
    with api.ctx.db.transaction() as s:
        stored_before = s.query(RuleVersion).count()

    valid = api.post("/api/rules/validate", "editor", json={"files": good})
    assert valid.status_code == 200, valid.json
    assert valid.json == {
        "valid": True,
        "errors": [],
        "failing": [],  # the check runs the folder's test cases too
        "cases": 15,
        "schemes": [{"id": SCHEME, "version": content_hash(MINIMAL), "clauses": len(good) - 1}],
    }

    # a broken clause: reported with its file, line, column and a message naming the problem
    broken_text = good["clauses/02-coverage.yaml"].replace("step: 5", "stepp: 5")
    invalid = api.post(
        "/api/rules/validate",
        "admin",
        json={"files": dict(good, **{"clauses/02-coverage.yaml": broken_text})},
    )
    assert invalid.status_code == 200, invalid.json
    assert invalid.json["valid"] is False and not invalid.json.get("schemes")
    (error,) = invalid.json["errors"]
    line, column = position(broken_text, "stepp")
    assert (error["file"], error["line"], error["column"]) == (
        "clauses/02-coverage.yaml",
        line,
        column,
    )
    assert "stepp" in error["message"] and "step" in error["message"].replace("stepp", "")

    # YAML that does not parse, and a clause that reads an undeclared fact
    unparsable = api.post(
        "/api/rules/validate",
        "editor",
        json={"files": dict(good, **{"clauses/04-review.yaml": "id: [4\n"})},
    )
    assert unparsable.json["valid"] is False
    assert any(
        e["file"] == "clauses/04-review.yaml" and e["line"] >= 1 and e["column"] >= 1
        for e in unparsable.json["errors"]
    )
    dangling = good["clauses/02-coverage.yaml"].replace("coverage >= 0", "covrage >= 0")
    reported = api.post(
        "/api/rules/validate",
        "editor",
        json={"files": dict(good, **{"clauses/02-coverage.yaml": dangling})},
    )
    (error,) = reported.json["errors"]
    assert error["file"] == "clauses/02-coverage.yaml" and "covrage" in error["message"]
    assert (error["line"], error["column"]) == position(dangling, "covrage")

    # paths that leave the folder, or are not rule files: refused before anything is written
    outside = tmp_path / "escaped.yaml"
    for bad_path in ("../x.yaml", "clauses/../../x.yaml", str(outside), "clauses/notes.txt"):
        refused = api.post(
            "/api/rules/validate", "editor", json={"files": dict(good, **{bad_path: "id: x\n"})}
        )
        assert_error(refused, 422, "invalid_path", [f"files.{bad_path}"])
    assert_error(
        api.post("/api/rules/validate", "editor", json={"files": {}}),
        422,
        "invalid_request",
        ["files"],
    )
    assert_error(
        api.post("/api/rules/validate", "editor", json={}), 422, "invalid_request", ["files"]
    )
    assert_error(
        api.post("/api/rules/validate", "editor", json={"files": {"scheme.yaml": 5}}),
        422,
        "invalid_request",
    )

    # validating changes nothing: the same version serves, no version was stored
    assert served_version(api) == before
    with api.ctx.db.transaction() as s:
        assert s.query(RuleVersion).count() == stored_before
    assert not outside.exists()
    assert_all_well_formed(seen)


def test_validate_refuses_paths_no_folder_can_hold(api_on_copy):
    # regression: a name over 255 bytes, a file and a folder of one name, or folders 2,000 deep
    # were written to a temporary folder and the OSError answered 500
    api = api_on_copy
    good = files_of(MINIMAL)
    long_name = "clauses/" + "长" * 86 + ".yaml"  # 263 bytes in UTF-8
    deep = "/".join(["d"] * 2000) + "/x.yaml"
    clash = "clauses/02-coverage.yaml/x.yaml"
    for bad_path, blamed, words in (
        (long_name, long_name, "文件名或文件夹名过长：每一段最多255字节"),
        (deep, deep, "文件夹层数过多：最多12层"),
        (clash, "clauses/02-coverage.yaml", "同一位置既是文件又是文件夹"),
    ):
        refused = api.post(
            "/api/rules/validate", "editor", json={"files": dict(good, **{bad_path: "id: x\n"})}
        )
        assert_error(refused, 422, "invalid_path", [f"files.{blamed}"])
        assert refused.json["error"]["fields"][f"files.{blamed}"] == [words]


def test_validate_survives_what_killed_the_parser(api_on_copy):
    # regression: 30,000 brackets killed the web worker (SIGSEGV in libyaml); the candidate is
    # now bounded before parsing, and parsed in a child process in any case
    api = api_on_copy
    good = files_of(MINIMAL)
    answer = api.post(
        "/api/rules/validate",
        "editor",
        json={"files": dict(good, **{"clauses/09-deep.yaml": "[" * 30000})},
    )
    assert answer.status_code == 200, answer.json
    assert answer.json["valid"] is False
    assert answer.json["errors"] == [
        {
            "file": "clauses/09-deep.yaml",
            "line": 1,
            "column": 39,
            "message": "列表与映射嵌套过深：规则文件最多嵌套40层，请检查括号“[”“{”是否配对、缩进是否正确",
        }
    ]
    # a line separator pasted from Word: the line is still the one the editor shows
    pasted = good["clauses/03-work.yaml"].replace("有报告得1分；", "有报告得1分；\u2028")
    pasted = pasted.replace("scale_from:", "scale_fromm:")
    answer = api.post(
        "/api/rules/validate",
        "editor",
        json={"files": dict(good, **{"clauses/03-work.yaml": pasted})},
    )
    assert answer.status_code == 200, answer.json
    (error,) = answer.json["errors"]
    lines = pasted.split("\n")
    line = next(i for i, text in enumerate(lines, 1) if "scale_fromm" in text)
    assert (error["line"], error["column"]) == (line, lines[line - 1].index("scale_fromm") + 1)
    assert api.post("/api/rules/validate", "editor", json={"files": good}).json["valid"] is True


# --- reload, versions, replay across versions, all-or-nothing ------------------------------------


def test_reload_serves_the_new_version_and_old_scores_still_replay(api_on_copy):
    api = api_on_copy
    seen = check_every_response(api)
    folder = api.rules_dir / SCHEME
    facts = dict(FULL, awards=1, accidents=2)
    v_original = served_version(api)
    assert v_original == content_hash(folder)
    assert what_if(api, facts) == expected_total(folder, facts)

    # a score under the original rules
    path = f"/api/units/gucun/schemes/{SCHEME}"
    assert (
        api.post(
            f"{path}/submissions", "submitter", json={"role": "self", "facts": facts}
        ).status_code
        == 201
    )
    old = api.post(f"{path}/scores", "submitter", json={})
    assert old.status_code == 201
    old_total = expected_total(folder, facts)
    assert Decimal(old.json["total"]) == old_total and old.json["rules_version"] == v_original

    # policy staff change a rule file and reload: the change is reported and the new version serves
    edit(folder / "clauses/06-awards.yaml", "each: 1, cap: 3", "each: 2, cap: 3")
    v_changed = content_hash(folder)
    reloaded = api.post("/api/rules/reload", "editor")
    assert reloaded.status_code == 200, reloaded.json
    assert reloaded.json == {
        "changes": {SCHEME: {"from": v_original, "to": v_changed}},
        "rule_set": 2,
    }
    assert served_version(api) == v_changed
    new_total = expected_total(folder, facts)
    assert new_total != old_total
    assert what_if(api, facts) == new_total
    assert api.post("/api/rules/reload", "editor").json == {
        "changes": {},
        "rule_set": 2,
    }  # nothing changed since

    versions = api.get("/api/rules/versions", "auditor")
    assert versions.status_code == 200
    listed = {v["version"]: v for v in versions.json}
    assert set(listed) == {v_original, v_changed}
    assert (listed[v_original]["serving"], listed[v_changed]["serving"]) == (False, True)
    assert all(v["scheme"] == SCHEME for v in listed.values())

    # the old score: still readable as it was, replays under its own version, ranked as old
    read = api.get(f"/api/scores/{old.json['id']}", "auditor")
    assert read.status_code == 200
    assert read.json["rules_version"] == v_original and Decimal(read.json["total"]) == old_total
    assert read.json["trace"] == old.json["trace"]
    replay = api.post(f"/api/scores/{old.json['id']}/replay", "auditor")
    assert replay.status_code == 200
    assert replay.json["reproduced"] is True and replay.json["rules_version"] == v_original
    assert (
        Decimal(replay.json["stored_total"]) == Decimal(replay.json["replayed_total"]) == old_total
    )

    # the round was opened under the original rules and keeps them: its official score is
    # computed under them, whatever is served now, and the ranking says they are not current
    rid = api.round_of(SCHEME)
    assert api.post(f"/api/rounds/{rid}/units/gucun/review-complete", "reviewer").status_code == 200
    official = api.post(f"{path}/scores", "reviewer", json={})
    assert official.status_code == 201 and official.json["kind"] == "official"
    assert official.json["rules_version"] == v_original
    assert Decimal(official.json["total"]) == old_total
    (entry,) = api.get(f"/api/schemes/{SCHEME}/ranking", "auditor").json["entries"]
    assert entry["current_rules"] is False and entry["rules_version"] == v_original

    # a round opened now (the next year) is under the new rules, and so are its scores
    opened = api.post("/api/rounds", "admin", json={"scheme": SCHEME, "year": 2027, **ROUND_DATES})
    assert opened.status_code == 201 and opened.json["rules_version"] == v_changed, opened.json
    again = api.post(
        f"{path}/submissions",
        "submitter",
        json={"role": "self", "facts": facts, "reason": "2027年度自评"},
        headers={"If-Match": '"1"'},
    )
    assert again.status_code == 201, again.json
    done = api.post(f"/api/rounds/{opened.json['id']}/units/gucun/review-complete", "reviewer")
    assert done.status_code == 200, done.json
    new = api.post(f"{path}/scores", "reviewer", json={})
    assert new.status_code == 201 and new.json["round"] == opened.json["id"]
    assert new.json["rules_version"] == v_changed and Decimal(new.json["total"]) == new_total
    (entry,) = api.get(f"/api/schemes/{SCHEME}/ranking", "auditor").json["entries"]
    assert entry["current_rules"] is True and Decimal(entry["total"]) == new_total

    # all or nothing: one valid edit and one broken file -> nothing of it is used
    edit(folder / "clauses/07-accidents.yaml", "each: -1, cap: 3", "each: -1, cap: 1")
    # (with its test case: a reload runs the cases, and the old one would fail under the new cap)
    edit(
        folder / "clauses/07-accidents.yaml",
        "4起扣3, facts: {accidents: 4}, points: -3",
        "4起扣1, facts: {accidents: 4}, points: -1",
    )
    maturity = folder / "clauses/05-maturity.yaml"
    maturity.write_text(maturity.read_text(encoding="utf-8") + "bogus_key: 1\n", encoding="utf-8")
    line, column = position(maturity.read_text(encoding="utf-8"), "bogus_key")
    failed = api.post("/api/rules/reload", "editor")
    error = assert_error(failed, 422, "invalid_rules")
    assert list(error["fields"]) == [f"{SCHEME}/clauses/05-maturity.yaml:{line}:{column}"]
    assert "bogus_key" in error["fields"][f"{SCHEME}/clauses/05-maturity.yaml:{line}:{column}"][0]
    assert served_version(api) == v_changed
    assert what_if(api, facts) == new_total  # the valid accidents edit is not in force either
    assert {v["version"] for v in api.get("/api/rules/versions", "editor").json} == {
        v_original,
        v_changed,
    }
    journal = [e for e in api.get("/api/journal", "admin").json if e["action"] == "rules.reload"]
    assert [(e["outcome"], e["actor"]) for e in journal] == [
        ("failed", "editor"),
        ("ok", "editor"),
        ("ok", "editor"),
    ]
    assert journal[0]["detail"] == {"errors": 1}
    assert journal[2]["detail"]["changes"] == {SCHEME: [v_original, v_changed]}

    # fixed: the reload goes through, with both edits
    maturity.write_text(
        maturity.read_text(encoding="utf-8").replace("bogus_key: 1\n", ""), encoding="utf-8"
    )
    v_fixed = content_hash(folder)
    fixed = api.post("/api/rules/reload", "admin")
    assert fixed.status_code == 200, fixed.json
    assert fixed.json == {"changes": {SCHEME: {"from": v_changed, "to": v_fixed}}, "rule_set": 3}
    fixed_total = expected_total(folder, facts)
    assert fixed_total not in (old_total, new_total)
    assert what_if(api, facts) == fixed_total
    serving = {v["version"]: v["serving"] for v in api.get("/api/rules/versions", "admin").json}
    assert serving == {v_original: False, v_changed: False, v_fixed: True}

    # and every stored score still replays under its own version
    for score, version, total in (
        (old.json, v_original, old_total),
        (new.json, v_changed, new_total),
    ):
        replay = api.post(f"/api/scores/{score['id']}/replay", "reviewer")
        assert replay.json["reproduced"] is True and replay.json["rules_version"] == version
        assert Decimal(replay.json["replayed_total"]) == total
    assert_all_well_formed(seen)


def test_old_versions_replay_in_a_process_that_never_loaded_them(api_on_copy, tmp_path, engine):
    """A new app on the same database, serving another rules directory, replays an old score
    from the rule files stored in the database."""
    api = api_on_copy
    path = f"/api/units/gucun/schemes/{SCHEME}"
    facts = dict(FULL, awards=1, accidents=0)
    assert (
        api.post(
            f"{path}/submissions", "submitter", json={"role": "self", "facts": facts}
        ).status_code
        == 201
    )
    old = api.post(f"{path}/scores", "submitter", json={}).json
    v_original = old["rules_version"]
    old_total = expected_total(api.rules_dir / SCHEME, facts)
    assert Decimal(old["total"]) == old_total

    # another rules directory, with a changed clause; the first copy is gone altogether
    other = tmp_path / "other-rules"
    shutil.copytree(api.rules_dir, other)
    edit(other / SCHEME / "clauses/06-awards.yaml", "each: 1, cap: 3", "each: 2, cap: 3")
    shutil.rmtree(api.rules_dir)
    settings = Settings(
        rules_dir=other,
        engine_workers=1,
        engine_deadline=10,
        database_url=api.ctx.db.url,
        secret_key="test",
        instance_dir=tmp_path / "instance2",
        max_body_bytes=256 * 1024,
    )
    app = create_app(settings, engine=engine)
    app.config["TESTING"] = True
    second = Api(app.test_client(), api.tokens, app)  # the same users and tokens: the same database
    seen = check_every_response(second)
    try:
        assert second.ctx.registry.by_version(v_original) is None  # this process never loaded it
        v_new = second.get(f"/api/schemes/{SCHEME}", "auditor").json["version"]
        assert v_new == content_hash(other / SCHEME) != v_original
        assert what_if(second, facts) == expected_total(other / SCHEME, facts) != old_total

        serving = {
            v["version"]: v["serving"] for v in second.get("/api/rules/versions", "auditor").json
        }
        assert serving == {v_original: False, v_new: True}

        replay = second.post(f"/api/scores/{old['id']}/replay", "auditor")
        assert replay.status_code == 200, replay.json
        assert replay.json["reproduced"] is True and replay.json["rules_version"] == v_original, (
            replay.json
        )
        assert Decimal(replay.json["replayed_total"]) == old_total
        assert (
            second.ctx.registry.by_version(v_original).version == v_original
        )  # loaded from the database
        read = second.get(f"/api/scores/{old['id']}", "auditor").json
        assert read["trace"] == old["trace"] and read["rules_version"] == v_original
        assert_all_well_formed(seen)
    finally:
        second.ctx.db.engine.dispose()
