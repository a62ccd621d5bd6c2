"""Drafts and releases of rule versions (issue 10): a scheme version written in the product.

A draft (``db.RuleDraft``) is a scheme folder's files ({path inside the folder: text}) with a state:
draft -> proposed -> published, or withdrawn.  It starts as a copy of any version for a new year,
an uploaded zip of a scheme folder, or the rules directory's copy of a scheme.  Every save stores
the files whether or not they load (an editor may be mid-change) together with the result of the
one check (``operations.check_rule_set``: the strict loader in a child process, then every test
case through this worker's engine).  A draft is never served and never scores officially.

Publication has four eyes: an editor proposes (the check must pass), an admin who is not the
proposer approves (the check runs again) or returns it with a reason.  Approval archives the files
in ``rule_versions`` and publishes a new ``rule_sets`` row (the newest one with this scheme's entry
replaced or added), so every worker serves it through ``operations.sync_rules``; this worker swaps
at once.  A round opened later pins ``version_for_year``; one named at approval is re-pinned if it
has no official score yet.  Every step is journaled.

User-typed text is parsed only in the contained loader (``rulefiles.contained``), never here,
except by ``rulefiles.edit`` (ruamel's round trip, which the forms use and which runs no loader).
"""

from __future__ import annotations

import hashlib
import io
import re
import stat
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError

from . import operations as ops
from .access import Actor, check, deny, journal
from .db import JournalEntry, Round, RoundUnit, RuleDraft, RuleSet, RuleVersion, User, now
from .domain.model import Scheme
from .domain.text import REASON_CHARS_MAX, unstorable
from .exceptions import Conflict, Invalid, NotFound, ServiceError, Unavailable
from .rulefiles import RuleSetError, contained
from .rulefiles import edit as rule_edit
from .rulefiles.loader import (
    MAX_FILE_BYTES,
    MAX_FILES,
    MAX_TOTAL_BYTES,
    RULE_SUFFIXES,
    SCHEME_FILE,
    path_problems,
    read_tree,
    shown_name,
    version_of_files,
)

DRAFT, PROPOSED, PUBLISHED, WITHDRAWN = "draft", "proposed", "published", "withdrawn"
STATES = (DRAFT, PROPOSED, PUBLISHED, WITHDRAWN)
OPEN = (DRAFT, PROPOSED)  # a draft still on its way: its scheme id is taken
STATE_WORDS = {DRAFT: "草稿", PROPOSED: "待批准", PUBLISHED: "已发布", WITHDRAWN: "已撤回"}
ORIGINS = ("copy", "upload", "disk")
#: a year a version may take effect from (as a round's year)
YEARS = range(2000, 2101)
#: an uploaded zip, compressed (the files inside are bounded as the loader bounds them)
MAX_UPLOAD_BYTES = 16 << 20
MAX_NOTE_CHARS = REASON_CHARS_MAX
#: a zip's entries carry this date, so the same files always give the same bytes
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class DraftView:
    id: int
    scheme_id: str
    folder: str
    title: str
    year: str
    origin: str
    base_version: str | None
    files: dict[str, str]
    state: str
    version: str | None
    # {"ok", "errors": [{"file" (path inside the scheme folder, a key of files), "line",
    #  "column", "message"}], "failing": [operations.failing_case dicts], "cases", "version"}
    checked: dict
    mapping: dict
    note: str | None
    proposed_by: str | None  # user names
    proposed_at: datetime | None
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None
    effective_year: int | None
    effective_round_id: int | None
    created_by: str | None
    created_at: datetime
    updated_by: str | None
    updated_at: datetime
    lock: int


def _names(s, rows: list[RuleDraft]) -> dict:
    ids = {
        uid
        for r in rows
        for uid in (r.proposed_by, r.decided_by, r.created_by, r.updated_by)
        if uid is not None
    }
    if not ids:
        return {}
    return dict(s.execute(select(User.id, User.username).where(User.id.in_(ids))).all())


def _view(row: RuleDraft, names: dict) -> DraftView:
    return DraftView(
        id=row.id,
        scheme_id=row.scheme_id,
        folder=row.folder,
        title=row.title,
        year=row.year,
        origin=row.origin,
        base_version=row.base_version,
        files=dict(row.files),
        state=row.state,
        version=row.version,
        checked=dict(row.checked or {}),
        mapping=dict(row.mapping or {}),
        note=row.note,
        proposed_by=names.get(row.proposed_by),
        proposed_at=row.proposed_at,
        decided_by=names.get(row.decided_by),
        decided_at=row.decided_at,
        reason=row.reason,
        effective_year=row.effective_year,
        effective_round_id=row.effective_round_id,
        created_by=names.get(row.created_by),
        created_at=row.created_at,
        updated_by=names.get(row.updated_by),
        updated_at=row.updated_at,
        lock=row.lock,
    )


def _target(row_or_id, scheme_id: str | None = None) -> str:
    if isinstance(row_or_id, RuleDraft):
        return f"rule_draft:{row_or_id.id}/scheme:{row_or_id.scheme_id}"
    return f"rule_draft:{row_or_id}" + (f"/scheme:{scheme_id}" if scheme_id else "")


# --- reading -------------------------------------------------------------------------------------


def list_drafts(ctx: ops.Context, actor: Actor, state: str | None = None) -> list[DraftView]:
    """Every draft (newest first), or those in ``state``."""
    check(ctx.db, actor, "rules.read", "rule_drafts")
    if state is not None and state not in STATES:
        raise Invalid(
            "invalid_state", "没有这种草案状态", {"state": [f"可选：{'、'.join(STATES)}"]}
        )
    with ctx.db.transaction() as s:
        query = select(RuleDraft).order_by(RuleDraft.id.desc())
        if state is not None:
            query = query.where(RuleDraft.state == state)
        rows = list(s.scalars(query))
        names = _names(s, rows)
        return [_view(r, names) for r in rows]


def _get(s, draft_id: int) -> RuleDraft:
    row = s.get(RuleDraft, draft_id) if 0 < draft_id < 2**31 else None
    if row is None:
        raise NotFound("unknown_draft", f"没有编号为 {draft_id} 的规则草案")
    return row


