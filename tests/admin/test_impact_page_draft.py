"""The impact preview of a rule draft in the admin pages (/admin/rules/drafts/<id>/impact), with
the Flask test client and no script: 古美路 2022 with three units reviewed, a 2023 draft in which a
fact is renamed and a clause added reading a new fact.  The page lists both facts to map and the
dropped one; a wrong form comes back with what was typed and each error beside its fact; the saved
mapping shows; a stale form is refused; 开始影响预览 archives the draft and goes to the job's
result page (its progress refreshing without script), which shows each unit before → after, the
mapping used, the facts each unit got by it, both traces of a changed clause one click away
(<details>), and the workbook."""

from __future__ import annotations

import io
import re
from decimal import Decimal

from openpyxl import load_workbook

from service import jobs, releases
from service.rulefiles import edit
from service.rulefiles.loader import load_scheme, version_of

from ..conftest import RULES
from ..test_mapping import ADDED, NEW_CLAUSE, NEW_NAME, OLD_NAME, REASON
from .conftest import actor, csrf_token, official, sign_in

GUMEILU = RULES / "minhang-gumeilu" / "2022"
SCHEME = "gumeilu-2022"
COUNT = "受区质量（安全）工作领导小组及其办公室表彰次数"


def _setup(app) -> releases.DraftView:
    full = dict(load_scheme(GUMEILU).tests[0].facts)
    official(app, "gucun", SCHEME, {**full, OLD_NAME: Decimal(3)})
    official(app, "dachang", SCHEME, {**full, OLD_NAME: Decimal(1)})
    official(app, "bsip", SCHEME, {k: v for k, v in full.items() if k != OLD_NAME})
    ctx, editor = app.extensions["scoring"], actor(app, "editor")
    draft = releases.copy_version(ctx, editor, version_of(GUMEILU), "2023")
    files = {k: re.sub(rf"\b{OLD_NAME}\b", NEW_NAME, v) for k, v in draft.files.items()}
    files = edit.add_clause(files, NEW_CLAUSE, "awards-2023")
    return releases.save_files(ctx, editor, draft.id, draft.lock, files, "改名并新增条款")


def _form(page: str, **fields) -> dict:
    lock = re.search(r'name="lock" value="(\d+)"', page).group(1)
    data = {"csrf_token": csrf_token(page), "lock": lock}
    for name in (NEW_NAME, ADDED):
        data.update(
            {f"how.{name}": "", f"from.{name}": "", f"value.{name}": "", f"reason.{name}": ""}
        )
    data.update(fields)
    return data


