"""The small, safe expression language of rule files.

A rule file may write a derived measure (``target - actual``) or a condition
(``meetings >= 2 and plan_published``).  The text is parsed by a fixed
grammar into the tree below and evaluated by walking that tree: there is no
``eval``, no attribute access, no call except the three functions listed, and
a rule file can name nothing but its declared facts.

Values are ``Decimal`` (numbers), ``bool`` and ``str``.  A missing fact makes
the expression *undefined* (missing is not zero); so does a division by zero.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

from .numbers import CONTEXT, number_problem

NUMBER, BOOLEAN, TEXT = "number", "boolean", "text"
TYPE_NAMES = {NUMBER: "数值", BOOLEAN: "是/否", TEXT: "文字"}
FUNCTIONS = {"min": (2, None), "max": (2, None), "abs": (1, 1)}
#: Longest expression text.  The longest shipped one has about 120 characters; an `or` of the
#: most tests the engine runs in one condition (service/engine/limits.py) fits.
MAX_LENGTH = 4000
#: Deepest nesting of an expression: brackets, not, minus signs, and operations in a row (a sum
#: of n terms is n - 1 levels).  Checking, computing and compiling walk the tree recursively;
#: a sum of 600 terms or 100 nested brackets exhausted Python's recursion limit.
MAX_DEPTH = 60

_GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr (_OR and_expr)*       -> or_
?and_expr: not_expr (_AND not_expr)*     -> and_
?not_expr: _NOT not_expr                 -> not_
         | comparison
?comparison: sum (COMP_OP sum)?          -> compare
?sum: product (ADD_OP product)*          -> arith
?product: unary (MUL_OP unary)*          -> arith
?unary: "-" unary                        -> neg
      | atom
?atom: NUMBER                            -> number
     | _TRUE                             -> true
     | _FALSE                            -> false
     | STRING                            -> string
     | NAME "(" [or_expr ("," or_expr)*] ")" -> call
     | NAME                              -> name
     | "(" or_expr ")"
_OR.2: "or"
_AND.2: "and"
_NOT.2: "not"
_TRUE.2: "true"
_FALSE.2: "false"
COMP_OP: "==" | "!=" | "<=" | ">=" | "<" | ">"
ADD_OP: "+" | "-"
MUL_OP: "*" | "/"
NUMBER: /[0-9]+(\.[0-9]+)?/
STRING: /"[^"\\\n]*"/
NAME: /[A-Za-z_][A-Za-z0-9_]*/
%import common.WS
%ignore WS
"""


# a run of CJK letters, the start of a word the grammar cannot read
_WORD = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


class ExprError(ValueError):
    """A problem in an expression's text, at a 1-based column inside it."""

    def __init__(self, message: str, column: int = 1):
        super().__init__(message)
        self.message = message
        self.column = column


class Undefined(Exception):
    """The expression has no value for these facts (a fact is missing, or /0)."""

    def __init__(self, reason: str, missing: tuple[str, ...] = ()):
        super().__init__(reason)
        self.reason = reason
        self.missing = missing


# --- the tree ---------------------------------------------------------------


@dataclass(frozen=True)
class Num:
    value: Decimal
    column: int


@dataclass(frozen=True)
class Const:
    value: bool | str
    column: int


@dataclass(frozen=True)
class Name:
    name: str
    column: int


@dataclass(frozen=True)
class Neg:
    operand: Expr
    column: int


@dataclass(frozen=True)
class Arith:
    op: str
    left: Expr
    right: Expr
    column: int


@dataclass(frozen=True)
class Compare:
    op: str
    left: Expr
    right: Expr
    column: int


@dataclass(frozen=True)
class Logic:
    op: str  # "and" | "or"
    operands: tuple
    column: int


@dataclass(frozen=True)
class Not:
    operand: Expr
    column: int


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple
    column: int


Expr = Num | Const | Name | Neg | Arith | Compare | Logic | Not | Call


def _at(tok: Token) -> int:
    """A token's 1-based column (lark types it optional; its lexer always sets it)."""
    return tok.column if tok.column is not None else 1


