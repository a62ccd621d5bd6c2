"""Loading a scheme folder: strict reading, semantic checks, then the model.

A scheme folder holds ``scheme.yaml`` and ``clauses/*.yaml`` (one clause a
file, read in file-name order).  Loading either returns a complete ``Scheme``
or raises ``RuleSetError`` listing every problem found, each with file, line
and column; nothing partial is ever returned.
"""

from __future__ import annotations

import difflib
import hashlib
import keyword
import os
import re
import stat
import threading
import weakref
from collections import OrderedDict
from decimal import Decimal
from pathlib import Path

from service.domain import expressions as ex
from service.domain import program
from service.domain.blocks import BLOCKS
from service.domain.facts import check_value
from service.domain.model import (
    BONUS,
    DEDUCTION,
    STANDARD,
    Category,
    Clause,
    ClauseTest,
    ClauseVeto,
    Conversion,
    Distinction,
    FactSpec,
    GradeVeto,
    Grading,
    Ranking,
    RankingTest,
    Relative,
    RelativePart,
    Rule,
    Scheme,
    SchemeTest,
    Source,
    Tier,
)
from service.domain.numbers import ZERO, plain
from service.domain.panel import Mark
from service.engine import limits

from . import spec
from .errors import RuleFileError, RuleSetError
from .reader import Context, ExprText, Located, compose

SCHEME_FILE = "scheme.yaml"
CLAUSE_DIR = "clauses"
MAX_CLAUSES = limits.MAX_CLAUSES  # an engine limit, kept with the others
#: Largest rule file.  The largest shipped file has 32 KB; a 256 MiB file took 805 MiB to read.
MAX_FILE_BYTES = 1 << 20
#: All rule files of one rules directory (or candidate) together.
MAX_TOTAL_BYTES = 64 << 20
#: Rule files in one rules directory (or candidate): six schemes of at most 400 clauses each, and some.
MAX_FILES = 4000
#: Folders within a rules directory (rules/baoshan/2022-b1/clauses/x.yaml is 4 deep).
MAX_FOLDER_DEPTH = 12
#: Longest file or folder name, in bytes (what the file systems here allow).
MAX_NAME_BYTES = 255
#: Deepest category tree (the shipped schemes nest 3 levels).
MAX_CATEGORY_DEPTH = 8
_FACT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_RESERVED = {"group", "sid", "id", "and", "or", "not", "true", "false", *ex.FUNCTIONS}
RULE_SUFFIXES = (".yaml", ".yml")


def _order(rel: str) -> tuple:
    return tuple(rel.split("/"))  # folder by folder, as sorted() orders paths


def shown_name(name: str) -> str:
    """A file name fit for a message: undecodable bytes (a name not in UTF-8) as \\xNN."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        try:
            raw = name.encode("utf-8", "surrogateescape")  # a name read from disk
        except UnicodeEncodeError:
            raw = name.encode("utf-8", "surrogatepass")  # a lone surrogate sent as JSON
        return raw.decode("utf-8", "backslashreplace")


def read_tree(root: Path | str, prefix: str = "") -> dict[str, bytes]:
    """Every rule file under ``root`` (relative path -> bytes), each read once: the version is
    the hash of these bytes, the scheme is parsed from them, and they are what gets archived, so
    an edit on disk during a load can never give a version that does not match its files.

    Everything is checked before a byte is read: only folders and regular files (a symbolic link
    could point anywhere, e.g. /proc/self/status, and its content would surface in messages),
    names in UTF-8, bounded depth, size and number.  ``RuleSetError`` otherwise, files named
    under ``prefix``."""
    root = Path(root)
    errors: list[RuleFileError] = []
    found: list[tuple[str, int]] = []

    def named(rel: str) -> str:
        return shown_name(rel if prefix in ("", ".") else f"{prefix}/{rel}")

    stack: list[tuple[Path, str, int]] = [(root, "", 0)]
    while stack:
        folder, rel_folder, depth = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as err:
            errors.append(
                RuleFileError(named(rel_folder or "."), 1, 1, f"无法读取文件夹：{err.strerror}")
            )
            continue
        for entry in entries:
            rel = f"{rel_folder}/{entry.name}" if rel_folder else entry.name
            is_rule_file = entry.name.endswith(RULE_SUFFIXES)
            try:
                if entry.is_symlink():
                    if is_rule_file or entry.is_dir():
                        errors.append(
                            RuleFileError(
                                named(rel), 1, 1, "是符号链接：规则文件夹中只能有普通文件和文件夹"
                            )
                        )
                    continue
                is_dir = entry.is_dir(follow_symlinks=False)
                st = entry.stat(follow_symlinks=False)
            except OSError as err:
                errors.append(RuleFileError(named(rel), 1, 1, f"无法读取：{err.strerror}"))
                continue
            if not is_dir and not is_rule_file:
                continue  # notes, READMEs: not rule files, not read
            if shown_name(entry.name) != entry.name:
                errors.append(
                    RuleFileError(named(rel), 1, 1, "文件名或文件夹名不是 UTF-8 编码，请重新命名")
                )
                continue
            if is_dir:
                if depth + 1 >= MAX_FOLDER_DEPTH:
                    errors.append(
                        RuleFileError(
                            named(rel), 1, 1, f"文件夹层数过多：规则目录内最多{MAX_FOLDER_DEPTH}层"
                        )
                    )
                else:
                    stack.append((Path(entry.path), rel, depth + 1))
                continue
            if not stat.S_ISREG(st.st_mode):
                errors.append(RuleFileError(named(rel), 1, 1, "不是普通文件，未读取"))
            elif st.st_size > MAX_FILE_BYTES:
                errors.append(
                    RuleFileError(
                        named(rel),
                        1,
                        1,
                        f"文件过大（{st.st_size}字节）：一个规则文件最多{MAX_FILE_BYTES}字节",
                    )
                )
            else:
                found.append((rel, st.st_size))
    if len(found) > MAX_FILES:
        errors.append(
            RuleFileError(named("."), 1, 1, f"规则文件过多（{len(found)}个）：最多{MAX_FILES}个")
        )
    elif sum(size for _rel, size in found) > MAX_TOTAL_BYTES:
        errors.append(
            RuleFileError(named("."), 1, 1, f"规则文件合计过大：最多{MAX_TOTAL_BYTES}字节")
        )
    if errors:
        raise RuleSetError(errors)
    files: dict[str, bytes] = {}
    for rel, _size in sorted(found, key=lambda f: _order(f[0])):
        # opened without following a link and without blocking: the file may have been
        # replaced by a link or a FIFO since it was looked at
        try:
            fd = os.open(root / rel, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as err:
            errors.append(RuleFileError(named(rel), 1, 1, f"无法读取：{err.strerror}"))
            continue
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                errors.append(RuleFileError(named(rel), 1, 1, "不是普通文件，未读取"))
                continue
            data = f.read(MAX_FILE_BYTES + 1)  # it may have grown since
        if len(data) > MAX_FILE_BYTES:
            errors.append(
                RuleFileError(named(rel), 1, 1, f"文件过大：一个规则文件最多{MAX_FILE_BYTES}字节")
            )
        files[rel] = data
    if errors:
        raise RuleSetError(errors)
    return files


def path_problems(rels) -> list[tuple[str, str]]:
    """Each candidate path that cannot be a rule file's path inside a scheme folder, with why
    in words.  For candidate files that arrive as data (the validate endpoint): the same bounds
    as on disk, so that what validates here can also be written into a rules directory."""
    rels = list(rels)
    if len(rels) > MAX_FILES:
        return [(rels[MAX_FILES], f"规则文件过多：最多{MAX_FILES}个")]
    folders = {
        rel.rsplit("/", i)[0]
        for rel in rels
        for i in range(1, min(rel.count("/"), MAX_FOLDER_DEPTH) + 1)
    }
    out = []
    for rel in rels:
        parts = rel.split("/")
        if (
            not rel.endswith(RULE_SUFFIXES)
            or rel.startswith("/")
            or "\\" in rel
            or "\0" in rel
            or any(p in ("", ".", "..") for p in parts)
        ):
            out.append((rel, "应为细则文件夹内的 .yaml 相对路径"))
        elif any(len(p.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES for p in parts):
            out.append((rel, f"文件名或文件夹名过长：每一段最多{MAX_NAME_BYTES}字节"))
        elif shown_name(rel) != rel:
            out.append((rel, "路径不是有效的 UTF-8 文字"))
        elif len(parts) > MAX_FOLDER_DEPTH:
            out.append((rel, f"文件夹层数过多：最多{MAX_FOLDER_DEPTH}层"))
        elif rel in folders:
            out.append((rel, "同一位置既是文件又是文件夹"))
    return out


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every rule file of a scheme folder (relative path -> bytes); see ``read_tree``."""
    return read_tree(folder)


def version_of_files(files: dict) -> str:
    """Content hash of a scheme folder's files: every YAML file's relative path and bytes."""
    digest = hashlib.sha256()
    for rel in sorted((r for r in files if r.endswith(".yaml")), key=_order):
        data = files[rel]
        digest.update(rel.encode() + b"\0")
        digest.update((data.encode("utf-8") if isinstance(data, str) else data) + b"\0")
    return digest.hexdigest()