def read_draft(ctx: ops.Context, actor: Actor, draft_id: int) -> DraftView:
    check(ctx.db, actor, "rules.read", _target(draft_id))
    with ctx.db.transaction() as s:
        row = _get(s, draft_id)
        return _view(row, _names(s, [row]))


# --- checking ------------------------------------------------------------------------------------


def _inside(path: str, folder: str) -> str:
    """A path the loader names (under the rules root) as a key of the draft's files."""
    return path[len(folder) + 1 :] if path.startswith(folder + "/") else path


def _check(ctx: ops.Context, folder: str, files: dict, serve: bool = False):
    """The one check of a draft's files: (checked dict, the scheme or None).  Loaded in a child
    process (the text is a user's), every case through this worker's engine."""
    rooted = {f"{folder}/{rel}": text for rel, text in files.items()}
    checked = ops.check_rule_set(ctx, lambda: contained.load_tree(rooted, folder), serve=serve)
    scheme = next(iter(checked.schemes.values()), None)
    failing = []
    for case in checked.failing:
        shown = ops.failing_case(case)
        shown["file"] = _inside(shown["file"], folder)
        failing.append(shown)
    return {
        "ok": checked.ok,
        "errors": [
            {
                "file": _inside(e.file, folder),
                "line": e.line,
                "column": e.column,
                "message": e.message,
            }
            for e in checked.errors
        ],
        "failing": failing,
        "cases": len(checked.results),
        "version": scheme.version if scheme is not None else None,
    }, scheme


def _header(text: str, key: str) -> str | None:
    """A top-level scalar of scheme.yaml read without parsing it (a draft that does not load
    still shows its id and title): ``key: value`` with the value's quotes and comment dropped."""
    m = re.search(rf"^{key}:[ \t]*(.*?)[ \t]*$", text, re.M)
    if m is None:
        return None
    value = re.sub(r"[ \t]+#.*$", "", m.group(1)).strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return value or None


def _describe(files: dict, scheme: Scheme | None, fallback: dict) -> dict:
    """The columns kept in step with scheme.yaml: its id, title and year."""
    if scheme is not None:
        return {"scheme_id": scheme.id, "title": scheme.title, "year": str(scheme.year)}
    text = files.get(SCHEME_FILE, "")
    out = {}
    for key in ("id", "title", "year"):
        value = _header(text, key)
        column = "scheme_id" if key == "id" else key
        out[column] = value if value is not None else fallback.get(column, "")
    out["scheme_id"] = out["scheme_id"][:100]
    out["title"] = out["title"][:300]
    out["year"] = out["year"][:40]
    return out


def _files_problems(files) -> dict:
    """{field: [why]} for files that cannot be a scheme folder's (before anything is loaded)."""
    if not isinstance(files, dict) or not files:
        return {"files": ["应为细则文件夹内的相对路径到文件内容，至少有 scheme.yaml"]}
    problems: dict = {}
    if len(files) > MAX_FILES:
        return {"files": [f"规则文件过多：最多{MAX_FILES}个"]}
    for rel, problem in path_problems(list(files)):
        problems.setdefault(f"files.{shown_name(rel)}", []).append(problem)
    total = 0
    for rel, text in files.items():
        if not isinstance(text, str):
            problems.setdefault(f"files.{shown_name(rel)}", []).append("文件内容应为文字")
            continue
        if unstorable(text):
            problems.setdefault(f"files.{shown_name(rel)}", []).append(unstorable(text))
        total += len(text.encode("utf-8", "surrogatepass"))
        if rel != SCHEME_FILE and rel.rpartition("/")[2] == SCHEME_FILE:
            problems.setdefault(f"files.{shown_name(rel)}", []).append(
                "一个草案只能是一套细则：scheme.yaml 只能在细则文件夹的根部"
            )
    if total > MAX_TOTAL_BYTES:
        problems.setdefault("files", []).append(f"规则文件合计过大：最多{MAX_TOTAL_BYTES}字节")
    return problems


def _refuse_files(files) -> None:
    problems = _files_problems(files)
    if problems:
        raise Invalid("invalid_files", "规则文件不可用", problems)


# --- creating ------------------------------------------------------------------------------------


def _open_draft_with(s, scheme_id: str, besides: int | None = None) -> RuleDraft | None:
    query = select(RuleDraft).where(RuleDraft.scheme_id == scheme_id, RuleDraft.state.in_(OPEN))
    if besides is not None:
        query = query.where(RuleDraft.id != besides)
    return s.scalars(query.limit(1)).first()


def _create(
    ctx: ops.Context,
    actor: Actor,
    origin: str,
    folder: str,
    files: dict,
    base_version: str | None,
    fallback: dict,
    refuse_served: bool = False,
) -> DraftView:
    checked, scheme = _check(ctx, folder, files)
    head = _describe(files, scheme, fallback)
    if refuse_served and ctx.registry.get(head["scheme_id"]) is not None:
        raise Conflict(
            "scheme_id_taken",
            f"细则编号“{head['scheme_id']}”已在使用中，请为新版本另起编号",
            {"scheme_id": ["已有细则使用这一编号"]},
        )
    at = now()
    with ctx.db.transaction() as s:
        other = _open_draft_with(s, head["scheme_id"])
        if other is not None:
            raise Conflict(
                "scheme_id_taken",
                f"细则编号“{head['scheme_id']}”已由草案 {other.id}（{STATE_WORDS[other.state]}）使用",
                {"scheme_id": [f"草案 {other.id} 已使用这一编号"]},
            )
        row = RuleDraft(
            origin=origin,
            folder=folder,
            files=dict(files),
            base_version=base_version,
            state=DRAFT,
            version=version_of_files(files),
            checked=checked,
            mapping={},
            created_by=actor.user_id,
            created_at=at,
            updated_by=actor.user_id,
            updated_at=at,
            **head,
        )
        s.add(row)
        s.flush()
        journal(
            s,
            actor,
            "rules.draft.create",
            _target(row),
            "ok",
            origin=origin,
            base_version=base_version,
            version=row.version,
            checked=checked["ok"],
        )
        return _view(row, _names(s, [row]))