@v_args(inline=True)
class _Build(Transformer):
    def number(self, tok: Token):
        value, problem = number_problem(str(tok))
        if value is None:
            raise ExprError(f"数值{problem}", _at(tok))
        return Num(value, _at(tok))

    def true(self, *_):
        return Const(True, 0)

    def false(self, *_):
        return Const(False, 0)

    def string(self, tok: Token):
        return Const(str(tok)[1:-1], _at(tok))

    def name(self, tok: Token):
        return Name(str(tok), _at(tok))

    def call(self, tok: Token, *args):
        return Call(str(tok), tuple(a for a in args if a is not None), _at(tok))

    def neg(self, operand):
        return Neg(operand, _column(operand))

    def arith(self, first, *rest):
        node = first
        for op, right in zip(rest[::2], rest[1::2]):
            node = Arith(str(op), node, right, op.column)
        return node

    def compare(self, left, op=None, right=None):
        if op is None:
            return left
        return Compare(str(op), left, right, op.column)

    def and_(self, *operands):
        return Logic("and", operands, _column(operands[0])) if len(operands) > 1 else operands[0]

    def or_(self, *operands):
        return Logic("or", operands, _column(operands[0])) if len(operands) > 1 else operands[0]

    def not_(self, operand):
        return Not(operand, _column(operand))


def _column(node) -> int:
    return max(getattr(node, "column", 1), 1)


_PARSER = Lark(_GRAMMAR, parser="lalr", maybe_placeholders=True)
_CACHE: dict[str, Expr] = {}


def parse(text: str) -> Expr:
    """Parse expression text; raise ``ExprError`` with a column on bad syntax."""
    if text in _CACHE:
        return _CACHE[text]
    if not text.strip():
        raise ExprError("表达式为空", 1)
    if len(text) > MAX_LENGTH:
        raise ExprError(f"表达式过长（{len(text)}个字符，最多{MAX_LENGTH}个），请拆分", 1)
    try:
        tree = _PARSER.parse(text)
    except UnexpectedCharacters as err:
        at = err.pos_in_stream if err.pos_in_stream is not None else 0
        word = _WORD.match(text, at)
        if word:  # a Chinese word written bare: meant as text, or as a fact by its label
            raise ExprError(
                f"表达式中的“{word.group()}”不是事实名（事实名只用英文字母、数字和下划线）；"
                f'要与文字比较，请给文字加英文双引号，如 "{word.group()}"',
                err.column,
            ) from None
        raise ExprError(f"表达式中有无法识别的字符 “{text[at : at + 1]}”", err.column) from None
    except UnexpectedEOF:
        raise ExprError("表达式不完整（结尾缺少内容或右括号）", len(text) + 1) from None
    except UnexpectedToken as err:
        if err.token.type == "$END":
            raise ExprError("表达式不完整（结尾缺少内容或右括号）", len(text) + 1) from None
        raise ExprError(f"表达式在 “{err.token}” 处语法有误", err.column) from None
    except UnexpectedInput as err:  # pragma: no cover - lark's other input errors
        raise ExprError("表达式语法有误", getattr(err, "column", 1)) from None
    if _depth(tree, lambda t: [c for c in t.children if isinstance(c, Tree)]) > MAX_DEPTH:
        raise ExprError(f"表达式嵌套过深（括号、not、负号最多{MAX_DEPTH}层），请拆分", 1)
    try:
        node = _Build().transform(tree)
    except VisitError as err:
        if isinstance(err.orig_exc, ExprError):
            raise err.orig_exc from None
        raise  # pragma: no cover - a bug, not a rule file's error
    if _depth(node, _children) > MAX_DEPTH:
        raise ExprError(
            f"表达式的运算层数过多（最多{MAX_DEPTH}层，如连加最多{MAX_DEPTH}项），"
            "请拆分或改用 min、max",
            1,
        )
    _CACHE[text] = node
    return node


