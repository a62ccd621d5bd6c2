"""Evidence files on the admin pages: a file input per fact in the fact form (a plain multipart form,
no script needed), the files listed with name, size and the first 12 characters of their SHA-256
on the score and history pages with download links (attachments, for who may read the unit), and
their names and hashes in the score workbook.

Each test uses its own unit and scheme pair, so the module's shared database keeps them apart.
"""

from __future__ import annotations

import hashlib
import io
import re

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from service.db import EvidenceFile, Submission
from service.evidence import EvidenceStore

from .. import evidence_samples as samples
from .conftest import csrf_token, sign_in

FACT = "leader_evaluation_score"


def _page(unit, scheme):
    return f"/admin/units/{unit}/schemes/{scheme}/facts"


def _post(client, unit, scheme, data):
    page = client.get(_page(unit, scheme))
    assert page.status_code == 200, page.text[:500]
    base = page.text.split('name="base_version" value="')[1].split('"')[0]
    body = {"csrf_token": csrf_token(page.text), "base_version": base}
    body.update(data)
    return client.post(_page(unit, scheme), data=body, content_type="multipart/form-data")


def _links(html: str) -> list[str]:
    return re.findall(r'href="(/admin/evidence/\d+)"', html)


def test_a_file_chosen_in_the_fact_form_is_uploaded_referenced_listed_and_exported(app, client):
    scheme = "gumeilu-2022"
    sign_in(client, "submitter")
    form = client.get(_page("gucun", scheme)).text
    assert 'enctype="multipart/form-data"' in form
    assert f'type="file" id="f-{FACT}-file" name="u.{FACT}"' in form  # a plain file input
    data = samples.pdf("区领导评价表")
    sent = _post(
        client,
        "gucun",
        scheme,
        {
            "action": "self",
            f"f.{FACT}": "4.5",
            f"e.{FACT}": "沪质办〔2022〕12号",
            f"u.{FACT}": (io.BytesIO(data), "区领导评价表.pdf"),
        },
    )
    assert sent.status_code == 302, sent.text[:3000]
    ctx = app.extensions["scoring"]
    with ctx.db.transaction() as s:
        stored = s.scalars(select(EvidenceFile).where(EvidenceFile.scheme_id == scheme)).one()
        submission = s.scalars(select(Submission).where(Submission.scheme_id == scheme)).one()
    assert (stored.name, stored.sha256, stored.fact) == (
        "区领导评价表.pdf",
        hashlib.sha256(data).hexdigest(),
        FACT,
    )
    assert submission.evidence == {FACT: ["沪质办〔2022〕12号", f"file:{stored.id}"]}

    # the form shows the file under its fact, the typed reference kept beside it
    again = client.get(_page("gucun", scheme)).text
    assert f"沪质办〔2022〕12号；file:{stored.id}" in again
    assert _links(again) == [f"/admin/evidence/{stored.id}"]

    page = client.get(f"/admin/units/gucun/schemes/{scheme}/score")
    token = csrf_token(page.text)
    computed = client.post(f"/admin/units/gucun/schemes/{scheme}/score", data={"csrf_token": token})
    assert computed.status_code == 302
    score = client.get(computed.headers["Location"]).text
    assert 'id="evidence-files"' in score and "区领导评价表.pdf" in score
    assert stored.sha256[:12] in score and f"{len(data) / 1024:.1f} KB" in score
    assert _links(score) == [f"/admin/evidence/{stored.id}"]
    history = client.get(f"/admin/units/gucun/schemes/{scheme}/history").text
    assert "区领导评价表.pdf" in history and stored.sha256[:12] in history

    got = client.get(f"/admin/evidence/{stored.id}")
    assert got.status_code == 200 and got.data == data
    assert got.headers["Content-Disposition"].startswith("attachment;")
    assert got.headers["Content-Type"] == "application/pdf"
    assert got.headers["X-Content-Type-Options"] == "nosniff"

    workbook = client.get(f"/admin/units/gucun/schemes/{scheme}/score.xlsx")
    sheet = load_workbook(io.BytesIO(workbook.data))["佐证材料"]
    rows = [[c.value for c in r] for r in sheet.iter_rows(min_row=4) if r[1].value]
    assert rows == [[1, f"区领导评价得分（{FACT}）", "区领导评价表.pdf", stored.sha256, len(data)]]

    # who may not read the unit gets no file: a submitter of another unit, an editor
    for username in ("editor",):
        other = app.test_client()
        sign_in(other, username)
        assert other.get(f"/admin/evidence/{stored.id}").status_code == 403
    auditor = app.test_client()
    sign_in(auditor, "auditor")
    assert auditor.get(f"/admin/evidence/{stored.id}").data == data


