"""Drafts and releases of rule versions (service/releases.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from service import operations, releases, rounds
from service.access import Actor
from service.app import create_app
from service.config import Settings
from service.db import JournalEntry, Round, RuleSet, User
from service.exceptions import Conflict, Forbidden, Invalid
from service.rulefiles import edit
from service.rulefiles.loader import version_of, version_of_files

from ..apps import round_dates
from ..conftest import RULES
from .conftest import DATABASES, make_api

GUMEILU = RULES / "minhang-gumeilu" / "2022"


def actor(api, username: str) -> Actor:
    with api.ctx.db.transaction() as s:
        user = s.scalar(select(User).where(User.username == username))
        return Actor(user.id, user.username, user.role, user.unit_id)


def journaled(api, action: str) -> list[JournalEntry]:
    with api.ctx.db.transaction() as s:
        return list(
            s.scalars(
                select(JournalEntry).where(JournalEntry.action == action).order_by(JournalEntry.id)
            )
        )


def copy_2023(api, who: str = "editor") -> releases.DraftView:
    return releases.copy_version(api.ctx, actor(api, who), version_of(GUMEILU), "2023")


def test_a_copy_for_a_new_year_rewrites_id_year_title_and_nothing_else(api):
    draft = copy_2023(api)
    assert (draft.scheme_id, draft.year, draft.folder) == (
        "gumeilu-2023",
        "2023",
        "minhang-gumeilu/2023",
    )
    assert draft.title == "2023年度古美路街道质量管理绩效评估考核细则任务分解表"
    assert draft.state == "draft" and draft.origin == "copy"
    assert draft.base_version == version_of(GUMEILU)
    assert draft.checked["ok"], draft.checked
    assert draft.checked["cases"] > 0
    assert draft.created_by == "editor"
    old = {
        p.relative_to(GUMEILU).as_posix(): p.read_text(encoding="utf-8")
        for p in GUMEILU.rglob("*.yaml")
    }
    assert set(draft.files) == set(old)
    for rel, text in old.items():
        if rel != "scheme.yaml":
            assert draft.files[rel] == text  # facts, tests and readings carried over as they were
    changed = [
        (a, b)
        for a, b in zip(old["scheme.yaml"].splitlines(), draft.files["scheme.yaml"].splitlines())
        if a != b
    ]
    assert changed == [
        ("id: gumeilu-2022", "id: gumeilu-2023"),
        (
            "title: 2022年度古美路街道质量管理绩效评估考核细则任务分解表",
            "title: 2023年度古美路街道质量管理绩效评估考核细则任务分解表",
        ),
        ('year: "2022"', 'year: "2023"'),
    ]
    [entry] = journaled(api, "rules.draft.create")
    assert entry.actor == "editor" and entry.detail["origin"] == "copy"
    assert [d.id for d in releases.list_drafts(api.ctx, actor(api, "auditor"))] == [draft.id]
    assert releases.read_draft(api.ctx, actor(api, "auditor"), draft.id) == draft


def test_a_copy_under_an_id_served_or_held_by_an_open_draft_is_refused(api):
    with pytest.raises(Conflict) as served:
        releases.copy_version(
            api.ctx, actor(api, "editor"), version_of(GUMEILU), "2023", scheme_id="gumeilu-2022"
        )
    assert "scheme_id" in served.value.fields
    copy_2023(api)
    with pytest.raises(Conflict) as held:
        copy_2023(api, "admin")
    assert "scheme_id" in held.value.fields


def test_a_save_that_does_not_load_is_kept_with_its_errors_and_a_stale_lock_is_refused(api):
    draft = copy_2023(api)
    broken = dict(draft.files)
    broken["scheme.yaml"] = broken["scheme.yaml"].replace("total: 100", "total: [")
    saved = releases.save_files(api.ctx, actor(api, "editor"), draft.id, draft.lock, broken, "改坏")
    assert saved.files == broken and saved.lock == draft.lock + 1
    assert not saved.checked["ok"]
    [error] = saved.checked["errors"][:1]
    assert error["file"] == "scheme.yaml" and error["line"] > 1
    with pytest.raises(Conflict) as stale:
        releases.save_files(api.ctx, actor(api, "editor"), draft.id, draft.lock, draft.files, "x")
    assert stale.value.code == "stale_draft" and "lock" in stale.value.fields
    [save] = journaled(api, "rules.draft.save")
    assert save.detail["what"] == "改坏" and save.detail["checked"] is False


def test_an_edit_changes_only_what_it_edits_and_a_failing_case_is_reported(api):
    draft = copy_2023(api)
    clause = edit.clause_files(draft.files)[0]
    cid = releases._header(draft.files[clause], "id")
    edited = releases.edit(
        api.ctx,
        actor(api, "editor"),
        draft.id,
        draft.lock,
        lambda files: edit.set_clause_field(files, cid, "title", "新的标题"),
        "改标题",
    )
    assert edited.checked["ok"], edited.checked
    assert [r for r in edited.files if edited.files[r] != draft.files[r]] == [clause]
    with pytest.raises(Invalid) as bad:
        releases.edit(
            api.ctx,
            actor(api, "editor"),
            draft.id,
            edited.lock,
            lambda files: edit.set_clause_field(files, "no-such", "title", "x"),
            "改标题",
            field="clause",
        )
    assert "clause" in bad.value.fields


# --- four eyes, publication, restarts ------------------------------------------------------------


@pytest.fixture(params=DATABASES)
def own(request, tmp_path, engine):
    """The API on a private copy of 古美路 2022 (a rules directory the test may change)."""
    rules = tmp_path / "rules"
    shutil.copytree(GUMEILU, rules / "minhang-gumeilu" / "2022")
    made = make_api(tmp_path, request.param, engine, rules)
    made.rules_dir = rules
    yield made
    made.ctx.db.engine.dispose()


def second_admin(api) -> Actor:
    with api.ctx.db.transaction() as s:
        user = User(
            username="admin2",
            display_name="admin2",
            role="admin",
            password_hash=generate_password_hash("secret", method="pbkdf2:sha256:1000"),
            active=True,
        )
        s.add(user)
        s.flush()
        return Actor(user.id, user.username, user.role, None)


def another_app(api, tmp_path: Path, name: str, engine):
    """A second app (another worker, or the same one restarted) on the same database and rules."""
    settings = Settings(
        rules_dir=api.rules_dir,
        engine_workers=1,
        engine_deadline=10,
        database_url=api.ctx.db.url,
        secret_key="test",
        instance_dir=tmp_path / name,
    )
    return create_app(settings, engine=engine).extensions["scoring"]


def proposed(api, draft, who: str = "editor") -> releases.DraftView:
    return releases.propose(api.ctx, actor(api, who), draft.id, draft.lock, "2023年度细则")


def test_propose_needs_every_case_to_pass(api):
    draft = copy_2023(api)
    failing = releases.edit(
        api.ctx,
        actor(api, "editor"),
        draft.id,
        draft.lock,
        lambda files: edit.set_clause_test_field(files, "1", "四件都做到", "points", 1),
        "改期望",
    )
    assert not failing.checked["ok"] and failing.checked["errors"] == []
    [case] = failing.checked["failing"]
    assert case["file"] == "clauses/01-leading-group.yaml" and case["case"] == "1 四件都做到"
    with pytest.raises(Invalid) as refused:
        proposed(api, failing)
    assert refused.value.code == "failing_tests"
    assert refused.value.fields == {
        f"clauses/01-leading-group.yaml:{case['line']}": ["1 四件都做到：" + case["problems"][0]]
    }
    assert releases.read_draft(api.ctx, actor(api, "editor"), draft.id).state == "draft"
    assert journaled(api, "rules.propose") == []


def test_four_eyes_return_and_withdraw(api):
    draft = copy_2023(api, "admin")
    offered = proposed(api, draft, "admin")
    assert (offered.state, offered.proposed_by, offered.note) == (
        "proposed",
        "admin",
        "2023年度细则",
    )
    with pytest.raises(Forbidden) as same:
        releases.approve(api.ctx, actor(api, "admin"), draft.id, offered.lock, 2023)
    assert same.value.message == "提交人与批准人不能是同一人"
    [denied] = [e for e in journaled(api, "rules.approve") if e.outcome == "denied"]
    assert denied.actor == "admin" and denied.detail["reason"] == "提交人与批准人不能是同一人"
    with pytest.raises(Forbidden):  # an editor never approves
        releases.approve(api.ctx, actor(api, "editor"), draft.id, offered.lock, 2023)
    with pytest.raises(Conflict):  # a proposed draft is not edited
        releases.save_files(
            api.ctx, actor(api, "admin"), draft.id, offered.lock, offered.files, "改"
        )
    back = releases.return_draft(
        api.ctx, second_admin(api), draft.id, offered.lock, "第4条分值请再核对"
    )
    assert (back.state, back.reason, back.decided_by) == ("draft", "第4条分值请再核对", "admin2")
    [entry] = journaled(api, "rules.return")
    assert entry.detail["reason"] == "第4条分值请再核对"
    gone = releases.withdraw(api.ctx, actor(api, "editor"), draft.id, back.lock, "改用上传的版本")
    assert gone.state == "withdrawn"
    with pytest.raises(Conflict):
        releases.withdraw(api.ctx, actor(api, "editor"), draft.id, gone.lock, "再撤回")
    assert [e.outcome for e in journaled(api, "rules.withdraw")] == ["ok"]
    copy_2023(api)  # its id is free again


def test_approval_publishes_to_every_worker_and_a_restart_keeps_it(
    own, tmp_path, engine, monkeypatch
):
    api = own
    other = another_app(api, tmp_path, "worker2", engine)  # another worker, started before
    draft = copy_2023(api)
    with pytest.raises(Invalid) as no_year:
        releases.approve(api.ctx, actor(api, "admin"), draft.id, draft.lock, None)
    assert "effective_year" in no_year.value.fields
    offered = proposed(api, draft)
    done = releases.approve(api.ctx, actor(api, "admin"), draft.id, offered.lock, 2023)
    assert (done.state, done.decided_by, done.effective_year) == ("published", "admin", 2023)
    assert api.ctx.registry.get("gumeilu-2023").version == done.version  # this worker: at once
    assert api.ctx.registry.get("gumeilu-2022").version == version_of(GUMEILU)
    with api.ctx.db.transaction() as s:
        newest = s.scalars(select(RuleSet).order_by(RuleSet.id.desc())).first()
        assert newest.schemes["gumeilu-2023"] == {
            "version": done.version,
            "folder": "minhang-gumeilu/2023",
        }
        assert newest.actor == "admin"
    [approved] = [e for e in journaled(api, "rules.approve") if e.outcome == "ok"]
    assert approved.detail["against"] == version_of(GUMEILU)  # the base: no 2023 was in force
    assert approved.detail["sentences"] == [
        "细则标题由“2022年度古美路街道质量管理绩效评估考核细则任务分解表”改为"
        "“2023年度古美路街道质量管理绩效评估考核细则任务分解表”",
        "年度由“2022”改为“2023”",
    ]
    assert approved.detail["effective_year"] == 2023 and approved.detail["rule_set"] == newest.id
    # the other worker serves it once it looks, loaded in a child process (text a user typed)
    assert other.registry.get("gumeilu-2023") is None
    in_process = operations.load_files

    def never_typed_text(files, prefix, path=""):
        assert version_of_files(files) != done.version, "a typed version parsed in the worker"
        return in_process(files, prefix, path)

    monkeypatch.setattr(operations, "load_files", never_typed_text)
    operations.sync_rules(other, force=True)
    assert other.registry.get("gumeilu-2023").version == done.version
    other.db.engine.dispose()
    # a restart (the rules directory has no 2023 folder) keeps serving what was published
    restarted = another_app(api, tmp_path, "restarted", engine)
    try:
        assert restarted.registry.versions() == api.ctx.registry.versions()
        scored = restarted.registry.get("gumeilu-2023")
        assert scored.clauses["1"].file == "minhang-gumeilu/2023/clauses/01-leading-group.yaml"
    finally:
        restarted.db.engine.dispose()
    # and so does a reload
    reloaded = operations.reload_rules(api.ctx, actor(api, "editor"))
    assert reloaded["changes"] == {}
    assert api.ctx.registry.get("gumeilu-2023").version == done.version


def _new_gumeilu_2022(api, what: str = "改第1条标题") -> releases.DraftView:
    """A new version of gumeilu-2022 itself (same id), from the rules directory's copy."""
    draft = releases.draft_from_disk(api.ctx, actor(api, "editor"), "gumeilu-2022")
    assert (draft.origin, draft.base_version, draft.folder) == (
        "disk",
        version_of(GUMEILU),
        "minhang-gumeilu/2022",
    )
    return releases.edit(
        api.ctx,
        actor(api, "editor"),
        draft.id,
        draft.lock,
        lambda files: edit.set_clause_field(files, "1", "title", "成立质量工作领导小组（修订）"),
        what,
    )