def _depth(root, children: Callable) -> int:
    """Depth of a tree, walked without recursion (the point is to refuse deep ones)."""
    deepest, stack = 0, [(root, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth <= MAX_DEPTH:
            stack.extend((child, depth + 1) for child in children(node))
    return deepest


def names(node: Expr) -> list[str]:
    """The fact names an expression reads, in order of first appearance."""
    return list(_names(node))


@functools.lru_cache(maxsize=65536)
def _names(node: Expr) -> tuple[str, ...]:
    found: list[str] = []

    def walk(n):
        if isinstance(n, Name) and n.name not in found:
            found.append(n.name)
        for child in _children(n):
            walk(child)

    walk(node)
    return tuple(found)


def _children(n) -> tuple:
    if isinstance(n, (Neg, Not)):
        return (n.operand,)
    if isinstance(n, (Arith, Compare)):
        return (n.left, n.right)
    if isinstance(n, Logic):
        return n.operands
    if isinstance(n, Call):
        return n.args
    return ()


# --- types ------------------------------------------------------------------


def infer(node: Expr, types: Mapping[str, str]) -> str:
    """The type of ``node`` given the declared facts' types; ``ExprError`` if ill-typed.

    Strings are only ever compared with strings, booleans with booleans, and
    numbers with numbers: the C engine would coerce ``"3" == 3`` to true.
    """
    if isinstance(node, Num):
        return NUMBER
    if isinstance(node, Const):
        return BOOLEAN if isinstance(node.value, bool) else TEXT
    if isinstance(node, Name):
        if node.name not in types:
            raise ExprError(f"表达式引用了未声明的事实 “{node.name}”", node.column)
        return types[node.name]
    if isinstance(node, Neg):
        _expect(node.operand, types, NUMBER, "负号")
        return NUMBER
    if isinstance(node, Arith):
        _expect(node.left, types, NUMBER, f"运算符 {node.op}")
        _expect(node.right, types, NUMBER, f"运算符 {node.op}")
        return NUMBER
    if isinstance(node, Call):
        return _infer_call(node, types)
    if isinstance(node, Compare):
        return _infer_compare(node, types)
    if isinstance(node, Logic):
        for operand in node.operands:
            _expect(operand, types, BOOLEAN, node.op)
        return BOOLEAN
    if isinstance(node, Not):
        _expect(node.operand, types, BOOLEAN, "not")
        return BOOLEAN
    raise ExprError("无法识别的表达式", 1)  # pragma: no cover


def _infer_call(node: Call, types: Mapping[str, str]) -> str:
    if node.function not in FUNCTIONS:
        raise ExprError(f"未知的函数 “{node.function}”（可用：min、max、abs）", node.column)
    least, most = FUNCTIONS[node.function]
    if len(node.args) < least or (most is not None and len(node.args) > most):
        raise ExprError(f"函数 {node.function} 的参数个数不对", node.column)
    for arg in node.args:
        _expect(arg, types, NUMBER, f"函数 {node.function}")
    return NUMBER


def _infer_compare(node: Compare, types: Mapping[str, str]) -> str:
    left, right = infer(node.left, types), infer(node.right, types)
    if left != right:
        raise ExprError(f"不能比较{TYPE_NAMES[left]}与{TYPE_NAMES[right]}", node.column)
    if left != NUMBER and node.op not in ("==", "!="):
        raise ExprError(f"{TYPE_NAMES[left]}只能用 == 或 != 比较", node.column)
    if (
        left != NUMBER
        and not isinstance(node.left, (Num, Const))
        and not isinstance(node.right, (Num, Const))
    ):
        # the engine compares a fact with a constant; two numbers can be compared by their difference
        raise ExprError(
            f'{TYPE_NAMES[left]}只能与写明的值比较（如 level == "优"），不能与另一个事实比较',
            node.column,
        )
    return BOOLEAN


def _expect(node, types, wanted, where):
    got = infer(node, types)
    if got != wanted:
        raise ExprError(f"{where} 需要{TYPE_NAMES[wanted]}，这里是{TYPE_NAMES[got]}", _column(node))


# --- evaluation --------------------------------------------------------------


def evaluate(node: Expr, values: Mapping[str, object]):
    """Value of ``node`` over ``values``; raises ``Undefined`` for missing facts or /0."""
    missing = [n for n in _names(node) if values.get(n) is None]
    if missing:
        raise Undefined("缺少事实 " + "、".join(missing), tuple(missing))
    return _eval(node, values)


def evaluate_present(node: Expr, values: Mapping[str, object]):
    """``evaluate`` for a caller that has seen every fact ``node`` reads (``names``) present in
    ``values``: the same value, without asking the tree for its names again (a lookup that hashes
    the whole tree, for every measure of every unit); ``Undefined`` still for a division by 0."""
    return _eval(node, values)


def _eval(node, values):
    if isinstance(node, (Num, Const)):
        return node.value
    if isinstance(node, Name):
        return values[node.name]
    if isinstance(node, Neg):
        return CONTEXT.minus(_eval(node.operand, values))
    if isinstance(node, Arith):
        left, right = _eval(node.left, values), _eval(node.right, values)
        if node.op == "+":
            return CONTEXT.add(left, right)
        if node.op == "-":
            return CONTEXT.subtract(left, right)
        if node.op == "*":
            return CONTEXT.multiply(left, right)
        if right.is_zero():
            raise Undefined("除数为 0")
        return CONTEXT.divide(left, right)
    if isinstance(node, Call):
        args = [_eval(a, values) for a in node.args]
        if node.function == "abs":
            return abs(args[0])
        return min(args) if node.function == "min" else max(args)
    if isinstance(node, Compare):
        return COMPARATORS[node.op](_eval(node.left, values), _eval(node.right, values))
    if isinstance(node, Logic):
        results = (_eval(o, values) for o in node.operands)
        return all(results) if node.op == "and" else any(results)
    if isinstance(node, Not):
        return not _eval(node.operand, values)
    raise TypeError(node)  # pragma: no cover


COMPARATORS: dict[str, Callable] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
