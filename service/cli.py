"""Command line: check a rules directory, run its test cases, score a facts file.

scoring check  [--rules DIR|ZIP] [--no-tests]
scoring test   [--rules DIR|ZIP] [--oracle]
scoring score  SCHEME FACTS_FILE [--rules DIR] [--clause ID] [--json] [--oracle]
scoring bench  [--units N]
scoring diff   A B            (A, B: two scheme folders)
scoring impact A B FACTS_FILE [--map OLD=NEW]... [--set FACT=VALUE:REASON]... [--json] [--oracle]
                                                    (A, B: two scheme folders)
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import click

from service.config import from_environment


def _rules_option(f):
    return click.option(
        "--rules",
        "rules_dir",
        type=click.Path(path_type=Path),
        default=None,
        help="规则目录，或从产品下载的细则 zip（默认取环境变量 SCORING_RULES_DIR，或项目的 rules/）",
    )(f)


def _rules(rules_dir):
    return rules_dir or from_environment().rules_dir


def _zip_files(path: Path) -> dict:
    """The rule files of a zip (as the product's download gives a version: its scheme folder's
    last part at the top), named ``<zip name>/<path inside>`` so messages say where they are; bounded
    as a rules directory is (size, count), links and encrypted entries refused."""
    import stat
    import zipfile

    from service.rulefiles import RuleSetError
    from service.rulefiles.errors import RuleFileError
    from service.rulefiles.loader import MAX_FILE_BYTES, MAX_FILES, RULE_SUFFIXES, path_problems

    def refuse(name: str, why: str):
        raise RuleSetError([RuleFileError(f"{path.name}/{name}" if name else path.name, 1, 1, why)])

    try:
        archive = zipfile.ZipFile(path)
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError) as err:
        refuse("", f"不是可读的 zip 压缩包（{err}）")
    if len(infos) > MAX_FILES:
        refuse("", f"压缩包中的文件过多：最多{MAX_FILES}个")
    files = {}
    for info in infos:
        name = info.filename
        if info.is_dir() or not name.endswith(RULE_SUFFIXES) or name.startswith("__MACOSX/"):
            continue
        if stat.S_ISLNK(info.external_attr >> 16):
            refuse(name, "是符号链接：规则文件夹中只能有普通文件和文件夹")
        if info.flag_bits & 0x1:
            refuse(name, "是加密的文件，无法读取")
        for _rel, problem in path_problems([name])[:1]:
            refuse(name, problem)
        with archive.open(info) as f:
            data = f.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            refuse(name, f"文件过大：一个规则文件最多{MAX_FILE_BYTES}字节")
        files[f"{path.name}/{name}"] = data
    return files


def _loader(rules_dir):
    """What loads the rules the command names: a rules directory, or a zip of a scheme folder."""
    from service.rulefiles.loader import load_all, load_tree

    rules = _rules(rules_dir)
    if Path(rules).is_file():
        return lambda: load_tree(_zip_files(Path(rules)), Path(rules).name)
    return lambda: load_all(rules)


def _load(rules_dir):
    from service.rulefiles import RuleSetError

    try:
        return _loader(rules_dir)()
    except RuleSetError as err:
        for e in err.errors:
            click.echo(str(e), err=True)
        click.echo(f"规则目录有 {len(err.errors)} 处错误，未加载。", err=True)
        sys.exit(1)


def _load_one(rules_dir, scheme_id: str):
    """The one scheme ``scoring score`` names, loaded without parsing the other schemes' folders
    (``loader.load_one``): an error in another scheme does not stop it; one in this scheme is
    reported at its file:line:column as ``scoring check`` reports it."""
    from service.rulefiles import RuleSetError
    from service.rulefiles.loader import NoSuchScheme, load_one, load_one_of_files

    rules = Path(_rules(rules_dir))
    try:
        if rules.is_file():
            return load_one_of_files(_zip_files(rules), scheme_id, rules.name)
        return load_one(rules, scheme_id)
    except RuleSetError as err:
        for e in err.errors:
            click.echo(str(e), err=True)
        click.echo(f"细则“{scheme_id}”有 {len(err.errors)} 处错误，未加载。", err=True)
        sys.exit(1)
    except NoSuchScheme as err:
        message = f"没有编号为“{scheme_id}”的细则（有：{'、'.join(err.ids)}）"
        if err.unreadable:
            message += (
                f"；另有 {len(err.unreadable)} 个细则文件夹有错误，读不出编号："
                f"{'、'.join(err.unreadable)}（scoring check 列出这些错误）"
            )
        raise click.ClickException(message) from None


def _matcher(oracle: bool, start_method: str = "spawn"):
    """The matcher the commands score with (the engine's caller and worker sleep while they wait
    for each other, so a batch every tens of milliseconds costs no CPU in between).  ``scoring
    score`` forks its engine process ("fork"): it is ready in a few milliseconds instead of after
    an interpreter has started and imported everything again (0.12 s of CPU measured)."""
    if oracle:
        from service.engine.oracle import OracleMatcher

        return OracleMatcher()
    from service.engine.pool import EnginePool

    return EnginePool(
        size=1, deadline=from_environment().engine_deadline, start_method=start_method
    )


@click.group()
def main():
    """评分引擎：质量工作绩效考核的规则检查、测试与评分。"""


@main.command()
@_rules_option
@click.option("--no-tests", is_flag=True, help="只检查规则文件，不运行其中的测试用例")
def check(rules_dir, no_tests):
    """检查规则目录：每个文件的格式、类型、引用与分值合计，并运行全部测试用例。"""
    if no_tests:
        schemes = _load(rules_dir)
        for s in schemes.values():
            click.echo(_scheme_line("✓", s))
        click.echo(f"全部 {len(schemes)} 套细则检查通过（未运行测试用例）。")
        return
    from service.casebook import check_rules

    matcher = _matcher(False)
    try:
        # the one check of the service layer: the strict loader, then every case through the engine
        checked = check_rules(_loader(rules_dir), matcher)
    finally:
        matcher.close()
    if checked.errors:
        for e in checked.errors:
            click.echo(str(e), err=True)
        click.echo(f"规则目录有 {len(checked.errors)} 处错误，未加载。", err=True)
        sys.exit(1)
    failing_in = {r.scheme for r in checked.failing}
    for s in checked.schemes.values():
        cases = sum(1 for r in checked.results if r.scheme == s.id)
        mark = "✗" if s.id in failing_in else "✓"
        click.echo(f"{_scheme_line(mark, s)}  测试用例{cases}个")
    for case in checked.failing:
        for line in case.lines():
            click.echo(line, err=True)
    passed, failed = len(checked.results) - len(checked.failing), len(checked.failing)
    click.echo(f"{passed} passed, {failed} failed")
    if failed:
        click.echo(f"有 {failed} 个测试用例未通过：规则目录未通过检查，不能加载。", err=True)
        sys.exit(1)
    click.echo(f"全部 {len(checked.schemes)} 套细则检查通过，测试用例全部通过。")


def _scheme_line(mark: str, s) -> str:
    return f"{mark} {s.id}  {s.title}  {len(s.clauses)}个条款  总分{s.total}{s.unit}  版本 {s.version[:16]}"


@main.command("test")
@_rules_option
@click.option("--oracle", is_flag=True, help="用纯 Python 匹配器代替 durable-rules")
def test_cases(rules_dir, oracle):
    """运行规则文件自带的测试用例。"""
    from service.casebook import run_cases

    schemes = _load(rules_dir)
    matcher = _matcher(oracle)
    passed = failed = 0
    try:
        for s in schemes.values():
            for case in run_cases(s, matcher):
                if case.ok:
                    passed += 1
                else:
                    failed += 1
                    for line in case.lines():
                        click.echo(line, err=True)
    finally:
        if hasattr(matcher, "close"):
            matcher.close()
    click.echo(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


def read_facts_file(path: Path) -> dict:
    """A facts file: {unit: name, facts: {...}} or {units: {name: {...}}}, YAML or JSON."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        data = json.loads(text, parse_float=Decimal)
    else:
        from ruamel.yaml import YAML

        data = YAML(typ="safe", pure=True).load(text)
        data = _decimals(data)
    return _units_of(data, path.stem)


