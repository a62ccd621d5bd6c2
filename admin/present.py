"""What the pages show, shaped from the service's data: no scoring happens here.

- ``score_view``: a stored trace (``service.domain.trace.to_data``) laid out by
  category, with every clause's points out of its maximum, its explanation, the
  rules that fired and those that did not, vetoes and missing facts;
- ``ranking_chart``: the category scores of every unit as an inline SVG bar chart;
- ``rule_words``/``condition_words``: a rule file's rules in plain Chinese;
- ``when``: times in China Standard Time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from service.domain.blocks import BLOCKS, Description
from service.domain.numbers import display, plain
from service.domain.scoring import value_words

CST = timezone(timedelta(hours=8), "北京时间")
STATUS_WORDS = {"scored": "已计分", "incomplete": "缺少事实", "vetoed": "被否决"}
KIND_WORDS = {"standard": "基本分", "bonus": "加分项", "deduction": "扣分项"}
ROLE_WORDS = {"self": "自评", "review": "评审"}
METHOD_WORDS = {"none": "不评等级", "thresholds": "按分数线评等级", "rank": "按名次评等级"}


def pts(value) -> str:
    """Points as people read them: 2 decimal places (reading 8)."""
    if value is None or value == "":
        return "—"
    return display(value if isinstance(value, Decimal) else Decimal(str(value)))


def num(value) -> str:
    return value_words(value, missing="—")


def when(value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:  # SQLite gives back naive UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone(CST).strftime("%Y-%m-%d %H:%M")


# --- categories and clauses in the order of the document -------------------------------------


def outline(roots, key, children, own, position) -> list:
    """[(category, depth, [clause ids], continued)] in document order.

    A category's own clauses and its sub-categories are interleaved by the
    position of their first clause (as ``service.domain.trace.render`` does), so
    clause 2.1 under sub-category 2 comes between clauses 1 and 3 of the parent;
    the parent's clauses after a sub-category form a block marked ``continued``.
    """
    first: dict = {}

    def first_of(cat) -> int:
        k = key(cat)
        if k not in first:
            first[k] = min(
                [position[c] for c in own(cat)] + [first_of(ch) for ch in children(cat)],
                default=len(position),
            )
        return first[k]

    out: list = []

    def walk(cat, depth):
        items = sorted(
            [(position[c], 0, c) for c in own(cat)]
            + [(first_of(ch), 1, ch) for ch in children(cat)],
            key=lambda item: (item[0], item[1]),
        )
        run, started = [], False
        for _pos, is_cat, item in items:
            if not is_cat:
                run.append(item)
                continue
            if run or not started:
                out.append((cat, depth, run, started))
                started, run = True, []
            walk(item, depth + 1)
        if run or not started:
            out.append((cat, depth, run, started))

    for root in sorted(roots, key=first_of):
        walk(root, 0)
    return out


# --- the explained score ----------------------------------------------------------------------


@dataclass
class ClauseView:
    data: dict
    points: Decimal
    maximum: Decimal
    missing: list  # labels
    fired: list
    not_fired: list
    vetoes: list

    @property
    def lost(self) -> Decimal:
        return self.maximum - self.points if self.data["kind"] == "standard" else Decimal(0)

    @property
    def status(self) -> str:
        return self.data["status"]


@dataclass
class Block:
    cat: dict
    depth: int
    clauses: list = field(default_factory=list)
    continued: bool = False


@dataclass
class ScoreView:
    trace: dict
    blocks: list
    total: Decimal
    incomplete: list  # ClauseView
    vetoed: list
    lost: list  # standard clauses below their maximum (scored)
    no_bonus: list
    deducted: list
    missing: list  # labels


def _label(facts: Mapping, name: str) -> str:
    spec = facts.get(name)
    return spec.label if spec is not None else name


def score_view(trace: dict, facts: Mapping) -> ScoreView:
    """``facts``: the scheme version's FactSpecs by name (for labels)."""
    views = {}
    for c in trace["clauses"]:
        views[c["id"]] = ClauseView(
            c,
            Decimal(c["points"]),
            Decimal(c["maximum"]),
            [_label(facts, n) for n in c["missing"]],
            [r for r in c["rules"] if r["fired"]],
            [r for r in c["rules"] if not r["fired"]],
            [x for x in c["vetoes"] if x["fired"]],
        )
    blocks = [
        Block(cat, depth, [views[c] for c in ids], continued)
        for cat, depth, ids, continued in trace_outline(trace)
    ]
    scored = [v for v in views.values() if v.status == "scored"]
    return ScoreView(
        trace=trace,
        blocks=blocks,
        total=Decimal(trace["total"]),
        incomplete=[v for v in views.values() if v.status == "incomplete"],
        vetoed=[v for v in views.values() if v.status == "vetoed"],
        lost=[v for v in scored if v.data["kind"] == "standard" and v.points < v.maximum],
        no_bonus=[v for v in scored if v.data["kind"] == "bonus" and v.points == 0],
        deducted=[v for v in scored if v.data["kind"] == "deduction" and v.points != 0],
        missing=[_label(facts, n) for n in trace.get("missing", [])],
    )


