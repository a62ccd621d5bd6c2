"""A scheme as the scoring core sees it, once its rule files have been read.

Everything here is plain data.  ``service.rulefiles`` builds it from YAML and
checks it; ``service.domain.scoring`` evaluates it against facts.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from decimal import Decimal

from . import expressions as ex
from .conditions import AllOf, Comparison, Condition

# Fact types a rule file may declare, and the expression type each has.
FACT_TYPES = {
    "number": ex.NUMBER,
    "integer": ex.NUMBER,
    "percent": ex.NUMBER,
    "boolean": ex.BOOLEAN,
    "text": ex.TEXT,
    "choice": ex.TEXT,
}

# Clause kinds: how the clause's points are bounded.
STANDARD, BONUS, DEDUCTION = "standard", "bonus", "deduction"


@dataclass(frozen=True)
class Source:
    document: str
    ref: str
    text: str


@dataclass(frozen=True)
class Interval:
    """A band's range on a measure, as written: "(3, 5]", "[94.5, inf)"."""

    low: Decimal | None
    low_closed: bool
    high: Decimal | None
    high_closed: bool
    text: str

    def contains(self, value: Decimal) -> bool:
        if self.low is not None and (
            value < self.low or (value == self.low and not self.low_closed)
        ):
            return False
        return not (
            self.high is not None
            and (value > self.high or value == self.high and not self.high_closed)
        )

    def condition(self, operand: str) -> Condition:
        tests = []
        if self.low is not None:
            tests.append(Comparison(operand, ">=" if self.low_closed else ">", self.low))
        if self.high is not None:
            tests.append(Comparison(operand, "<=" if self.high_closed else "<", self.high))
        return AllOf(tuple(tests))

    def words(self) -> str:
        """The range in plain Chinese, for the trace."""
        if self.low is not None and self.high is not None and self.low == self.high:
            return f"等于{_n(self.low)}"
        parts = []
        if self.low is not None:
            parts.append(f"{'不低于' if self.low_closed else '高于'}{_n(self.low)}")
        if self.high is not None:
            parts.append(f"{'不高于' if self.high_closed else '低于'}{_n(self.high)}")
        return "且".join(parts) or "任意值"


def _n(value: Decimal) -> str:
    from .numbers import plain

    return plain(value)


@dataclass(frozen=True)
class FactSpec:
    name: str
    type: str
    label: str
    unit: str = ""
    help: str = ""
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    choices: tuple = ()
    required: bool = True
    owner: str = ""  # clause id, or "" for a scheme-level fact
    #: the fact means something only when this holds ("主任委员" only if a committee exists);
    #: it reads other facts that are always asked for, never itself (the loader checks)
    applies_when: ex.Expr | None = None
    applies_when_text: str = ""
    #: "与上年度相比": the fact is the same unit's value of this fact (of this scheme's facts) in
    #: the previous year's round, read from its reviewed facts when the product has them
    previous_year: str = ""

    @property
    def expr_type(self) -> str:
        return FACT_TYPES[self.type]


@dataclass(frozen=True)
class Band:
    range: Interval
    points: Decimal
    label: str = ""


@dataclass(frozen=True)
class Level:
    range: Interval
    label: str
    text: str = ""


@dataclass(frozen=True)
class Part:
    """One part of a ``weighted`` rule: a number fact, its weight, and the fact's maximum."""

    fact: str
    weight: Decimal
    maximum: Decimal


@dataclass(frozen=True)
class Panel:
    """Reviewers scoring a clause independently (专家评审): ``reviewers`` marks are entered, the
    ``drop_highest`` highest and ``drop_lowest`` lowest are set aside (去掉一个最高分和一个最低分),
    and the clause takes the mean of the rest.  Every number is the rule file's."""

    reviewers: int
    drop_highest: int = 0
    drop_lowest: int = 0

    @property
    def counted(self) -> int:
        """How many marks the mean is taken over."""
        return self.reviewers - self.drop_highest - self.drop_lowest


