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

import json
import sys
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


def _matcher(oracle: bool):
    if oracle:
        from service.engine.oracle import OracleMatcher

        return OracleMatcher()
    from service.engine.pool import EnginePool

    settings = from_environment()
    return EnginePool(size=1, deadline=settings.engine_deadline)


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
    if not isinstance(data, dict) or not ("facts" in data or "units" in data):
        raise click.ClickException("事实文件应包含 facts（一个单位）或 units（多个单位）")
    if "units" in data:
        units = data["units"]
        if not isinstance(units, dict):
            raise click.ClickException("units 应为“单位名: 该单位的事实”的映射")
        for name, facts in units.items():
            # the one-unit form's "facts:" carried over into the several-unit form
            if isinstance(facts, dict) and isinstance(facts.get("facts"), dict):
                raise click.ClickException(
                    f"units 下的单位“{name}”又套了一层 facts：units 的写法直接列出事实，"
                    f"如 units: {{{name}: {{事实名: 值, …}}}}，不写 facts"
                )
        return units
    return {data.get("unit", path.stem): data["facts"]}


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


def _print_clause(scheme, results, clause_id: str, as_json: bool) -> None:
    """One clause of each unit's score: its rules, facts and points, and nothing else."""
    from service.domain.trace import render, to_data

    if as_json:
        payload = {
            "scheme": scheme.id,
            "version": scheme.version,
            "clause": clause_id,
            "results": [
                {"unit": r.unit, "clause": to_data(next(c for c in r.clauses if c.id == clause_id))}
                for r in results
            ],
        }
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    for r in results:
        if len(results) > 1:
            click.echo(f"被考核单位：{r.unit}")
        click.echo(_clause_block(render(_labelled(scheme, r)), clause_id))
        click.echo("")


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
@click.argument("facts_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_rules_option
@click.option("--clause", "clause_id", default=None, help="只计算并输出这一个条款（条款编号）")
@click.option("--json", "as_json", is_flag=True, help="输出结构化的 JSON 轨迹")
@click.option("--oracle", is_flag=True, help="用纯 Python 匹配器代替 durable-rules")
def score(scheme_id, facts_file, rules_dir, clause_id, as_json, oracle):
    """按细则 SCHEME_ID 对事实文件中的单位评分，输出完整的计分说明。"""
    from service.domain.facts import InvalidFacts
    from service.domain.grading import rank_units
    from service.domain.scoring import score_units
    from service.domain.trace import render, render_ranking, to_data

    schemes = _load(rules_dir)
    scheme = schemes.get(scheme_id)
    if scheme is None:
        raise click.ClickException(f"没有编号为“{scheme_id}”的细则（有：{'、'.join(schemes)}）")
    if clause_id is not None and clause_id not in scheme.clauses:
        raise click.ClickException(
            f"细则“{scheme_id}”中没有编号为“{clause_id}”的条款（有：{'、'.join(scheme.clauses)}）"
        )
    units = read_facts_file(facts_file)
    matcher = _matcher(oracle)
    try:
        results = score_units(scheme, units, matcher, getattr(matcher, "name", "engine"))
    except InvalidFacts as err:
        for e in err.errors:
            click.echo(f"事实有误 {e}", err=True)
        sys.exit(2)
    finally:
        if hasattr(matcher, "close"):
            matcher.close()
    if clause_id is not None:
        _print_clause(scheme, results, clause_id, as_json)
        return
    entries = (
        rank_units(scheme, results) if len(results) > 1 or scheme.grading.method == "rank" else None
    )
    by_unit = {e.unit: e for e in entries} if entries else {}
    if as_json:
        payload = {
            "scheme": scheme.id,
            "version": scheme.version,
            "results": to_data(results),
            "ranking": to_data(entries) if entries else None,
        }
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    for r in results:
        click.echo(render(_labelled(scheme, r), by_unit.get(r.unit)))
        click.echo("")
    if entries and len(entries) > 1:
        click.echo(render_ranking(entries))


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
