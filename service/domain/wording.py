"""Small pieces of trace wording shared by the scoring core and the building blocks."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from .model import Scheme
from .numbers import PLAIN


def signed(amount: Decimal, u: str = "分") -> str:
    if amount < 0:
        return f"扣{PLAIN[-amount]}{u}"
    return f"得{PLAIN[amount]}{u}"


def value_words(value, missing: str = "（缺）") -> str:
    """A fact's value as a person reads it: 是/否, exact digits, or the text; ``missing`` if absent."""
    if value is None:
        return missing
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, Decimal):
        return PLAIN[value]
    return str(value)


def facts_text(facts: Mapping, scheme: Scheme) -> str:
    # a rule's or veto's facts, for every fixed rule of every unit: each spec looked up once,
    # the common values (yes/no, decimals) written without a call
    specs = scheme.facts
    out = []
    for n, v in facts.items():
        spec = specs.get(n)
        if spec is None:
            continue
        if v is None:
            out.append(f"{spec.label}=（缺）")
        elif v.__class__ is bool:
            out.append(f"{spec.label}={'是' if v else '否'}{spec.unit}")
        elif v.__class__ is Decimal:
            out.append(f"{spec.label}={PLAIN[v]}{spec.unit}")
        else:
            out.append(f"{spec.label}={value_words(v)}{spec.unit}")
    return "，".join(out)


def cap(raw: Decimal, limit: Decimal | None) -> tuple[Decimal, bool]:
    """``raw`` held to ``limit`` either side of 0, and whether it was."""
    if limit is None or abs(raw) <= limit:
        return raw, False
    return (limit if raw > 0 else -limit), True
