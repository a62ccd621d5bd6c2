"""Checking submitted facts against what a scheme declares.

Facts are checked here, before anything reaches a matcher: a number is a real,
finite decimal within its declared range (never a boolean, never a string),
a yes/no fact is a boolean, a choice is one of its choices.  Each problem
names the fact and says what is allowed.
"""

from __future__ import annotations

import difflib
import math
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from . import expressions as ex
from .model import FactSpec, Scheme
from .numbers import MATCH_CONTEXT, MATCH_DIGITS, MAX_MAGNITUDE, MIN_NONZERO, plain
from .text import unstorable

MAX_TEXT = 2000


@dataclass(frozen=True)
class FactError:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class InvalidFacts(ValueError):
    def __init__(self, errors: list[FactError]):
        super().__init__("; ".join(map(str, errors)))
        self.errors = errors


def allowed(spec: FactSpec) -> str:
    """What a fact accepts, in words, for error messages and forms."""
    if spec.type == "boolean":
        return "是（true）或否（false）"
    if spec.type == "choice":
        return "以下之一：" + "、".join(spec.choices)
    if spec.type == "text":
        return f"不超过{MAX_TEXT}字的文字"
    kind = "整数" if spec.type == "integer" else "数值"
    if spec.minimum is not None and spec.maximum is not None:
        return f"{plain(spec.minimum)}到{plain(spec.maximum)}之间的{kind}"
    if spec.minimum is not None:
        return f"不小于{plain(spec.minimum)}的{kind}"
    if spec.maximum is not None:
        return f"不大于{plain(spec.maximum)}的{kind}"
    return kind


#: the types of number facts (``FactSpec.type``)
_NUMBERS = frozenset({"number", "integer", "percent"})


def check_value(spec: FactSpec, raw) -> tuple[object, str | None]:
    """(value, None) if ``raw`` is acceptable for ``spec``, else (None, message)."""
    if raw.__class__ is Decimal and spec.type in _NUMBERS:
        return _check_number(spec, raw)  # most facts of most units: straight to the number's checks
    if spec.type == "boolean":
        if isinstance(raw, bool):
            return raw, None
        return None, f"应为{allowed(spec)}"
    if spec.type in ("text", "choice"):
        if not isinstance(raw, str):
            return None, f"应为{allowed(spec)}"
        problem = unstorable(raw)
        if problem:
            return None, problem
        if spec.type == "choice" and raw not in spec.choices:
            return None, f"“{raw}”不是可选值，应为{allowed(spec)}"
        if len(raw) > MAX_TEXT:
            return None, f"过长，应为{allowed(spec)}"
        return raw, None
    # numbers
    if isinstance(raw, bool) or not isinstance(raw, (int, float, Decimal)):
        return None, f"应为{allowed(spec)}，不能是{_kind(raw)}"
    if isinstance(raw, float):
        if not math.isfinite(raw):
            return None, f"应为{allowed(spec)}，不能是非有限数"
        raw = Decimal(repr(raw))
    try:
        value = raw if type(raw) is Decimal else Decimal(raw)
    except InvalidOperation:  # pragma: no cover - Decimal(int) cannot fail
        return None, f"应为{allowed(spec)}"
    return _check_number(spec, value)


def _check_number(spec: FactSpec, value: Decimal) -> tuple[object, str | None]:
    # every number of every unit (and of every test case at load) comes through here: each
    # property of the value is asked once
    if not value.is_finite():
        return None, f"应为{allowed(spec)}，不能是非有限数"
    magnitude = value.copy_abs()  # not abs(): no context, so 1E+400000000 is no Overflow
    if magnitude > MAX_MAGNITUDE:
        return None, f"数值过大，应为{allowed(spec)}"
    if magnitude < MIN_NONZERO and not value.is_zero():
        # a double would round it to 0, the exact value not
        return None, f"非零数值的绝对值不能小于{plain(MIN_NONZERO)}，应为{allowed(spec)}"
    if MATCH_CONTEXT.plus(value) != value:  # ``numbers.too_many_digits``, without the call
        return None, f"有效数字不能超过{MATCH_DIGITS}位"
    if spec.type == "integer" and value != value.to_integral_value():
        return None, f"应为{allowed(spec)}，不能有小数"
    if (spec.minimum is not None and value < spec.minimum) or (
        spec.maximum is not None and value > spec.maximum
    ):
        return None, f"{plain(value)}超出范围，应为{allowed(spec)}"
    return value + 0, None