def _folder_of_version(ctx: ops.Context, version: str, scheme_id: str) -> str:
    """Where under the rules root a version was (or is) served from: the registry, a rule set, a
    round or a published draft name it; else the scheme id."""
    served = ctx.registry.by_version(version)
    if served is not None and ops.folder_of(served):
        return ops.folder_of(served)
    with ctx.db.transaction() as s:
        for (schemes,) in s.execute(select(RuleSet.schemes).order_by(RuleSet.id.desc())):
            for entry in schemes.values():
                if entry.get("version") == version and entry.get("folder"):
                    return entry["folder"]
        folder = s.scalar(select(Round.folder).where(Round.rules_version == version).limit(1))
        if folder:
            return folder
        folder = s.scalar(
            select(RuleDraft.folder)
            .where(RuleDraft.version == version, RuleDraft.state == PUBLISHED)
            .limit(1)
        )
    return folder or scheme_id


def _version_files(ctx: ops.Context, version: str) -> tuple[dict, str, dict]:
    """(files, folder, {"scheme_id", "title", "year"}) of a served or stored version."""
    scheme = ctx.registry.by_version(version)
    if scheme is not None:
        files = dict(scheme.texts)
        head = {"scheme_id": scheme.id, "title": scheme.title, "year": str(scheme.year)}
    else:
        with ctx.db.transaction() as s:
            row = (
                s.get(RuleVersion, version)
                if re.fullmatch(r"[0-9a-f]{64}", version or "")
                else None
            )
            if row is None:
                raise NotFound(
                    "unknown_rules_version",
                    f"没有版本为 {str(version)[:16]} 的规则",
                    {"version": ["没有这一版本"]},
                )
            files = dict(row.files)
            head = _describe(files, None, {"scheme_id": row.scheme_id, "title": row.title})
    return files, _folder_of_version(ctx, version, head["scheme_id"]), head


def _with_year(text: str, old: str, new: str) -> str:
    """``text`` with the old year's digits replaced by the new year's ("gumeilu-2022" ->
    "gumeilu-2023", "2016-2017年度" -> "2018-2019年度"); unchanged if they do not appear."""
    if old and old in text:
        return text.replace(old, new)
    old_first = re.search(r"\d{4}", old or "")
    new_first = re.search(r"\d{4}", new)
    if old_first and new_first and old_first.group() in text:
        return text.replace(old_first.group(), new_first.group())
    return text


_SCHEME_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def copy_version(
    ctx: ops.Context,
    actor: Actor,
    version: str,
    year: str,
    scheme_id: str | None = None,
    title: str | None = None,
) -> DraftView:
    """A draft for ``year`` from any served or stored version: its id, year and title rewritten
    (the old year's digits replaced where they appear; an explicit ``scheme_id``/``title`` wins),
    through ``edit.set_scheme_field`` so everything else stays byte-identical."""
    check(ctx.db, actor, "rules.draft", f"rules_version:{str(version)[:64]}")
    year = str(year or "").strip()
    problems = {}
    if not year or len(year) > 40 or not re.search(r"\d{4}", year) or unstorable(year):
        problems["year"] = ["应为年度，如 2023 或 2023-2024"]
    if scheme_id is not None and not _SCHEME_ID.fullmatch(scheme_id):
        problems["scheme_id"] = ["应为1到100个英文字母、数字、点、下划线或连字符"]
    if title is not None and (not title.strip() or len(title) > 300 or unstorable(title)):
        problems["title"] = [unstorable(title) or "应为1到300个字"]
    if problems:
        raise Invalid("invalid_copy", "复制规则版本的信息有误", problems)
    files, folder, head = _version_files(ctx, version)
    old_year = head["year"]
    new_id = scheme_id or _with_year(head["scheme_id"], old_year, year)
    new_title = (title or "").strip() or _with_year(head["title"], old_year, year)
    new_folder = _with_year(folder, old_year, year)
    if new_folder == folder:
        new_folder = f"{folder}-{year}"
    if ctx.registry.get(new_id) is not None:
        raise Conflict(
            "scheme_id_taken",
            f"细则编号“{new_id}”已在使用中，请为{year}年度的版本另起编号",
            {"scheme_id": ["已有细则使用这一编号"]},
        )
    try:
        for name, value in (("id", new_id), ("year", year), ("title", new_title)):
            files = rule_edit.set_scheme_field(files, name, value)
    except rule_edit.EditError as err:
        raise Invalid("invalid_copy", str(err), {"version": [str(err)]}) from None
    return _create(
        ctx,
        actor,
        "copy",
        new_folder,
        files,
        version,
        {"scheme_id": new_id, "title": new_title, "year": year},
        refuse_served=True,
    )


