"""Evidence files through the API, on SQLite and PostgreSQL: uploaded per fact or clause, typed by
their content, limited in size, stored once per content (in the database or a directory, whole or
not at all), listed, served as attachments to those who may read the unit, referenced by
submissions (``file:<id>``) of their own unit only, and journaled."""

from __future__ import annotations

import hashlib
import io
import uuid
from urllib.parse import quote

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from service.db import EvidenceBlob, EvidenceFile, JournalEntry, Submission
from service.evidence import EvidenceStore

from .. import evidence_samples as samples

SCHEME = "gumeilu-2022"
FACT = "leader_evaluation_score"
OTHER_FACT = "leader_evaluation_reason"
BASE = f"/api/units/gucun/schemes/{SCHEME}"


def upload(api, data: bytes, name: str = "材料.pdf", who="submitter", unit="gucun", **form):
    form.setdefault("fact", FACT)
    return api.post(
        f"/api/units/{unit}/schemes/{SCHEME}/evidence",
        who,
        data={**form, "file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def counts(api) -> tuple[int, int]:
    with api.ctx.db.transaction() as s:
        return (
            s.scalar(select(func.count()).select_from(EvidenceFile)),
            s.scalar(select(func.count()).select_from(EvidenceBlob)),
        )


def use_store(api, **kw) -> EvidenceStore:
    store = EvidenceStore(**kw)
    api.app.extensions["evidence"] = store
    return store


KINDS = [
    ("报告.pdf", samples.pdf, "application/pdf"),
    ("现场.png", samples.png, "image/png"),
    ("现场.jpg", samples.jpeg, "image/jpeg"),
    ("总结.docx", lambda: samples.ooxml("docx"), "wordprocessingml.document"),
    ("台账.xlsx", samples.xlsx, "spreadsheetml.sheet"),
    ("汇报.pptx", lambda: samples.ooxml("pptx"), "presentationml.presentation"),
    ("旧文件.doc", samples.ole, "application/msword"),
    ("旧台账.xls", lambda: samples.ole("Workbook"), "application/vnd.ms-excel"),
]


@pytest.mark.parametrize("name,make,content_type", KINDS, ids=[k[0] for k in KINDS])
def test_every_allowed_kind_is_stored_with_its_hash_and_served_back_as_an_attachment(
    api, name, make, content_type
):
    data = make()
    made = upload(api, data, name)
    assert made.status_code == 201, made.json
    body = made.json
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert (body["size"], body["name"], body["fact"], body["clause"]) == (len(data), name, FACT, "")
    assert content_type in body["content_type"]
    assert body["reference"] == f"file:{body['id']}" and body["uploaded_by"] == "submitter"
    assert body["round_id"] == api.round_of(SCHEME)  # the scheme's open round

    got = api.get(body["download"], "reviewer")
    assert got.status_code == 200 and got.data == data
    assert got.headers["Content-Type"].startswith(body["content_type"])
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    disposition = got.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert f"filename*=UTF-8''{quote(name)}" in disposition  # RFC 5987: the name in Chinese

    listed = api.get(f"{BASE}/evidence", "submitter")
    assert listed.status_code == 200 and [f["id"] for f in listed.json] == [body["id"]]


def test_the_type_is_the_content_not_the_name_nor_the_browser(api):
    for data, name in (
        (samples.exe(), "报告.pdf"),  # a program named as a PDF
        (samples.plain_zip(), "总结.docx"),  # a zip that declares no Office document
        (samples.ole("SummaryInformation"), "旧文件.doc"),  # an OLE file, not Word (an .msi is one)
        (samples.ooxml("docx", "wordprocessingml.template.main+xml"), "模板.docx"),
        (b"<html><script>alert(1)</script></html>", "页面.png"),
    ):
        refused = api.post(
            f"{BASE}/evidence",
            "submitter",
            data={"fact": FACT, "file": (io.BytesIO(data), name, "application/pdf")},
            content_type="multipart/form-data",
        )
        assert refused.status_code == 422, (name, refused.json)
        error = refused.json["error"]
        assert error["message"].startswith("文件内容不是允许的类型：")
        assert list(error["fields"]) == ["file"]
    # a real PDF named .exe is a PDF
    assert upload(api, samples.pdf(), "扫描件.exe").json["content_type"] == "application/pdf"
    assert counts(api) == (1, 1)


def test_a_file_over_the_limit_is_refused_with_413_and_nothing_is_stored(api):
    use_store(api, max_bytes=4096)
    at_limit = samples.pdf() + b" " * (4096 - len(samples.pdf()))
    assert upload(api, at_limit).status_code == 201
    over = upload(api, at_limit + b" ", "大.pdf")
    assert over.status_code == 413
    assert (
        "超过大小上限" in over.json["error"]["message"] and "file" in over.json["error"]["fields"]
    )
    assert counts(api) == (1, 1)
    # a body beyond the upload's own limit is refused before it is read whole, the same words
    huge = upload(api, at_limit * 400, "很大.pdf")  # 1.6 MB: over 4 KiB + the 256 KiB form limit
    assert huge.status_code == 413 and "超过大小上限" in huge.json["error"]["message"]
    assert counts(api) == (1, 1)


def test_an_upload_may_be_larger_than_the_json_body_limit(api):
    # the test app's JSON bodies stop at 256 KiB; a 1 MB scan is an ordinary upload
    big = samples.pdf() + b"%" * (1024 * 1024)
    made = upload(api, big, "扫描件.pdf")
    assert made.status_code == 201, made.json
    assert api.get(made.json["download"], "admin").data == big


def test_bad_uploads_name_the_field(api):
    empty = upload(api, b"", "空.pdf")
    assert empty.status_code == 422 and list(empty.json["error"]["fields"]) == ["file"]
    none = api.post(
        f"{BASE}/evidence", "submitter", data={"fact": FACT}, content_type="multipart/form-data"
    )
    assert none.status_code == 422 and "file" in none.json["error"]["fields"]
    assert "请选择要上传的文件" in str(none.json["error"]["fields"]["file"])
    for name in ("报告\x07.pdf", "报告\n.pdf", "报告\u202egpj.pdf", "报" + "告" * 300 + ".pdf"):
        bad = upload(api, samples.pdf(), name)
        assert bad.status_code == 422, name
        assert list(bad.json["error"]["fields"]) == ["file"], bad.json
    nowhere = upload(api, samples.pdf(), fact="no_such_fact")
    assert nowhere.status_code == 422 and "fact" in nowhere.json["error"]["fields"]
    neither = upload(api, samples.pdf(), fact="")
    assert neither.status_code == 422 and "fact" in neither.json["error"]["fields"]
    bad_clause = upload(api, samples.pdf(), fact="", clause="999")
    assert bad_clause.status_code == 422 and "clause" in bad_clause.json["error"]["fields"]
    assert upload(api, samples.pdf(), fact="", clause="区领导评价").status_code == 201
    unknown_scheme = api.post(
        "/api/units/gucun/schemes/nope/evidence",
        "submitter",
        data={"fact": FACT, "file": (io.BytesIO(samples.pdf()), "a.pdf")},
        content_type="multipart/form-data",
    )
    assert unknown_scheme.status_code == 404
    assert counts(api) == (1, 1)


def test_a_path_in_the_file_name_is_dropped(api):
    made = upload(api, samples.pdf(), "../../桌面/报告.pdf")
    assert made.json["name"] == "报告.pdf"


def test_the_same_bytes_twice_are_one_blob_and_for_the_same_fact_one_file(api):
    data = samples.pdf()
    first = upload(api, data, "报告.pdf")
    again = upload(api, data, "报告（重传）.pdf", who="reviewer")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json["id"] == first.json["id"] and again.json["name"] == "报告.pdf"
    other_fact = upload(api, data, "报告.pdf", fact=OTHER_FACT)
    other_unit = upload(api, data, "报告.pdf", who="admin", unit="dachang")
    assert (other_fact.status_code, other_unit.status_code) == (201, 201)
    assert counts(api) == (3, 1)  # three records, the bytes once
    with api.ctx.db.transaction() as s:
        uploads = s.scalars(
            select(JournalEntry).where(JournalEntry.action == "evidence.upload")
        ).all()
    assert [e.detail["duplicate"] for e in uploads] == [False, True, False, False]
    assert {e.detail["sha256"] for e in uploads} == {first.json["sha256"]}
    assert all("content" not in e.detail and e.detail["size"] == len(data) for e in uploads)


@pytest.mark.parametrize("where", ["database", "directory"])
def test_the_same_upload_sent_at_once_is_one_file(api, tmp_path, where):
    """Eight identical uploads at the same moment (a client retrying, or a double click): one record,
    one blob, every answer the same file; and the same bytes for two facts at once: one blob."""
    import threading

    if where == "directory":
        use_store(api, directory=tmp_path / "evidence")
    data = samples.xlsx()
    answers, barrier = [], threading.Barrier(8)

    def send(fact):
        client = api.app.test_client()
        barrier.wait()
        answers.append(
            client.post(
                f"{BASE}/evidence",
                headers={"Authorization": f"Bearer {api.tokens['submitter']}"},
                data={"fact": fact, "file": (io.BytesIO(data), "台账.xlsx")},
                content_type="multipart/form-data",
            )
        )

    threads = [
        threading.Thread(target=send, args=(FACT if i < 6 else OTHER_FACT,)) for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * 6 + [201] * 2, [a.json for a in answers]
    assert len({a.json["id"] for a in answers}) == 2
    assert counts(api) == (2, 1)


def test_a_submission_references_files_of_its_own_unit_only(api):
    mine = upload(api, samples.pdf(), fact=FACT).json
    clause_file = upload(api, samples.png(), "图.png", fact="", clause="区领导评价").json
    theirs = upload(api, samples.jpeg(), "别家.jpg", who="admin", unit="dachang").json
    facts = {FACT: 4.5, OTHER_FACT: "工作扎实"}

    def submit(evidence, **kw):
        return api.post(
            f"{BASE}/submissions",
            "submitter",
            json={"role": "self", "facts": facts, "evidence": evidence},
            **kw,
        )

    for evidence, field in (
        ({FACT: [theirs["reference"]]}, f"evidence.{FACT}"),  # another unit's file
        ({FACT: ["file:999999"]}, f"evidence.{FACT}"),  # no such file
        ({FACT: ["file:9999999999"]}, f"evidence.{FACT}"),  # beyond any id
        ({OTHER_FACT: [mine["reference"]]}, f"evidence.{OTHER_FACT}"),  # uploaded for another fact
    ):
        refused = submit(evidence)
        assert refused.status_code == 422, refused.json
        assert list(refused.json["error"]["fields"]) == [field]
    with api.ctx.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Submission)) == 0
    evidence = {
        FACT: [mine["reference"], "沪质办〔2022〕12号"],
        OTHER_FACT: [clause_file["reference"]],
    }
    made = submit(evidence)
    assert made.status_code == 201, made.json
    assert made.json["evidence"] == evidence  # old text references keep working beside files


def test_downloads_follow_the_rule_of_submission_reads_and_reads_by_others_are_journaled(api):
    theirs = upload(api, samples.pdf(), who="admin", unit="dachang").json
    mine = upload(api, samples.png(), "图.png").json
    assert api.get(theirs["download"], "submitter").status_code == 403
    assert api.get("/api/evidence/999999", "submitter").status_code == 403  # no existence oracle
    assert api.get("/api/evidence/999999", "auditor").status_code == 404
    assert api.get(theirs["download"], "editor").status_code == 403
    assert api.get(theirs["download"]).status_code == 401
    assert api.get(f"/api/units/dachang/schemes/{SCHEME}/evidence", "submitter").status_code == 403
    assert api.get(mine["download"], "submitter").status_code == 200
    got = api.get(theirs["download"], "auditor")
    assert got.status_code == 200
    with api.ctx.db.transaction() as s:
        reads = s.scalars(
            select(JournalEntry).where(
                JournalEntry.outcome == "ok", JournalEntry.action == "submissions.read"
            )
        ).all()
    assert [(e.actor, e.target) for e in reads] == [
        ("auditor", f"unit:dachang/scheme:{SCHEME}/evidence:{theirs['id']}")
    ]  # the submitter reading their own unit is not journaled


def test_evidence_rows_are_append_only(api):
    upload(api, samples.pdf())
    for table in ("evidence_files", "evidence_blobs"):
        for statement in (f"DELETE FROM {table}", f"UPDATE {table} SET size = size + 1"):
            with (
                pytest.raises(DBAPIError, match=f"{table} is append-only"),
                api.ctx.db.engine.begin() as connection,
            ):
                connection.execute(text(statement))
    assert counts(api) == (1, 1)


def test_a_changed_stored_file_is_never_served(api, tmp_path):
    store = use_store(api, directory=tmp_path / "evidence")
    made = upload(api, samples.pdf()).json
    path = store.path_of(made["sha256"])
    assert path.read_bytes() == samples.pdf()
    path.write_bytes(samples.pdf("改过"))
    broken = api.get(made["download"], "admin")
    assert broken.status_code == 500 and broken.json["error"]["code"] == "evidence_missing"


def test_in_a_directory_the_bytes_are_named_by_their_hash(api, tmp_path):
    store = use_store(api, directory=tmp_path / "evidence")
    data = samples.xlsx()
    made = upload(api, data, "台账.xlsx").json
    assert store.path_of(made["sha256"]).read_bytes() == data
    with api.ctx.db.transaction() as s:
        assert s.get(EvidenceBlob, made["sha256"]).content is None  # not in the database too
    assert api.get(made["download"], "reviewer").data == data
    assert not any((tmp_path / "evidence" / ".incoming").iterdir())  # no temporary file left


def _refuse_records(api):
    """Make the database refuse every new evidence record: a request that fails after the bytes
    were read, checked and written (a trigger, so the real storage path runs up to the INSERT)."""
    with api.ctx.db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                text(
                    "CREATE FUNCTION refuse_evidence() RETURNS trigger AS $$"
                    " BEGIN RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql"
                )
            )
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_evidence BEFORE INSERT ON evidence_files"
                    " FOR EACH ROW EXECUTE FUNCTION refuse_evidence()"
                )
            )
        else:
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_evidence BEFORE INSERT ON evidence_files"
                    " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
                )
            )