def _kind(raw) -> str:
    if isinstance(raw, bool):
        return "是/否"
    if isinstance(raw, str):
        return "文字"
    if isinstance(raw, (list, tuple)):
        return "列表"
    if isinstance(raw, dict):
        return "对象"
    return type(raw).__name__


def _nearest(scheme: Scheme, name) -> str:
    """A hint naming the declared fact meant, as rule keys get one: a misspelt name, or a
    fact's label written where its name belongs."""
    if not isinstance(name, str):
        return ""
    by_label = [n for n, f in scheme.facts.items() if f.label == name]
    if by_label:
        return f"。“{name}”是事实“{by_label[0]}”的说明，请写事实名“{by_label[0]}”"
    close = difflib.get_close_matches(name, list(scheme.facts), n=1, cutoff=0.6)
    return f"。是否想写“{close[0]}”？" if close else ""


def validate_facts(scheme: Scheme, raw: Mapping) -> dict:
    """Checked, typed facts; ``InvalidFacts`` naming every bad field otherwise.

    A fact that is absent or ``null`` is missing (not zero).
    """
    if not isinstance(raw, Mapping):
        raise InvalidFacts([FactError("facts", "应为“事实名: 值”的映射")])
    errors: list[FactError] = []
    values: dict = {}
    for name, item in raw.items():
        spec = scheme.facts.get(name) if isinstance(name, str) else None
        if spec is None:
            errors.append(FactError(str(name), "不是本细则声明的事实" + _nearest(scheme, name)))
            continue
        if item is None:
            continue
        value, problem = check_value(spec, item)
        if problem:
            errors.append(FactError(name, f"{spec.label}{problem}"))
        else:
            values[name] = value
    if errors:
        raise InvalidFacts(errors)
    return values


# --- facts that apply only sometimes (applies_when) ---------------------------------------------


def applies(spec: FactSpec, values: Mapping) -> bool | None:
    """Whether ``spec`` applies to these facts: True, False, or None when its condition reads a
    missing fact (then the fact itself counts as missing: it may well apply)."""
    if spec.applies_when is None:
        return True
    try:
        return bool(ex.evaluate(spec.applies_when, values))
    except ex.Undefined:
        return None


def not_applicable(scheme: Scheme, values: Mapping) -> set:
    """The facts whose condition does not hold: not asked for, not missing, read by nothing."""
    if not scheme.conditional_facts:
        return set()
    return {
        name for name, when, reads in _conditions(scheme) if _holds(when, reads, values) is False
    }


def applicable(scheme: Scheme, values: Mapping) -> Mapping:
    """``values`` without the facts that do not apply, or whose applying is undetermined: a rule
    reading such a fact does not fire (a value given for it anyway counts for nothing).  The
    conditions read only facts without a condition (the loader checks), so one pass decides."""
    if not scheme.conditional_facts:
        return values
    drop = [
        name
        for name, when, reads in _conditions(scheme)
        if name in values and _holds(when, reads, values) is not True
    ]
    if not drop:
        return values
    return {n: v for n, v in values.items() if n not in drop}


def _holds(when, reads: tuple, values: Mapping) -> bool | None:
    """``applies`` with the facts the condition reads known beforehand (``_conditions``): the
    tree is not asked for its names (a lookup hashing all of it) for every unit."""
    for name in reads:
        if name not in values or values[name] is None:
            return None
    try:
        return bool(ex.evaluate_present(when, values))
    except ex.Undefined:
        return None


#: id(scheme) -> (a weak reference to it, its conditional facts: (name, condition, the facts
#: the condition reads)), made at its first unit and dropped with the scheme
_CONDITIONS: dict[int, tuple] = {}


def _conditions(scheme: Scheme) -> tuple:
    entry = _CONDITIONS.get(id(scheme))
    if entry is not None and entry[0]() is scheme:
        return entry[1]
    conditions = tuple(
        (f.name, f.applies_when, tuple(ex.names(f.applies_when)))
        for f in scheme.conditional_facts
        if f.applies_when is not None
    )
    key = id(scheme)
    _CONDITIONS[key] = (weakref.ref(scheme, lambda _ref: _CONDITIONS.pop(key, None)), conditions)
    return conditions