def trace_outline(trace: dict) -> list:
    """``outline`` of a stored trace: (category dict, depth, [clause ids], continued)."""
    children: dict = {}
    for cat in trace["categories"]:
        children.setdefault(cat["parent"], []).append(cat)
    own: dict = {}
    for c in trace["clauses"]:
        own.setdefault(c["category"], []).append(c["id"])
    position = {c["id"]: i for i, c in enumerate(trace["clauses"])}
    return outline(
        children.get(None, []),
        lambda c: c["id"],
        lambda c: children.get(c["id"], []),
        lambda c: own.get(c["id"], []),
        position,
    )


# --- the ranking chart ------------------------------------------------------------------------

PALETTE = [
    "#2f6db5",
    "#62a3d9",
    "#3f9c8f",
    "#8bbf6a",
    "#d9a43b",
    "#8e7cc3",
    "#c9716b",
    "#6b8fb3",
    "#b08d57",
    "#5f7d95",
]
BONUS_COLOUR = "#2e9d5b"


@dataclass
class Segment:
    x: float
    width: float
    colour: str
    title: str
    deduction: bool = False


@dataclass
class Bar:
    y: float
    label: str
    rank: int
    total: str
    end: float
    segments: list
    note: str = ""


@dataclass
class Chart:
    width: int
    height: int
    left: int
    plot: int
    legend: list  # (colour, title, deduction?)
    ticks: list  # (x, label)
    bars: list
    row: int