def test_a_restart_or_reload_does_not_revert_and_new_disk_content_is_imported(
    own, tmp_path, engine
):
    api = own
    v_disk = version_of(api.rules_dir / "minhang-gumeilu" / "2022")
    edited = _new_gumeilu_2022(api)
    done = releases.approve(
        api.ctx, actor(api, "admin"), edited.id, proposed(api, edited).lock, 2027
    )
    assert api.ctx.registry.get("gumeilu-2022").version == done.version != v_disk
    status = {d["scheme"]: d for d in releases.disk_status(api.ctx, actor(api, "auditor"))}
    assert status["gumeilu-2022"] == {
        "scheme": "gumeilu-2022",
        "title": "2022年度古美路街道质量管理绩效评估考核细则任务分解表",
        "folder": "minhang-gumeilu/2022",
        "served_version": done.version,
        "disk_version": v_disk,
        "differs": True,
        "imported": True,
    }
    # restart and reload: the disk version was served before, so the published one stays
    restarted = another_app(api, tmp_path, "restarted", engine)
    assert restarted.registry.get("gumeilu-2022").version == done.version
    restarted.db.engine.dispose()
    assert operations.reload_rules(api.ctx, actor(api, "editor"))["changes"] == {}
    assert api.ctx.registry.get("gumeilu-2022").version == done.version
    # new content on disk (an office keeping its rules in git) is imported by the next reload
    clause = api.rules_dir / "minhang-gumeilu" / "2022" / "clauses" / "02-meeting-and-plan.yaml"
    clause.write_text(clause.read_text(encoding="utf-8") + "# 磁盘上的新改动\n", encoding="utf-8")
    v_new_disk = version_of(api.rules_dir / "minhang-gumeilu" / "2022")
    changes = operations.reload_rules(api.ctx, actor(api, "editor"))["changes"]
    assert changes == {"gumeilu-2022": {"from": done.version, "to": v_new_disk}}
    status = {d["scheme"]: d for d in releases.disk_status(api.ctx, actor(api, "auditor"))}
    assert (status["gumeilu-2022"]["differs"], status["gumeilu-2022"]["imported"]) == (False, True)


