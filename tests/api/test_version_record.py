"""GET /api/rules/versions/{version} (issue 11): any rule version's header and publication record
(releases.publication_record), on SQLite and PostgreSQL: a version the start imported from the
rules directory, one a reload imported (by whom), one published through the pages (proposer with
the note, approver, effective year), one that only a draft's comparison archived, and an unknown
one (404)."""

from __future__ import annotations

import hashlib
import shutil
from datetime import datetime, timedelta

import pytest

from service import releases
from service.access import Actor
from service.db import User
from service.rulefiles import edit
from service.rulefiles.loader import version_of

from ..conftest import MINIMAL
from .conftest import DATABASES, make_api

NOTE = "第1条改为产品合格率"


def _actor(api, username: str) -> Actor:
    with api.ctx.db.transaction() as s:
        user = s.query(User).filter_by(username=username).one()
    return Actor(user.id, user.username, user.role, user.unit_id)


@pytest.fixture(params=DATABASES)
def cycle(request, tmp_path, engine):
    """minimal: v1 imported at start (and pinned by its 2026 round), v2 imported by the admin's
    reload after the directory changed, v3 written from the directory's copy by the editor with a
    note and approved by the admin from 2027; v4 a draft's files archived for a comparison only,
    that draft saved again since."""
    rules = tmp_path / "rules"
    shutil.copytree(MINIMAL, rules / "minimal")
    api = make_api(tmp_path, request.param, engine, rules)
    v1 = version_of(rules / "minimal")
    scheme_yaml = rules / "minimal" / "scheme.yaml"
    scheme_yaml.write_text(
        scheme_yaml.read_text(encoding="utf-8").replace(
            "title: 测试用细则", "title: 测试用细则（修订）"
        ),
        encoding="utf-8",
    )
    v2 = version_of(rules / "minimal")
    reloaded = api.post("/api/rules/reload", "admin")
    assert reloaded.status_code == 200, reloaded.json
    editor, admin = _actor(api, "editor"), _actor(api, "admin")
    draft = releases.draft_from_disk(api.ctx, editor, "minimal")
    draft = releases.edit(
        api.ctx, editor, draft.id, draft.lock,
        lambda files: edit.set_clause_field(files, "1", "title", "产品合格率"), "改标题",
    )  # fmt: skip
    draft = releases.propose(api.ctx, editor, draft.id, draft.lock, NOTE)
    v3 = releases.approve(api.ctx, admin, draft.id, draft.lock, 2027).version
    other = releases.draft_from_disk(api.ctx, editor, "minimal")
    other = releases.edit(
        api.ctx, editor, other.id, other.lock,
        lambda files: edit.set_clause_field(files, "1", "title", "合格率检查"), "试改",
    )  # fmt: skip
    v4 = releases.draft_version(api.ctx, editor, other.id)
    releases.edit(
        api.ctx, editor, other.id, other.lock,
        lambda files: edit.set_clause_field(files, "1", "title", "合格率（再改）"), "再改",
    )  # fmt: skip
    yield api, {"v1": v1, "v2": v2, "v3": v3, "v4": v4, "release": draft.id, "other": other.id}
    api.ctx.db.engine.dispose()


def _record(api, version: str, who: str = "auditor") -> dict:
    got = api.get(f"/api/rules/versions/{version}", who)
    assert got.status_code == 200, got.json
    return got.json