def _unzip(data: bytes) -> tuple[dict, str]:
    """The rule files of a zip of one scheme folder (scheme.yaml at its root or under one top
    folder) and that folder's name ("" at the root), every bound checked before a byte is used."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise Invalid(
            "upload_too_large", "上传的压缩包过大", {"file": [f"最多{MAX_UPLOAD_BYTES}字节"]}
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise Invalid(
            "invalid_zip", "上传的文件不是 zip 压缩包", {"file": ["应为一个细则文件夹的 zip"]}
        ) from None
    if len(infos) > MAX_FILES:
        raise Invalid("invalid_zip", "压缩包中的文件过多", {"file": [f"最多{MAX_FILES}个"]})
    problems: dict = {}
    wanted = []
    total = 0
    for info in infos:
        name = info.filename
        if info.is_dir() or name.startswith("__MACOSX/"):
            continue
        if stat.S_ISLNK(info.external_attr >> 16):
            problems.setdefault(f"file.{name}", []).append("是符号链接：只能有普通文件和文件夹")
            continue
        if not name.endswith(RULE_SUFFIXES):
            continue  # notes, READMEs: not rule files, not read (as in a rules directory)
        if info.flag_bits & 0x1:
            problems.setdefault(f"file.{name}", []).append("是加密的文件，无法读取")
            continue
        if info.file_size > MAX_FILE_BYTES:
            problems.setdefault(f"file.{name}", []).append(
                f"文件过大：一个规则文件最多{MAX_FILE_BYTES}字节"
            )
            continue
        total += info.file_size
        wanted.append(info)
    if total > MAX_TOTAL_BYTES:
        problems.setdefault("file", []).append(f"规则文件合计过大：最多{MAX_TOTAL_BYTES}字节")
    for name, problem in path_problems([i.filename for i in wanted]):
        problems.setdefault(f"file.{shown_name(name)}", []).append(problem)
    if problems:
        raise Invalid("invalid_zip", "压缩包中有不可用的文件", problems)
    files = {}
    for info in wanted:
        with archive.open(info) as f:
            raw = f.read(MAX_FILE_BYTES + 1)  # the size in the header may lie
        if len(raw) > MAX_FILE_BYTES:
            raise Invalid(
                "invalid_zip", "压缩包中有不可用的文件", {f"file.{info.filename}": ["文件过大"]}
            )
        try:
            files[info.filename] = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Invalid(
                "invalid_zip",
                "压缩包中有不可用的文件",
                {f"file.{info.filename}": ["不是 UTF-8 编码的文字"]},
            ) from None
    if SCHEME_FILE in files:
        top = ""
    else:
        tops = {name.split("/", 1)[0] for name in files}
        top = next(iter(tops)) if len(tops) == 1 else ""
        if not top or f"{top}/{SCHEME_FILE}" not in files:
            raise Invalid(
                "invalid_zip",
                "压缩包中没有细则文件夹",
                {"file": ["scheme.yaml 应在压缩包的根部，或在唯一的顶层文件夹中"]},
            )
        files = {name[len(top) + 1 :]: text for name, text in files.items()}
    _refuse_files(files)
    return files, top


def upload_draft(ctx: ops.Context, actor: Actor, data: bytes) -> DraftView:
    """A draft from a zip of one scheme folder (as ``version_zip`` gives it), loaded in a child
    process; a draft whose files do not load is kept with its errors."""
    check(ctx.db, actor, "rules.draft", "rule_drafts")
    files, top = _unzip(data)
    scheme_id = _header(files.get(SCHEME_FILE, ""), "id")
    if not scheme_id:
        raise Invalid(
            "invalid_zip", "scheme.yaml 中没有细则编号（id）", {"file.scheme.yaml": ["缺少 id"]}
        )
    served = ctx.registry.get(scheme_id)
    if served is not None and ops.folder_of(served):
        parent = ops.folder_of(served).rpartition("/")[0]
        folder = (f"{parent}/{top}" if parent else top) if top else ops.folder_of(served)
    else:
        folder = f"{scheme_id}/{top}" if top else scheme_id
    fallback = {"scheme_id": scheme_id, "title": scheme_id, "year": ""}
    return _create(ctx, actor, "upload", folder, files, None, fallback)


def _disk_schemes(ctx: ops.Context) -> dict:
    """{scheme id: (folder, {path inside the folder: text})} of the rules directory, read (not
    parsed: the id is the line ``id:`` of each scheme.yaml)."""
    try:
        tree = read_tree(ctx.registry.rules_dir)
    except RuleSetError:
        return {}
    folders = sorted(
        rel.rpartition("/")[0] for rel in tree if rel.rpartition("/")[2] == SCHEME_FILE
    )
    out: dict = {}
    for folder in sorted(folders, key=len, reverse=True):  # the innermost folder owns its files
        inside = folder + "/" if folder else ""
        own = {}
        for rel in list(tree):
            if rel.startswith(inside):
                own[rel[len(inside) :]] = tree.pop(rel)
        try:
            texts = {rel: data.decode("utf-8") for rel, data in own.items()}
        except UnicodeDecodeError:
            continue
        scheme_id = _header(texts.get(SCHEME_FILE, ""), "id") or folder
        out.setdefault(scheme_id, (folder, texts))
    return out


def draft_from_disk(ctx: ops.Context, actor: Actor, scheme_id: str) -> DraftView:
    """A draft from the rules directory's copy of one scheme (what an office keeping its rules in
    git has changed there), checked like any other draft."""
    check(ctx.db, actor, "rules.draft", f"scheme:{scheme_id}")
    found = _disk_schemes(ctx).get(scheme_id)
    if found is None:
        raise NotFound(
            "unknown_scheme",
            f"规则目录中没有编号为“{scheme_id}”的细则",
            {"disk": ["规则目录中没有这一细则"]},
        )
    folder, files = found
    served = ctx.registry.get(scheme_id)
    base = served.version if served is not None else None
    fallback = {"scheme_id": scheme_id, "title": scheme_id, "year": ""}
    return _create(ctx, actor, "disk", folder, files, base, fallback)


# --- saving --------------------------------------------------------------------------------------


def _editable(row: RuleDraft, lock: int, states=(DRAFT,)) -> None:
    if row.state not in states:
        allowed = "、".join(STATE_WORDS[s] for s in states)
        raise Conflict(
            "draft_state",
            f"草案 {row.id} 的状态为“{STATE_WORDS[row.state]}”，这一步只能在“{allowed}”状态下进行",
            {"state": [STATE_WORDS[row.state]]},
        )
    if lock != row.lock:
        raise Conflict(
            "stale_draft",
            f"草案 {row.id} 已被他人修改（{row.lock}），请重新读取后再改",
            {"lock": [f"当前为 {row.lock}"]},
            current_version=str(row.lock),
        )


def _flush(s, row: RuleDraft) -> None:
    try:
        s.flush()
    except StaleDataError:
        raise Conflict(
            "stale_draft",
            f"草案 {row.id} 刚被他人修改，请重新读取后再改",
            {"lock": ["已不是最新"]},
        ) from None


@contextmanager
def changing(s, draft_id: int, lock: int, states=(DRAFT,)) -> Iterator[RuleDraft]:
    """For another service that changes a column of a draft's own (the impact's fact mapping):
    the draft's row in the caller's transaction, refused unless it is in ``states`` at ``lock``,
    and flushed on the way out, so a change made meanwhile is a ``Conflict``, never lost."""
    row = _get(s, draft_id)
    _editable(row, lock, states)
    yield row
    _flush(s, row)


def view_of(s, row: RuleDraft) -> DraftView:
    """A draft's row as the pages and the API read it (names, not user ids)."""
    return _view(row, _names(s, [row]))


def _peek(ctx: ops.Context, draft_id: int, lock: int, states=(DRAFT,)) -> RuleDraft:
    """The draft as it is now, refused early (before a check costs time) if it cannot change."""
    with ctx.db.transaction() as s:
        row = _get(s, draft_id)
        _editable(row, lock, states)
        return row