def test_a_round_pins_the_version_for_its_year_and_old_scores_replay(own):
    api = own
    v_old = version_of(api.rules_dir / "minhang-gumeilu" / "2022")
    score = api.official("gucun", "gumeilu-2022", {"leader_evaluation_score": 4.5})
    round_2026 = api.round_of("gumeilu-2022")
    edited = _new_gumeilu_2022(api)
    offered = proposed(api, edited)
    # the 2026 round has an official score: it cannot be moved to the new version
    with pytest.raises(Conflict) as scored:
        releases.approve(api.ctx, actor(api, "admin"), edited.id, offered.lock, 2026, round_2026)
    assert scored.value.code == "round_has_official_scores" and "round" in scored.value.fields
    done = releases.approve(api.ctx, actor(api, "admin"), edited.id, offered.lock, 2027)
    assert releases.version_for_year(api.ctx, "gumeilu-2022", 2027) == done.version
    assert releases.version_for_year(api.ctx, "gumeilu-2022", 2030) == done.version
    assert releases.version_for_year(api.ctx, "gumeilu-2022", 2025) == v_old
    admin = actor(api, "admin")
    later = rounds.open_round(api.ctx, admin, "gumeilu-2022", 2027, "", round_dates())
    earlier = rounds.open_round(api.ctx, admin, "gumeilu-2022", 2025, "", round_dates())
    assert (later.rules_version, earlier.rules_version) == (done.version, v_old)
    with api.ctx.db.transaction() as s:
        assert s.get(Round, round_2026).rules_version == v_old  # earlier rounds keep theirs
    replay = api.post(f"/api/scores/{score.json['id']}/replay", "auditor")
    assert replay.status_code == 200, replay.json
    assert replay.json["reproduced"] is True and replay.json["rules_version"] == v_old


