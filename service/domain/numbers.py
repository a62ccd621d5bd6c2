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
import functools
from decimal import Decimal

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

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)
_CENT = Decimal("0.01")


def to_match_precision(value: Decimal) -> Decimal:
    """Round ``value`` to the 15 significant digits the matchers compare."""
    if value.is_zero():
        return ZERO
    ctx = decimal.Context(prec=MATCH_DIGITS, rounding=decimal.ROUND_HALF_EVEN)
    return ctx.plus(value).normalize(ctx) + ZERO  # + 0 turns -0 into 0


@functools.lru_cache(
    maxsize=4096
)  # a trace writes ~500 decimals, mostly the same few; equal decimals give equal text
def plain(value: Decimal) -> str:
    """A decimal as plain digits, never in exponent form ("1E+1" -> "10")."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def display(value: Decimal) -> str:
    """Points as shown to people: 2 decimal places, half up."""
    return format(value.quantize(_CENT, rounding=decimal.ROUND_HALF_UP), "f")


def clamp(value: Decimal, low: Decimal | None, high: Decimal | None) -> Decimal:
    if low is not None and value < low:
        return low
    if high is not None and value > high:
        return high
    return value


def measure_words(value: Decimal) -> str:
    """A measure as shown in a trace: exact when short, else "约" and 4 places (1/3 -> 约0.3333)."""
    if value.as_tuple().exponent >= -4:
        return plain(value)
    return "约" + plain(value.quantize(Decimal("0.0001"), rounding=decimal.ROUND_HALF_UP))