def save_files(
    ctx: ops.Context, actor: Actor, draft_id: int, lock: int, files: dict, what: str
) -> DraftView:
    """Store the draft's files and the result of their check; stored even if they do not load."""
    check(ctx.db, actor, "rules.draft", _target(draft_id))
    _refuse_files(files)
    row = _peek(ctx, draft_id, lock)
    checked, scheme = _check(ctx, row.folder, files)
    with ctx.db.transaction() as s:
        row = _get(s, draft_id)
        _editable(row, lock)
        before = row.version
        head = _describe(
            files, scheme, {"scheme_id": row.scheme_id, "title": row.title, "year": row.year}
        )
        other = _open_draft_with(s, head["scheme_id"], besides=row.id)
        if other is not None:
            raise Conflict(
                "scheme_id_taken",
                f"细则编号“{head['scheme_id']}”已由草案 {other.id} 使用",
                {"scheme_id": [f"草案 {other.id} 已使用这一编号"]},
            )
        for key, value in head.items():
            setattr(row, key, value)
        row.files = dict(files)
        row.version = version_of_files(files)
        row.checked = checked
        row.updated_by, row.updated_at = actor.user_id, now()
        _flush(s, row)
        journal(
            s,
            actor,
            "rules.draft.save",
            _target(row),
            "ok",
            what=(what or "")[:200],
            before=before,
            version=row.version,
            checked=checked["ok"],
            errors=len(checked["errors"]),
            failing=len(checked["failing"]),
        )
        return _view(row, _names(s, [row]))


def edit(
    ctx: ops.Context,
    actor: Actor,
    draft_id: int,
    lock: int,
    change: Callable[[rule_edit.Files], object],
    what: str,
    field: str = "files",
) -> DraftView:
    """Apply one ``rulefiles.edit`` operation to the draft's files, then ``save_files``; an
    ``EditError`` is a 422 naming ``field``.  A removal's result (``edit.Removal``) is its files."""
    check(ctx.db, actor, "rules.draft", _target(draft_id))
    row = _peek(ctx, draft_id, lock)
    try:
        changed = change(dict(row.files))
    except rule_edit.EditError as err:
        raise Invalid("invalid_edit", str(err), {field: [str(err)]}) from None
    files = changed.files if isinstance(changed, rule_edit.Removal) else changed
    return save_files(ctx, actor, draft_id, lock, files, what)


def check_draft(ctx: ops.Context, actor: Actor, draft_id: int) -> DraftView:
    """Check the draft again (loader and every case) and store the result."""
    check(ctx.db, actor, "rules.draft", _target(draft_id))
    with ctx.db.transaction() as s:
        row = _get(s, draft_id)
        folder, files = row.folder, dict(row.files)
    checked, _scheme = _check(ctx, folder, files)
    with ctx.db.transaction() as s:
        row = _get(s, draft_id)
        if dict(row.files) == files:  # saved meanwhile: that save stored its own check
            row.checked = checked
            _flush(s, row)
        return _view(row, _names(s, [row]))


# --- four eyes -----------------------------------------------------------------------------------


def _text(value: str | None, name: str, required: bool = True) -> str:
    value = (value or "").strip()
    if required and not value:
        raise Invalid("invalid_" + name, "请填写说明", {name: ["不能为空"]})
    if len(value) > MAX_NOTE_CHARS or unstorable(value):
        raise Invalid(
            "invalid_" + name,
            "说明有误",
            {name: [unstorable(value) or f"不超过{MAX_NOTE_CHARS}字"]},
        )
    return value


def _not_passing(checked: dict) -> Invalid:
    """Why a draft cannot go on: its loader errors at their lines, its failing cases at theirs."""
    fields: dict = {}
    for e in checked["errors"]:
        fields.setdefault(f"{e['file']}:{e['line']}:{e['column']}", []).append(e["message"])
    for c in checked["failing"]:
        at = f"{c['file']}:{c['line']}" if c["line"] else c["file"]
        fields.setdefault(at, []).append(f"{c['case']}：{'；'.join(c['problems'])}")
    if checked["errors"]:
        return Invalid("invalid_rules", f"草案的规则文件有 {len(checked['errors'])} 处错误", fields)
    return Invalid("failing_tests", f"草案有 {len(checked['failing'])} 个测试用例未通过", fields)


def propose(ctx: ops.Context, actor: Actor, draft_id: int, lock: int, note: str) -> DraftView:
    """提交批准: only a draft that loads and passes every case (checked again now)."""
    check(ctx.db, actor, "rules.draft", _target(draft_id))
    note = _text(note, "note", required=False)
    row = _peek(ctx, draft_id, lock)
    checked, _scheme = _check(ctx, row.folder, dict(row.files))
    if not checked["ok"]:
        raise _not_passing(checked)
    with ctx.db.transaction() as s:
        row = _get(s, draft_id)
        _editable(row, lock)
        row.state, row.note, row.checked = PROPOSED, note, checked
        row.proposed_by, row.proposed_at = actor.user_id, now()
        row.reason = None
        row.updated_by, row.updated_at = actor.user_id, row.proposed_at
        _flush(s, row)
        journal(s, actor, "rules.propose", _target(row), "ok", note=note, version=row.version)
        return _view(row, _names(s, [row]))


def return_draft(
    ctx: ops.Context, actor: Actor, draft_id: int, lock: int, reason: str
) -> DraftView:
    """退回: a proposed draft goes back to its editor with the reason, who reads it in the draft."""
    check(ctx.db, actor, "rules.approve", _target(draft_id))
    reason = _text(reason, "reason")
    with ctx.db.transaction() as s:
        row = _get(s, draft_id)
        _editable(row, lock, (PROPOSED,))
        row.state, row.reason = DRAFT, reason
        row.decided_by, row.decided_at = actor.user_id, now()
        row.updated_by, row.updated_at = actor.user_id, row.decided_at
        _flush(s, row)
        journal(s, actor, "rules.return", _target(row), "ok", reason=reason, version=row.version)
        return _view(row, _names(s, [row]))


