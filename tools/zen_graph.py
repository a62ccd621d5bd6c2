"""A loaded scheme as a GoRules JDM decision graph (for zen-engine), and a plain-Python floor.

Benchmark-only (issue 12): ``python -m tools.bench`` times this project against zen-engine
evaluating the graph generated here from the very same loaded scheme, and against a floor that
computes the points and nothing else.  A contender whose totals differ from the project's is not
measuring the same thing, so ``check_equal`` runs every example, every case of the scheme's rule
files and a few hundred random fact sets through all three first and stops at the first
difference, naming the unit and both totals.

The graph, in GoRules' own vocabulary:

- one decision table per ``bands`` rule (hit policy "first"): its input is the rule's measure
  (null when a fact is missing, the measure undefined or the rule's condition false), one row per
  band, the band's points out;
- one expression node per clause: each rule's points, the clause's raw sum, and its points
  (0 when vetoed or a fact is missing, else clamped to the clause's range, plus its own bonus);
- one expression node for the categories (with their caps) and the total, which it also writes as
  a string: zen hands numbers to Python as floats, the string keeps its exact decimal.

Kinds without a translation here (maturity, weighted), facts that apply only sometimes
(applies_when) and fact names zen cannot read as identifiers make ``Unsupported``: the benchmark
skips such a scheme with a line saying why.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from service.domain import expressions as ex
from service.domain.model import DEDUCTION, Category, Clause, Rule, Scheme
from service.domain.numbers import CONTEXT, ZERO, clamp

#: the kinds translated here; others make the scheme ``Unsupported``
KINDS = ("fixed", "bands", "per_unit", "steps", "scaled", "assessed")

#: zen's decimals carry 28 significant digits, ours 34: a division that does not terminate ends
#: differently, so totals are compared to this many places (all shipped totals are exact anyway)
PLACES = Decimal("1e-20")

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RESERVED = {"and", "or", "not", "in", "true", "false", "null", "this"}


class Unsupported(Exception):
    """The scheme uses something the generator does not translate (the message says what)."""


class Mismatch(Exception):
    """A contender's total differs from the project's on one unit."""

    def __init__(self, scheme: str, unit: str, contender: str, ours: Decimal, theirs: Any):
        super().__init__(f"{scheme}：单位“{unit}”总分不一致：本项目 {ours}，{contender} {theirs}")
        self.unit, self.ours, self.theirs = unit, ours, theirs


# --- expressions ---------------------------------------------------------------------


def zen_expr(node: ex.Expr) -> str:
    """``node`` in zen's expression language (facts are top-level names of the context)."""
    if isinstance(node, ex.Num):
        return _number(node.value)
    if isinstance(node, ex.Const):
        if isinstance(node.value, bool):
            return "true" if node.value else "false"
        return json.dumps(node.value, ensure_ascii=False)
    if isinstance(node, ex.Name):
        return node.name
    if isinstance(node, ex.Neg):
        return f"(-{zen_expr(node.operand)})"
    if isinstance(node, (ex.Arith, ex.Compare)):
        return f"({zen_expr(node.left)} {node.op} {zen_expr(node.right)})"
    if isinstance(node, ex.Logic):
        return "(" + f" {node.op} ".join(zen_expr(o) for o in node.operands) + ")"
    if isinstance(node, ex.Not):
        return f"(not {zen_expr(node.operand)})"
    if isinstance(node, ex.Call):
        args = ", ".join(zen_expr(a) for a in node.args)
        return f"abs({args})" if node.function == "abs" else f"{node.function}([{args}])"
    raise Unsupported(f"表达式节点 {type(node).__name__}")  # pragma: no cover


def _number(value: Decimal) -> str:
    text = format(value, "f")
    return f"({text})" if text.startswith("-") else text


def _present(names: Iterable[str]) -> str:
    """Every fact named is given (zen refuses to compare null, and missing is never a value)."""
    tests = [f"{n} != null" for n in dict.fromkeys(names)]
    return " and ".join(tests) or "true"


def _guarded(rule: Rule, value: str, names: Iterable[str] = ()) -> str:
    """``value`` when the rule's facts are given and its condition holds, else null."""
    names = list(names) + (ex.names(rule.when) if rule.when is not None else [])
    inner = value if rule.when is None else f"({zen_expr(rule.when)}) ? {value} : null"
    return f"({_present(names)}) ? ({inner}) : null"