def test_approval_re_pins_an_open_round_without_official_scores(own):
    api = own
    round_2026 = api.round_of("gumeilu-2022")
    edited = _new_gumeilu_2022(api)
    done = releases.approve(
        api.ctx, actor(api, "admin"), edited.id, proposed(api, edited).lock, 2026, round_2026
    )
    assert done.effective_round_id == round_2026
    with api.ctx.db.transaction() as s:
        assert s.get(Round, round_2026).rules_version == done.version
    [moved] = journaled(api, "rounds.rules_version")
    assert moved.detail["after"] == done.version


# --- zips: downloaded, checked from the command line, uploaded again -----------------------------


def test_a_downloaded_zip_passes_check_and_test_and_uploads_as_the_same_files(api, tmp_path):
    from ..test_cli import run

    draft = copy_2023(api)
    name, data = releases.draft_zip(api.ctx, actor(api, "auditor"), draft.id)
    assert name == f"gumeilu-2023-draft-{draft.id}.zip"
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        inside = {n: z.read(n) for n in z.namelist()}
    assert inside == {f"2023/{rel}": text.encode("utf-8") for rel, text in draft.files.items()}
    path = tmp_path / name
    path.write_bytes(data)
    checked = run("check", "--rules", str(path))
    assert checked.returncode == 0, checked.stderr
    assert "gumeilu-2023" in checked.stdout and "测试用例全部通过" in checked.stdout
    tested = run("test", "--rules", str(path))
    assert tested.returncode == 0, tested.stderr
    assert tested.stdout.strip().endswith("0 failed")
    # the served version downloads the same way, under its own folder's name
    vname, vdata = releases.version_zip(api.ctx, actor(api, "auditor"), version_of(GUMEILU))
    assert vname == f"gumeilu-2022-{version_of(GUMEILU)[:12]}.zip"
    with zipfile.ZipFile(io.BytesIO(vdata)) as z:
        assert "2022/scheme.yaml" in z.namelist()
    # uploaded again: the same files, a draft of its own (the copy's id is taken by the copy)
    releases.withdraw(api.ctx, actor(api, "editor"), draft.id, draft.lock, "改用上传")
    uploaded = releases.upload_draft(api.ctx, actor(api, "editor"), data)
    assert uploaded.files == draft.files and uploaded.origin == "upload"
    assert uploaded.scheme_id == "gumeilu-2023" and uploaded.checked["ok"]
    assert uploaded.version == draft.version