def _units_of(data, default_name: str, where: str = "") -> dict:
    """unit -> facts of one facts document (either form); ``where``: the line, in messages."""
    if not isinstance(data, dict) or not ("facts" in data or "units" in data):
        raise click.ClickException(f"{where}事实文件应包含 facts（一个单位）或 units（多个单位）")
    if "units" in data:
        units = data["units"]
        if not isinstance(units, dict):
            raise click.ClickException(f"{where}units 应为“单位名: 该单位的事实”的映射")
        for name, facts in units.items():
            # the one-unit form's "facts:" carried over into the several-unit form
            if isinstance(facts, dict) and isinstance(facts.get("facts"), dict):
                raise click.ClickException(
                    f"{where}units 下的单位“{name}”又套了一层 facts：units 的写法直接列出事实，"
                    f"如 units: {{{name}: {{事实名: 值, …}}}}，不写 facts"
                )
        return units
    return {data.get("unit", default_name): data["facts"]}


#: What ``scoring score`` reads one unit at a time: JSON lines, and folders of facts files.
FACT_SUFFIXES = (".json", ".jsonl", ".yaml", ".yml")


def stream_units(path: Path) -> Iterator[tuple[str, dict]]:
    """(unit, facts) of a facts file, a JSON lines file (one facts document a line) or a folder
    of facts files (in name order), one unit at a time: 10,000 units are never all held
    (issue 12).  A unit named twice is an error naming both places."""
    seen: dict[str, str] = {}
    files = [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in FACT_SUFFIXES and p.is_file())
        if not files:
            raise click.ClickException(f"文件夹 {path} 中没有事实文件（.json、.jsonl、.yaml）")
    for file in files:
        for unit, facts, where in _file_units(file, path.is_dir()):
            if unit in seen:
                raise click.ClickException(f"{where}单位“{unit}”重复出现（{seen[unit]}已有）")
            seen[unit] = where.rstrip("：") or file.name
            yield unit, facts


