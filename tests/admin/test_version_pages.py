"""Every rule version can be read (issue 11): any version opens read-only at
/admin/rules/versions/<version> with its publication record (a release's proposer, note, approver,
effective year; a directory import's start), its clauses, its files as a zip and a comparison with
any other version; the score page, the audit pages and the rules page link to it; an unknown
version is a 404 page; the auditor reads all of it and changes nothing."""

from __future__ import annotations

import html
import io
import re
import zipfile

import pytest
from sqlalchemy import func, select

from service import releases
from service.db import JournalEntry, Round, RuleDraft, RuleSet, RuleVersion, Score
from service.rulefiles import edit
from service.rulefiles.loader import version_of

from ..conftest import RULES
from .conftest import actor, csrf_token, official, round_of, sign_in

GUMEILU = RULES / "minhang-gumeilu" / "2022"
SCHEME = "gumeilu-2022"
NOTE = "按2023年度文件修订标题"
UNKNOWN = "0" * 64


@pytest.fixture(scope="module")
def world(app) -> dict:
    """gumeilu-2022 as the rules directory gave it at start (v1, pinned by its 2026 round, with
    顾村镇's official score under it), and gumeilu-2023: copied from it by the editor, proposed with
    a note, approved by the admin effective from 2023 (a release)."""
    ctx = app.extensions["scoring"]
    editor, admin = actor(app, "editor"), actor(app, "admin")
    score = official(app, "gucun", SCHEME, {"leader_evaluation_score": 4})
    draft = releases.copy_version(ctx, editor, version_of(GUMEILU), "2023")
    draft = releases.propose(ctx, editor, draft.id, draft.lock, NOTE)
    released = releases.approve(ctx, admin, draft.id, draft.lock, 2023)
    return {
        "disk": version_of(GUMEILU),
        "release": released.version,
        "draft": draft.id,
        "score": score.id,
        "round": round_of(app, SCHEME),
    }


def _client(app, who: str):
    client = app.test_client()
    sign_in(client, who)
    return client


def _text(page) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def _part(page: str, element_id: str, end: str = "dd") -> str:
    """The text of the element with that id, up to the first closing ``end`` tag."""
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</{end}>', page, re.S)
    assert found, f"no #{element_id} on the page"
    return _text(found.group(1))


def test_a_released_version_shows_who_proposed_approved_and_from_which_year(app, world):
    page = _client(app, "auditor").get(f"/admin/rules/versions/{world['release']}")
    assert page.status_code == 200, page.text
    assert world["release"] in _part(page.text, "version-hash")
    assert 'data-origin="release"' in page.text
    release = _part(page.text, f"release-{world['draft']}", "section")
    assert re.search(rf"提交批准 editor 于 \d{{4}}-\d\d-\d\d \d\d:\d\d，说明：“{NOTE}”", release)
    assert re.search(r"批准发布 admin 于 \d{4}-\d\d-\d\d \d\d:\d\d（规则集 #\d+）", release)
    assert "自 2023 年度起" in release
    assert world["disk"][:12] in release  # based on, and replacing nothing (a new scheme id)
    assert "使用中" in _part(page.text, "version-serving")
    served = re.findall(r'<tr data-how="(\w+)">', page.text)
    assert served == ["approval"]
    # its clauses as the served scheme's page shows them: source text, rules in words, test cases
    scheme = app.extensions["scoring"].registry.by_version(world["release"])
    clause = next(iter(scheme.clauses.values()))
    assert f'id="c-{clause.id}"' in page.text
    assert html.escape(clause.source.text, quote=False) in page.text
    assert "测试用例" in page.text and "计分规则" in page.text
    files = re.findall(r'<tr><td class="mono small">([^<]+)</td>', _part_raw(page.text))
    assert "scheme.yaml" in files and len(files) == len(scheme.texts)


def _part_raw(page: str) -> str:
    return page[page.index('id="version-files"') :]


def test_a_version_imported_from_the_rules_directory_shows_its_import_and_its_round(app, world):
    page = _client(app, "auditor").get(f"/admin/rules/versions/{world['disk']}")
    assert page.status_code == 200, page.text
    assert 'data-origin="directory"' in page.text
    rows = re.findall(r'<tr data-how="(\w+)">(.*?)</tr>', page.text, re.S)
    assert [how for how, _ in rows] == ["start"]
    assert "启动时从规则目录导入" in _text(rows[0][1]) and "（启动）" in _text(rows[0][1])
    assert "仍在使用" in _text(rows[0][1])
    assert f'data-round="{world["round"]}"' in page.text
    assert 'id="release-' not in page.text
    with app.extensions["scoring"].db.transaction() as s:
        first = s.scalar(select(RuleSet).order_by(RuleSet.id).limit(1))
    assert f"规则集 #{first.id}" in _text(rows[0][1])


def test_the_zip_is_the_versions_files_and_the_compare_form_compares(app, world):
    client = _client(app, "auditor")
    got = client.get(f"/admin/rules/versions/{world['release']}/zip")
    assert got.status_code == 200 and got.mimetype == "application/zip"
    with app.extensions["scoring"].db.transaction() as s:
        stored = dict(s.get(RuleVersion, world["release"]).files)
    with zipfile.ZipFile(io.BytesIO(got.data)) as archive:
        inside = {n.split("/", 1)[1]: archive.read(n).decode() for n in archive.namelist()}
    assert inside == stored
    page = client.get(f"/admin/rules/versions/{world['release']}").text
    form = page[page.index('id="compare-form"') :]
    assert f'name="to" value="{world["release"]}"' in form
    # the same scheme's versions come first: here the one it was copied from
    assert re.search(r'<option value="([0-9a-f]{64})"', form).group(1) == world["disk"]
    compared = client.get(f"/admin/rules/compare?from={world['disk']}&to={world['release']}")
    assert compared.status_code == 200
    assert "2023年度古美路街道" in _part(compared.text, "compare-result", "div")