def test_a_refused_file_is_named_on_its_fact_and_nothing_typed_or_chosen_is_lost(app, client):
    scheme = "zhenxing-2010"
    sign_in(client, "submitter")
    form = client.get(_page("gucun", scheme)).text
    names = re.findall(r'name="u\.([^"]+)"', form)
    assert len(names) >= 2
    good, bad = names[0], names[1]
    sent = _post(
        client,
        "gucun",
        scheme,
        {
            "action": "self",
            "reason": "自评说明",
            f"u.{good}": (io.BytesIO(samples.png()), "照片.png"),
            f"u.{bad}": (io.BytesIO(samples.exe()), "报告.pdf"),
        },
    )
    assert sent.status_code == 422
    assert "“报告.pdf”未能上传：文件内容不是允许的类型" in sent.text
    assert ">自评说明</textarea>" in sent.text  # the typing is kept
    ctx = app.extensions["scoring"]
    with ctx.db.transaction() as s:
        kept = s.scalars(select(EvidenceFile).where(EvidenceFile.scheme_id == scheme)).all()
        assert not s.scalars(select(Submission).where(Submission.scheme_id == scheme)).all()
    assert [(f.name, f.fact) for f in kept] == [("照片.png", good)]
    assert f"file:{kept[0].id}" in sent.text  # the good file is referenced in the form shown
    assert _links(sent.text) == [f"/admin/evidence/{kept[0].id}"]


def test_a_form_whose_files_are_too_large_is_refused_with_a_page_that_says_so(app, client):
    scheme = "baoshan-2022-c1"
    sign_in(client, "submitter")
    form = client.get(_page("gucun", scheme)).text
    name = re.findall(r'name="u\.([^"]+)"', form)[0]
    app.extensions["evidence"] = EvidenceStore(max_bytes=1024)
    try:
        big = samples.pdf() + b" " * 4096
        sent = _post(
            client, "gucun", scheme, {"action": "draft", f"u.{name}": (io.BytesIO(big), "大.pdf")}
        )
        assert sent.status_code == 422 and "超过大小上限" in sent.text
        huge = samples.pdf() + b" " * (2 * 1024 * 1024)  # beyond the whole form's limit
        sent = _post(
            client,
            "gucun",
            scheme,
            {"action": "draft", f"u.{name}": (io.BytesIO(huge), "很大.pdf")},
        )
        assert sent.status_code == 413 and "上传的文件过大" in sent.text
    finally:
        app.extensions["evidence"] = EvidenceStore()
    with app.extensions["scoring"].db.transaction() as s:
        assert not s.scalars(select(EvidenceFile).where(EvidenceFile.scheme_id == scheme)).all()


def test_a_submitter_gets_no_file_of_another_unit(app, client):
    scheme = "baoshan-2022-b1"
    admin = app.test_client()
    sign_in(admin, "admin")
    form = admin.get(_page("dachang", scheme)).text
    name = re.findall(r'name="u\.([^"]+)"', form)[0]
    sent = _post(
        admin,
        "dachang",
        scheme,
        {"action": "draft", f"u.{name}": (io.BytesIO(samples.jpeg()), "a.jpg")},
    )
    assert sent.status_code == 302, sent.text[:2000]
    with app.extensions["scoring"].db.transaction() as s:
        (row,) = s.scalars(select(EvidenceFile).where(EvidenceFile.scheme_id == scheme)).all()
    sign_in(client, "submitter")
    assert client.get(f"/admin/evidence/{row.id}").status_code == 403
    assert client.get("/admin/evidence/999999").status_code == 403
    assert admin.get(f"/admin/evidence/{row.id}").status_code == 200


@pytest.mark.e2e
def test_in_chromium_a_file_chosen_for_a_fact_is_uploaded_listed_and_downloaded(app, tmp_path):
    """Real headless Chromium, no help from script: choose a file in the fact form, submit, compute,
    find the file on the score page and download it: the same bytes."""
    from tools.browser import chromium, serve
    from tools.browser import sign_in as browser_sign_in

    from .conftest import PASSWORD
    from .test_browser import _browser_available

    _browser_available()
    scheme, data = "gumeilu-2022", samples.pdf("浏览器上传")
    with serve(app) as site, chromium() as context:
        page = context.new_page()
        page.on("dialog", lambda d: d.accept())
        # the admin enters the unit's self-assessment with its file, completes the review and
        # computes the official score (a unit no other test of this module touches)
        browser_sign_in(page, site, "admin", PASSWORD)
        page.goto(f"{site}{_page('bsip', scheme)}")
        page.fill(f"#f-{FACT}", "4.5")
        page.set_input_files(
            f"#f-{FACT}-file",
            files=[{"name": "区领导评价表.pdf", "mimeType": "application/pdf", "buffer": data}],
        )
        page.click("button[value=self]")
        page.wait_for_load_state()
        assert page.url.endswith(f"/admin/units/bsip/schemes/{scheme}/score"), page.url
        page.click("button:has-text('完成评审')")
        page.wait_for_load_state()
        page.goto(f"{site}/admin/units/bsip/schemes/{scheme}/score")
        page.click("button:has-text('计算正式得分')")
        page.wait_for_load_state()
        files = page.inner_text("#evidence-files + ul")
        assert "区领导评价表.pdf" in files and hashlib.sha256(data).hexdigest()[:12] in files
        with page.expect_download() as download:
            page.click("#evidence-files + ul a")
        assert download.value.suggested_filename == "区领导评价表.pdf"
        saved = tmp_path / "got.pdf"
        download.value.save_as(saved)
        assert saved.read_bytes() == data
        page.close()