def _held(amount: str, limit: Decimal | None) -> str:
    """A rule's ``cap`` either side of 0 (``wording.cap``)."""
    if limit is None:
        return amount
    return f"min([max([{amount}, {_number(-limit)}]), {_number(limit)}])"


# --- the graph -------------------------------------------------------------------------


def supported(scheme: Scheme) -> None:
    """Raise ``Unsupported`` when the scheme uses what the generator does not translate."""
    kinds = sorted({r.kind for c in scheme.clauses.values() for r in c.rules} - set(KINDS))
    if kinds:
        raise Unsupported("规则类型 " + "、".join(kinds) + " 没有对应的决策图写法")
    idle = [n for n, f in scheme.facts.items() if f.applies_when is not None]
    if idle:
        raise Unsupported("事实 " + "、".join(idle) + " 设有 applies_when")
    bad = [n for n in scheme.facts if not _IDENT.fullmatch(n) or n in _RESERVED]
    if bad:
        raise Unsupported("事实名 " + "、".join(bad) + " 不能作为 zen 表达式的名字")


def _node(node_id: str, kind: str, name: str, content: dict | None = None) -> dict:
    out: dict = {"id": node_id, "type": kind, "name": name, "position": {"x": 0, "y": 0}}
    if content is not None:
        out["content"] = content
    return out


def _bands_table(table_id: str, clause: Clause, rule: Rule, out_key: str) -> dict:
    measure = _guarded(rule, zen_expr(rule.measure), ex.names(rule.measure))
    rows = []
    for i, band in enumerate(rule.bands, 1):
        r = band.range
        tests = ["$ != null"]
        if r.low is not None:
            tests.append(f"$ {'>=' if r.low_closed else '>'} {_number(r.low)}")
        if r.high is not None:
            tests.append(f"$ {'<=' if r.high_closed else '<'} {_number(r.high)}")
        rows.append({"_id": f"b{i}", "m": " and ".join(tests), "p": _number(band.points)})
    content = {
        "hitPolicy": "first",
        "inputs": [{"id": "m", "name": rule.measure_text, "field": measure}],
        "outputs": [{"id": "p", "name": "分值", "field": out_key}],
        "rules": rows,
    }
    return _node(table_id, "decisionTableNode", f"条款{clause.id} {rule.id} 分档", content)


def _rule_points(rule: Rule, measure_key: str, band_key: str, floor: Decimal) -> tuple[str, str]:
    """(the rule's measure or value expression or "", its points) for one rule of a clause."""
    if rule.kind == "fixed":
        return "", f"({_guarded(rule, 'true')}) == true ? {_number(rule.points)} : 0"
    if rule.kind == "bands":
        return "", f"{band_key} ?? 0"
    m = f"$.{measure_key}"
    if rule.kind in ("scaled", "assessed"):
        value = _guarded(rule, rule.value, [rule.value])
        amount = (
            m
            if rule.kind == "assessed"
            else f"{m} * {_number(rule.scale_to)} / {_number(rule.scale_from)}"
        )
        return value, f"({m} != null and {m} >= {_number(floor)}) ? ({amount}) : 0"
    measure = _guarded(rule, zen_expr(rule.measure), ex.names(rule.measure))
    each = _number(rule.each)
    if rule.kind == "per_unit":
        held = _held(f"{m} * {each}", rule.cap)
        return measure, f"({m} != null and {m} > 0) ? ({held}) : 0"
    step = _number(rule.step)
    if rule.whole_steps:
        held = _held(f"trunc({m} / {step}) * {each}", rule.cap)
        return measure, f"({m} != null and {m} >= {step}) ? ({held}) : 0"
    held = _held(f"{m} / {step} * {each}", rule.cap)
    return measure, f"({m} != null and {m} > 0) ? ({held}) : 0"