def test_a_broken_zip_reports_file_line_column_from_the_command_line(api, tmp_path):
    from ..test_cli import run

    draft = copy_2023(api)
    files = dict(draft.files)
    files["clauses/01-leading-group.yaml"] = files["clauses/01-leading-group.yaml"].replace(
        "points: 2", "pionts: 2", 1
    )
    saved = releases.save_files(api.ctx, actor(api, "editor"), draft.id, draft.lock, files, "改坏")
    error = saved.checked["errors"][0]
    assert error["file"] == "clauses/01-leading-group.yaml"
    name, data = releases.draft_zip(api.ctx, actor(api, "editor"), draft.id)
    (tmp_path / name).write_bytes(data)
    proc = run("check", "--rules", str(tmp_path / name))
    assert proc.returncode == 1
    where = f"{name}/2023/clauses/01-leading-group.yaml:{error['line']}:{error['column']}"
    assert f"{where}: {error['message']}" in proc.stderr, proc.stderr
    assert run("test", "--rules", str(tmp_path / name)).returncode == 1


def _zip_of(entries: dict) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in entries.items():
            if isinstance(data, zipfile.ZipInfo):
                z.writestr(data, b"x")
            else:
                z.writestr(name, data)
    return out.getvalue()


def test_an_upload_is_bounded_and_says_what_is_wrong(api):
    editor = actor(api, "editor")
    link = zipfile.ZipInfo("s/clauses/link.yaml")
    link.external_attr = (0o120777) << 16
    cases = {
        b"not a zip": "file",
        _zip_of({"README.md": "x"}): "file",
        _zip_of({"a/scheme.yaml": "id: x", "b/scheme.yaml": "id: y"}): "file",
        _zip_of(
            {"s/scheme.yaml": "id: x", "s/clauses/link.yaml": link}
        ): "file.s/clauses/link.yaml",
        _zip_of({"s/scheme.yaml": "id: x", "s/../x.yaml": "a: 1"}): "file.s/../x.yaml",
        _zip_of({"s/scheme.yaml": b"id: \xff"}): "file.s/scheme.yaml",
        _zip_of(
            {"s/scheme.yaml": "id: x", "s/inner/scheme.yaml": "id: y"}
        ): "files.inner/scheme.yaml",
    }
    for data, field in cases.items():
        with pytest.raises(Invalid) as refused:
            releases.upload_draft(api.ctx, editor, data)
        assert field in refused.value.fields, (field, refused.value.fields)
    assert releases.list_drafts(api.ctx, editor) == []
    # a folder that does not load is kept as a draft, with its errors
    kept = releases.upload_draft(
        api.ctx, editor, _zip_of({"new/scheme.yaml": "id: brand-new\ntitle: 新细则\n"})
    )
    assert (kept.scheme_id, kept.folder, kept.title) == ("brand-new", "brand-new/new", "新细则")
    assert not kept.checked["ok"] and kept.checked["errors"][0]["file"] == "scheme.yaml"


def test_every_shipped_scheme_copies_for_a_new_year_and_passes_its_check(api):
    editor = actor(api, "editor")
    for scheme in api.ctx.registry.schemes().values():
        old_year = scheme.year
        new_year = "2030" if "-" not in old_year else "2030-2031"
        draft = releases.copy_version(api.ctx, editor, scheme.version, new_year)
        assert draft.checked["ok"], (scheme.id, draft.checked)
        assert draft.year == new_year and draft.scheme_id != scheme.id, draft.scheme_id
        assert draft.title != scheme.title or old_year[:4] not in scheme.title
        assert operations.folder_of(scheme) != draft.folder
        changed = [r for r in draft.files if draft.files[r] != scheme.texts[r]]
        assert changed == ["scheme.yaml"], (scheme.id, changed)