def _file_units(file: Path, named: bool) -> Iterator[tuple[str, dict, str]]:
    """(unit, facts, where in words) of one file; a JSON lines file is read line by line."""
    if file.suffix != ".jsonl":
        try:
            units = read_facts_file(file)
        except click.ClickException as err:
            if named:  # one file of a folder: which one
                raise click.ClickException(f"{file.name}：{err.message}") from None
            raise
        items = list(units.items())
        units.clear()
        for i, (unit, facts) in enumerate(items):
            items[i] = None  # type: ignore[call-overload]  # released once scored
            yield unit, facts, f"{file.name}：" if named else ""
        return
    with file.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{file.name} 第{number}行："
            try:
                data = json.loads(line, parse_float=Decimal)
            except json.JSONDecodeError as err:
                raise click.ClickException(
                    f"{where}不是有效的 JSON（第{err.colno}列：{err.msg}）"
                ) from None
            for unit, facts in _units_of(data, f"{file.stem}:{number}", where).items():
                yield unit, facts, where


def _labelled(scheme, result):
    """The result with its missing facts named by their labels, for the text a person reads
    (the JSON keeps the names: they are the keys of the facts file). The clause sentences,
    written lazily from the names, are written first."""
    for clause in result.clauses:
        _ = clause.explanation
        clause.missing = [scheme.facts[n].label for n in clause.missing]
    result.missing = [scheme.facts[n].label for n in result.missing]
    return result


