from decimal import Decimal

import pytest

from service.domain import expressions as ex
from service.domain.conditions import AllOf, AnyOf, Comparison, compile_condition, holds

TYPES = {"a": ex.NUMBER, "b": ex.NUMBER, "ok": ex.BOOLEAN, "level": ex.TEXT}


def value(text, **values):
    return ex.evaluate(ex.parse(text), values)


def test_arithmetic_is_exact_decimal():
    assert value("a - b", a=Decimal("95"), b=Decimal("91.99")) == Decimal("3.01")
    assert value("a * 0.3", a=Decimal("2.5")) == Decimal("0.75")
    assert value("min(a, b) + abs(-b)", a=Decimal(1), b=Decimal(2)) == Decimal(3)


def test_missing_fact_is_undefined_not_zero():
    with pytest.raises(ex.Undefined) as err:
        value("a - b", a=Decimal(1))
    assert err.value.missing == ("b",)


def test_division_by_zero_is_undefined():
    with pytest.raises(ex.Undefined, match="除数为 0"):
        value("a / b", a=Decimal(1), b=Decimal(0))


@pytest.mark.parametrize(
    "text, message, column",
    [
        ("a >", "表达式不完整（结尾缺少内容或右括号）", 4),
        ("a & b", "表达式中有无法识别的字符 “&”", 3),
        ("a > > b", "表达式在 “>” 处语法有误", 5),
        ("", "表达式为空", 1),
    ],
)
def test_syntax_errors_name_the_column(text, message, column):
    with pytest.raises(ex.ExprError) as err:
        ex.parse(text)
    assert (err.value.message, err.value.column) == (message, column)


@pytest.mark.parametrize(
    "text, message",
    [
        ("level > 3", "不能比较文字与数值"),
        ("ok + 1", "运算符 + 需要数值，这里是是/否"),
        ('level < "x"', "文字只能用 == 或 != 比较"),
        ("c > 1", "表达式引用了未声明的事实 “c”"),
        ("a and ok", "and 需要是/否，这里是数值"),
        ("round(a)", "未知的函数 “round”（可用：min、max、abs）"),
        ("__import__(a)", "未知的函数 “__import__”（可用：min、max、abs）"),
    ],
)
def test_type_errors(text, message):
    with pytest.raises(ex.ExprError) as err:
        ex.infer(ex.parse(text), TYPES)
    assert err.value.message == message


def test_no_python_escapes():
    # attribute access, subscripts and lambdas are not in the grammar at all
    for text in ("a.__class__", "a[0]", "lambda: 1", "open('x')"):
        with pytest.raises(ex.ExprError):
            ex.parse(text)


def _compile(text):
    derived = {}

    def derive(node):
        key = f"_d{len(derived) + 1}"
        derived[key] = node
        return key

    return compile_condition(ex.parse(text), derive), derived


def test_not_is_pushed_into_the_tests():
    cond, _ = _compile("not (a > 3 and ok)")
    assert cond == AnyOf((Comparison("a", "<=", Decimal(3)), Comparison("ok", "==", False)))


def test_two_sided_comparison_becomes_a_derived_difference():
    cond, derived = _compile("a >= b")
    assert cond == Comparison("_d1", ">=", Decimal(0))
    assert ex.evaluate(derived["_d1"], {"a": Decimal(5), "b": Decimal(2)}) == Decimal(3)


def test_constant_on_the_left_is_flipped():
    cond, _ = _compile("3 < a")
    assert cond == Comparison("a", ">", Decimal(3))


def test_missing_operand_makes_a_test_and_its_negation_false():
    assert not holds(Comparison("a", ">", Decimal(1)), {})
    assert not holds(Comparison("a", "<=", Decimal(1)), {})
    assert holds(AllOf(()), {})
    assert not holds(AnyOf(()), {})