def _clause_node(scheme: Scheme, node_id: str, clause: Clause, key: str, bands: dict) -> dict:
    expressions = []

    def put(name: str, value: str) -> None:
        expressions.append({"id": f"{key}_{name}", "key": f"{key}.{name}", "value": value})

    base, bonus = [], []
    for j, rule in enumerate(clause.rules):
        spec = scheme.facts.get(rule.value) if rule.value else None
        floor = spec.minimum if spec is not None and spec.minimum is not None else Decimal("-1e12")
        measure, points = _rule_points(rule, f"{key}.m{j}", bands.get(j, ""), floor)
        if measure:
            put(f"m{j}", measure)
        put(f"r{j}", points)
        (bonus if rule.bonus else base).append(f"$.{key}.r{j}")
    required = [n for n in clause.reads if scheme.facts[n].required]
    put("missing", f"not ({_present(required)})" if required else "false")
    vetoes = [_guarded_veto(v) for v in clause.vetoes]
    put("vetoed", " or ".join(vetoes) if vetoes else "false")
    start = clause.points if clause.start == "full" else ZERO
    put("raw", " + ".join([_number(start), *base]))
    scored = f"min([max([$.{key}.raw, {_number(clause.low)}]), {_number(clause.high)}])"
    if clause.bonus_cap is not None:
        extra = " + ".join(bonus) or "0"
        scored += f" + min([max([{extra}, 0]), {_number(clause.bonus_cap)}])"
    put("points", f"($.{key}.vetoed or $.{key}.missing) ? 0 : ({scored})")
    return _node(
        node_id, "expressionNode", f"条款{clause.id} {clause.title}", {"expressions": expressions}
    )


def _guarded_veto(veto) -> str:
    return f"(({_present(ex.names(veto.when))}) ? ({zen_expr(veto.when)}) : false) == true"


def _total_node(scheme: Scheme, keys: Mapping[str, str]) -> dict:
    expressions = []
    counter = iter(range(10**6))

    def walk(cat: Category) -> str:
        parts = [f"{keys[c]}.points" for c in cat.clauses]
        parts += [walk(child) for child in cat.children]
        key = f"cat.k{next(counter)}"
        raw = " + ".join(parts) or "0"
        if cat.cap is None:
            value = raw
        elif cat.kind == DEDUCTION:
            value = f"max([{raw}, {_number(-cat.cap)}])"
        else:
            value = _held(raw, cat.cap)
        expressions.append({"id": key, "key": key, "value": value, "name": cat.title})
        return f"$.{key}"

    tops = [walk(top) for top in scheme.categories]
    expressions.append({"id": "total", "key": "total", "value": " + ".join(tops) or "0"})
    expressions.append({"id": "total_text", "key": "total_text", "value": "string($.total)"})
    return _node("total", "expressionNode", "合计", {"expressions": expressions})


def graph(scheme: Scheme) -> dict:
    """The JDM decision graph of ``scheme``; ``Unsupported`` when it cannot be written."""
    supported(scheme)
    nodes = [_node("in", "inputNode", "事实"), _node("out", "outputNode", "结果")]
    edges: list[dict] = []

    def edge(a: str, b: str) -> None:
        edges.append({"id": f"{a}>{b}", "sourceId": a, "targetId": b, "type": "edge"})

    keys = {}
    for i, (cid, clause) in enumerate(scheme.clauses.items()):
        key = keys[cid] = f"c{i}"
        bands = {}
        node_id = f"clause{i}"
        for j, rule in enumerate(clause.rules):
            if rule.kind == "bands":
                table_id, bands[j] = f"bands{i}_{j}", f"band_{i}_{j}"
                nodes.append(_bands_table(table_id, clause, rule, bands[j]))
                edge("in", table_id)
                edge(table_id, node_id)
        nodes.append(_clause_node(scheme, node_id, clause, key, bands))
        edge("in", node_id)
        edge(node_id, "total")
    nodes.append(_total_node(scheme, keys))
    edge("total", "out")
    return {"nodes": nodes, "edges": edges}


def zen_total(response: Mapping) -> Decimal:
    """The exact total from a zen response (the string the total node writes)."""
    return Decimal(response["result"]["total_text"])


# --- the floor -------------------------------------------------------------------------