def _clause_block(text: str, clause_id: str) -> str:
    """The lines of one clause in a rendered trace: its "▶ id" line and those indented under it."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.lstrip().startswith(f"▶ {clause_id} "):
            depth = len(line) - len(line.lstrip())
            block = [line[depth:]]
            for more in lines[i + 1 :]:
                if len(more) - len(more.lstrip()) <= depth:
                    break
                block.append(more[depth:])
            return "\n".join(block)
    raise click.ClickException(f"计分说明中没有条款“{clause_id}”")  # pragma: no cover


def _decimals(value):
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decimals(v) for v in value]
    return value


@main.command()
@click.argument("scheme_id")
@click.argument("facts_file", type=click.Path(exists=True, path_type=Path))
@_rules_option
@click.option("--clause", "clause_id", default=None, help="只计算并输出这一个条款（条款编号）")
@click.option("--json", "as_json", is_flag=True, help="输出结构化的 JSON 轨迹")
@click.option("--oracle", is_flag=True, help="用纯 Python 匹配器代替 durable-rules")
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="并行评分的进程数（默认为处理器核数；单位不多时只用一个）",
)
def score(scheme_id, facts_file, rules_dir, clause_id, as_json, oracle, jobs):
    """按细则 SCHEME_ID 对事实文件中的单位评分，输出完整的计分说明。

    FACTS_FILE：一个事实文件（.json、.yaml；一个单位或 units 下的多个单位），每行一个单位的
    JSON lines 文件（.jsonl），或放着这些文件的文件夹。单位逐批评分，结果随算随写入临时文件，
    排名只保留总分等少量数据：一万个单位也不会全部留在内存中。"""
    # The engine process is forked before the rules load, once what both need is imported: it
    # then starts with the engine imported (a spawned one started an interpreter and imported
    # it again, 0.12 s of CPU, and the first batch waited for it) and is ready while the rules
    # load.  Imported before the fork, the engine and the scoring core cost it nothing.
    import service.domain.scoring
    import service.rulefiles.loader

    if not oracle:
        import service.engine.durable  # noqa: F401
    matcher = _matcher(oracle, "fork")
    try:
        _score_command(matcher, scheme_id, facts_file, rules_dir, clause_id, as_json, jobs)
    finally:
        if hasattr(matcher, "close"):
            matcher.close()


def _score_command(matcher, scheme_id, facts_file, rules_dir, clause_id, as_json, jobs) -> None:
    from service.domain.facts import InvalidFacts

    scheme = _load_one(rules_dir, scheme_id)
    if clause_id is not None and clause_id not in scheme.clauses:
        raise click.ClickException(
            f"细则“{scheme_id}”中没有编号为“{clause_id}”的条款（有：{'、'.join(scheme.clauses)}）"
        )
    units = stream_units(facts_file)
    sys.stdout.flush()
    out = sys.stdout.buffer  # the output is UTF-8 text written as bytes, spooled as bytes
    try:
        with _Spool() as spool:
            # everything is written to the spool first: a unit with wrong facts, found after
            # thousands were scored, still leaves no half-written output
            form = _Form(scheme, as_json, clause_id)
            kept = _score_all(form, units, matcher, jobs or os.cpu_count() or 1, spool)
            form.write(spool, kept, out)
    except InvalidFacts as err:
        for e in err.errors:
            click.echo(f"事实有误 {e}", err=True)
        sys.exit(2)


# --- scoring many units: in batches, each result written and let go as it is made ------------

#: Units scored in one matcher call, and handed to a process at a time: a batch's full results
#: (some 650 objects a unit) are let go before the next batch (10,000 units held at once took
#: 1.46 GiB, issue 12).  Small, so that the processes finish close together (at the end this
#: one waits for the batch another is scoring: some 50 ms at 50 units), but not under
#: ``scoring.SETTLE_AT``: smaller batches are left to the cyclic collector, which walks their
#: objects again and again (batches of 20 and 35 units cost 5-10 % more CPU).  Batches of 200
#: cost a few percent less CPU than 50 (3,000 units in one process: 3.43 s against 3.54-3.79 s,
#: on a busy machine) but leave up to 200 ms of tail and hold four times the results.
CHUNK = 50

#: Batches from which ``scoring score`` shares them out over several processes (``--jobs``):
#: from 100 units.  A second process costs about 30 ms of CPU (its fork, its engine process's)
#: and saves half of 1.2 ms a unit on two cores; measured on a busy machine, 100 units cost 5 %
#: more CPU on two processes, 400 units 4 %.
PARALLEL_FROM = 2

#: The fields of a result that ranking sets (``grading.rank_units``); everything else about a
#: unit is final once it is scored.
RANKED = (
    "grade",
    "distinctions",
    "grade_explanation",
    "grade_pending",
    "pending_distinctions",
    "relative",
)


def _batches(units: Iterator) -> Iterator[dict]:
    """unit -> facts, ``CHUNK`` units at a time, in the order given."""
    chunk: dict = {}
    for unit, facts in units:
        chunk[unit] = facts
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = {}
    if chunk:
        yield chunk


def _ranking_reads(scheme) -> tuple:
    """The facts the parts scored at ranking read (``relative``): all ranking needs of the facts."""
    from service.domain import expressions as ex

    if not scheme.relative:
        return ()
    return tuple(
        dict.fromkeys(
            n for p in scheme.relative.parts for r in p.rankings for n in ex.names(r.measure)
        )
    )


def _kept(result, reads: tuple):
    """What ranking, and the totals at the end of a unit's text, need of a scored unit: the
    result without its clauses and categories (nearly all of it), and only the facts ranking
    reads.  ``rank_units`` grades these in place of the results."""
    kept = copy.copy(result)
    kept.clauses, kept.categories = [], []
    kept.facts = {n: result.facts[n] for n in reads if n in result.facts}
    return kept


class _Spool:
    """Pieces of output (one a unit) in temporary files, read back in order at the end: the
    command's own file, and those of the processes that score in parallel (in ``folder``)."""

    def __init__(self):
        self._folder = tempfile.TemporaryDirectory(prefix="scoring-")
        self.folder = self._folder.name
        self.files = [tempfile.TemporaryFile(dir=self.folder)]  # noqa: SIM115 - closed by __exit__
        self.entries: list[tuple[int, int, int, int]] = []  # file, start, end, a number kept
        self.size = 0

    def write(self, data: bytes, mark: int = 0) -> tuple[int, int, int, int]:
        """A piece written to the command's own file: its entry, for ``entries`` in its turn."""
        self.files[0].write(data)
        self.size += len(data)
        return (0, self.size - len(data), self.size, mark)

    def file_number(self, path: str) -> int:
        """The number of another process's spool file, opened for reading the first time."""
        for n, f in enumerate(self.files):
            if getattr(f, "name", None) == path:
                return n
        self.files.append(open(path, "rb"))  # noqa: SIM115 - closed by __exit__
        return len(self.files) - 1

    def __iter__(self) -> Iterator[tuple[bytes, int]]:
        self.files[0].flush()
        for number, start, end, mark in self.entries:
            f = self.files[number]
            f.seek(start)
            yield f.read(end - start), mark

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for f in self.files:
            f.close()
        self._folder.cleanup()


