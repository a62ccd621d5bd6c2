"""Conditions in the one form both matchers understand.

A rule's condition is compiled to a tree of ``Comparison(operand op constant)``
joined by ``AllOf``/``AnyOf``, with every ``not`` pushed down into the tests.
An operand is a fact name or the key of a *derived measure* (an expression the
core computes exactly before matching).  The same tree is turned into a
durable-rules ruleset by the engine adapter and checked directly by
``holds`` (the plain-Python oracle).  One semantics for both: a test whose
operand is missing is false, and so is its negation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeGuard

from . import expressions as ex

NEGATED = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}
FLIPPED = {"==": "==", "!=": "!=", "<": ">", ">": "<", "<=": ">=", ">=": "<="}


@dataclass(frozen=True)
class Comparison:
    operand: str
    op: str
    value: Decimal | bool | str


@dataclass(frozen=True)
class AllOf:
    parts: tuple


@dataclass(frozen=True)
class AnyOf:
    parts: tuple


Condition = Comparison | AllOf | AnyOf
ALWAYS = AllOf(())


def compile_condition(
    node: ex.Expr, derive: Callable[[ex.Expr], str], negate: bool = False
) -> Condition:
    """Turn a boolean expression into tests on operands.

    ``derive(expr)`` registers a numeric sub-expression as a derived measure
    and returns the operand key under which its value will be supplied.
    """
    if isinstance(node, ex.Not):
        return compile_condition(node.operand, derive, not negate)
    if isinstance(node, ex.Logic):
        parts = tuple(compile_condition(o, derive, negate) for o in node.operands)
        is_and = (node.op == "and") != negate
        return AllOf(parts) if is_and else AnyOf(parts)
    if isinstance(node, ex.Name):  # a boolean fact on its own
        return Comparison(node.name, "==", not negate)
    if isinstance(node, ex.Const) and isinstance(node.value, bool):
        return ALWAYS if node.value != negate else AnyOf(())
    if isinstance(node, ex.Compare):
        op = NEGATED[node.op] if negate else node.op
        left, right = node.left, node.right
        if _is_constant(left) and not _is_constant(right):
            left, right, op = right, left, FLIPPED[op]
        if _is_constant(right):
            value = right.value
            if isinstance(left, ex.Name):
                return Comparison(left.name, op, value)
            if _is_constant(left):
                return ALWAYS if ex.COMPARATORS[op](left.value, value) else AnyOf(())
            return Comparison(derive(left), op, value)
        # two variable sides (numbers only, the type check saw to that):
        # compare their difference with zero.
        return Comparison(derive(ex.Arith("-", left, right, node.column)), op, Decimal(0))
    raise ex.ExprError(
        "条件必须是比较、是/否事实或它们的 and/or/not 组合", getattr(node, "column", 1)
    )


def _is_constant(node: ex.Expr) -> TypeGuard[ex.Num | ex.Const]:
    return isinstance(node, (ex.Num, ex.Const))


def holds(condition: Condition, values: Mapping[str, object]) -> bool:
    """The oracle: does ``condition`` hold over ``values`` (operand key -> value)?"""
    if isinstance(condition, Comparison):
        value = values.get(condition.operand)
        if value is None:
            return False
        return ex.COMPARATORS[condition.op](value, condition.value)
    if isinstance(condition, AllOf):
        return all(holds(p, values) for p in condition.parts)
    return any(holds(p, values) for p in condition.parts)


def operands(condition: Condition) -> list[str]:
    found: list[str] = []

    def walk(c):
        if isinstance(c, Comparison):
            if c.operand not in found:
                found.append(c.operand)
        else:
            for p in c.parts:
                walk(p)

    walk(condition)
    return found


def size(condition: Condition) -> int:
    """Number of tests, for the engine's limits."""
    if isinstance(condition, Comparison):
        return 1
    return sum(size(p) for p in condition.parts)