@dataclass(frozen=True)
class Rule:
    """One scoring rule of a clause.  ``kind`` picks the building block (``blocks.BLOCKS``, one
    module each in service/domain/blocks, owns everything a kind means):

    fixed      -- ``points`` when ``when`` holds (checklists)
    bands      -- one band of ``bands`` by the value of ``measure`` (tiers)
    per_unit   -- ``each`` × ``count``, at most ``cap`` (per case, per award)
    steps      -- ``each`` per ``step`` of ``measure``, whole steps or proportional, at most ``cap``
    scaled     -- a score from another body, ``value`` × ``scale_to`` / ``scale_from``
    assessed   -- points set by reviewers, ``value``, with a written ``reason``
    maturity   -- the clause's points × ``value`` %, the maturity ``levels`` naming the level
    weighted   -- Σ ``weight`` × part over the ``parts`` (number facts), at most ``cap``
    """

    id: str
    kind: str
    title: str = ""
    note: str = ""
    when: ex.Expr | None = None
    when_text: str = ""
    points: Decimal | None = None
    measure: ex.Expr | None = None
    measure_text: str = ""
    measure_label: str = ""
    bands: tuple = ()
    each: Decimal | None = None
    step: Decimal | None = None
    whole_steps: bool = True
    cap: Decimal | None = None
    value: str = ""
    reason: str = ""
    scale_from: Decimal | None = None
    scale_to: Decimal | None = None
    levels: tuple = ()
    parts: tuple = ()
    #: assessed: the panel of reviewers whose marks give ``value`` (None: one value, as entered)
    panel: Panel | None = None
    #: a bonus rule of its clause: counts beyond the clause's points, up to the clause's bonus cap
    bonus: bool = False
    # The facts ``when`` and ``measure`` read, in order (``expressions.names``), worked out on
    # first use and then kept in the rule: every rule of every unit shows them in its trace, and
    # asking the expression each time hashed its whole tree per rule per unit.  Not fields, so
    # neither compared nor written out; nor worked out at load, for rules never scored.

    @functools.cached_property
    def when_names(self) -> tuple[str, ...]:
        return _names_of(self.when)

    @functools.cached_property
    def measure_names(self) -> tuple[str, ...]:
        return _names_of(self.measure)


def _names_of(expr: ex.Expr | None) -> tuple[str, ...]:
    return tuple(ex.names(expr)) if expr is not None else ()


@dataclass(frozen=True)
class ClauseVeto:
    id: str
    when: ex.Expr
    when_text: str
    reason: str

    @functools.cached_property
    def when_names(self) -> tuple[str, ...]:
        """The facts ``when`` reads, worked out once (see ``Rule.when_names``)."""
        return _names_of(self.when)


@dataclass(frozen=True)
class ClauseTest:
    name: str
    facts: dict
    points: Decimal
    fired: tuple | None = None
    status: str | None = None
    bands: dict = field(default_factory=dict)  # rule id -> expected band or level (label or range)
    marks: tuple = ()  # a panel clause's marks (``panel.Mark``), in the order entered
    line: int = 0  # where the case starts in its clause file (failing cases are shown there)


@dataclass(frozen=True)
class MatchRule:
    """One condition the matcher evaluates; ``key`` names it in fired results."""

    key: str
    group: str
    condition: Condition


@dataclass
class Clause:
    id: str
    title: str
    category: str
    kind: str
    points: Decimal
    start: str  # "zero" | "full"
    source: Source
    offices: tuple = ()
    deadline: str = ""
    tasks: tuple = ()
    evidence: tuple = ()
    facts: tuple = ()  # FactSpec declared in this clause
    reads: tuple = ()  # every fact name the clause reads (own and scheme-level)
    rules: tuple = ()
    vetoes: tuple = ()
    tests: tuple = ()
    file: str = ""
    note: str = ""
    derived: dict = field(default_factory=dict)  # operand key -> Expr
    matches: tuple = ()  # MatchRule
    operands: tuple = ()  # operand keys the matcher needs for this clause
    #: "该项设有加分项(最多加N分)": the bonus rules' points count beyond ``points``, up to this
    bonus_cap: Decimal | None = None

    @property
    def low(self) -> Decimal:
        return -self.points if self.kind == DEDUCTION else _ZERO

    @property
    def high(self) -> Decimal:
        return _ZERO if self.kind == DEDUCTION else self.points


_ZERO = Decimal(0)  # one 0 for every clause's bound, not a new one per unit (numbers.ZERO)


@dataclass
class Category:
    id: str
    title: str
    kind: str
    points: Decimal | None
    cap: Decimal | None
    children: list = field(default_factory=list)  # Category
    clauses: list = field(default_factory=list)  # clause ids, in order
    parent: str | None = None


@dataclass(frozen=True)
class Tier:
    grade: str
    min: Decimal | None = None
    top: int | None = None
    title: str = ""