def _dumped(value, indent: int = 0) -> bytes:
    """``json.dumps(value, ensure_ascii=False, indent=2)`` as UTF-8, nested ``indent`` spaces
    deep (its first line not indented), by orjson: the same bytes, ten times faster."""
    import orjson

    try:
        data = orjson.dumps(value, option=orjson.OPT_INDENT_2)
    except TypeError:  # an integer beyond 64 bits, a lone surrogate: the standard library's way
        data = json.dumps(value, ensure_ascii=False, indent=2).encode("utf-8", "surrogatepass")
    return data.replace(b"\n", b"\n" + b" " * indent) if indent else data


def _json_document(out, fields: list, items: Iterator[bytes], after: list) -> None:
    """``{fields..., "results": [items...], after...}`` as ``json.dumps(..., indent=2)`` writes
    it, then a line end; each item comes dumped 4 spaces deep, its first line indented too."""
    out.write(b"{\n")
    for key, value in fields:
        out.write(b"  " + _dumped(key) + b": " + _dumped(value, 2) + b",\n")
    out.write(b'  "results": [')
    first = True
    for item in items:
        out.write((b"\n" if first else b",\n") + item)
        first = False
    out.write(b"]" if first else b"\n  ]")
    for key, value in after:
        out.write(b",\n  " + _dumped(key) + b": " + _dumped(value, 2))
    out.write(b"\n}\n")


class _Form:
    """What ``scoring score`` prints, made a unit at a time: each unit's text or JSON (``piece``)
    is made as it is scored, all but the part ranking decides, which ``write`` fills in from
    what ``_kept`` keeps once every unit is ranked."""

    def __init__(self, scheme, as_json: bool, clause_id: str | None):
        self.scheme, self.as_json, self.clause_id = scheme, as_json, clause_id
        self.reads = _ranking_reads(scheme)
        self.token = os.urandom(8).hex()  # stands for a ranked field in a spooled JSON result
        self.several = True  # one clause's text names each unit if there are several

    def piece(self, result) -> tuple[bytes, int, object]:
        """(the unit's output so far, where in it ranking fills in: the length of its text's
        header, or where a JSON result's ranked fields begin, what ranking keeps)."""
        from service.domain.trace import render, to_data

        if self.clause_id is not None:
            clause = next(c for c in result.clauses if c.id == self.clause_id)
            if self.as_json:
                return (
                    b"    " + _dumped({"unit": result.unit, "clause": to_data(clause)}, 4),
                    0,
                    None,
                )
            text = f"被考核单位：{result.unit}\n" if self.several else ""
            text += _clause_block(render(_labelled(self.scheme, result)), self.clause_id)
            return (text + "\n\n").encode("utf-8"), 0, None
        if self.as_json:
            data = to_data(result)
            for key in RANKED:
                if key in data:
                    data[key] = f"@{self.token}:{key}@"
            piece = b"    " + _dumped(data, 4)
            # where the fields ranking sets begin: after the clauses, the bulk of a result
            first = piece.find(f'"@{self.token}:'.encode())
            return piece, max(first, 0), _kept(result, self.reads)
        full = render(_labelled(self.scheme, result))
        kept = _kept(result, self.reads)
        head, totals = _totals_of(full, render(kept))
        return full[: len(full) - len(totals)].encode("utf-8"), head, kept

    def write(self, spool: _Spool, kept: list, out) -> None:
        from service.domain.grading import rank_units
        from service.domain.trace import render, render_ranking, to_data

        scheme = self.scheme
        if self.clause_id is not None:
            if self.as_json:
                fields = [("scheme", scheme.id), ("version", scheme.version)]
                fields.append(("clause", self.clause_id))
                _json_document(out, fields, (piece for piece, _ in spool), [])
                return
            for piece, _ in spool:
                out.write(piece)
            return
        ranked = len(kept) > 1 or scheme.grading.method == "rank"
        entries = rank_units(scheme, kept) if ranked else None
        by_unit = {e.unit: e for e in entries} if entries else {}
        if self.as_json:
            filled = (
                piece[:at] + self._filled(piece[at:], k) for (piece, at), k in zip(spool, kept)
            )
            fields = [("scheme", scheme.id), ("version", scheme.version)]
            ranking = [("ranking", to_data(entries) if entries else None)]
            _json_document(out, fields, filled, ranking)
            return
        for (piece, head), k in zip(spool, kept):
            totals = render(k, by_unit.get(k.unit))[head + 1 :]
            out.write(piece + totals.encode("utf-8") + b"\n\n")
        if entries and len(entries) > 1:
            out.write(render_ranking(entries).encode("utf-8") + b"\n")

    def _filled(self, piece: bytes, kept) -> bytes:
        """The end of a spooled JSON result with the fields ranking set written in."""
        from service.domain.trace import to_data

        for key in RANKED:
            marker = f'"@{self.token}:{key}@"'.encode()
            if marker in piece:
                piece = piece.replace(marker, _dumped(to_data(getattr(kept, key)), 6))
        return piece