def _py(node: ex.Expr) -> str:
    """``node`` as Python source over ``v`` (the facts), with the core's exact arithmetic."""
    if isinstance(node, (ex.Num, ex.Const)):
        return (
            repr(node.value) if not isinstance(node.value, Decimal) else f"D({str(node.value)!r})"
        )
    if isinstance(node, ex.Name):
        return f"v[{node.name!r}]"
    if isinstance(node, ex.Neg):
        return f"C.minus({_py(node.operand)})"
    if isinstance(node, ex.Arith):
        fn = {"+": "C.add", "-": "C.subtract", "*": "C.multiply", "/": "div"}[node.op]
        return f"{fn}({_py(node.left)}, {_py(node.right)})"
    if isinstance(node, ex.Compare):
        return f"({_py(node.left)} {node.op} {_py(node.right)})"
    if isinstance(node, ex.Logic):
        return "(" + f" {node.op} ".join(_py(o) for o in node.operands) + ")"
    if isinstance(node, ex.Not):
        return f"(not {_py(node.operand)})"
    if isinstance(node, ex.Call):
        args = ", ".join(_py(a) for a in node.args)
        return f"abs({args})" if node.function == "abs" else f"{node.function}({args})"
    raise Unsupported(type(node).__name__)  # pragma: no cover


class _Undefined(Exception):
    pass


def _div(a, b):
    if not b:
        raise _Undefined
    return CONTEXT.divide(a, b)


_SCOPE = {"D": Decimal, "C": CONTEXT, "div": _div}


def _compile(node: ex.Expr | None) -> Callable[[Mapping], Any] | None:
    """A function of the facts giving ``node``'s value; ``_Undefined`` for a missing fact or /0."""
    if node is None:
        return None
    names = ex.names(node)
    code = eval(f"lambda v: {_py(node)}", dict(_SCOPE))  # noqa: S307 - our own generated source
    if not names:
        return code

    def guarded(v):
        for n in names:
            if v.get(n) is None:
                raise _Undefined
        return code(v)

    return guarded


def _hold(amount: Decimal, limit: Decimal | None) -> Decimal:
    if limit is None or abs(amount) <= limit:
        return amount
    return limit if amount > 0 else -limit


class _Bands:
    """Bisect over the band edges: the band whose low edge is the last at or below the value,
    or the one before it when the value sits on an edge the band leaves open."""

    def __init__(self, rule: Rule):
        ordered = sorted(
            rule.bands, key=lambda b: b.range.low if b.range.low is not None else Decimal("-1e30")
        )
        self.bands = ordered
        self.lows = [b.range.low if b.range.low is not None else Decimal("-1e30") for b in ordered]

    def points(self, m: Decimal) -> Decimal:
        i = bisect_right(self.lows, m) - 1
        for j in (i, i - 1):
            if 0 <= j < len(self.bands) and self.bands[j].range.contains(m):
                return self.bands[j].points
        return ZERO


def _floor_rule(scheme: Scheme, rule: Rule) -> Callable[[Mapping], Decimal]:
    when = _compile(rule.when)
    measure = _compile(rule.measure)
    kind = rule.kind
    bands = _Bands(rule) if kind == "bands" else None
    spec = scheme.facts.get(rule.value) if rule.value else None
    floor = spec.minimum if spec is not None and spec.minimum is not None else Decimal("-1e12")

    def points(v: Mapping) -> Decimal:
        try:
            if when is not None and not when(v):
                return ZERO
            if kind == "fixed":
                return rule.points
            if kind in ("scaled", "assessed"):
                x = v.get(rule.value)
                if x is None or x < floor:
                    return ZERO
                if kind == "assessed":
                    return x
                return CONTEXT.divide(CONTEXT.multiply(x, rule.scale_to), rule.scale_from)
            m = measure(v)
        except _Undefined:
            return ZERO
        if bands is not None:
            return bands.points(m)
        if kind == "per_unit":
            return _hold(CONTEXT.multiply(m, rule.each), rule.cap) if m > 0 else ZERO
        if rule.whole_steps:
            if m < rule.step:
                return ZERO
            return _hold(CONTEXT.multiply(CONTEXT.divide_int(m, rule.step), rule.each), rule.cap)
        return (
            _hold(CONTEXT.multiply(CONTEXT.divide(m, rule.step), rule.each), rule.cap)
            if m > 0
            else ZERO
        )

    return points