def withdraw(ctx: ops.Context, actor: Actor, draft_id: int, lock: int, reason: str) -> DraftView:
    """撤回: a draft or a proposed draft is given up (kept, read-only, with the reason)."""
    check(ctx.db, actor, "rules.draft", _target(draft_id))
    reason = _text(reason, "reason")
    with ctx.db.transaction() as s:
        row = _get(s, draft_id)
        _editable(row, lock, OPEN)
        row.state, row.reason = WITHDRAWN, reason
        row.updated_by, row.updated_at = actor.user_id, now()
        _flush(s, row)
        journal(s, actor, "rules.withdraw", _target(row), "ok", reason=reason, version=row.version)
        return _view(row, _names(s, [row]))


def _in_force(ctx: ops.Context, row: RuleDraft) -> Scheme | None:
    """What the draft is compared with: the version in force for its scheme id, else its base."""
    served = ctx.registry.get(row.scheme_id)
    if served is not None:
        return served
    if row.base_version:
        try:
            return ops.scheme_by_version(ctx, row.base_version)
        except (ServiceError, RuleSetError):
            return None
    return None


def _sentences(old: Scheme | None, new: Scheme) -> list[str]:
    from .domain.compare import compare

    if old is None:
        return [f"新细则“{new.title}”（{new.id}）"]
    return [d.sentence for g in compare(old, new) for d in g.differences]


def _repin(s, actor: Actor, row: RuleDraft, round_id: int, scheme: Scheme, effective: int):
    """Put a round under the approved version: only an open round of this scheme with no official
    score yet (a score already official was computed under the version the round had)."""
    rnd = s.get(Round, round_id) if 0 < round_id < 2**31 else None
    if rnd is None:
        raise NotFound(
            "unknown_round", f"没有编号为 {round_id} 的考核轮次", {"round": ["没有这一轮次"]}
        )
    if rnd.scheme_id != scheme.id:
        raise Invalid(
            "round_of_other_scheme",
            f"考核轮次 {round_id} 属于细则“{rnd.scheme_id}”，不是“{scheme.id}”",
            {"round": ["应为同一细则的轮次"]},
        )
    if rnd.year < effective:
        raise Invalid(
            "round_before_effective",
            f"考核轮次 {round_id} 为{rnd.year}年度，早于生效年度{effective}",
            {"round": ["轮次的年度不能早于生效年度"]},
        )
    if rnd.stage != "open":
        raise Conflict(
            "round_not_open",
            f"考核轮次 {round_id} 已不在进行中（{rnd.stage}），不能改用新版本",
            {"round": ["只能为进行中的轮次改用新版本"]},
        )
    official = s.scalar(
        select(RoundUnit.id)
        .where(RoundUnit.round_id == rnd.id, RoundUnit.official_score_id.is_not(None))
        .limit(1)
    )
    if official is not None:
        raise Conflict(
            "round_has_official_scores",
            f"考核轮次 {round_id} 已有正式得分，不能改用新版本（已有的得分按原版本计算）",
            {"round": ["已有正式得分"]},
        )
    before = rnd.rules_version
    rnd.rules_version, rnd.folder = scheme.version, row.folder
    journal(
        s,
        actor,
        "rounds.rules_version",
        f"round:{rnd.id}/scheme:{rnd.scheme_id}",
        "ok",
        before=before,
        after=scheme.version,
        draft=row.id,
    )


def approve(
    ctx: ops.Context,
    actor: Actor,
    draft_id: int,
    lock: int,
    effective_year: int,
    round_id: int | None = None,
) -> DraftView:
    """批准并发布: an admin who is not the proposer; the check runs again; the files are archived
    and published as a new rule set (every worker serves it through ``sync_rules``, this one at
    once); a round named is re-pinned; journaled with the comparison against the version in force
    for that scheme id (or the base version)."""
    target = _target(draft_id)
    check(ctx.db, actor, "rules.approve", target)
    if (
        isinstance(effective_year, bool)
        or not isinstance(effective_year, int)
        or effective_year not in YEARS
    ):
        raise Invalid(
            "invalid_effective_year",
            "请填写生效年度",
            {"effective_year": [f"应在{YEARS.start}至{YEARS.stop - 1}之间"]},
        )
    row = _peek(ctx, draft_id, lock, (PROPOSED,))
    if row.proposed_by == actor.user_id:
        deny(ctx.db, actor, "rules.approve", target, "提交人与批准人不能是同一人")
    checked, scheme = _check(ctx, row.folder, dict(row.files), serve=True)
    if not checked["ok"] or scheme is None:
        raise _not_passing(checked)
    ctx.registry.remember(scheme)  # served from this worker's memory, never parsed here again
    against = _in_force(ctx, row)
    sentences = _sentences(against, scheme)
    for _attempt in range(20):
        try:
            with ctx.db.transaction() as s:
                row = _get(s, draft_id)
                _editable(row, lock, (PROPOSED,))
                generation = ops.publish_scheme(s, actor, scheme, row.folder)  # archived first
                if round_id is not None:
                    _repin(s, actor, row, round_id, scheme, effective_year)
                row.state, row.checked, row.version = PUBLISHED, checked, scheme.version
                row.decided_by, row.decided_at = actor.user_id, now()
                row.effective_year, row.effective_round_id = effective_year, round_id
                row.reason = None
                row.updated_by, row.updated_at = actor.user_id, row.decided_at
                _flush(s, row)
                journal(
                    s,
                    actor,
                    "rules.approve",
                    _target(row),
                    "ok",
                    version=scheme.version,
                    against=against.version if against is not None else None,
                    sentences=sentences[:500],
                    effective_year=effective_year,
                    round=round_id,
                    rule_set=generation,
                )
                view = _view(row, _names(s, [row]))
            break
        except (IntegrityError, OperationalError) as err:
            # another worker published a rule set meanwhile: publish after it
            if isinstance(err, OperationalError) and not (
                "locked" in str(err) or "busy" in str(err)
            ):
                raise
            continue
    else:  # pragma: no cover - twenty publications in a row by others
        raise Unavailable("rules_busy", "规则正在被其他进程发布，请稍后重试", retry_after=1)
    ops.sync_rules(ctx, force=True)  # this worker serves it now; the others within seconds
    return view


# --- versions as files ---------------------------------------------------------------------------