def _totals_of(full: str, alone: str) -> tuple[int, str]:
    """Where the totals of a unit's text start, which ranking changes.  ``full``: the unit's
    text; ``alone``: the same unit's text without its clauses, which is the same header, one
    blank line and the same totals.  Returns the header's length and the totals."""
    head = len(os.path.commonprefix([full, alone]))
    totals = alone[head + 1 :]
    if not totals or not full.endswith("\n\n" + totals):  # pragma: no cover - a changed layout
        raise click.ClickException("内部错误：计分说明的格式与预期不符，无法分批输出")
    return head, totals


def _score_all(form: _Form, units: Iterator, matcher, jobs: int, spool: _Spool) -> list:
    """Score every unit, each one's piece spooled as it is made; what ranking keeps of each, in
    order.  Several processes score side by side (``jobs``) when there are enough units."""
    first = list(itertools.islice(units, PARALLEL_FROM * CHUNK))
    form.several = len(first) > 1
    units = itertools.chain(first, units)
    if jobs > 1 and len(first) >= PARALLEL_FROM * CHUNK:
        return _score_in_parallel(form, units, matcher, jobs, spool)
    kept: list = []
    for batch in _batches(units):
        spool.entries.extend(_score_here(form, batch, matcher, spool, kept))
    return kept


def _score_here(form: _Form, batch: dict, matcher, spool: _Spool, kept: list) -> list:
    """One batch scored in this process: each unit's piece written to the spool (its entries
    returned, in order) and what ranking keeps of it appended to ``kept``."""
    from service.domain.scoring import score_units

    entries = []
    for result in score_units(form.scheme, batch, matcher, _name(matcher), explain=True):
        data, head, k = form.piece(result)
        entries.append(spool.write(data, head))
        kept.append(k)
    return entries


def _name(matcher) -> str:
    return getattr(matcher, "name", "engine")


#: Batches queued for each forked scoring process: the one it takes next while it scores one,
#: so that it never waits for this process, busy with a batch of its own, to queue another.
IN_HAND = 2


