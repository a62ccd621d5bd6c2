"""Exact decimal arithmetic for points and measures.

Points are ``Decimal`` from the rule file to the trace; the only rounding is
``display`` (2 places, half up) when a number is shown to a person.
Measures handed to a matcher are cut to 15 significant digits: a double holds
any decimal of 15 significant digits exactly enough that the order between two
such decimals survives the conversion, so the C engine and the Python oracle
compare the very same values and agree on every band edge.
"""

from __future__ import annotations

import decimal
import itertools
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

#: Working precision for arithmetic on points and measures.
CONTEXT = decimal.Context(
    prec=34,
    rounding=decimal.ROUND_HALF_EVEN,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)
#: Precision of a measure as the matcher sees it.
MATCH_DIGITS = 15
#: Largest magnitude a fact or measure may have (well inside a double's exact integers).
MAX_MAGNITUDE = Decimal("1e12")

#: Smallest magnitude of a non-zero number: the engine compares doubles, so e.g. 1E-330 would be 0 to it.
MIN_NONZERO = Decimal("1e-15")

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)
_CENT = Decimal("0.01")


#: Arithmetic at the matchers' precision: made once (this is used for every operand of every
#: unit, and for every number checked).  Its flags are never read, so sharing it is harmless.
MATCH_CONTEXT = decimal.Context(prec=MATCH_DIGITS, rounding=decimal.ROUND_HALF_EVEN)


def to_match_precision(value: Decimal) -> Decimal:
    """Round ``value`` to the 15 significant digits the matchers compare."""
    if value.is_zero():
        return ZERO
    ctx = MATCH_CONTEXT
    return ctx.plus(value).normalize(ctx) + ZERO  # + 0 turns -0 into 0


def too_many_digits(value: Decimal) -> bool:
    """More than ``MATCH_DIGITS`` significant digits (trailing zeros not counted): rounding to
    that many changes the value.  (The same answer as counting the digits of
    ``value.normalize()``, without building its digit tuple.)"""
    return MATCH_CONTEXT.plus(value) != value