@dataclass(frozen=True)
class Distinction:
    name: str
    grade: str
    top: int | None = None
    min: Decimal | None = None


@dataclass(frozen=True)
class GradeVeto:
    id: str
    when: ex.Expr
    when_text: str
    effect: str  # "force" | "bar" | "lower" (one tier down; grade is "" then)
    grade: str
    reason: str
    source: str = ""

    @functools.cached_property
    def when_names(self) -> tuple[str, ...]:
        """The facts ``when`` reads, worked out once (see ``Rule.when_names``)."""
        return _names_of(self.when)


@dataclass(frozen=True)
class Grading:
    method: str  # "none" | "thresholds" | "rank"
    tiers: tuple = ()
    distinctions: tuple = ()
    vetoes: tuple = ()
    note: str = ""


@dataclass(frozen=True)
class Ranking:
    """One ranking of a relative part: the units ordered by ``measure`` (scheme facts)."""

    measure: ex.Expr
    measure_text: str
    label: str
    better: str = "higher"  # "higher" | "lower": which end of the measure is first place


@dataclass(frozen=True)
class RelativePart:
    """Points a unit earns by its place among all units, computed when the units are ranked
    ("第一名得基本分200分，名次每降低1位减基本分2%"), added to its total.

    method "rank": first place gets ``points``, each place below loses ``per_place`` × ``points``
    (never below 0); method "ratio": ``points`` × the unit's value / the best unit's value.
    Several ``rankings``: the part's points are the mean of the points each ranking gives."""

    id: str
    title: str
    method: str  # "rank" | "ratio"
    points: Decimal
    rankings: tuple  # Ranking
    per_place: Decimal | None = None
    source: str = ""
    note: str = ""


@dataclass(frozen=True)
class Conversion:
    """Totals converted against the best unit's: total / best total × ``scale``
    ("其他单位得分=(该单位考核得分/排名第一的单位考核得分)×600")."""

    scale: Decimal
    source: str = ""
    note: str = ""


@dataclass(frozen=True)
class Relative:
    """What a scheme computes only when its units are ranked together."""

    parts: tuple = ()  # RelativePart
    convert: Conversion | None = None

    def __bool__(self) -> bool:
        return bool(self.parts) or self.convert is not None


@dataclass(frozen=True)
class SchemeTest:
    name: str
    facts: dict
    total: Decimal
    grade: str | None = None
    marks: dict = field(default_factory=dict)  # clause id -> its panel's marks (``panel.Mark``)
    line: int = 0  # where the case starts in scheme.yaml


@dataclass(frozen=True)
class RankingTest:
    name: str
    units: dict  # unit -> {"total": Decimal, "facts": dict}
    expect: dict  # unit -> {"rank": int, "grade": str|None, "distinctions": tuple,
    #                         "total": Decimal|None, "relative": dict|None}
    line: int = 0  # where the case starts in scheme.yaml


@dataclass
class Scheme:
    id: str
    title: str
    year: str
    issuer: str
    source: Source
    total: Decimal
    unit: str
    categories: list  # top-level Category
    clauses: dict  # id -> Clause, in file order
    facts: dict  # name -> FactSpec, every fact of the scheme
    grading: Grading
    tests: tuple = ()
    ranking_tests: tuple = ()
    path: str = ""
    version: str = ""  # content hash of the scheme folder
    files: tuple = ()
    matches: tuple = ()  # every MatchRule, clauses first, then grade vetoes
    grade_operands: tuple = ()
    grade_derived: dict = field(default_factory=dict)
    notes: str = ""
    #: parts scored by place among the units, and the conversion of totals (``Relative``)
    relative: Relative = field(default_factory=Relative)
    #: clause id -> its rule scored by a panel of reviewers (``Rule.panel``; at most one a clause)
    panels: dict = field(default_factory=dict)
    texts: dict = field(
        default_factory=dict, repr=False
    )  # path in the folder -> the text the version hashes

    @functools.cached_property
    def conditional_facts(self) -> tuple:
        """The facts with an ``applies_when`` (``facts.applicable``), found once rather than among
        all the scheme's facts for every unit scored."""
        return tuple(f for f in self.facts.values() if f.applies_when is not None)

    @property
    def program_name(self) -> str:
        return f"{self.id}@{self.version[:16]}"

    def category_index(self) -> dict:
        out = {}

        def walk(cats):
            for c in cats:
                out[c.id] = c
                walk(c.children)

        walk(self.categories)
        return out


Value = Decimal | bool | str