def _score_in_parallel(form: _Form, units: Iterator, matcher, jobs: int, spool: _Spool):
    """Batches scored by this process, with ``matcher`` (its engine process started while the
    rules loaded), and by ``jobs - 1`` forked processes, each with its own matcher and engine
    process and its own spool file, all sharing one queue of batches.  This process keeps
    ``IN_HAND`` batches queued for each of the others and scores the next one itself: however
    busy the machine, nobody waits for a share fixed in advance, and this process, which also
    reads the units, takes what the others leave.  When the units run out it takes back from
    the queue what no one has started, so at the end it waits for at most the batches being
    scored.  The pieces are put back in the order of the units.  After wrong facts nothing more
    is started, what was started is finished, and the first wrong batch in order is reported
    (the one a single process would have reported)."""
    import multiprocessing as mp
    import queue

    from service.domain.facts import InvalidFacts
    from service.engine.oracle import OracleMatcher

    oracle = isinstance(matcher, OracleMatcher)  # the forked processes score as this one does
    ctx = mp.get_context("fork")  # the loaded scheme and the form are the parent's: nothing sent
    tasks, answers = ctx.Queue(), ctx.Queue()
    processes = []
    try:
        for n in range(1, jobs):
            process = ctx.Process(
                target=_scoring_process,
                args=(form, oracle, os.path.join(spool.folder, f"{n}.spool"), tasks, answers),
                name=f"scoring {n}",
            )
            process.start()
            processes.append(process)
        kept: list = []
        done: dict[int, tuple[list, list]] = {}  # batch -> its entries and kept, until its turn
        failed: dict[int, tuple] = {}  # batch -> ("invalid", errors) or ("failed", why)
        turn = 0  # the next batch to put in order
        queued = 0  # batches queued or being scored by the others
        batches = enumerate(_batches(units))
        left = True  # units not yet read

        def answered(reply) -> None:
            nonlocal queued
            queued -= 1
            status, number, *rest = reply
            if status != "ok":
                failed[number] = (status, *rest)
                return
            path, rows = rest
            file = spool.file_number(path)
            entries = [(file, start, end, head) for start, end, head, _ in rows]
            done[number] = (entries, [k for *_, k in rows])

        def put_in_order() -> None:
            nonlocal turn
            while turn in done:
                entries, ks = done.pop(turn)
                spool.entries.extend(entries)
                kept.extend(ks)
                turn += 1

        def next_batch():
            nonlocal left
            item = next(batches, None) if left and not failed else None
            left = item is not None
            return item

        while True:
            while queued:  # the answers already there
                try:
                    answered(answers.get_nowait())
                except queue.Empty:
                    break
            while queued < IN_HAND * len(processes) and (item := next_batch()) is not None:
                tasks.put(item)  # queued by a thread: never waits for the processes
                queued += 1
            item = next_batch()
            if item is None and queued:
                try:  # taken back: nobody has started it (one waiting for a batch holds the lock)
                    item = tasks.get_nowait()
                    queued -= 1
                except queue.Empty:
                    pass
            if item is None:
                if not queued:
                    break
                answered(_answer(processes, answers))
                put_in_order()
                continue
            number, batch = item
            mine: list = []
            try:
                done[number] = (_score_here(form, batch, matcher, spool, mine), mine)
            except InvalidFacts as err:
                failed[number] = ("invalid", err.errors)
            put_in_order()
        if failed:
            why = failed[min(failed)]
            if why[0] == "invalid":
                raise InvalidFacts(why[1])
            raise click.ClickException(f"评分失败：{why[1]}")
        put_in_order()
        for _ in processes:
            tasks.put(None)  # done: each process closes its matcher and ends
        for process in processes:
            # every batch is in: one not ended by then is stuck (say on the queue's lock, left
            # held by another killed while it waited for a batch) and is ended below
            process.join(timeout=5)
        return kept
    finally:
        for process in processes:
            if process.is_alive():  # an error above: its engine process ends as its socket closes
                process.terminate()
                process.join()
        for q in (tasks, answers):
            q.cancel_join_thread()
            q.close()


def _answer(processes: list, answers):
    """The next answer of the scoring processes; an error if one died without answering."""
    import queue

    while True:
        try:
            return answers.get(timeout=1)
        except queue.Empty:
            for process in processes:
                if not process.is_alive():
                    raise click.ClickException(
                        f"评分进程意外退出（退出码 {process.exitcode}），未输出任何结果"
                    ) from None


def _scoring_process(form, oracle, path, tasks, answers) -> None:  # pragma: no cover - a child
    """Score the batches taken from ``tasks`` until None comes: each unit's piece to the spool
    file ``path``; (start, end, header length, what ranking keeps) of each back, by number."""
    from service.domain.facts import InvalidFacts
    from service.domain.scoring import score_units

    matcher = _matcher(oracle, "fork")
    size = 0
    try:
        with open(path, "wb") as f:
            while (task := tasks.get()) is not None:
                number, batch = task
                try:
                    results = score_units(form.scheme, batch, matcher, _name(matcher), explain=True)
                except InvalidFacts as err:  # sent as its errors: the exception does not unpickle
                    answers.put(("invalid", number, err.errors))
                    continue
                except Exception as err:
                    answers.put(("failed", number, f"{type(err).__name__}: {err}"))
                    continue
                rows = []
                for result in results:
                    data, head, k = form.piece(result)
                    f.write(data)
                    rows.append((size, size + len(data), head, k))
                    size += len(data)
                f.flush()
                answers.put(("ok", number, path, rows))
    finally:
        if hasattr(matcher, "close"):
            matcher.close()
        answers.close()
        answers.join_thread()