class Floor:
    """The least a scorer must do: each clause's points from its rules and the total, exact
    decimals, no trace, no matcher, no checks of the facts."""

    def __init__(self, scheme: Scheme):
        supported(scheme)
        self.clauses = {}
        for cid, clause in scheme.clauses.items():
            rules = [(_floor_rule(scheme, r), r.bonus) for r in clause.rules]
            required = tuple(n for n in clause.reads if scheme.facts[n].required)
            vetoes = [_compile(v.when) for v in clause.vetoes]
            start = clause.points if clause.start == "full" else ZERO
            self.clauses[cid] = (clause, rules, required, vetoes, start)
        self.categories = scheme.categories

    def _clause(self, v: Mapping, entry) -> Decimal:
        clause, rules, required, vetoes, start = entry
        for n in required:
            if v.get(n) is None:
                return ZERO
        for veto in vetoes:
            try:
                if veto(v):
                    return ZERO
            except _Undefined:
                pass
        raw, bonus = start, ZERO
        for points, is_bonus in rules:
            if is_bonus:
                bonus += points(v)
            else:
                raw += points(v)
        out = clamp(raw, clause.low, clause.high)
        if clause.bonus_cap is not None:
            out += clamp(bonus, ZERO, clause.bonus_cap)
        return out

    def total(self, v: Mapping) -> Decimal:
        points = {cid: self._clause(v, entry) for cid, entry in self.clauses.items()}

        def walk(cat: Category) -> Decimal:
            raw = sum((points[c] for c in cat.clauses), ZERO) + sum(
                (walk(ch) for ch in cat.children), ZERO
            )
            if cat.cap is None:
                return raw
            return max(raw, -cat.cap) if cat.kind == DEDUCTION else _hold(raw, cat.cap)

        return sum((walk(top) for top in self.categories), ZERO)


# --- the equality check ----------------------------------------------------------------


def same(ours: Decimal, theirs: Decimal) -> bool:
    return ours.quantize(PLACES) == Decimal(theirs).quantize(PLACES)


def check_equal(
    scheme: Scheme,
    units: Mapping[str, Mapping],
    ours: Mapping[str, Decimal],
    decision,
    floor: Floor,
    body: Callable[[Mapping], bytes],
) -> int:
    """Stop at the first unit whose zen or floor total differs from ``ours``; the number checked."""
    from service.jsonio import loads

    for unit, facts in units.items():
        payload = body(facts)
        theirs = zen_total(decision.evaluate(payload))
        if not same(ours[unit], theirs):
            raise Mismatch(scheme.id, unit, "zen-engine", ours[unit], theirs)
        lowest = floor.total(loads(payload))
        if not same(ours[unit], lowest):
            raise Mismatch(scheme.id, unit, "下限（纯 Python）", ours[unit], lowest)
    return len(units)


# --- the fact sets checked ---------------------------------------------------------------


def body(facts: Mapping) -> bytes:
    """A what-if request's facts as JSON (decimals written as JSON numbers, as a client sends)."""
    import simplejson

    given = {k: v for k, v in facts.items() if v is not None}
    return simplejson.dumps(given, use_decimal=True, ensure_ascii=False).encode("utf-8")


def fact_sets(scheme: Scheme, examples_dir, randoms: int = 300, seed: int = 2026) -> dict:
    """Every example unit of the scheme, every case in its rule files (clause and scheme tests) and
    ``randoms`` random fact sets (one in five with a fact left out), by a unit name saying which."""
    import random
    from pathlib import Path

    from service.cli import read_facts_file

    from .bench import random_facts

    out: dict[str, Mapping] = {}
    for path in sorted(Path(examples_dir).glob("*.y*ml")):
        text = path.read_text(encoding="utf-8")
        if path.stem == scheme.id or f"scoring score {scheme.id} " in text:
            for unit, facts in read_facts_file(path).items():
                out[f"示例 {path.name} {unit}"] = facts
    for test in scheme.tests:
        out[f"细则用例 {test.name}"] = test.facts
    for clause in scheme.clauses.values():
        for test in clause.tests:
            out[f"条款{clause.id}用例 {test.name}"] = test.facts
    rng = random.Random(seed)
    names = sorted(scheme.facts)
    for i in range(randoms):
        facts = random_facts(scheme, rng)
        if i % 5 == 4:
            facts.pop(rng.choice(names), None)
        out[f"随机 {i}"] = facts
    return out