def test_the_record_of_each_kind_of_version(cycle):
    api, v = cycle
    first = _record(api, v["v1"])
    assert (first["scheme"], first["title"], first["year"]) == ("minimal", "测试用细则", "2026")
    assert first["origin"] == "directory" and first["serving"] is False and first["loaded_at"]
    assert first["releases"] == [] and first["drafts"] == []
    [period] = first["served"]
    assert (period["how"], period["by"]) == ("start", "（启动）")
    assert period["until_rule_set"] == period["from_rule_set"] + 1  # the reload replaced it
    assert [r["year"] for r in first["rounds"]] == [2026]
    files = {f["path"]: f for f in first["files"]}
    text = (MINIMAL / "clauses" / "01-rate.yaml").read_bytes()
    assert files["clauses/01-rate.yaml"] == {
        "path": "clauses/01-rate.yaml",
        "bytes": len(text),
        "sha256": hashlib.sha256(text).hexdigest(),
    }

    second = _record(api, v["v2"])
    [period] = second["served"]
    assert (second["origin"], period["how"], period["by"]) == ("directory", "reload", "admin")
    assert period["until_rule_set"] is not None and second["rounds"] == []
    # both drafts began as the directory's copy (the journal says so), one published as v3
    assert second["drafts"] == [{"id": v["release"], "state": "published"},
                                {"id": v["other"], "state": "draft"}]  # fmt: skip

    third = _record(api, v["v3"])
    assert third["origin"] == "release" and third["serving"] is True
    [release] = third["releases"]
    assert release["draft"] == v["release"] and release["origin"] == "disk"
    assert (release["proposed_by"], release["note"], release["approved_by"]) == (
        "editor",
        NOTE,
        "admin",
    )
    assert release["effective_year"] == 2027 and release["effective_round"] is None
    assert release["against"] == v["v2"] and release["base_version"] == v["v2"]
    assert release["proposed_at"] <= release["approved_at"]
    [period] = third["served"]
    assert period["how"] == "approval" and period["from_rule_set"] == release["rule_set"]
    assert period["by"] == "admin" and period["until_rule_set"] is None

    fourth = _record(api, v["v4"])
    assert fourth["origin"] == "draft" and fourth["served"] == [] and fourth["releases"] == []
    assert fourth["drafts"] == [{"id": v["other"], "state": "draft"}]  # found by the journal


def test_a_round_re_pinned_at_approval_is_in_both_versions_records(cycle):
    """An approval that moves an open round to the new version: the new version's record says which
    round, from which version, when and by whom (from the journal entry the approval wrote); the
    old version's record says the round left it, for which version."""
    api, v = cycle
    editor, admin = _actor(api, "editor"), _actor(api, "admin")
    rid = api.round_of("minimal")
    assert [r["id"] for r in _record(api, v["v1"])["rounds"]] == [rid]
    assert _record(api, v["v1"])["repinned"] == [] and _record(api, v["v3"])["repinned"] == []
    # the other draft of the scheme, proposed and approved for the open 2026 round
    draft = releases.read_draft(api.ctx, editor, v["other"])
    draft = releases.propose(api.ctx, editor, draft.id, draft.lock, "本轮改用")
    v5 = releases.approve(api.ctx, admin, draft.id, draft.lock, 2026, rid).version

    record = _record(api, v5)
    [moved] = record["repinned"]
    assert moved["round"] == {"id": rid, "title": moved["round"]["title"], "year": 2026}
    assert moved["round"]["title"]
    assert (moved["from_version"], moved["to_version"], moved["by"], moved["draft"]) == (
        v["v1"], v5, "admin", draft.id)  # fmt: skip
    [release] = record["releases"]
    assert release["effective_round"]["id"] == rid
    moved_at = datetime.fromisoformat(moved["at"])
    assert abs(moved_at - datetime.fromisoformat(release["approved_at"])) < timedelta(minutes=1)
    assert [r["id"] for r in record["rounds"]] == [rid]

    # the version the round left: it is no longer pinned there, and its record says where it went
    old = _record(api, v["v1"])
    assert old["rounds"] == []
    assert old["repinned"] == [moved]
    # a version the round never had: nothing
    assert _record(api, v["v2"])["repinned"] == []


def test_who_may_read_a_record_and_an_unknown_version(cycle):
    api, v = cycle
    for who, status in {"admin": 200, "editor": 200, "auditor": 200, "reviewer": 403,
                        "submitter": 403, None: 401}.items():  # fmt: skip
        assert api.get(f"/api/rules/versions/{v['v3']}", who).status_code == status, who
    for unknown in ("0" * 64, "nothing"):
        got = api.get(f"/api/rules/versions/{unknown}", "auditor")
        assert got.status_code == 404 and got.json["error"]["code"] == "unknown_rules_version"