def _load_folder(folder: Path):
    from service.rulefiles import RuleSetError
    from service.rulefiles.loader import load_scheme

    try:
        return load_scheme(folder)
    except RuleSetError as err:
        for e in err.errors:
            click.echo(str(e), err=True)
        click.echo(f"{folder} 有 {len(err.errors)} 处错误，无法比较。", err=True)
        sys.exit(1)


@main.command()
@click.argument("old", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("new", type=click.Path(exists=True, file_okay=False, path_type=Path))
def diff(old, new):
    """比较两个版本的细则（两个细则文件夹），按条款列出改动。"""
    from service.domain.compare import compare

    a, b = _load_folder(old), _load_folder(new)
    click.echo(
        f"{a.id}（{a.year}，版本 {a.version[:16]}）→ {b.id}（{b.year}，版本 {b.version[:16]}）"
    )
    groups = compare(a, b)
    for g in groups:
        click.echo(f"\n{g.heading}")
        for d in g.differences:
            click.echo(f"  · {d.sentence}")
    count = sum(len(g.differences) for g in groups)
    click.echo(f"\n共 {count} 处改动。" if count else "两个版本没有差别。")


@main.command()
@click.argument("old", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("new", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("facts_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--map",
    "renames",
    multiple=True,
    metavar="OLD=NEW",
    help="新事实 NEW 取原事实 OLD 的值（改名）；可多次使用",
)
@click.option(
    "--set",
    "fixed",
    multiple=True,
    metavar="FACT=VALUE:REASON",
    help="新事实 FACT 对每个单位都取固定值 VALUE，REASON 为理由（必填）；可多次使用",
)
@click.option("--json", "as_json", is_flag=True, help="输出结构化的 JSON")
@click.option("--oracle", is_flag=True, help="用纯 Python 匹配器代替 durable-rules")
def impact(old, new, facts_file, renames, fixed, as_json, oracle):
    """影响预览：按旧版本 OLD 和新版本 NEW（两个细则文件夹）为事实文件中的单位评分，列出每个单位
    总分、名次、等级的前后变化和得分有变化的条款；新版本读取而事实中没有的事实列为缺失（不按0计），
    除非用 --map 或 --set 对应。"""
    from service.domain.facts import InvalidFacts
    from service.impact import compare_units, rank_both, render_text

    a, b = _load_folder(old), _load_folder(new)
    mapping = _mapping_options(a, b, renames, fixed)
    units = read_facts_file(facts_file)
    matcher = _matcher(oracle)
    try:
        name = getattr(matcher, "name", "engine")
        result = rank_both(a, b, compare_units(a, b, units, matcher, name, mapping), mapping)
    except InvalidFacts as err:
        for e in err.errors:
            click.echo(f"事实有误 {e}", err=True)
        sys.exit(2)
    finally:
        if hasattr(matcher, "close"):
            matcher.close()
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    click.echo(render_text(result))


def _mapping_options(a, b, renames, fixed) -> dict:
    """--map OLD=NEW and --set FACT=VALUE:REASON as a checked mapping (``service.mapping``); a
    wrong one is reported naming the option and exits 2, before anything is scored."""
    from service.exceptions import Invalid
    from service.mapping import check_mapping, parse_value

    mapping: dict = {}
    for option in renames:
        source, sep, target = option.partition("=")
        if not sep or not source.strip() or not target.strip():
            _usage(f"--map {option}：应写作 原事实名=新事实名")
        mapping[target.strip()] = {"from": source.strip()}
    for option in fixed:
        name, sep, rest = option.partition("=")
        value, colon, reason = rest.partition(":")
        if not sep or not colon or not name.strip():
            _usage(f"--set {option}：应写作 事实名=值:理由")
        spec = b.facts.get(name.strip())
        try:
            parsed = parse_value(spec, value) if spec is not None else value
        except ValueError as err:
            _usage(f"--set {option}：固定值{err}")
        mapping[name.strip()] = {"value": parsed, "reason": reason}
    try:
        return check_mapping(a, b, mapping)
    except Invalid as err:
        for where, messages in err.fields.items():
            for message in messages:
                click.echo(f"{where}: {message}", err=True)
        sys.exit(2)


def _usage(message: str):
    click.echo(message, err=True)
    sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