def ranking_chart(
    entries: list, traces: Mapping, point_unit: str, maximum: Decimal
) -> Chart | None:
    """One horizontal bar per unit, one coloured segment per top-level category (bonus green),
    a deduction hatched in red over the end of the bar it takes away from."""
    if not entries:
        return None
    cats: list = []
    seen: set = set()
    for e in entries:
        for c in traces[e["unit_code"]]["categories"]:
            if c["parent"] is None and c["id"] not in seen:
                seen.add(c["id"])
                cats.append(c)
    colours, i = {}, 0
    for c in cats:
        if c["kind"] == "bonus":
            colours[c["id"]] = BONUS_COLOUR
        elif c["kind"] == "deduction":
            colours[c["id"]] = "url(#deduction)"
        else:
            colours[c["id"]] = PALETTE[i % len(PALETTE)]
            i += 1
    positive = []
    for e in entries:
        tops = [c for c in traces[e["unit_code"]]["categories"] if c["parent"] is None]
        positive.append(
            sum((Decimal(c["points"]) for c in tops if Decimal(c["points"]) > 0), Decimal(0))
        )
    top = max([maximum, *positive]) or Decimal(1)
    step = next(s for s in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000, 10**9) if top / s <= 10)
    scale_max = float(((top + step - 1) // step) * step) if top % step else float(top)
    left, plot, row = 190, 700, 30
    width, top_pad = left + plot + 80, 56
    height = top_pad + row * len(entries) + 10
    k = plot / scale_max
    bars = []
    for n, e in enumerate(entries):
        tops = [c for c in traces[e["unit_code"]]["categories"] if c["parent"] is None]
        x, segs = 0.0, []
        for c in tops:
            p = float(Decimal(c["points"]))
            if p > 0:
                maxi = f"/{pts(c['maximum'])}" if c.get("maximum") is not None else ""
                segs.append(
                    Segment(
                        left + x * k,
                        p * k,
                        colours[c["id"]],
                        f"{c['title']}：{pts(c['points'])}{maxi}{point_unit}",
                    )
                )
                x += p
        end = x
        for c in tops:
            p = float(Decimal(c["points"]))
            if p < 0:
                w = min(-p, end) * k
                segs.append(
                    Segment(
                        left + end * k - w,
                        w,
                        colours[c["id"]],
                        f"{c['title']}：{pts(c['points'])}{point_unit}",
                        deduction=True,
                    )
                )
                end += p
        grade = e.get("grade") or ""
        extra = "·".join(e.get("distinctions") or [])
        note = " ".join(x for x in (grade, extra) if x)
        bars.append(
            Bar(
                top_pad + n * row,
                e["unit"],
                e["rank"],
                pts(e["total"]),
                left + max(x, 0) * k,
                segs,
                note,
            )
        )
    ticks = []
    t = 0
    while t <= scale_max + 1e-9:
        ticks.append((left + t * k, plain(Decimal(str(t)).normalize()) if t else "0"))
        t += step
    legend = [(colours[c["id"]], c["title"], c["kind"] == "deduction") for c in cats]
    return Chart(width, height, left, plot, legend, ticks, bars, row)


# --- rules in words -----------------------------------------------------------------------------

_TOKEN = re.compile(r'"[^"]*"|\'[^\']*\'|[A-Za-z_][A-Za-z0-9_]*|>=|<=|==|!=|[<>]|\S')
_OPS = {
    "and": "且",
    "or": "或",
    "not": "并非",
    "true": "是",
    "false": "否",
    ">=": "≥",
    "<=": "≤",
    "==": "等于",
    "!=": "不等于",
    ">": "＞",
    "<": "＜",
    "*": "×",
    "/": "÷",
    "-": "−",
}


def condition_words(text: str, facts: Mapping) -> str:
    """A rule file's expression with fact names replaced by their Chinese labels."""
    if not text:
        return ""
    out = []
    for tok in _TOKEN.findall(text):
        if tok in facts:
            out.append(f"「{facts[tok].label}」")
        elif tok in _OPS:
            out.append(_OPS[tok])
        elif tok[:1] in "\"'":
            out.append(f"“{tok[1:-1]}”")
        else:
            out.append(tok)
    return " ".join(out).replace(" ( ", "（").replace("( ", "（").replace(" )", "）")


_QUOTED = re.compile(r"“([^“”]+)”")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def humanize(text: str, facts: Mapping) -> str:
    """A trace sentence with any quoted rule expression (条件“a and b”) put in words (条件「甲」且「乙」)."""
    if not text or "“" not in text:
        return text

    def one(m):
        expr = m.group(1)
        names = [n for n in _NAME.findall(expr) if n not in _OPS]
        if names and all(n in facts for n in names):
            return condition_words(expr, facts)
        return m.group(0)

    return _QUOTED.sub(one, text)


#: each building block's name on the admin pages, as its block gives it
RULE_KIND_WORDS = {kind: block.title for kind, block in BLOCKS.items()}


def _signed(amount: Decimal, u: str) -> str:
    return f"扣{plain(-amount)}{u}" if amount < 0 else f"得{plain(amount)}{u}"


def rule_words(rule, clause, facts: Mapping, u: str) -> str:
    """One sentence saying what a rule does (bands and levels are listed beside it)."""
    block = BLOCKS.get(rule.kind)
    cond = f"当{condition_words(rule.when_text, facts)}时，" if rule.when_text else ""
    if block is None:  # pragma: no cover - the loader admits no other kind
        return cond
    description = Description(
        condition=cond,
        measure=rule.measure_label or condition_words(rule.measure_text, facts),
        cap=f"，最多{plain(rule.cap)}{u}" if rule.cap is not None else "",
        unit=u,
        label=lambda name: _label(facts, name),
        signed=lambda amount: _signed(amount, u),
    )
    return block.describe(rule, clause, description)


def facts_words(values: Mapping, facts: Mapping) -> str:
    return "，".join(
        f"{_label(facts, n)}＝{num(v)}{facts[n].unit if n in facts and v is not None else ''}"
        for n, v in values.items()
    )


def fact_words(spec) -> str:
    """A fact's type and range in words, for the rules page."""
    from service.domain.facts import allowed

    unit = f"（{spec.unit}）" if spec.unit and spec.type in ("number", "integer", "percent") else ""
    return allowed(spec) + unit + ("" if spec.required else "，可不填")


def grading_words(grading) -> str:
    """How a scheme grades, in one line: tiers, then distinctions."""
    words = METHOD_WORDS[grading.method]
    tiers = []
    for t in grading.tiers:
        name = t.title or t.grade
        if t.min is not None:
            tiers.append(f"{name}（总分≥{plain(t.min)}）")
        elif t.top is not None:
            tiers.append(f"{name}（前{t.top}名）")
        else:
            tiers.append(f"{name}（其余）")
    for d in grading.distinctions:
        rule = f"前{d.top}名" if d.top is not None else f"总分≥{plain(d.min)}"
        tiers.append(f"{d.grade}档{rule}评“{d.name}”")
    return words + ("：" + "；".join(tiers) if tiers else "")