def draft_version(ctx: ops.Context, actor: Actor, draft_id: int) -> str:
    """Archive the draft's current files as a rule version (for the comparison and the impact
    preview) and return its hash; a draft whose files do not load has none (422)."""
    check(ctx.db, actor, "rules.read", _target(draft_id))
    with ctx.db.transaction() as s:
        row = _get(s, draft_id)
        folder, files = row.folder, dict(row.files)
    version = version_of_files(files)
    if ctx.registry.by_version(version) is None:
        try:
            schemes = contained.load_tree({f"{folder}/{r}": t for r, t in files.items()}, folder)
        except RuleSetError as err:
            raise Invalid(
                "invalid_rules",
                f"草案的规则文件有 {len(err.errors)} 处错误，无法比较或预览",
                {f"{_inside(e.file, folder)}:{e.line}:{e.column}": [e.message] for e in err.errors},
            ) from None
        ctx.registry.remember(next(iter(schemes.values())))
    scheme = ctx.registry.by_version(version)
    try:
        with ctx.db.transaction() as s:
            ops._archive(s, scheme)
    except IntegrityError:
        pass  # archived meanwhile by another request: the same version is the same files
    return version


def _zip(folder: str, files: dict) -> bytes:
    """A zip whose top folder is the scheme folder's last part, with the exact stored bytes."""
    top = folder.rstrip("/").rpartition("/")[2] or "scheme"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for rel in sorted(files):
            info = zipfile.ZipInfo(f"{top}/{rel}", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[rel].encode("utf-8", "surrogatepass"))
    return out.getvalue()


def version_zip(ctx: ops.Context, actor: Actor, version: str) -> tuple[str, bytes]:
    """(file name, zip) of a served or stored version: ``scoring check`` and ``scoring test``
    accept it as it is."""
    check(ctx.db, actor, "rules.read", f"rules_version:{str(version)[:64]}")
    files, folder, head = _version_files(ctx, version)
    return f"{head['scheme_id']}-{version[:12]}.zip", _zip(folder, files)


def draft_zip(ctx: ops.Context, actor: Actor, draft_id: int) -> tuple[str, bytes]:
    check(ctx.db, actor, "rules.read", _target(draft_id))
    with ctx.db.transaction() as s:
        row = _get(s, draft_id)
        name = f"{row.scheme_id}-draft-{row.id}.zip"
        return name, _zip(row.folder, dict(row.files))


# --- disk and product ----------------------------------------------------------------------------


def disk_status(ctx: ops.Context, actor: Actor) -> list[dict]:
    """Per scheme id, the rules directory beside what is served: served version, disk version,
    whether they differ, whether the disk version was ever imported (served by a rule set)."""
    check(ctx.db, actor, "rules.read", "rules")
    served = ctx.registry.schemes()
    with ctx.db.engine.connect() as connection:
        ever = ops.published_versions(connection)
    out = []
    disk = _disk_schemes(ctx)
    for sid in sorted(set(served) | set(disk)):
        folder, files = disk.get(sid, (None, None))
        disk_version = version_of_files(files) if files is not None else None
        served_version = served[sid].version if sid in served else None
        out.append(
            {
                "scheme": sid,
                "title": served[sid].title
                if sid in served
                else _header((files or {}).get(SCHEME_FILE, ""), "title") or sid,
                "folder": folder,
                "served_version": served_version,
                "disk_version": disk_version,
                "differs": disk_version is not None and disk_version != served_version,
                "imported": disk_version is not None and disk_version in ever,
            }
        )
    return out


def version_for_year(ctx: ops.Context, scheme_id: str, year: int) -> str:
    """The version a round of ``year`` is opened under: the newest published release of that
    scheme whose effective year is at most ``year``; else the newest version rule sets served of
    it that is not a release effective later; else the one served now."""
    return version_and_folder_for_year(ctx, scheme_id, year)[0]


def version_and_folder_for_year(ctx: ops.Context, scheme_id: str, year: int) -> tuple[str, str]:
    """(version, folder) of ``version_for_year``."""
    with ctx.db.transaction() as s:
        releases = list(
            s.execute(
                select(RuleDraft.version, RuleDraft.folder, RuleDraft.effective_year)
                .where(RuleDraft.scheme_id == scheme_id, RuleDraft.state == PUBLISHED)
                .order_by(
                    RuleDraft.effective_year.desc(),
                    RuleDraft.decided_at.desc(),
                    RuleDraft.id.desc(),
                )
            )
        )
        for version, folder, effective in releases:
            if effective is not None and effective <= year:
                return version, folder
        later = {v for v, _f, effective in releases if effective is not None and effective > year}
        if later:
            for (schemes,) in s.execute(select(RuleSet.schemes).order_by(RuleSet.id.desc())):
                entry = schemes.get(scheme_id)
                if entry is not None and entry["version"] not in later:
                    return entry["version"], entry["folder"]
    scheme = ops.current_scheme(ctx, scheme_id)
    return scheme.version, ops.folder_of(scheme)


# --- the publication record of a version (issue 11) ----------------------------------------------

#: how a version came to be served, in the words of the version page
HOW_WORDS = {"approval": "批准发布", "start": "启动时从规则目录导入", "reload": "重新加载规则目录"}
ORIGIN_WORDS = {
    "release": "在产品中起草、批准并发布",
    "directory": "从规则目录导入",
    "draft": "草案的文件（用于比较或影响预览），未发布",
    "unknown": "来历不明（只见于规则版本存档）",
}
_DRAFT_ACTIONS = ("rules.draft.create", "rules.draft.save")


def _served_periods(sets: list, version: str, approvals: dict) -> list[dict]:
    """The stretches of rule sets (oldest first) that served ``version``: from the set that began
    serving it (who published that set, when, how) until the set that stopped (None: still)."""
    periods: list[dict] = []
    open_period = None
    for set_id, schemes, by, at in sets:
        serving = any(entry.get("version") == version for entry in schemes.values())
        if serving and open_period is None:
            if set_id in approvals:
                how = "approval"
            elif by == ops.STARTUP.username:
                how = "start"
            else:
                how = "reload"
            open_period = {
                "from_rule_set": set_id,
                "from_at": at,
                "by": by,
                "how": how,
                "how_words": HOW_WORDS[how],
                "until_rule_set": None,
                "until_at": None,
            }
            periods.append(open_period)
        elif not serving and open_period is not None:
            open_period["until_rule_set"], open_period["until_at"] = set_id, at
            open_period = None
    return periods