def version_of(folder: Path) -> str:
    """Content hash of a scheme folder on disk."""
    return version_of_files(snapshot(folder))


#: Files read lately, by name and content: a reload, or a fuzzer changing one file of a scheme,
#: parses only what changed.  What is kept is never modified by the checks that read it.
_PARSED: OrderedDict[tuple, tuple[Located | None, list[RuleFileError]]] = OrderedDict()
_PARSED_SIZE = 2048
_PARSED_MAX_BYTES = 64 << 10  # larger files are parsed each time rather than kept


def _read(file: str, data: bytes, objspec, errors: list) -> Located | None:
    key = (file, data, id(objspec))
    hit = _PARSED.get(key)
    if hit is not None:
        _PARSED.move_to_end(key)
        errors.extend(hit[1])
        return hit[0]
    ctx = Context(file)
    result: Located | None = None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        ctx.errors.append(
            RuleFileError(
                ctx.file, 1, 1, f"文件不是 UTF-8 编码（第{err.start}字节），请另存为 UTF-8"
            )
        )
    else:
        node = compose(text, ctx)
        result = objspec.read(node, ctx) if node is not None else None
        if ctx.errors:
            result = None
    errors.extend(ctx.errors)
    if len(data) <= _PARSED_MAX_BYTES:
        _PARSED[key] = (result, list(ctx.errors))
        if len(_PARSED) > _PARSED_SIZE:
            _PARSED.popitem(last=False)
    return result