def test_a_draft_mapped_and_previewed_through_the_pages(app):
    draft = _setup(app)
    where = f"/admin/rules/drafts/{draft.id}/impact"
    editor = app.test_client()
    assert sign_in(editor, "editor").status_code == 302
    page = editor.get(where)
    assert page.status_code == 200
    text = page.text
    assert f'id="fact-{NEW_NAME}"' in text and f'id="fact-{ADDED}"' in text
    assert f'<option value="{OLD_NAME}">{COUNT}（{OLD_NAME}）</option>' in text
    assert (
        'id="dropped-facts"' in text and f'{COUNT}（<span class="mono">{OLD_NAME}</span>）' in text
    )

    # a value that is not a whole number: the page again, typed values kept, the error beside it
    wrong = editor.post(
        f"/admin/rules/drafts/{draft.id}/mapping",
        data=_form(text, **{f"how.{ADDED}": "value", f"value.{ADDED}": "两项",
                            f"reason.{ADDED}": REASON}),
    )  # fmt: skip
    assert wrong.status_code == 422
    row = wrong.text.split(f'id="fact-{ADDED}"')[1].split("</tr>")[0]
    assert '<p class="field-error" role="alert">固定值应为0到100之间的整数</p>' in row
    assert 'value="两项"' in row and f'value="{REASON}"' in row
    # the service's own check: no reason
    no_reason = editor.post(
        f"/admin/rules/drafts/{draft.id}/mapping",
        data=_form(text, **{f"how.{ADDED}": "value", f"value.{ADDED}": "1"}),
    )
    assert no_reason.status_code == 422
    assert "请写明理由：固定值用于每一个单位，理由写进结果和工作簿" in no_reason.text
    assert (
        releases.read_draft(app.extensions["scoring"], actor(app, "editor"), draft.id).mapping == {}
    )

    saved = editor.post(
        f"/admin/rules/drafts/{draft.id}/mapping",
        data=_form(text, **{f"how.{NEW_NAME}": "from", f"from.{NEW_NAME}": OLD_NAME,
                            f"how.{ADDED}": "value", f"value.{ADDED}": "1",
                            f"reason.{ADDED}": REASON}),
    )  # fmt: skip
    assert saved.status_code == 302 and saved.headers["Location"] == where
    shown = editor.get(where).text
    assert "已保存事实对应：2 个事实。" in shown
    assert f"已保存：新事实“{COUNT}”（{NEW_NAME}）取原事实“{COUNT}”（{OLD_NAME}）的值" in shown
    assert f'<option value="{OLD_NAME}" selected>' in shown
    assert 'id="dropped-facts"' not in shown  # the old fact is taken by the rename now

    # the form read before the save: its lock is stale, the saved mapping stays
    stale = editor.post(f"/admin/rules/drafts/{draft.id}/mapping", data=_form(text))
    assert stale.status_code == 302
    assert "已被他人修改" in editor.get(where).text
    assert (
        len(releases.read_draft(app.extensions["scoring"], actor(app, "editor"), draft.id).mapping)
        == 2
    )

    started = editor.post(
        f"/admin/rules/drafts/{draft.id}/impact", data={"csrf_token": csrf_token(shown), "year": ""}
    )
    assert started.status_code == 302, started.text
    result_page = started.headers["Location"]
    assert result_page.startswith("/admin/rules/impact/")
    job_id = int(result_page.rsplit("/", 1)[1])
    waiting = editor.get(result_page).text
    assert "0/3" in waiting and '<meta http-equiv="refresh"' in waiting
    assert 'role="progressbar"' in waiting

    jobs.Worker(app.extensions["scoring"]).run_once()
    done = editor.get(result_page).text
    assert "3/3" in done and '<meta http-equiv="refresh"' not in done
    assert "102.0 → <strong>103.0</strong>" in done and "100.0 → <strong>101.0</strong>" in done
    assert f"新事实“2023年获质量奖项数”（{ADDED}）每个单位都按固定值 1（理由：{REASON}）" in done
    assert f"2023年获质量奖项数：固定值 1（理由：{REASON}）" in done
    assert f"{COUNT}：取自原事实“{COUNT}”：3" in done
    assert f"2023版读取的事实“{COUNT}”在2026年的已评审事实中没有：1个单位" in done
    # the changed clause: both explanations and both traces inside one <details>
    clause = done.split('<details class="impact-clause">')[1].split("</details>")[0]
    assert "20 2023年质量奖项：无此条 → 1" in clause
    assert 'class="small trace-after"' in clause and "✓ [r1]" in clause
    assert f'href="/admin/rules/drafts/{draft.id}/impact"' in done
    book = editor.get(f"/admin/rules/impact/{job_id}.xlsx")
    assert book.status_code == 200
    sheet = load_workbook(io.BytesIO(book.data))["事实对应"]
    assert [c.value for c in sheet[3]] == [ADDED, "2023年获质量奖项数", "固定值", None, "1", REASON]

    # the admin's job page of the preview links its result and workbook
    admin = app.test_client()
    sign_in(admin, "admin")
    job_page = admin.get(f"/admin/jobs/{job_id}")
    assert job_page.status_code == 200
    assert 'id="impact-link"' in job_page.text and 'id="impact-xlsx"' in job_page.text

    # an auditor reads the page but may neither save nor start
    auditor = app.test_client()
    sign_in(auditor, "auditor")
    seen = auditor.get(where)
    assert seen.status_code == 200 and "保存事实对应" not in seen.text
    assert 'id="draft-impact-form"' not in seen.text
    token = csrf_token(seen.text)
    refused = auditor.post(f"/admin/rules/drafts/{draft.id}/impact", data={"csrf_token": token})
    assert refused.status_code == 403


def test_a_draft_that_does_not_load_says_so(app):
    ctx, editor = app.extensions["scoring"], actor(app, "editor")
    draft = releases.copy_version(ctx, editor, version_of(GUMEILU), "2024")
    files = dict(draft.files)
    files["scheme.yaml"] = files["scheme.yaml"].replace("total: 100", "total: [100")
    broken = releases.save_files(ctx, editor, draft.id, draft.lock, files, "弄坏")
    client = app.test_client()
    sign_in(client, "editor")
    page = client.get(f"/admin/rules/drafts/{broken.id}/impact")
    assert page.status_code == 409
    assert f"草案 {broken.id} 的规则文件有错误，改正后才能对应事实：" in page.text
    assert "scheme.yaml" in page.text
