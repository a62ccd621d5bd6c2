"""Drafts and releases of rule versions (service/releases.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from service import releases
from service.access import Actor
from service.db import JournalEntry, User
from service.exceptions import Conflict, Invalid
from service.rulefiles import edit
from service.rulefiles.loader import version_of

from ..conftest import RULES

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