def test_an_unknown_version_is_a_404_page_that_says_so(app, world):
    client = _client(app, "auditor")
    for version in (UNKNOWN, "not-a-version"):
        got = client.get(f"/admin/rules/versions/{version}")
        assert got.status_code == 404
        assert "没有版本为" in got.text and "的规则" in got.text
        assert client.get(f"/admin/rules/versions/{version}/zip").status_code == 404


def test_the_score_audit_and_rules_pages_link_the_version(app, world):
    auditor = _client(app, "auditor")
    link = f'href="/admin/rules/versions/{world["disk"]}"'
    score = auditor.get(f"/admin/units/gucun/schemes/{SCHEME}/score?id={world['score']}")
    assert link in score.text
    assert link in auditor.get("/admin/audit").text
    rules = auditor.get("/admin/rules").text
    for version in (world["disk"], world["release"]):
        assert f'href="/admin/rules/versions/{version}"' in rules
    replay = auditor.post(
        f"/admin/scores/{world['score']}/replay", data={"csrf_token": csrf_token(score.text)}
    )
    assert link in replay.text
    # a reviewer may not read rule versions: the score page shows the hash, not a link to a 403
    reviewer = _client(app, "reviewer")
    seen = reviewer.get(f"/admin/units/gucun/schemes/{SCHEME}/score?id={world['score']}").text
    assert world["disk"][:12] in seen and link not in seen


def test_a_round_re_pinned_at_approval_shows_on_both_versions_pages(app, world):
    """颛桥's open round, moved to a revision of its scheme when the admin approves it: the new
    version's page says which round, from which version, when and by whom; the old one's says the
    round left it, for which version."""
    ctx = app.extensions["scoring"]
    editor, admin = actor(app, "editor"), actor(app, "admin")
    rid = round_of(app, "zhuanqiao-2018")
    with ctx.db.transaction() as s:
        before = s.get(Round, rid).rules_version
    draft = releases.draft_from_disk(ctx, editor, "zhuanqiao-2018")
    draft = releases.edit(
        ctx, editor, draft.id, draft.lock,
        lambda files: edit.set_clause_field(files, "目标1", "title", "产品质量目标（修订）"), "改标题",
    )  # fmt: skip
    draft = releases.propose(ctx, editor, draft.id, draft.lock, "本轮改用修订版")
    after = releases.approve(ctx, admin, draft.id, draft.lock, 2026, rid).version
    assert after != before

    client = _client(app, "auditor")
    page = client.get(f"/admin/rules/versions/{after}")
    assert page.status_code == 200, page.text
    moved = re.search(r'<li data-round="(\d+)" data-moved="(\w+)">(.*?)</li>', page.text, re.S)
    assert moved, "no re-pinned round on the new version's page"
    assert (moved.group(1), moved.group(2)) == (str(rid), "to")
    words = _text(moved.group(3))
    assert re.search(rf"于 \d{{4}}-\d\d-\d\d \d\d:\d\d 由 admin 批准草案第 {draft.id} 号时", words)
    assert f"从版本 {before[:12]} 改用本版本" in words
    assert f'href="/admin/rules/versions/{before}"' in moved.group(3)
    assert f'href="/admin/rounds/{rid}"' in moved.group(3)

    old = client.get(f"/admin/rules/versions/{before}").text
    left = re.search(r'<li data-round="(\d+)" data-moved="(\w+)">(.*?)</li>', old, re.S)
    assert left and (left.group(1), left.group(2)) == (str(rid), "from")
    assert f"从本版本改用版本 {after[:12]}" in _text(left.group(3))
    # a version no round moved to or from says nothing of it
    assert (
        'id="version-repinned"' not in client.get(f"/admin/rules/versions/{world['release']}").text
    )


def test_every_role_and_the_auditor_changes_nothing(app, world):
    ctx = app.extensions["scoring"]

    def rows():
        with ctx.db.transaction() as s:
            return tuple(
                s.scalar(select(func.count()).select_from(t))
                for t in (RuleVersion, RuleSet, RuleDraft, Score)
            )

    before = rows()
    with ctx.db.transaction() as s:
        last = s.scalar(select(func.max(JournalEntry.id)))
    wanted = {"admin": 200, "editor": 200, "auditor": 200, "reviewer": 403, "submitter": 403}
    failures = []
    for path in (f"/admin/rules/versions/{world['release']}",
                 f"/admin/rules/versions/{world['disk']}/zip"):  # fmt: skip
        for who, status in wanted.items():
            got = _client(app, who).get(path).status_code
            if got != status:
                failures.append(f"GET {path} as {who}: expected {status}, got {got}")
        assert app.test_client().get(path).status_code == 302  # nobody signed in: sign in first
    assert not failures, "\n".join(failures)
    assert rows() == before
    with ctx.db.transaction() as s:
        done = set(
            s.execute(
                select(JournalEntry.action, JournalEntry.outcome).where(
                    JournalEntry.id > last, JournalEntry.actor == "auditor"
                )
            ).all()
        )
    assert done <= {("sign-in", "ok")}, done  # reading versions writes nothing but sign-ins
