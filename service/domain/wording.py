"""Small pieces of trace wording shared by the scoring core and the building blocks."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from .model import Scheme
from .numbers import plain


def signed(amount: Decimal, u: str = "分") -> str:
    if amount < 0:
        return f"扣{plain(-amount)}{u}"
    return f"得{plain(amount)}{u}"


def value_words(value, missing: str = "（缺）") -> str:
    """A fact's value as a person reads it: 是/否, exact digits, or the text; ``missing`` if absent."""
    if value is None:
        return missing
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, Decimal):
        return plain(value)
    return str(value)


def facts_text(facts: Mapping, scheme: Scheme) -> str:
    return "，".join(
        f"{scheme.facts[n].label}={value_words(v)}{scheme.facts[n].unit if v is not None else ''}"
        for n, v in facts.items()
        if n in scheme.facts
    )


def cap(raw: Decimal, limit: Decimal | None) -> tuple[Decimal, bool]:
    """``raw`` held to ``limit`` either side of 0, and whether it was."""
    if limit is None or abs(raw) <= limit:
        return raw, False
    return (limit if raw > 0 else -limit), True