@pytest.mark.parametrize("where", ["database", "directory"])
def test_a_request_that_fails_after_the_bytes_are_read_leaves_nothing(api, tmp_path, where):
    folder = tmp_path / "evidence"
    if where == "directory":
        use_store(api, directory=folder)
    _refuse_records(api)
    failed = upload(api, samples.pdf(), "报告.pdf")
    assert failed.status_code == 500
    assert counts(api) == (0, 0)  # neither the record nor the blob
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []
    assert files == []  # neither the file in place nor its temporary copy
    with api.ctx.db.transaction() as s:
        assert not s.scalars(
            select(JournalEntry).where(JournalEntry.action == "evidence.upload")
        ).all()


def test_the_sweep_removes_files_no_upload_recorded_and_keeps_the_others(api, tmp_path):
    from service.evidence import sweep

    store = use_store(api, directory=tmp_path / "evidence")
    kept = upload(api, samples.pdf()).json
    orphan = samples.png()
    sha = hashlib.sha256(orphan).hexdigest()
    store.path_of(sha).parent.mkdir(parents=True, exist_ok=True)
    store.path_of(sha).write_bytes(orphan)  # as a process killed after the rename leaves it
    assert sweep(api.ctx, store) == [sha]
    assert not store.path_of(sha).exists()
    assert store.path_of(kept["sha256"]).read_bytes() == samples.pdf()
    assert counts(api) == (1, 1)  # the key's row taken for the check is not kept
    # and the same bytes can be uploaded afterwards as usual
    again = upload(api, orphan, "图.png")
    assert again.status_code == 201 and store.path_of(sha).read_bytes() == orphan


