"""Evidence files (佐证材料): uploaded per fact or clause of a unit's scheme, kept, listed, served.

Plain values in, ``service.exceptions`` out, like ``service.operations`` (whose access checks and
read journal it uses).  What it promises:

- **Type by content.**  A file is what its bytes are, never what its name or the browser says: a
  PDF, a PNG or JPEG image, a Word, Excel or PowerPoint document (OOXML: a zip whose
  ``[Content_Types].xml`` declares the main part of a docx, xlsx or pptx, and that part is in the
  zip; not any zip) or an old Word or Excel document (OLE2 with a ``WordDocument`` or
  ``Workbook``/``Book`` stream; not any OLE file: an .msi installer is one too).
- **Size.**  At most ``EvidenceStore.max_bytes`` (SCORING_EVIDENCE_MAX_BYTES), counted while the
  upload is read, never trusting a declared length: beyond it, ``TooLarge`` (413).
- **Stored once, whole or not at all.**  The bytes are kept once per SHA-256 (``evidence_blobs``),
  in the database, or in the evidence directory under their hash (written to a temporary file,
  fsynced, renamed into place inside the database transaction that records them, and removed
  again if that transaction fails before it commits).  Uploading the same bytes for the same unit,
  scheme and fact again is the same file: the first record is answered, nothing new is stored (a
  retried upload whose answer was lost makes no duplicate, and the list shows each file once).
- **Served as attachments** to whoever may read the unit's submissions, the read journaled as
  other reads of a unit's data are; each upload journaled with its name, hash and size.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import time
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import filetype
import olefile
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from . import operations as ops
from .access import Actor, check, check_own_unit, journal
from .db import EvidenceBlob, EvidenceFile, Unit, User, now
from .domain.text import invisible, unstorable
from .exceptions import Inconsistent, Invalid, NotFound, TooLarge

#: what may be uploaded: kind -> (content type served, words for people)
KINDS = {
    "pdf": ("application/pdf", "PDF"),
    "png": ("image/png", "PNG 图片"),
    "jpg": ("image/jpeg", "JPEG 图片"),
    "docx": (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "Word 文档（docx）",
    ),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "Excel（xlsx）"),
    "pptx": (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "PowerPoint（pptx）",
    ),
    "doc": ("application/msword", "Word 97-2003 文档（doc）"),
    "xls": ("application/vnd.ms-excel", "Excel 97-2003（xls）"),
}
ALLOWED_WORDS = "PDF、PNG、JPEG、Word（doc/docx）、Excel（xls/xlsx）、PowerPoint（pptx）"

#: the main part an OOXML package declares in [Content_Types].xml, by kind (macro-enabled and
#: template variants declare other types, and are refused)
_OOXML_MAIN = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml": "xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml": "pptx",
}
_CONTENT_TYPES_MAX = 1024 * 1024  # [Content_Types].xml is a few KB; more is not an Office file
_OVERRIDE = re.compile(rb"<Override\b[^>]*>")
_ATTRIBUTE = re.compile(rb'\b(PartName|ContentType)\s*=\s*"([^"]*)"')

NAME_CHARS_MAX = 255
CHUNK = 1024 * 1024
FILE_REFERENCE = ops.FILE_REFERENCE  # how a submission's evidence names an uploaded file


@dataclass(frozen=True)
class EvidenceStore:
    """Where evidence bytes live and how large one file may be (from ``service.config``)."""

    max_bytes: int = 20 * 1024 * 1024
    directory: Path | None = None  # None: in the database

    def path_of(self, sha256: str) -> Path:
        assert self.directory is not None
        return self.directory / sha256[:2] / sha256


def megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB".replace(".0 MB", " MB")


def too_large(limit: int) -> TooLarge:
    return TooLarge(
        "evidence_too_large",
        f"上传的文件超过大小上限 {megabytes(limit)}，请压缩或拆分后再上传",
        {"file": [f"不超过 {megabytes(limit)}"]},
    )


# --- what a file is --------------------------------------------------------------------------


def detect(stream: BinaryIO) -> str | None:
    """The kind of the file in the seekable ``stream`` (a key of ``KINDS``), from its bytes only;
    None if it is none of them."""
    stream.seek(0)
    head = stream.read(8192)
    found = filetype.guess(head)
    kind = found.extension if found is not None else None
    if kind in ("pdf", "png", "jpg"):
        return kind
    if head.startswith(b"PK\x03\x04"):
        return _ooxml(stream)
    if head.startswith(olefile.MAGIC):
        return _ole(stream)
    return None


def _ooxml(stream: BinaryIO) -> str | None:
    """docx, xlsx or pptx if the zip declares exactly one such main part and holds it."""
    try:
        stream.seek(0)
        with zipfile.ZipFile(stream) as archive:
            names = set(archive.namelist())
            info = archive.getinfo("[Content_Types].xml")
            if info.file_size > _CONTENT_TYPES_MAX:
                return None
            declared = archive.read(info)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, RuntimeError, EOFError):
        return None  # not a readable zip, or no [Content_Types].xml: not an Office document
    kinds = set()
    for element in _OVERRIDE.findall(declared):
        attributes = dict(_ATTRIBUTE.findall(element))
        kind = _OOXML_MAIN.get(attributes.get(b"ContentType", b"").decode("utf-8", "replace"))
        part = attributes.get(b"PartName", b"").decode("utf-8", "replace").lstrip("/")
        if kind is not None and part in names:
            kinds.add(kind)
    return kinds.pop() if len(kinds) == 1 else None


def _ole(stream: BinaryIO) -> str | None:
    """doc or xls if the OLE2 compound file holds a Word document or an Excel workbook stream."""
    try:
        stream.seek(0)
        with olefile.OleFileIO(stream) as ole:
            word = ole.exists("WordDocument")
            excel = ole.exists("Workbook") or ole.exists("Book")
    except Exception:  # olefile raises many kinds on a malformed file: it is not a document
        return None
    if word != excel:
        return "doc" if word else "xls"
    return None


def checked_name(name: str | None) -> str:
    """The original file name as kept: its last path part (some browsers send the whole path),
    NFC; refused (422 naming ``file``) if empty, too long, or holding characters that cannot be
    stored or shown (control characters, direction overrides, zero-width characters)."""
    text = unicodedata.normalize("NFC", (name or "").replace("\\", "/").rsplit("/", 1)[-1]).strip()
    problem = None
    if not text:
        problem = "文件名不能为空"
    elif len(text) > NAME_CHARS_MAX:
        problem = f"文件名不超过 {NAME_CHARS_MAX} 个字符（现有 {len(text)} 个）"
    elif unstorable(text) or re.search("[\t\n\r\x7f-\x9f]", text):
        problem = "文件名含有控制字符，请改名后再上传"
    elif invisible(text):
        problem = f"文件名{invisible(text)}"
    if problem:
        raise Invalid("invalid_file_name", f"文件名有误：{problem}", {"file": [problem]})
    return text


# --- upload ------------------------------------------------------------------------------------


def _receive(source: BinaryIO, sink: BinaryIO, limit: int) -> tuple[str, int]:
    """Copy ``source`` to ``sink`` in chunks, hashing and counting: (SHA-256, size); TooLarge as
    soon as it passes ``limit`` (whatever length the request declared)."""
    digest, size = hashlib.sha256(), 0
    while True:
        chunk = source.read(CHUNK)
        if not chunk:
            return digest.hexdigest(), size
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        digest.update(chunk)
        sink.write(chunk)


def _place(scheme, fact: str, clause: str) -> None:
    problems = {}
    if not fact and not clause:
        problems["fact"] = ["请指明这份材料佐证哪一项事实（fact）或哪一条款（clause）"]
    if fact and fact not in scheme.facts:
        problems["fact"] = [f"“{fact}”不是本细则声明的事实"]
    if clause and clause not in scheme.clauses:
        problems["clause"] = [f"“{clause}”不是本细则的条款"]
    if problems:
        raise Invalid("invalid_evidence_place", "佐证材料对应的事实或条款不存在", problems)


def _insert_blob(s, sha256: str, size: int, content: bytes | None) -> bool:
    """The blob row, unless the same content is stored already; whether this inserted it.  On
    PostgreSQL an upload of the same bytes under way in another transaction makes this wait until
    it ends (the key's lock), so two uploads of one content never both believe they placed its
    file; SQLite's one writer at a time gives the same."""
    dialect = postgresql if s.bind.dialect.name == "postgresql" else sqlite
    inserted = s.execute(
        dialect.insert(EvidenceBlob)
        .values(sha256=sha256, size=size, content=content, created_at=now())
        .on_conflict_do_nothing(index_elements=["sha256"])
        .returning(EvidenceBlob.sha256)  # (rowcount is not reported for it on PostgreSQL)
    ).first()
    return inserted is not None


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def upload(
    ctx: ops.Context,
    store: EvidenceStore,
    actor: Actor | None,
    unit_code: str,
    scheme_id: str,
    source: BinaryIO,
    name: str | None,
    fact: str = "",
    clause: str = "",
) -> tuple[EvidenceFile, bool]:
    """Keep an uploaded file as evidence for a unit's fact or clause: (its record, whether it is
    new).  The same bytes for the same place again: the existing record, False."""
    target = f"unit:{unit_code}/scheme:{scheme_id}"
    unit = ops._unit_for(ctx, actor, "evidence.write", unit_code, target)
    # evidence is for a round, as facts are: the scheme's open round, under its rules version
    rnd = ops._open_round(ctx, scheme_id)
    scheme = ops.round_scheme(ctx, rnd)
    fact, clause = (fact or "").strip(), (clause or "").strip()
    _place(scheme, fact, clause)
    name = checked_name(name)
    incoming = None
    try:
        if store.directory is None:
            sink: BinaryIO = io.BytesIO()
        else:  # on the directory's own file system, so the rename into place is atomic
            spool = store.directory / ".incoming"
            spool.mkdir(parents=True, exist_ok=True)
            sink = tempfile.NamedTemporaryFile(dir=spool, delete=False)  # noqa: SIM115
            incoming = Path(sink.name)
        with sink:
            sha256, size = _receive(source, sink, store.max_bytes)
            if size == 0:
                raise Invalid("empty_file", "上传的文件是空的", {"file": ["文件没有内容"]})
            kind = detect(sink)
            if kind is None:
                raise Invalid(
                    "evidence_type",
                    f"文件内容不是允许的类型：“{name}”的内容不是 {ALLOWED_WORDS} 之一"
                    "（按文件内容判断，与扩展名无关）",
                    {"file": [f"文件内容不是允许的类型（{ALLOWED_WORDS}）"]},
                )
            if incoming is not None:
                sink.flush()
                os.fsync(sink.fileno())
                content = None
            else:
                content = sink.getvalue()  # type: ignore[attr-defined]
        record = EvidenceFile(
            unit_id=unit.id,
            scheme_id=scheme_id,
            fact=fact,
            clause=clause,
            sha256=sha256,
            size=size,
            name=name,
            content_type=KINDS[kind][0],
            uploaded_by=actor.user_id,
            round_id=rnd.id,
        )
        try:
            return _record(ctx, store, actor, unit, target, record, incoming, content)
        except IntegrityError:  # the same upload, made at the same moment, was recorded first
            with ctx.db.transaction() as s:
                existing = s.scalar(_same_place(record))
            if existing is None:
                raise
            return existing, False
    finally:
        if incoming is not None and incoming.exists():
            incoming.unlink()


def _same_place(record: EvidenceFile):
    return select(EvidenceFile).where(
        EvidenceFile.unit_id == record.unit_id,
        EvidenceFile.scheme_id == record.scheme_id,
        EvidenceFile.fact == record.fact,
        EvidenceFile.clause == record.clause,
        EvidenceFile.sha256 == record.sha256,
    )


def _record(ctx, store, actor, unit, target, record, incoming, content):
    """Store the bytes (if new) and the record in one transaction; the file placed in the
    directory is removed again if anything fails before the commit."""
    placed = None
    with ctx.db.transaction() as s:
        try:
            _insert_blob(s, record.sha256, record.size, content)
            existing = s.scalar(_same_place(record))
            if incoming is not None:
                final = store.path_of(record.sha256)
                final.parent.mkdir(parents=True, exist_ok=True)
                if not final.exists():
                    placed = final
                # a missing file of a stored blob (removed by hand) is put back by the same bytes
                os.replace(incoming, final)
                _fsync_dir(final.parent)
            if existing is None:
                s.add(record)
                s.flush()
            journal(
                s,
                actor,
                "evidence.upload",
                target,
                "ok",
                file=(existing or record).id,
                name=record.name,
                sha256=record.sha256,
                size=record.size,
                content_type=record.content_type,
                fact=record.fact,
                clause=record.clause,
                duplicate=existing is not None,
            )
            s.flush()
            if ctx.pause_in_submit:  # tests: a window in which to kill the server mid-upload
                time.sleep(ctx.pause_in_submit)
        except BaseException:
            if placed is not None and placed.exists():
                placed.unlink()  # before the rollback lets another upload of it go on
            raise
    return (existing or record), existing is None


# --- files no upload recorded ---------------------------------------------------------------------

_HASH_NAME = re.compile(r"[0-9a-f]{64}")
INCOMING_MAX_AGE = 24 * 3600  # seconds: no upload takes this long to be received


def sweep(ctx: ops.Context, store: EvidenceStore) -> list[str]:
    """Remove what uploads killed mid-transaction (SIGKILL, power loss) left in the evidence
    directory: a file in place that no blob row records, and temporary files older than a day;
    the hashes removed.  Run as the service starts.

    A file is removed only while this holds its hash's blob-row key: inserting the row (rolled
    back afterwards) succeeds only if no upload recorded it and none is recording it now (an
    upload inserts its blob row before it renames the file into place, and a second insert of the
    key waits for the first transaction to end), so a file an upload is about to commit is never
    taken from under it, whichever host or worker runs either."""
    if store.directory is None or not store.directory.is_dir():
        return []
    spool = store.directory / ".incoming"
    if spool.is_dir():
        for stale in spool.iterdir():
            try:
                if time.time() - stale.stat().st_mtime > INCOMING_MAX_AGE:
                    stale.unlink()
            except FileNotFoundError:
                pass
    found = {
        p.name: p
        for p in store.directory.glob("??/*")
        if _HASH_NAME.fullmatch(p.name) and p.parent.name == p.name[:2] and p.is_file()
    }
    names = sorted(found)
    known: set = set()
    with ctx.db.transaction() as s:
        for start in range(0, len(names), 500):
            batch = names[start : start + 500]
            known.update(
                s.scalars(select(EvidenceBlob.sha256).where(EvidenceBlob.sha256.in_(batch)))
            )
    removed = []
    for sha256 in names:
        if sha256 in known:
            continue
        session = ctx.db.Session()
        try:
            session.begin()
            if _insert_blob(session, sha256, 0, None):
                found[sha256].unlink(missing_ok=True)
                removed.append(sha256)
        finally:
            session.rollback()  # the row was only the key's lock
            session.close()
    return removed


# --- reading -----------------------------------------------------------------------------------


def list_files(ctx: ops.Context, actor: Actor | None, unit_code: str, scheme_id: str) -> list:
    """A unit's evidence files for a scheme, oldest first (who may read its submissions)."""
    target = f"unit:{unit_code}/scheme:{scheme_id}"
    unit = ops._unit_for(ctx, actor, "submissions.read", unit_code, target)
    with ctx.db.transaction() as s:
        ops._journal_read(s, actor, "submissions.read", unit, target)
        return list(
            s.scalars(
                select(EvidenceFile)
                .where(EvidenceFile.unit_id == unit.id, EvidenceFile.scheme_id == scheme_id)
                .order_by(EvidenceFile.id)
            )
        )


def files_by_id(ctx: ops.Context, unit: Unit, scheme_id: str, ids) -> dict:
    """{id: record} of the given ids that are this unit's files for the scheme (for showing the
    files a submission references, to someone who has read that submission already)."""
    ids = [i for i in ids if isinstance(i, int)]
    if not ids:
        return {}
    with ctx.db.transaction() as s:
        rows = s.scalars(
            select(EvidenceFile).where(
                EvidenceFile.id.in_(ids),
                EvidenceFile.unit_id == unit.id,
                EvidenceFile.scheme_id == scheme_id,
            )
        )
        return {row.id: row for row in rows}


def referenced_ids(evidence: dict) -> list[int]:
    """The file ids a submission's evidence references (``file:<id>``), in order, once each."""
    found: list[int] = []
    for items in (evidence or {}).values():
        for item in items if isinstance(items, list) else []:
            match = FILE_REFERENCE.fullmatch(item) if isinstance(item, str) else None
            if match and int(match.group(1)) not in found:
                found.append(int(match.group(1)))
    return found


def uploader_names(ctx: ops.Context, rows) -> dict:
    ids = {row.uploaded_by for row in rows}
    if not ids:
        return {}
    with ctx.db.transaction() as s:
        return dict(s.execute(select(User.id, User.username).where(User.id.in_(ids))).all())


def open_file(
    ctx: ops.Context, store: EvidenceStore, actor: Actor | None, file_id: int
) -> tuple[EvidenceFile, Unit, bytes]:
    """An evidence file's record, unit and bytes, for who may read the unit's submissions; the
    bytes checked against their hash (a file changed behind the service is never served)."""
    where = f"evidence:{file_id}"
    check(ctx.db, actor, "submissions.read", where)  # before the lookup: no existence oracle
    with ctx.db.transaction() as s:
        row = s.get(EvidenceFile, file_id)
        unit = s.get(Unit, row.unit_id) if row is not None else None
        if row is not None and unit is not None:
            ops._journal_read(
                s,
                actor,
                "submissions.read",
                unit,
                f"unit:{unit.code}/scheme:{row.scheme_id}/{where}",
            )
            blob = s.get(EvidenceBlob, row.sha256)
    check_own_unit(ctx.db, actor, "submissions.read", where, unit)  # 403 for a missing one too
    if row is None or unit is None:
        raise NotFound("unknown_evidence", f"没有编号为 {file_id} 的佐证材料")
    data = blob.content if blob is not None else None
    if data is None and store.directory is not None:
        try:
            data = store.path_of(row.sha256).read_bytes()
        except OSError:
            data = None
    if data is None or hashlib.sha256(data).hexdigest() != row.sha256:
        raise Inconsistent(
            "evidence_missing",
            f"佐证材料“{row.name}”的内容缺失或与记录的哈希不符，请管理员核对存储",
        )
    return row, unit, data