def _repinned(s, version: str) -> list[dict]:
    """The rounds an approval moved to or from ``version`` (oldest first): which round, from which
    version to which, by which draft's approval, by whom, when.  Read from the journal entries
    ``_repin`` writes (the round row keeps only its version now); they are few, one per approval
    that named a round, so they are filtered here rather than by a JSON query each database
    spells differently."""
    moves = []
    for entry in s.scalars(
        select(JournalEntry)
        .where(JournalEntry.action == "rounds.rules_version", JournalEntry.outcome == "ok")
        .order_by(JournalEntry.id)
    ):
        detail = entry.detail or {}
        found = re.match(r"round:(\d+)", entry.target)  # _repin's target: round:<id>/scheme:<id>
        if found and version in (detail.get("before"), detail.get("after")):
            moves.append((int(found.group(1)), entry, detail))
    ids = sorted({round_id for round_id, _e, _d in moves})
    rounds = {}
    if ids:
        query = select(Round.id, Round.title, Round.year).where(Round.id.in_(ids))
        rounds = {i: {"id": i, "title": t, "year": y} for i, t, y in s.execute(query)}
    return [
        {
            "round": rounds.get(round_id, {"id": round_id, "title": "", "year": None}),
            "from_version": detail.get("before"),
            "to_version": detail.get("after"),
            "draft": detail.get("draft"),
            "by": entry.actor,
            "at": entry.at,
        }
        for round_id, entry, detail in moves
    ]


def publication_record(ctx: ops.Context, actor: Actor, version: str) -> dict:
    """Everything an auditor asks of one rule version, served or archived: its header (scheme,
    title, year, folder, when first loaded), how it came to be (a release written in the pages:
    who proposed it with the note, who approved it, when, effective from which year and round; or
    imported from the rules directory at a start or a reload, by whom, when: the rule sets that
    served it), whether it is served now, the rounds pinned to it, the rounds an approval moved to
    or from it (``repinned``), the drafts whose files it was, and its files (path, bytes, SHA-256).
    Plain values; 404 for a version nobody stored."""
    check(ctx.db, actor, "rules.read", f"rules_version:{str(version)[:64]}")
    files, folder, head = _version_files(ctx, version)  # NotFound for an unknown version
    with ctx.db.transaction() as s:
        loaded_at = s.scalar(select(RuleVersion.loaded_at).where(RuleVersion.version == version))
        sets = list(
            s.execute(
                select(RuleSet.id, RuleSet.schemes, RuleSet.actor, RuleSet.created_at).order_by(
                    RuleSet.id
                )
            )
        )
        drafts = list(
            s.scalars(select(RuleDraft).where(RuleDraft.version == version).order_by(RuleDraft.id))
        )
        names = _names(s, drafts)
        released, approvals = [], {}
        for row in drafts:
            if row.state != PUBLISHED:
                continue
            approved = s.scalars(
                select(JournalEntry)
                .where(
                    JournalEntry.action == "rules.approve",
                    JournalEntry.target == _target(row),
                    JournalEntry.outcome == "ok",
                )
                .order_by(JournalEntry.id.desc())
                .limit(1)
            ).first()
            rule_set = (approved.detail or {}).get("rule_set") if approved is not None else None
            if rule_set is not None:
                approvals[rule_set] = row.id
            rnd = s.get(Round, row.effective_round_id) if row.effective_round_id else None
            released.append(
                {
                    "draft": row.id,
                    "origin": row.origin,
                    "base_version": row.base_version,
                    "note": row.note,
                    "proposed_by": names.get(row.proposed_by),
                    "proposed_at": row.proposed_at,
                    "approved_by": names.get(row.decided_by),
                    "approved_at": row.decided_at,
                    "effective_year": row.effective_year,
                    "effective_round": (
                        {"id": rnd.id, "title": rnd.title, "year": rnd.year} if rnd else None
                    ),
                    "rule_set": rule_set,
                    "against": (approved.detail or {}).get("against") if approved else None,
                }
            )
        # drafts whose files were once this version (saved, then changed again): the journal
        # names the version each save stored
        unpublished = {r.id: r.state for r in drafts if r.state != PUBLISHED}
        for target, detail in s.execute(
            select(JournalEntry.target, JournalEntry.detail).where(
                JournalEntry.action.in_(_DRAFT_ACTIONS), JournalEntry.outcome == "ok"
            )
        ):
            if (detail or {}).get("version") == version:
                found = re.match(r"rule_draft:(\d+)", target)
                if found and int(found.group(1)) not in {r["draft"] for r in released}:
                    draft_id = int(found.group(1))
                    if draft_id not in unpublished:
                        state = s.scalar(select(RuleDraft.state).where(RuleDraft.id == draft_id))
                        unpublished[draft_id] = state
        pinned = [
            {"id": i, "title": t, "year": y, "stage": st}
            for i, t, y, st in s.execute(
                select(Round.id, Round.title, Round.year, Round.stage)
                .where(Round.rules_version == version)
                .order_by(Round.year, Round.id)
            )
        ]
        repinned = _repinned(s, version)
    periods = _served_periods(sets, version, approvals)
    if released:
        origin = "release"
    elif periods:
        origin = "directory"
    elif unpublished:
        origin = "draft"
    else:
        origin = "unknown"
    return {
        "version": version,
        "scheme": head["scheme_id"],
        "title": head["title"],
        "year": head["year"],
        "folder": folder,
        "loaded_at": loaded_at,
        "serving": version in set(ctx.registry.versions().values()),
        "origin": origin,
        "origin_words": ORIGIN_WORDS[origin],
        "releases": released,
        "served": periods,
        "rounds": pinned,
        "repinned": repinned,
        "drafts": [{"id": i, "state": st} for i, st in sorted(unpublished.items())],
        "files": [
            {
                "path": rel,
                "bytes": len(files[rel].encode("utf-8", "surrogatepass")),
                "sha256": hashlib.sha256(files[rel].encode("utf-8", "surrogatepass")).hexdigest(),
            }
            for rel in sorted(files)
        ],
    }