def _display(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


class _Checker:
    """Semantic checks over the read files; collects errors with positions."""

    def __init__(self):
        self.errors: list[RuleFileError] = []
        # fact name -> the clause declaring it, over every clause file: a fact read where it
        # is not declared is usually one declared in a sibling clause, and "未声明" misleads
        self.declared_in: dict[str, str] = {}
        self.clause = ""  # the clause being checked
        # what reads scheme facts when no clause is being checked: named in "declared elsewhere"
        self.scheme_reader = "等级否决"

    def declared_elsewhere(self, name: str, in_test: bool = False) -> str | None:
        """The message for a fact this clause reads (or, ``in_test``, one of its test cases
        gives) but another clause declares, if it is one."""
        owner = self.declared_in.get(name)
        if owner is None or owner == self.clause:
            return None
        if in_test:
            return (
                f"测试用例中的事实“{name}”声明在条款 {owner} 中，本条款不读取它：请从用例中删去；"
                "若本条款也要读取，请把它移到 scheme.yaml 的 facts 中"
            )
        if not self.clause:
            return (
                f"事实“{name}”声明在条款 {owner} 中；"
                f"{self.scheme_reader}读取的事实须写在 scheme.yaml 的 facts 中"
            )
        return (
            f"事实“{name}”声明在条款 {owner} 中；"
            "被几个条款共同读取的事实请写在 scheme.yaml 的 facts 中"
        )

    def err(self, file: str, where: tuple[int, int], message: str) -> None:
        self.errors.append(RuleFileError(file, where[0], where[1], message))


def _source(d: Located) -> Source:
    return Source(d["source"]["document"], d["source"].get("ref", ""), d["source"]["text"])


def _fact(d: Located, owner: str, file: str, chk: _Checker) -> FactSpec | None:
    name, ftype = d["name"], d["type"]
    ok = True
    if not _FACT_NAME.match(name) or name in _RESERVED or keyword.iskeyword(name):
        chk.err(
            file,
            d.at("name"),
            f"事实名“{name}”不可用：须以英文字母开头，只含英文字母、数字和下划线，且不能是保留字",
        )
        ok = False
    lo, hi = d.get("min"), d.get("max")
    numeric = ftype in ("number", "integer", "percent")
    if not numeric and ("min" in d or "max" in d):
        chk.err(
            file,
            d.at("min" if "min" in d else "max", value=False),
            f"{ftype} 类型的事实不能设 min/max",
        )
        ok = False
    if ftype == "percent":
        lo = Decimal(0) if lo is None else lo
        hi = Decimal(100) if hi is None else hi
    if lo is not None and hi is not None and lo > hi:
        chk.err(file, d.at("min"), f"事实“{name}”的 min（{plain(lo)}）大于 max（{plain(hi)}）")
        ok = False
    if ftype == "choice" and not d.get("choices"):
        chk.err(file, d.at(), f"choice 类型的事实“{name}”须列出 choices")
        ok = False
    if ftype != "choice" and "choices" in d:
        chk.err(file, d.at("choices", value=False), "只有 choice 类型的事实才能设 choices")
        ok = False
    if not ok:
        return None
    return FactSpec(
        name,
        ftype,
        d["label"],
        d.get("unit", ""),
        d.get("help", ""),
        lo,
        hi,
        tuple(d.get("choices") or ()),
        d.get("required", True),
        owner,
        d["applies_when"].tree if "applies_when" in d else None,
        d["applies_when"].text if "applies_when" in d else "",
        d.get("previous_year", ""),
    )


def _nearest_hint(name: str, facts: dict) -> str:
    hint = difflib.get_close_matches(name, list(facts), n=1, cutoff=0.6)
    return f"，是否想写“{hint[0]}”？" if hint else ""


def _check_previous_year(raw: list, facts: dict, chk: _Checker) -> None:
    """``previous_year: x`` names a fact of this scheme, of the same type, that is not itself a
    previous year's value (``raw``: (file, the facts as written) of scheme.yaml and each clause)."""
    for file, written in raw:
        for f in written or []:
            fact = facts.get(f.get("name"))
            if fact is None or not fact.previous_year:
                continue
            target = facts.get(fact.previous_year)
            at = f.at("previous_year")
            if fact.previous_year == fact.name:
                chk.err(
                    file,
                    at,
                    f"事实“{fact.name}”的 previous_year 不能是它自己：请写出本年度的那个事实名",
                )
            elif target is None:
                chk.err(
                    file, at,
                    f"previous_year 所指的事实“{fact.previous_year}”没有声明：上年度的值取自本细则"
                    f"声明的同名事实{_nearest_hint(fact.previous_year, facts)}",
                )  # fmt: skip
            elif target.type != fact.type:
                chk.err(
                    file, at,
                    f"事实“{fact.name}”的类型（{fact.type}）与它所取上年度值的“{target.name}”"
                    f"（{target.type}）不同",
                )  # fmt: skip
            elif target.previous_year:
                chk.err(
                    file, at,
                    f"“{target.name}”本身就是上年度的值（previous_year: {target.previous_year}），"
                    "不能再取它的上年度值",
                )  # fmt: skip


def _check_applies_when(raw_facts, facts: dict, types: dict, file: str, chk: _Checker) -> None:
    """A fact's ``applies_when`` is a yes/no condition on other declared facts that are always
    asked for: not on itself (it would never be asked), nor on a fact with a condition of its
    own (one pass over the facts then settles which apply)."""
    for f in raw_facts or []:
        e = f.get("applies_when")
        fact = facts.get(f["name"])
        if e is None or fact is None or fact.applies_when is None:
            continue
        reads = list(dict.fromkeys(ex.names(e.tree)))
        if fact.name in reads:
            chk.err(
                file,
                e.at(e.text.find(fact.name) + 1),
                f"事实“{fact.name}”的 applies_when 不能读取它自己：请写出它在其他事实满足什么条件时才需要填报",
            )
            continue
        chained = [n for n in reads if n in facts and facts[n].applies_when is not None]
        if chained:
            other = facts[chained[0]]
            chk.err(
                file,
                e.at(e.text.find(other.name) + 1),
                f"事实“{fact.name}”的 applies_when 读取的“{other.name}”本身也只在"
                f"“{other.applies_when_text}”时适用；请直接写出所依据的条件",
            )
            continue
        _check_expr(e, types, ex.BOOLEAN, file, chk, "applies_when ")


_NAME_AT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _check_expr(e: ExprText, types: dict, want: str, file: str, chk: _Checker, what: str) -> bool:
    try:
        got = ex.infer(e.tree, types)
    except ex.ExprError as err:
        # the unknown name stands at the error's column
        named = _NAME_AT.match(e.text, max(err.column - 1, 0))
        elsewhere = named and named.group() not in types and chk.declared_elsewhere(named.group())
        chk.err(file, e.at(err.column), elsewhere or err.message)
        return False
    if got != want:
        chk.err(
            file,
            e.at(1),
            f"{what}应为{ex.TYPE_NAMES[want]}表达式，“{e.text}”是{ex.TYPE_NAMES[got]}",
        )
        return False
    return True


def _contiguous(items, file: str, chk: _Checker, where_of, what: str) -> bool:
    """Ranges must neither overlap nor leave gaps between them."""
    ranges = [(i, r) for i, r in enumerate(items)]
    ordered = sorted(
        ranges, key=lambda ir: (ir[1].low is not None, ir[1].low or 0, not ir[1].low_closed)
    )
    ok = True
    for (_i, a), (j, b) in zip(ordered, ordered[1:]):
        if a.high is None or (
            b.low is not None
            and (b.low < a.high or (b.low == a.high and a.high_closed and b.low_closed))
        ):
            chk.err(file, where_of(j), f"{what}“{b.text}”与“{a.text}”重叠：同一数值只能落在一档")
            ok = False
        elif (
            b.low is None
            or b.low > a.high
            or (b.low == a.high and not a.high_closed and not b.low_closed)
        ):
            gap = (
                plain(a.high)
                if b.low is None or b.low == a.high
                else f"{plain(a.high)}到{plain(b.low)}之间"
            )
            chk.err(file, where_of(j), f"{what}“{a.text}”与“{b.text}”之间有空档：{gap}不在任何一档")
            ok = False
    return ok


def _either(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{'、'.join(words[:-1])} 或 {words[-1]}"


#: the kinds a deduction clause may use: "fixed、bands、per_unit 或 steps"
_SIGNED_KINDS = _either([k for k, b in BLOCKS.items() if not b.positive_only])


def _rule(
    d: Located, clause_id: str, points: Decimal, types: dict, facts: dict, file: str, chk: _Checker
) -> Rule | None:
    kind = d["kind"]
    required, optional = spec.KIND_FIELDS[kind]
    ok = True
    for key in d:
        if key in ("id", "kind", "title", "note", "bonus") or key in required or key in optional:
            continue
        chk.err(
            file,
            d.at(key, value=False),
            f"{kind} 类型的规则不使用键“{key}”（可用：{'、'.join(sorted(required | optional))}）",
        )
        ok = False
    for key in sorted(required - set(d)):
        chk.err(file, d.at(), f"{kind} 类型的规则缺少键“{key}”（{spec.RULE_FIELDS[key].doc}）")
        ok = False
    if not ok:
        return None
    when = d.get("when")
    if when is not None and not _check_expr(when, types, ex.BOOLEAN, file, chk, "when"):
        return None
    base = {
        "id": d["id"],
        "kind": kind,
        "title": d.get("title", ""),
        "note": d.get("note", ""),
        "when": when.tree if when else None,
        "when_text": when.text if when else "",
        "cap": d.get("cap"),
        "measure_label": d.get("measure_label", ""),
        "bonus": bool(d.get("bonus", False)),
    }
    return BLOCKS[kind].check(_RuleReading(d, points, facts, types, file, chk), base)


class _RuleReading:
    """A rule as read from its file, shown to its building block's checks (``RuleReading``):
    the block names a key, the problem is reported at that key's file, line and column."""

    def __init__(
        self, d: Located, points: Decimal, facts: dict, types: dict, file: str, chk: _Checker
    ):
        self.d, self.points, self.facts, self.types = d, points, facts, types
        self.file, self.chk = file, chk

    def __contains__(self, key: str) -> bool:
        return key in self.d

    def __getitem__(self, key: str):
        return self.d[key]

    def get(self, key: str, default=None):
        return self.d.get(key, default)

    def error(self, key: str, message: str) -> None:
        self.chk.err(self.file, self.d.at(key), message)

    def expression(self, key: str, numeric: bool) -> tuple[ex.Expr, str] | None:
        e: ExprText = self.d[key]
        want = ex.NUMBER if numeric else ex.BOOLEAN
        if not _check_expr(e, self.types, want, self.file, self.chk, key):
            return None
        return e.tree, e.text

    def undeclared(self, name: str) -> str:
        return self.chk.declared_elsewhere(name) or f"value 引用了未声明的事实“{name}”"

    def contiguous(self, key: str, what: str) -> bool:
        items = self.d[key]
        where = lambda j: items[j].at("range")  # noqa: E731
        return _contiguous([i["range"] for i in items], self.file, self.chk, where, what)


def _test_facts(raw: Located, facts: dict, file: str, chk: _Checker) -> dict | None:
    out, ok = {}, True
    for name, value in raw.items():
        fact = facts.get(name)
        if fact is None:
            chk.err(
                file,
                raw.at(name, value=False),
                chk.declared_elsewhere(name, in_test=True) or f"测试用例中的事实“{name}”未声明",
            )
            ok = False
            continue
        if value is None:
            continue
        checked, problem = check_value(fact, value)
        if problem:
            chk.err(file, raw.at(name), f"测试用例中的事实“{name}”{problem}")
            ok = False
        else:
            out[name] = checked
    return out if ok else None


def _check_panels(d: Located, rules: list, own: dict, file: str, chk: _Checker) -> None:
    """Reviewers mark a clause, not a rule: one panel a clause.  Its marks become its value and
    reason facts, so those are the clause's own (a shared fact would change other clauses)."""
    raw = {r["id"]: r for r in d["rules"]}
    first = None
    for rule in rules:
        if rule.panel is None:
            continue
        if first is not None:
            chk.err(
                file,
                raw[rule.id].at("panel"),
                f"一个条款只能有一条规则设评审组（panel）：评审按条款打分，规则“{first}”已设",
            )
            continue
        first = rule.id
        for key, name in (("value", rule.value), ("reason", rule.reason)):
            if name not in own:
                chk.err(
                    file,
                    raw[rule.id].at(key),
                    f"设评审组（panel）的规则读取的事实“{name}”须在本条款的 facts 中声明"
                    "（评审组的打分会取代它的值，共用事实会影响其他条款）",
                )
            elif not own[name].required:
                # a fact that is not required may be missing without the clause being incomplete:
                # marks not all in would then score 0 instead of waiting
                chk.err(
                    file,
                    raw[rule.id].at(key),
                    f"设评审组（panel）的规则读取的事实“{name}”不能写 required: false："
                    "评审打分没有收齐时本项应为“缺少事实”，而不是0分",
                )


def _test_marks(t: Located, rules: list, facts: dict, file: str, chk: _Checker) -> tuple | None:
    """A clause case's reviewers' marks, each within the panel's value fact's range."""
    written = t.get("marks")
    if written is None:
        return ()
    panel = next((r for r in rules if r.panel is not None), None)
    if panel is None:
        chk.err(
            file,
            t.at("marks", value=False),
            f"测试用例“{t['name']}”写了评审打分（marks），但本条款没有设评审组（panel）的规则",
        )
        return None
    return _marks(written, facts[panel.value], t["name"], file, chk)


def _marks(written, value: FactSpec, case: str, file: str, chk: _Checker) -> tuple | None:
    """Marks as a test case writes them, each reviewer once, each within the value fact's range."""
    out, seen, ok = [], set(), True
    for m in written:
        if m["reviewer"] in seen:
            chk.err(file, m.at("reviewer"), f"评审“{m['reviewer']}”在测试用例“{case}”中重复打分")
            ok = False
            continue
        seen.add(m["reviewer"])
        points, problem = check_value(value, m["points"])
        if problem or not isinstance(points, Decimal):
            chk.err(file, m.at("points"), f"评审“{m['reviewer']}”的打分{problem}")
            ok = False
            continue
        out.append(Mark(m["reviewer"], points, m.get("reason", "")))
    return tuple(out) if ok else None


def _scheme_test_marks(t: Located, scheme: Scheme, sfile: str, chk: _Checker) -> dict | None:
    """A whole-scheme case's marks (each naming its clause), by clause."""
    by_clause: dict = {}
    for m in t.get("marks") or []:
        by_clause.setdefault(m["clause"], []).append(m)
    out, ok = {}, True
    for cid, written in by_clause.items():
        rule = scheme.panels.get(cid)
        if rule is None:
            chk.err(
                sfile,
                written[0].at("clause"),
                f"测试用例“{t['name']}”的评审打分写给了条款“{cid}”，"
                "它不是设评审组（panel）的条款（或没有这个条款）",
            )
            ok = False
            continue
        marks = _marks(written, scheme.facts[rule.value], t["name"], sfile, chk)
        if marks is None:
            ok = False
        else:
            out[cid] = marks
    return out if ok else None


def _check_rules_can_pay(
    d: Located, rules: list, points: Decimal, file: str, chk: _Checker
) -> None:
    """A base rule that alone gives more than the clause's points can never pay in full: the
    clamp silently eats it.  Usually the original says "该项设有加分项(最多加N分)", which is a
    clause bonus.  Only a rule's own maximum is compared, never a sum of rules: rules that
    cannot fire together (tiers) or a clause-wide cap on purpose (6.10) are not errors."""
    raw = {r["id"]: r for r in d["rules"]}
    for rule in rules:
        block = BLOCKS[rule.kind]
        most = None if rule.bonus else block.most(rule)
        if most is None or most <= points:
            continue
        chk.err(
            file,
            raw[rule.id].at(block.most_key),
            f"规则“{rule.id}”最多可得{plain(most)}分，超过本条款分值{plain(points)}分，超出部分永远计不上；"
            "若原文是“该项设有加分项(最多加N分)”，请在条款中写 bonus: {cap: N} 并把这条规则标为 bonus: true",
        )


def _clause(
    d: Located, file: str, scheme_facts: dict, categories: dict, chk: _Checker, all_facts: dict
) -> Clause | None:
    n_errors = len(chk.errors)
    cid = d["id"]
    chk.clause = cid
    cat = categories.get(d["category"])
    if cat is None:
        chk.err(
            file,
            d.at("category"),
            f"类别“{d['category']}”在 scheme.yaml 中没有定义（已有：{'、'.join(categories)}）",
        )
        return None
    points = d["points"]
    own: dict[str, FactSpec] = {}
    for f in d.get("facts") or []:
        fact = _fact(f, cid, file, chk)
        if fact is None:
            continue
        if fact.name in own:
            chk.err(file, f.at("name"), f"事实“{fact.name}”在本文件中重复声明")
        elif fact.name in all_facts:
            other = all_facts[fact.name]
            where = f"条款“{other.owner}”" if other.owner else " scheme.yaml "
            chk.err(
                file,
                f.at("name"),
                f"事实“{fact.name}”已在{where}中声明，同一细则内事实名须唯一；共用的事实请在 scheme.yaml 的 facts 中声明",
            )
        else:
            own[fact.name] = fact
    facts = {**scheme_facts, **own}
    types = {n: f.expr_type for n, f in facts.items()}
    _check_applies_when(d.get("facts"), facts, types, file, chk)
    bonus = d.get("bonus")
    bonus_cap = bonus["cap"] if bonus is not None else None
    if bonus is not None and cat.kind != STANDARD:
        chk.err(
            file,
            d.at("bonus", value=False),
            "只有基本分条款才能另设加分项（bonus）；加分项、扣分项条款的分值本身就是上限",
        )
    rules, seen = [], {}
    for r in d["rules"]:
        if r["id"] in seen:
            chk.err(file, r.at("id"), f"规则编号“{r['id']}”在本条款中重复")
            continue
        seen[r["id"]] = True
        is_bonus = r.get("bonus") is True
        if is_bonus and bonus is None:
            chk.err(
                file,
                r.at("bonus"),
                f"规则“{r['id']}”标为加分规则（bonus: true），但本条款没有声明加分项；"
                "请在条款中写 bonus: {cap: 最多加的分数}",
            )
            continue
        # a bonus rule is bounded by the clause's bonus cap, not by its points
        bound = bonus_cap if is_bonus and bonus_cap is not None else points
        rule = _rule(r, cid, bound, types, facts, file, chk)
        if rule is not None:
            rules.append(rule)
    vetoes = []
    for v in d.get("vetoes") or []:
        if v["id"] in seen:
            chk.err(file, v.at("id"), f"否决编号“{v['id']}”与本条款的规则或否决重复")
            continue
        seen[v["id"]] = True
        if _check_expr(v["when"], types, ex.BOOLEAN, file, chk, "when"):
            vetoes.append(ClauseVeto(v["id"], v["when"].tree, v["when"].text, v["reason"]))
    kind = cat.kind
    if kind == DEDUCTION:
        for r in d["rules"]:
            block = BLOCKS.get(r.get("kind"))
            if block is not None and block.positive_only:
                chk.err(
                    file,
                    r.at("kind"),
                    f"扣分项条款不能用 {r['kind']}（它只会给出正分）；扣分请用 {_SIGNED_KINDS}，并把分值写成负数",
                )
    _check_panels(d, rules, own, file, chk)
    start = d.get("start", "zero")
    if kind == STANDARD and start == "zero":
        _check_rules_can_pay(d, rules, points, file, chk)
    if start == "full" and kind != STANDARD:
        chk.err(
            file,
            d.at("start"),
            "只有基本分条款才能从满分扣起（start: full）；加分项、扣分项从0分起",
        )
    reads: list[str] = []
    for rule in rules:
        for tree in (rule.when, rule.measure):
            if tree is not None:
                reads += ex.names(tree)
        reads += [n for n in (rule.value, rule.reason) if n] + [p.fact for p in rule.parts]
    for veto in vetoes:
        reads += ex.names(veto.when)
    reads = list(dict.fromkeys(reads))
    rules_complete = (
        len(chk.errors) == n_errors
    )  # otherwise a fact may look unread only because its rule failed
    for name in own:
        if rules_complete and name not in reads:
            chk.err(file, d.at("facts"), f"事实“{name}”已声明，但没有任何规则读取它")
    if len(chk.errors) > n_errors:
        return None
    clause = Clause(
        id=cid,
        title=d["title"],
        category=cat.id,
        kind=kind,
        points=points,
        start=start,
        source=_source(d),
        offices=tuple(d.get("offices") or ()),
        deadline=d.get("deadline", ""),
        tasks=tuple(
            (t["task"], t.get("deadline", ""), tuple(t.get("offices") or ()))
            for t in d.get("tasks") or ()
        ),
        evidence=tuple(d.get("evidence") or ()),
        facts=tuple(own.values()),
        reads=tuple(reads),
        rules=tuple(rules),
        vetoes=tuple(vetoes),
        file=file,
        note=d.get("note", ""),
        bonus_cap=bonus_cap,
    )
    all_facts.update(own)
    ids = {r.id for r in rules} | {f"!{v.id}" for v in vetoes}
    tests = []
    for t in d["tests"]:
        values = _test_facts(t["facts"], facts, file, chk)
        for rid in t.get("fired") or []:
            if rid not in ids:
                chk.err(
                    file,
                    t.at("fired"),
                    f"测试用例“{t['name']}”期望触发的“{rid}”不是本条款的规则或否决（否决写 !编号）",
                )
        for rid, wanted in (t.get("bands") or {}).items():
            rule = next((r for r in rules if r.id == rid), None)
            options = [(b.label, b.range.text) for b in (rule.bands or rule.levels)] if rule else []
            if not any(wanted in pair for pair in options):
                chk.err(
                    file,
                    t["bands"].at(rid),
                    f"测试用例“{t['name']}”期望的档“{wanted}”不是规则“{rid}”的档或成熟度档",
                )
        high = clause.high + (clause.bonus_cap or ZERO)  # the clause's bonus counts beyond it
        if not (clause.low <= t["points"] <= high):
            chk.err(
                file,
                t.at("points"),
                f"测试用例“{t['name']}”期望的{plain(t['points'])}分超出本条款的可能范围（{plain(clause.low)}到{plain(high)}）",
            )
        marks = _test_marks(t, rules, facts, file, chk)
        if values is not None and marks is not None:
            tests.append(
                ClauseTest(
                    t["name"],
                    values,
                    t["points"],
                    tuple(t["fired"]) if "fired" in t else None,
                    t.get("status"),
                    dict(t.get("bands") or {}),
                    marks,
                    line=t.line,
                )
            )
    clause.tests = tuple(tests)
    return clause


def _categories(
    items,
    file: str,
    chk: _Checker,
    parent: Category | None,
    index: dict,
    where: dict[str, tuple[int, int]],
    depth: int = 1,
) -> list:
    out: list[Category] = []
    for d in items or []:
        if depth > MAX_CATEGORY_DEPTH:
            chk.err(file, d.at(), f"类别层数过多：类别树最多{MAX_CATEGORY_DEPTH}层")
            return out
        kind = d.get("kind", parent.kind if parent else STANDARD)
        if parent is not None and kind != parent.kind:
            chk.err(file, d.at("kind"), f"子类别的类型（{kind}）须与上级类别（{parent.kind}）相同")
        if d["id"] in index:
            chk.err(file, d.at("id"), f"类别编号“{d['id']}”重复")
            continue
        if kind == STANDARD and "points" not in d:
            chk.err(file, d.at(), f"基本分类别“{d['id']} {d['title']}”须写明分值 points")
        if kind != STANDARD and "points" in d:
            chk.err(
                file,
                d.at("points", value=False),
                "加分、扣分类别不设 points；总计上限请写 cap（如 加分项总计不超5分：cap: 5）",
            )
        if kind == STANDARD and "cap" in d:
            chk.err(file, d.at("cap", value=False), "基本分类别不设 cap；其上限就是 points")
        cat = Category(
            d["id"],
            d["title"],
            kind,
            d.get("points"),
            d.get("cap"),
            parent=parent.id if parent else None,
        )
        where[cat.id] = d.at("points") if "points" in d else d.at()
        index[cat.id] = cat
        cat.children = _categories(d.get("categories"), file, chk, cat, index, where, depth + 1)
        out.append(cat)
    return out


def _check_sums(
    scheme: Scheme,
    file: str,
    chk: _Checker,
    where: dict[str, tuple[int, int]],
    total_at: tuple[int, int],
) -> None:
    """Category points add up (positions: ``where`` by category id, and the total's)."""

    def subtotal(cat: Category) -> Decimal:
        parts = [(c, scheme.clauses[c].points) for c in cat.clauses]
        total = sum((p for _, p in parts), ZERO) + sum((subtotal(ch) for ch in cat.children), ZERO)
        if cat.kind == STANDARD and cat.points is not None and total != cat.points:
            listing = "，".join(
                [f"条款{c} {plain(p)}分" for c, p in parts]
                + [f"类别{ch.id} {plain(ch.points or 0)}分" for ch in cat.children]
            )
            chk.err(
                file,
                where[cat.id],
                f"类别“{cat.id} {cat.title}”的分值为{plain(cat.points)}分，"
                f"但其下合计{plain(total)}分（{listing or '没有条款'}）",
            )
        if not cat.clauses and not cat.children:
            chk.err(file, where[cat.id], f"类别“{cat.id} {cat.title}”下没有任何条款")
        return cat.points if cat.points is not None else total

    standard = ZERO
    for top in scheme.categories:
        value = subtotal(top)
        if top.kind == STANDARD:
            standard += value
    if standard != scheme.total:
        chk.err(
            file,
            total_at,
            f"细则总分为{plain(scheme.total)}分，但各基本分类别合计{plain(standard)}分",
        )


def _grading(d: Located, types: dict, file: str, chk: _Checker) -> Grading:
    method = d["method"]
    tiers = []
    for t in d.get("tiers") or []:
        has_min, has_top = "min" in t, "top" in t
        if method == "thresholds" and has_top or method == "rank" and has_min:
            chk.err(
                file,
                t.at(),
                f"{method} 评级的等级应使用 {'min' if method == 'thresholds' else 'top'}",
            )
        tiers.append(Tier(t["grade"], t.get("min"), t.get("top"), t.get("title", "")))
    if method != "none" and not tiers:
        chk.err(file, d.at(), f"{method} 评级须列出 tiers")
    if method == "none" and tiers:
        chk.err(file, d.at("tiers", value=False), "method 为 none 时不列 tiers")
    if tiers and (tiers[-1].min is not None or tiers[-1].top is not None):
        chk.err(file, d.at("tiers"), "最后一个等级应不设 min/top，作为其余单位的等级")
    _check_tier_order(d, tiers, file, chk)
    grades = list(dict.fromkeys(t.grade for t in tiers))
    distinctions = []
    for x in d.get("distinctions") or []:
        if x["grade"] not in grades:
            chk.err(file, x.at("grade"), f"称号“{x['name']}”所需的等级“{x['grade']}”不在 tiers 中")
        if ("top" in x) == ("min" in x):
            chk.err(file, x.at(), f"称号“{x['name']}”须且只能设 top 或 min 之一")
        distinctions.append(Distinction(x["name"], x["grade"], x.get("top"), x.get("min")))
    vetoes = []
    names = list(dict.fromkeys(grades + [x.name for x in distinctions]))
    for v in d.get("vetoes") or []:
        effect, grade = v["effect"], v.get("grade")
        if effect == "lower":
            # one tier down in the order the tiers are written: the tier is not named, so a
            # grade written here would be a second, contradicting answer
            if grade is not None:
                chk.err(
                    file,
                    v.at("grade", value=False),
                    "effect 为 lower（降一级）时不写 grade：降到哪一级按 tiers 的顺序定，请删去 grade",
                )
            if not tiers:
                chk.err(
                    file,
                    v.at("effect"),
                    "effect 为 lower（降一级）须有可降的等级：请写 tiers（method 为 thresholds 或 rank）",
                )
            grade = ""
        elif grade is None:
            chk.err(
                file,
                v.at(),
                f"effect 为 {effect} 的等级否决须写 grade（"
                + ("定为的等级" if effect == "force" else "不得评的等级或称号")
                + "）",
            )
            continue
        if effect == "bar" and grade not in names:
            chk.err(
                file,
                v.at("grade"),
                f"不得评的“{v['grade']}”不是本细则的等级或称号（有：{'、'.join(names) or '无'}）",
            )
        if _check_expr(v["when"], types, ex.BOOLEAN, file, chk, "when"):
            vetoes.append(
                GradeVeto(
                    v["id"],
                    v["when"].tree,
                    v["when"].text,
                    effect,
                    grade,
                    v["reason"],
                    d.get("source", ""),
                )
            )
    return Grading(method, tuple(tiers), tuple(distinctions), tuple(vetoes), d.get("note", ""))


def _relative(d: Located | None, types: dict, file: str, chk: _Checker) -> Relative:
    """The scheme's ``relative`` section: parts scored by place among the units, a conversion."""
    if d is None:
        return Relative()
    if "parts" not in d and "convert" not in d:
        chk.err(file, d.at(), "relative 须写 parts（按排名计分）或 convert（总分折算），或两者都写")
    parts, seen = [], set()
    for p in d.get("parts") or []:
        if p["id"] in seen:
            chk.err(file, p.at("id"), f"排名计分编号“{p['id']}”重复")
        seen.add(p["id"])
        part = _relative_part(p, types, file, chk)
        if part is not None:
            parts.append(part)
    c = d.get("convert")
    convert = None if c is None else Conversion(c["scale"], c.get("source", ""), c.get("note", ""))
    return Relative(tuple(parts), convert)


def _relative_part(p: Located, types: dict, file: str, chk: _Checker) -> RelativePart | None:
    method, per_place = p["method"], p.get("per_place")
    if method == "rank" and per_place is None:
        chk.err(
            file,
            p.at(),
            f"排名计分“{p['id']}”按名次赋分（method: rank），须写 per_place："
            "名次每降低1位减第一名分值的比例，如“减基本分2%”写 0.02",
        )
    if method == "ratio" and per_place is not None:
        chk.err(
            file,
            p.at("per_place", value=False),
            f"排名计分“{p['id']}”按与第一名的比值计分（method: ratio），不写 per_place：请删去",
        )
    if per_place is not None and per_place >= 1:
        chk.err(
            file,
            p.at("per_place"),
            f"per_place 是名次每降低1位减去的比例，应小于1（2%写 0.02），这里是{plain(per_place)}",
        )
    rankings, ok = [], True
    for r in p["rankings"]:
        better = r.get("better", "higher")
        if method == "ratio" and better == "lower":
            chk.err(
                file,
                r.at("better"),
                "按与第一名的比值计分（method: ratio）只用于数值越高越好的排名；"
                "数值越低越好时请用 method: rank",
            )
        # a ranking reads what every unit reports: the scheme's shared facts, as a grade veto does
        if _check_expr(r["measure"], types, ex.NUMBER, file, chk, "measure"):
            rankings.append(Ranking(r["measure"].tree, r["measure"].text, r["label"], better))
        else:
            ok = False
    if not ok:
        return None
    return RelativePart(
        p["id"],
        p["title"],
        method,
        p["points"],
        tuple(rankings),
        per_place,
        p.get("source", ""),
        p.get("note", ""),
    )


def _check_tier_order(d: Located, tiers: list, file: str, chk: _Checker) -> None:
    """Tiers are tried in the order written and the first that fits wins, so a tier listed
    after a looser one (or after the catch-all) can never be given: "不设 min/top" obeyed
    with the catch-all first, or thresholds written from low to high, grade every unit alike."""
    for i, (t, raw) in enumerate(zip(tiers, d.get("tiers") or [])):
        if i == len(tiers) - 1:
            break
        if t.min is None and t.top is None:
            later = "、".join(f"“{x.grade}”" for x in tiers[i + 1 :])
            chk.err(
                file,
                raw.at(),
                f"等级“{t.grade}”不设 min/top，会把其余单位都评为“{t.grade}”，"
                f"其后的{later}永远评不到：不设 min/top 的等级只能放在最后",
            )
            return
    bound = [(t, raw) for t, raw in zip(tiers, d.get("tiers") or []) if t.min is not None]
    for (prev, _), (t, raw) in zip(bound, bound[1:]):
        if t.min >= prev.min:
            chk.err(
                file,
                raw.at("min"),
                f"等级“{t.grade}”（min {plain(t.min)}）排在“{prev.grade}”（min {plain(prev.min)}）之后，"
                f"总分够{plain(t.min)}分的单位已先评为“{prev.grade}”，“{t.grade}”永远评不到："
                "等级应按 min 从高到低排列",
            )
    ranked = [(t, raw) for t, raw in zip(tiers, d.get("tiers") or []) if t.top is not None]
    for (prev, _), (t, raw) in zip(ranked, ranked[1:]):
        if t.top <= prev.top:
            chk.err(
                file,
                raw.at("top"),
                f"等级“{t.grade}”（top {t.top}）排在“{prev.grade}”（top {prev.top}）之后，"
                f"前{t.top}名已先评为“{prev.grade}”，“{t.grade}”永远评不到："
                "等级应按 top 从小到大排列",
            )


def _highest_total(scheme: Scheme) -> Decimal:
    """The most any unit can score: the standard total plus what the bonus items can add
    (a bonus category's cap, or its clauses' points when it has none) plus the clauses' own
    bonuses (``bonus: {cap}``, outside any category's cap)."""
    own = sum((c.bonus_cap or ZERO for c in scheme.clauses.values()), ZERO)

    def most(cat: Category) -> Decimal:
        inner = sum((scheme.clauses[c].high for c in cat.clauses), ZERO) + sum(
            (most(ch) for ch in cat.children), ZERO
        )
        return min(inner, cat.cap) if cat.cap is not None else inner

    bonus_items = sum((most(top) for top in scheme.categories if top.kind == BONUS), ZERO)
    return scheme.total + bonus_items + own


def _check_tiers_reachable(scheme: Scheme, s: Located, file: str, chk: _Checker) -> None:
    """A threshold above the highest possible total grades nobody: 90/80/60 copied from a
    100-point scheme onto one totalling 4. The same for a distinction's ``min``."""
    highest = _highest_total(scheme)
    u = scheme.unit
    most = (
        f"本细则最高只能得{plain(highest)}{u}（基本分{plain(scheme.total)}{u}，"
        f"加分最多{plain(highest - scheme.total)}{u}），没有单位能评上"
    )
    ranked = sum((p.points for p in scheme.relative.parts), ZERO)
    if ranked:
        highest += ranked
        most = (
            f"本细则最高只能得{plain(highest)}{u}（基本分{plain(scheme.total)}{u}，"
            f"加分最多{plain(highest - ranked - scheme.total)}{u}，"
            f"排名计分最多{plain(ranked)}{u}），没有单位能评上"
        )
    if scheme.relative.convert is not None:
        # the grade is given on the converted total: the first unit has exactly the scale
        highest = scheme.relative.convert.scale
        most = f"总分折算后排名第一的单位为{plain(highest)}{u}，没有单位能评上"
    grading = s["grading"]
    for t, raw in zip(scheme.grading.tiers, grading.get("tiers") or []):
        if t.min is not None and t.min > highest:
            chk.err(
                file,
                raw.at("min"),
                f"等级“{t.grade}”要求总分不低于{plain(t.min)}{u}，但{most}：请按本细则的总分重设 min",
            )
    for x, raw in zip(scheme.grading.distinctions, grading.get("distinctions") or []):
        if x.min is not None and x.min > highest:
            chk.err(
                file,
                raw.at("min"),
                f"称号“{x.name}”要求总分不低于{plain(x.min)}{u}，但{most}：请按本细则的总分重设 min",
            )


def load_scheme(folder: Path | str, root: Path | str | None = None) -> Scheme:
    """Read, check and compile one scheme folder; ``RuleSetError`` on any problem.

    Files are named in messages and traces by their path under ``root`` (by default the
    folder's parent, so "gumeilu/clauses/01.yaml")."""
    folder = Path(folder)
    root = Path(root) if root is not None else folder.parent
    prefix = _display(folder, root)
    return load_files(read_tree(folder, prefix), prefix, str(folder))


#: Schemes loaded lately, by the bytes of all their files, the folder's name and where it lives:
#: a reload of an unchanged rules directory, or of one where one scheme changed, parses and
#: compiles only what changed (issue 12: a reload of nothing new took 0.88 s).  A loaded scheme
#: is never changed afterwards (the registry already serves one object per version), so the
#: same object is handed out again.  Only schemes that loaded are kept: a broken file is read,
#: and refused with its exact messages, every time.
#:
#: Of each scheme folder (its name and where it lives: ``scheme_key``'s last two parts) only the
#: scheme loaded or found last is held here, for at most 64 folders.  Any other is found again
#: only while something else holds it (``_ALIVE``, weak): the registry serving it, a round
#: pinned to it, a comparison under way, the served version when an edit that failed is undone.
#: Holding every one (up to 64) grew a web worker 0.65 MiB a reload of an edited scheme, each
#: version an editor saved kept (13 MiB over 20 reloads, ``tests/unit/test_reload_cache.py``).
_SCHEMES: OrderedDict[tuple, tuple[tuple, Scheme]] = OrderedDict()  # folder -> (key, scheme)
_ALIVE: weakref.WeakValueDictionary[tuple, Scheme] = weakref.WeakValueDictionary()
_SCHEMES_SIZE = 64
_schemes_lock = threading.Lock()


def scheme_key(files: dict, prefix: str, path: str = "") -> tuple:
    """What a scheme loaded from ``files`` depends on: the SHA-256 of every file's name and bytes
    (all of them: a stray .yml or an undecodable file makes a load fail), its name, its path."""
    digest = hashlib.sha256()
    for rel in sorted(files):
        data = files[rel]
        data = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
        digest.update(b"%d:%b\0%d:" % (len(rel), rel.encode("utf-8", "surrogatepass"), len(data)))
        digest.update(data)
    return digest.hexdigest(), prefix, path


def known_scheme(key: tuple) -> Scheme | None:
    """The scheme loaded lately under ``key`` (``scheme_key``), if any: the last one of its
    folder, or an earlier one something still holds (which becomes the folder's last)."""
    with _schemes_lock:
        entry = _SCHEMES.get(key[1:])
        if entry is not None and entry[0] == key:
            _SCHEMES.move_to_end(key[1:])
            return entry[1]
        scheme = _ALIVE.get(key)
        if scheme is not None:
            _keep(key, scheme)
        return scheme


def keep_scheme(key: tuple, scheme: Scheme) -> None:
    """Remember a scheme that loaded (in a child process, say) under its ``scheme_key``."""
    with _schemes_lock:
        _keep(key, scheme)


def _keep(key: tuple, scheme: Scheme) -> None:
    _SCHEMES.pop(key[1:], None)  # the folder's last until now: held on only by its users
    _SCHEMES[key[1:]] = (key, scheme)
    _ALIVE[key] = scheme
    while len(_SCHEMES) > _SCHEMES_SIZE:
        _SCHEMES.popitem(last=False)


def forget() -> None:
    """Drop every scheme and file kept (a cold load, for the benchmark)."""
    with _schemes_lock:
        _SCHEMES.clear()
        _ALIVE.clear()
    _PARSED.clear()


def keep_latest() -> None:
    """What the kept loading process (``contained``) holds between loads: of each file, only the
    content it read last, and no scheme.  Without this its memory grew with every edit it saw
    (each changed file's earlier content and each earlier scheme kept, up to 2,048 files and 64
    schemes: 0.7 MiB a reload of the largest seed scheme, 60 MiB after 300); now it stays flat
    (``tools/scale_bench.py``).  Nothing is lost: an edited file's earlier content is read again
    only if the edit is undone (one file parsed), and the loaded schemes are kept by the caller,
    which sends the process only the scheme folders it does not know."""
    with _schemes_lock:
        _SCHEMES.clear()
        _ALIVE.clear()
    latest: set = set()
    for key in reversed(list(_PARSED)):  # the most lately read first
        name = (key[0], key[2])  # (file, what it was read as); key[1] is its content
        if name in latest:
            del _PARSED[key]
        else:
            latest.add(name)


def load_files(files: dict, prefix: str, path: str = "") -> Scheme:
    """Read, check and compile one scheme from its files ({path inside the scheme folder: bytes
    or text}, as ``snapshot`` gives them or as the archive stores them); ``prefix``: the folder's
    name in messages and traces; ``path``: where it lives on disk, if it does.  The same files
    under the same name and path give the scheme loaded before, not parsed again."""
    files = {
        rel: (data.encode("utf-8") if isinstance(data, str) else data)
        for rel, data in files.items()
    }
    key = scheme_key(files, prefix, path)
    scheme = known_scheme(key)
    if scheme is None:
        scheme = _load_files(files, prefix, path)  # raises RuleSetError: nothing kept
        keep_scheme(key, scheme)
    return scheme


def _load_files(files: dict, prefix: str, path: str) -> Scheme:

    def named(rel: str) -> str:
        return rel if prefix in ("", ".") else f"{prefix}/{rel}"

    chk = _Checker()
    sfile = named(SCHEME_FILE)
    if SCHEME_FILE not in files:
        raise RuleSetError(
            [RuleFileError(sfile, 1, 1, "缺少 scheme.yaml：每个细则文件夹都要有一个 scheme.yaml")]
        )
    clause_rels = sorted(
        rel
        for rel in files
        if rel.startswith(CLAUSE_DIR + "/") and rel.count("/") == 1 and rel.endswith(".yaml")
    )
    # bounds first, before any file is parsed: 1,000 clause files took 9 s to be refused
    if len(clause_rels) > MAX_CLAUSES:
        raise RuleSetError(
            [
                RuleFileError(
                    sfile, 1, 1, f"一套细则最多{MAX_CLAUSES}个条款，这里有{len(clause_rels)}个"
                )
            ]
        )
    too_big = [
        RuleFileError(
            named(rel), 1, 1, f"文件过大（{len(data)}字节）：一个规则文件最多{MAX_FILE_BYTES}字节"
        )
        for rel, data in sorted(files.items(), key=lambda f: _order(f[0]))
        if len(data) > MAX_FILE_BYTES
    ]
    if too_big:
        raise RuleSetError(too_big)
    raw_errors: list[RuleFileError] = []
    s = _read(sfile, files[SCHEME_FILE], spec.SCHEME, raw_errors)
    for rel in sorted((r for r in files if r.endswith(".yml")), key=_order):
        raw_errors.append(
            RuleFileError(named(rel), 1, 1, "规则文件的扩展名应为 .yaml，该文件未被读取")
        )
    for rel in sorted(files, key=_order):
        # not parsed, but archived as text with the scheme: it must be text
        if rel.endswith(".yaml") and rel != SCHEME_FILE and rel not in clause_rels:
            try:
                files[rel].decode("utf-8")
            except UnicodeDecodeError as err:
                raw_errors.append(
                    RuleFileError(
                        named(rel),
                        1,
                        1,
                        f"文件不是 UTF-8 编码（第{err.start}字节），请另存为 UTF-8",
                    )
                )
    clause_docs = [
        (named(rel), _read(named(rel), files[rel], spec.CLAUSE, raw_errors)) for rel in clause_rels
    ]
    if not clause_rels:
        raw_errors.append(
            RuleFileError(
                sfile,
                1,
                1,
                f"细则文件夹中没有条款文件（应放在 {CLAUSE_DIR}/ 下，每个条款一个 .yaml 文件）",
            )
        )
    if s is None or raw_errors:
        raise RuleSetError(raw_errors)
    docs = [(file, d) for file, d in clause_docs if d is not None]  # all of them: no errors

    index: dict[str, Category] = {}
    category_at: dict[str, tuple[int, int]] = {}
    categories = _categories(s["categories"], sfile, chk, None, index, category_at)
    scheme_facts: dict[str, FactSpec] = {}
    for f in s.get("facts") or []:
        fact = _fact(f, "", sfile, chk)
        if fact is not None:
            if fact.name in scheme_facts:
                chk.err(sfile, f.at("name"), f"事实“{fact.name}”重复声明")
            scheme_facts[fact.name] = fact
    # a shared fact's condition reads shared facts only: a clause's fact is "elsewhere"
    _check_applies_when(
        s.get("facts"), scheme_facts, {n: f.expr_type for n, f in scheme_facts.items()}, sfile, chk
    )
    all_facts = dict(scheme_facts)
    clauses: dict[str, Clause] = {}
    clause_at: dict[str, str] = {}
    for _file, d in docs:
        for f in d.get("facts") or []:
            chk.declared_in.setdefault(f["name"], d["id"])
    for file, d in docs:
        if d["id"] in clauses:
            chk.err(file, d.at("id"), f"条款编号“{d['id']}”与 {clause_at[d['id']]} 重复")
            continue
        clause = _clause(d, file, scheme_facts, index, chk, all_facts)
        if clause is not None:
            clauses[clause.id] = clause
            clause_at[clause.id] = file
            index[clause.category].clauses.append(clause.id)
            if limits.simultaneous(clause) > limits.MAX_SIMULTANEOUS_MATCHES:
                chk.err(
                    file,
                    d.at("rules"),
                    f"一个条款最多{limits.MAX_SIMULTANEOUS_MATCHES}条规则与否决，请拆分条款",
                )
    types = {n: f.expr_type for n, f in scheme_facts.items()}
    chk.clause = ""  # a grade veto reads scheme facts only: a clause's fact is "elsewhere"
    grading = _grading(s["grading"], types, sfile, chk)
    chk.scheme_reader = "排名计分"  # a ranking reads what every unit reports, as a grade veto does
    relative = _relative(s.get("relative"), types, sfile, chk)
    chk.scheme_reader = "等级否决"
    chk.declared_in = {}  # the scheme's test cases may give any clause's facts
    used = {n for c in clauses.values() for n in c.reads}
    for veto in grading.vetoes:
        used |= set(ex.names(veto.when))
    for p in (s.get("relative") or {}).get("parts") or []:
        # every ranking's names, even one whose measure was refused: not "declared but unread" too
        for r in p["rankings"]:
            used |= set(ex.names(r["measure"].tree))
    for fact in all_facts.values():  # a fact that decides whether another applies is read too
        if fact.applies_when is not None:
            used |= set(ex.names(fact.applies_when))
    _check_previous_year(
        [(sfile, s.get("facts"))] + [(file, d.get("facts")) for file, d in docs], all_facts, chk
    )
    for name in scheme_facts:
        if name not in used:
            chk.err(sfile, s.at("facts"), f"共用事实“{name}”已声明，但没有任何条款或等级否决读取它")
    if chk.errors:
        raise RuleSetError(chk.errors)

    scheme = Scheme(
        id=s["id"],
        title=s["title"],
        year=s["year"],
        issuer=s["issuer"],
        source=_source(s),
        total=s["total"],
        unit=s.get("unit", "分"),
        categories=categories,
        clauses=clauses,
        facts=all_facts,
        grading=grading,
        relative=relative,
        path=path,
        version=version_of_files(files),
        files=tuple([sfile] + [file for file, _d in docs]),
        notes=s.get("note", ""),
        texts={rel: data.decode("utf-8") for rel, data in files.items() if rel.endswith(".yaml")},
    )
    scheme.panels = {
        c.id: rule for c in clauses.values() for rule in c.rules if rule.panel is not None
    }
    _check_sums(scheme, sfile, chk, category_at, s.at("total"))
    _check_tiers_reachable(scheme, s, sfile, chk)
    tests = []
    for t in s.get("tests") or []:
        values = _test_facts(t["facts"], all_facts, sfile, chk)
        marks = _scheme_test_marks(t, scheme, sfile, chk)
        if values is not None and marks is not None:
            tests.append(
                SchemeTest(t["name"], values, t["total"], t.get("grade"), marks, line=t.line)
            )
    scheme.tests = tuple(tests)
    rtests = []
    for t in s.get("ranking_tests") or []:
        units = {}
        for unit, u in t["units"].items():
            values = _test_facts(u.get("facts") or Located(), scheme_facts, sfile, chk)
            units[unit] = {"total": u["total"], "facts": values or {}}
        expect = {}
        for unit, e in t["expect"].items():
            if unit not in units:
                chk.err(
                    sfile, t["expect"].at(unit, value=False), f"期望中的单位“{unit}”不在 units 中"
                )
            for part_id in e.get("relative") or {}:
                if part_id not in {p.id for p in relative.parts}:
                    chk.err(
                        sfile,
                        e.at("relative"),
                        f"期望中的排名计分“{part_id}”不在 relative.parts 中"
                        f"（有：{'、'.join(p.id for p in relative.parts) or '无'}）",
                    )
            expect[unit] = {
                "rank": e["rank"],
                "grade": e.get("grade"),
                "distinctions": tuple(e["distinctions"]) if "distinctions" in e else None,
                "total": e.get("total"),
                "relative": e.get("relative"),
            }
        rtests.append(RankingTest(t["name"], units, expect, line=t.line))
    scheme.ranking_tests = tuple(rtests)
    if chk.errors:
        raise RuleSetError(chk.errors)
    program.build(scheme)
    _check_engine_limits(scheme, sfile, s, dict(docs), chk)
    if chk.errors:
        raise RuleSetError(chk.errors)
    return scheme


def _check_engine_limits(scheme: Scheme, sfile: str, s: Located, docs: dict, chk: _Checker) -> None:
    """Refuse at load time what durable-rules cannot run (``service.engine.limits``): a
    scheme that loads is one every evaluation of which the engine completes."""

    def rule_at(clause: Clause, key: str) -> tuple[str, tuple[int, int]]:
        d = docs[clause.file]
        rule_id = key.split("/")[1]
        for item in list(d["rules"]) + list(d.get("vetoes") or []):
            if item["id"] == rule_id.lstrip("!"):
                return clause.file, item.at("when") if "when" in item else item.at()
        return clause.file, d.at()

    for problem in limits.engine_problems(scheme):
        clause = scheme.clauses.get(problem.group)
        if clause is None:  # the scheme's own group: grade vetoes
            chk.err(sfile, s.at("grading"), problem.message)
        elif problem.key is None:
            chk.err(clause.file, docs[clause.file].at("rules"), problem.message)
        else:
            file, where = rule_at(clause, problem.key)
            chk.err(file, where, problem.message)


def find_schemes(root: Path | str) -> list[Path]:
    """Every scheme folder (one holding scheme.yaml) under ``root``."""
    root = Path(root)
    return [root / folder for folder in _scheme_folders(read_tree(root))]


def _scheme_folders(files: dict) -> list[str]:
    return sorted(
        (rel.rpartition("/")[0] for rel in files if rel.rpartition("/")[2] == SCHEME_FILE),
        key=lambda f: _order(f) if f else (),
    )


def load_all(root: Path | str) -> dict[str, Scheme]:
    """All schemes under ``root``, all or nothing: any error in any file fails the whole load."""
    root = Path(root)
    return load_tree(read_tree(root), root.as_posix(), str(root))


def scheme_parts(files: dict) -> list[tuple[str, dict]]:
    """(folder, its files named inside it) for every scheme folder of a rules directory's files."""
    parts = []
    for folder in _scheme_folders(files):
        inside = folder + "/" if folder else ""
        own = {rel[len(inside) :]: data for rel, data in files.items() if rel.startswith(inside)}
        parts.append((folder, own))
    return parts


def folder_path(path: str, folder: str) -> str:
    """Where a scheme folder lives on disk, given where its rules directory does (if it does)."""
    return str(Path(path) / folder) if path else ""


def load_part(folder: str, own: dict, path: str = "") -> Scheme | list[RuleFileError]:
    """One scheme folder of a rules directory (``scheme_parts``): its scheme, or its errors."""
    try:
        return load_files(own, folder, folder_path(path, folder))
    except RuleSetError as err:
        return list(err.errors)


def gather(outcomes: list, label: str = ".") -> dict[str, Scheme]:
    """The schemes of a rules directory from each folder's outcome (``load_part``, in folder
    order), all or nothing: every error of every folder, and scheme ids given twice."""
    if not outcomes:
        raise RuleSetError([RuleFileError(label, 1, 1, "规则目录中没有找到任何 scheme.yaml")])
    schemes: dict[str, Scheme] = {}
    errors: list[RuleFileError] = []
    where: dict[str, str] = {}
    for folder, outcome in outcomes:
        if not isinstance(outcome, Scheme):
            errors.extend(outcome)
            continue
        scheme = outcome
        sfile = f"{folder}/{SCHEME_FILE}" if folder else SCHEME_FILE
        if scheme.id in schemes:
            errors.append(
                RuleFileError(sfile, 1, 1, f"细则编号“{scheme.id}”与 {where[scheme.id]} 重复")
            )
            continue
        schemes[scheme.id] = scheme
        where[scheme.id] = sfile
    if errors:
        raise RuleSetError(errors)
    return schemes


def load_tree(files: dict, label: str = ".", path: str = "") -> dict[str, Scheme]:
    """All schemes of a rules directory given as its files ({relative path: bytes or text}, as
    ``read_tree`` gives them or as a candidate arrives), all or nothing.  ``label`` names the
    directory when it holds no scheme at all; ``path``, where it lives on disk, if it does."""
    return gather(
        [(folder, load_part(folder, own, path)) for folder, own in scheme_parts(files)], label
    )


# --- one scheme by its id (``scoring score``) ---------------------------------------------


class NoSuchScheme(LookupError):
    """No scheme folder of a rules directory has the id asked for.  ``ids``: the ids its folders
    declare, in folder order; ``unreadable``: folders whose id could not be told because they
    do not load (their errors are ``scoring check``'s to list)."""

    def __init__(self, scheme_id: str, ids: list[str], unreadable: list[str]):
        super().__init__(scheme_id)
        self.scheme_id, self.ids, self.unreadable = scheme_id, ids, unreadable


_ID_KEY = re.compile(r"id[ \t]*:")
#: what a line may start with at the left margin of a scheme.yaml for its ``id:`` line to be
#: trusted: a comment, a list item, or a plain key (the spec's keys are all such words); a
#: quoted, complex or merged key, a flow mapping, a directive or a document marker there, or
#: a line that continues a quoted scalar, could hide or fake the id
_MARGIN = re.compile(r"#|-(?:[ \t]|$)|[A-Za-z_][A-Za-z0-9_-]*[ \t]*:(?:[ \t]|$)")
_QUOTED_ID = re.compile(r"""(?:"([^"\\]*)"|'([^']*)')[ \t]*(?:#.*)?""")
#: characters a plain YAML scalar cannot start with (or that make it something else)
_NOT_PLAIN = tuple("-?:,[]{}#&*!|>'\"%@`")


def declared_id(data: bytes | str | None) -> str | None:
    """The id a scheme.yaml declares, read from its one top-level ``id:`` line without parsing
    the YAML (parsing is what costs); None whenever that is not certain: no such line or two,
    the value on the next line or continued there, anchors, tags, escapes, quotes or brackets
    in a plain value, a left margin with anything but comments, list items and plain keys
    (``_MARGIN``).  A None only means the folder is loaded to tell its id."""
    if data is None:
        return None
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    lines = data.removeprefix("\ufeff").splitlines()
    margin = [line for line in lines if line.strip() and line[:1] not in (" ", "\t")]
    if not all(_MARGIN.match(line) for line in margin):
        return None
    at = [i for i, line in enumerate(lines) if _ID_KEY.match(line)]
    if len(at) != 1:
        return None
    following = next((line for line in lines[at[0] + 1 :] if line.strip()), "")
    if following[:1] in (" ", "\t"):  # continued, or a nested value
        return None
    rest = lines[at[0]].partition(":")[2]
    if rest[:1] not in (" ", "\t"):
        return None
    value = rest.strip()
    quoted = _QUOTED_ID.fullmatch(value)
    if quoted:
        value = quoted.group(1) if quoted.group(1) is not None else quoted.group(2)
        return value if value.strip() else None
    value = re.split(r"[ \t]#", value, maxsplit=1)[0].rstrip()
    if (
        not value
        or value.startswith(_NOT_PLAIN)
        or ": " in value
        or value.endswith(":")
        or any(c in value for c in "\"'{}[],")
    ):
        return None
    return value


def _header(path: str) -> bytes | None:
    """A scheme.yaml's bytes, read as ``read_tree`` reads a file (no link, no FIFO, bounded);
    None if that cannot be done (the folder's own load then says why)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        data = f.read(MAX_FILE_BYTES + 1)
    return data if len(data) <= MAX_FILE_BYTES else None


def _scheme_headers(root: Path) -> tuple[list[tuple[str, bytes | None]], bool]:
    """(folder, its scheme.yaml's bytes) of every scheme folder under ``root``, in folder order,
    found by listing folders only (no other file is read), and whether the walk saw everything
    ``read_tree`` would read: False after a folder it could not list, a link it did not follow
    or a folder too deep, where a scheme folder might hide."""
    found: list[tuple[str, bytes | None]] = []
    complete = True
    stack: list[tuple[str, str, int]] = [(str(root), "", 0)]
    while stack:
        folder, rel_folder, depth = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            complete = False
            continue
        for entry in entries:
            rel = f"{rel_folder}/{entry.name}" if rel_folder else entry.name
            try:
                if entry.is_symlink():
                    complete = False
                elif entry.is_dir(follow_symlinks=False):
                    if depth + 1 >= MAX_FOLDER_DEPTH:
                        complete = False
                    else:
                        stack.append((entry.path, rel, depth + 1))
                elif entry.name == SCHEME_FILE:
                    found.append((rel_folder, _header(entry.path)))
            except OSError:
                complete = False
    found.sort(key=lambda f: _order(f[0]) if f[0] else ())
    return found, complete


def _one_of(headers: list, scheme_id: str, load, full) -> Scheme:
    """The scheme ``scheme_id`` among scheme folders known by their headers ((folder, scheme.yaml
    bytes), folder order): only the folders that declare that id, or whose id the headers do not
    tell, are loaded (``load(folder)``: a scheme or its errors).  Their errors, and the same id
    given twice, are raised as ``load_all`` raises them; other folders are never parsed, so their
    errors do not stand in the way.  ``full()`` loads everything, all or nothing, for the rare
    case where a header misled: it named the id and the folder loaded under another."""
    said = [(folder, declared_id(data)) for folder, data in headers]
    mine: list[tuple[str, Scheme | list[RuleFileError]]] = []
    told: dict[str, str] = {}  # folder -> id, of folders loaded to tell it
    unreadable: list[str] = []
    for folder, declared in said:
        if declared not in (None, scheme_id):
            continue
        outcome = load(folder)
        if declared == scheme_id:
            if isinstance(outcome, Scheme) and outcome.id != scheme_id:
                return _from_all(full(), scheme_id)
            mine.append((folder, outcome))
        elif not isinstance(outcome, Scheme):
            unreadable.append(folder or ".")
        elif outcome.id == scheme_id:
            mine.append((folder, outcome))
        else:
            told[folder] = outcome.id
    if mine:
        return gather(mine)[scheme_id]
    ids = [d if d is not None else told.get(f) for f, d in said]
    raise NoSuchScheme(scheme_id, list(dict.fromkeys(i for i in ids if i is not None)), unreadable)


def _from_all(schemes: dict[str, Scheme], scheme_id: str) -> Scheme:
    if scheme_id not in schemes:
        raise NoSuchScheme(scheme_id, list(schemes), [])
    return schemes[scheme_id]


def load_one(root: Path | str, scheme_id: str) -> Scheme:
    """The scheme ``scheme_id`` of the rules directory ``root``, loaded and checked exactly as
    ``load_all`` loads it (the same messages at the same file:line:column, the same object), but
    without parsing the other schemes' folders: ``scoring score`` names one scheme, and loading
    all six was most of its start (issue 12).  An error in another scheme's folder does not stop
    this one; ``NoSuchScheme`` (with the ids there are) when no folder has that id."""
    root = Path(root)
    headers, complete = _scheme_headers(root)
    full = lambda: load_all(root)  # noqa: E731

    def load(folder: str) -> Scheme | list[RuleFileError]:
        try:
            files = read_tree(root / folder if folder else root, folder)
        except RuleSetError as err:
            return list(err.errors)
        return load_part(folder, files, str(root))

    if not headers or not complete:
        # a scheme folder may hide where the walk could not look: found elsewhere, it serves;
        # not found, the whole load says what stands in the way
        found = [h for h in headers if declared_id(h[1]) == scheme_id]
        if not found:
            return _from_all(full(), scheme_id)
    return _one_of(headers, scheme_id, load, full)


def load_one_of_files(files: dict, scheme_id: str, label: str = ".", path: str = "") -> Scheme:
    """``load_one`` for a rules directory given as its files (``load_tree``'s arguments), such
    as the scheme folder of a zip."""
    parts = dict(scheme_parts(files))
    if not parts:
        return _from_all(load_tree(files, label, path), scheme_id)  # raises: no scheme.yaml
    headers = [(folder, own.get(SCHEME_FILE)) for folder, own in parts.items()]
    return _one_of(
        headers,
        scheme_id,
        lambda folder: load_part(folder, parts[folder], path),
        lambda: load_tree(files, label, path),
    )