class Texts(dict):
    """Each value's text by a function that gives equal values equal text (``plain`` and the
    words below: "2.50" and "2.5" are both "2.5"), written at a value's first use and then read
    with one lookup.  A trace writes some 500 numbers a unit, mostly the same few hundred: the
    hot paths index it (``PLAIN[x]``: no call at all), others call ``plain``.  When full, the
    oldest quarter is dropped, so values never seen again (or a NaN, never equal to itself)
    cannot make it grow, and the values in use stay (emptied at once, a batch's values would
    all be written again)."""

    __slots__ = ("write",)

    #: values held at most (twice the lru_cache these replaced: a batch of the largest seed scheme
    #: writes some 1,500 distinct numbers a hundred units, and each value is held, not shared)
    HELD = 8192

    def __init__(self, write):
        super().__init__()
        self.write = write

    def __missing__(self, value) -> str:
        text = self.write(value)
        if len(self) >= self.HELD:
            # the oldest first (a dict keeps its order); ``pop``: another thread may drop them too
            for old in list(itertools.islice(self, self.HELD // 4)):
                self.pop(old, None)
        self[value] = text
        return text


def _plain(value: Decimal) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


#: decimal -> its plain digits (``plain``)
PLAIN = Texts(_plain)
#: A decimal as plain digits, never in exponent form ("1E+1" -> "10").
plain: Callable[..., str] = PLAIN.__getitem__


def display(value: Decimal) -> str:
    """Points as shown to people: 2 decimal places, half up."""
    return format(value.quantize(_CENT, rounding=decimal.ROUND_HALF_UP), "f")


def _points_words(value: Decimal) -> str:
    return _rounded(value, "约")


def _equals_words(value: Decimal) -> str:
    return "=" + plain(value) if _exact(value) else _rounded(value, "≈")


#: decimal -> ``points_words``, decimal -> ``equals_words``
POINTS_WORDS = Texts(_points_words)
EQUALS_WORDS = Texts(_equals_words)
#: A computed number as a sentence shows it: exact up to 2 places, else "约" and the number
#: rounded (half up) to 2 places, zeros kept ("约5.00": 4.995 is not 5).  Only the sentence is
#: rounded; the number in the data stays exact.
points_words: Callable[..., str] = POINTS_WORDS.__getitem__
#: "=" and a computed result, or "≈" and it rounded to 2 places: an equation stays true.
equals_words: Callable[..., str] = EQUALS_WORDS.__getitem__


def _exact(value: Decimal) -> bool:
    exponent = value.normalize().as_tuple().exponent
    return not isinstance(exponent, int) or exponent >= -2


def _rounded(value: Decimal, mark: str) -> str:
    if _exact(value):
        return plain(value)
    return mark + format(value.quantize(_CENT, rounding=decimal.ROUND_HALF_UP), "f")


def clamp(value: Decimal, low: Decimal | None, high: Decimal | None) -> Decimal:
    if low is not None and value < low:
        return low
    if high is not None and value > high:
        return high
    return value


def measure_words(value: Decimal) -> str:
    """A measure as shown in a trace: exact when short, else "约" and 4 places (1/3 -> 约0.3333)."""
    if value.__class__ is Decimal:
        # its fixed-point text has exactly as many places as the exponent says (a NaN or an
        # infinity none): cheaper than its digit tuple, 34 digits for 1/3 (every measure of
        # every unit comes here)
        text = format(value, "f")
        point = text.find(".")
        if point < 0 or len(text) - point <= 5:
            return PLAIN[value]
        return "约" + PLAIN[value.quantize(_PLACES_4, rounding=decimal.ROUND_HALF_UP)]
    exponent = value.as_tuple().exponent  # "n", "N" or "F" for a NaN or infinity
    if not isinstance(exponent, int) or exponent >= -4:
        return plain(value)
    return "约" + plain(value.quantize(_PLACES_4, rounding=decimal.ROUND_HALF_UP))


_PLACES_4 = Decimal("0.0001")


# YAML 1.2's decimal numbers in ASCII digits only (Python's Decimal and int also take
# Arabic-Indic or full-width digits, and YAML's 0x/0o integers, which no policy text means)
_DECIMAL = re.compile(r"[-+]?(?:[0-9][0-9_]*)?(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?")
#: Longest number literal read (a number of 15 significant digits needs far fewer characters).
MAX_NUMBER_TEXT = 40


def number_problem(text: str) -> tuple[Decimal | None, str | None]:
    """(value, None) for a decimal number text a rule file may hold; (None, why) otherwise.

    The same rule for every number a rule file writes (number fields, band edges, expression
    constants): ASCII digits, finite, at most ``MAX_MAGNITUDE`` and ``MATCH_DIGITS`` significant
    digits, since the engine compares doubles and must order these exactly as the oracle does."""
    if len(text) > MAX_NUMBER_TEXT:
        return None, f"“{text[:20]}…”过长，不是可用的数值"
    plain_text = text.replace("_", "")
    if not _DECIMAL.fullmatch(text) or not any(c.isdigit() for c in plain_text):
        return None, f"“{text}”不是可用的数值（请用十进制阿拉伯数字书写，如 3、2.5、-1）"
    try:
        value = Decimal(plain_text)
    except InvalidOperation:
        return None, f"“{text}”不是可用的数值（请用十进制阿拉伯数字书写，如 3、2.5、-1）"
    # copy_abs and compare need no context: 1e1000000 is refused, not a decimal.Overflow
    if not value.is_finite() or value.copy_abs() > MAX_MAGNITUDE:
        return None, f"“{text}”超出可用的数值范围（绝对值不超过{plain(MAX_MAGNITUDE)}）"
    if not value.is_zero() and value.copy_abs() < MIN_NONZERO:
        return None, f"“{text}”太接近0（非零数值的绝对值不能小于{plain(MIN_NONZERO)}）"
    if too_many_digits(value):
        return None, f"“{text}”的有效数字超过{MATCH_DIGITS}位"
    return value + 0, None