# --- SIGKILL inside an upload: all of it or none of it ---------------------------------------------
#
# In the style of test_crash_safety.py: the service runs as gunicorn (its own process group) with
# SCORING_TEST_PAUSE_IN_SUBMIT, which holds the upload's transaction open after its rows are written
# (and, in a directory, after the file was renamed into place); once the transaction is seen open
# the whole server gets SIGKILL.  Then: no record, no blob, no journal row, and once the service has
# started again, no file in the directory.  The same upload then succeeds, whole.


def _multipart(fields: dict, name: str, data: bytes) -> tuple[bytes, str]:
    boundary = "evidence-" + uuid.uuid4().hex
    parts = []
    for key, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        )
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _upload_open(db, sqlite_path, app_name) -> bool:
    from .test_crash_safety import _sqlite_write_locked

    if sqlite_path:
        return _sqlite_write_locked(sqlite_path)
    with db.engine.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = :app"
                    " AND state = 'idle in transaction' AND query ILIKE '%journal%'"
                ),
                {"app": app_name},
            ).scalar()
        )


@pytest.mark.e2e
@pytest.mark.parametrize("where", ["database", "directory"])
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_kill_during_an_upload_leaves_all_or_nothing(tmp_path, database, where):
    import threading
    import time

    from .servers import REQUEST_TIMEOUT, START_TIMEOUT, Server
    from .test_crash_safety import ROUND, _postgres_sessions, _prepare

    url, db, token, sqlite_path, app_name = _prepare(tmp_path, database)
    folder = tmp_path / "evidence"
    env = {"SCORING_EVIDENCE_DIR": str(folder)} if where == "directory" else {}
    data = samples.pdf("现场检查记录") + b"%" * (256 * 1024)
    sha = hashlib.sha256(data).hexdigest()
    body, content_type = _multipart({"fact": FACT}, "检查记录.pdf", data)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    path = f"/api/units/gucun/schemes/{SCHEME}/evidence"
    servers = []

    def files() -> list:
        return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []

    try:
        server = Server(tmp_path, url, pause=2.0, env=env).start()
        servers.append(server)
        status, opened = server.request(
            "POST", "/api/rounds", ROUND, {"Authorization": f"Bearer {token}"}
        )
        assert status == 201, opened
        outcome: dict = {}

        def send():
            try:
                outcome["response"] = server.raw("POST", path, body, headers, REQUEST_TIMEOUT)
            except OSError as err:  # the server died under us: expected
                outcome["error"] = err

        client = threading.Thread(target=send, daemon=True)
        sent = time.monotonic()
        client.start()
        seen_open = False
        while time.monotonic() - sent < START_TIMEOUT and not outcome:
            seen_open = seen_open or _upload_open(db, sqlite_path, app_name)
            if seen_open and time.monotonic() - sent >= 0.5:
                break
            time.sleep(0.05)
        assert seen_open and not outcome, f"{outcome}; log:\n{server.log()}"
        if where == "directory":
            assert files() == [sha]  # the file was in place, its transaction not committed
        server.kill()
        client.join(REQUEST_TIMEOUT)
        assert "error" in outcome, outcome
        if app_name:
            deadline = time.monotonic() + 15
            while _postgres_sessions(db, app_name) and time.monotonic() < deadline:
                time.sleep(0.1)
        db.engine.dispose()
        with db.transaction() as s:
            assert s.scalar(select(func.count()).select_from(EvidenceFile)) == 0
            assert s.scalar(select(func.count()).select_from(EvidenceBlob)) == 0
            assert not s.scalars(
                select(JournalEntry).where(JournalEntry.action == "evidence.upload")
            ).all()

        # started again (the start sweeps the directory), without the pause: nothing is left, and
        # the same upload is stored whole
        server = Server(tmp_path, url, env=env).start()
        servers.append(server)
        assert files() == []
        status, _headers, answer = server.raw("POST", path, body, headers)
        assert status == 201, answer
        server.kill()
        db.engine.dispose()
        with db.transaction() as s:
            (row,) = s.scalars(select(EvidenceFile)).all()
            blob = s.get(EvidenceBlob, sha)
        assert (row.sha256, row.size, row.name) == (sha, len(data), "检查记录.pdf")
        if where == "directory":
            assert files() == [sha] and (folder / sha[:2] / sha).read_bytes() == data
        else:
            assert blob.content == data
    finally:
        for server in servers:
            server.kill()
        db.engine.dispose()
