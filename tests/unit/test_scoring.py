"""Points, caps, floors, pools, vetoes and the trace, on the fixture scheme."""

from decimal import Decimal

import pytest

from service.domain.facts import InvalidFacts
from service.domain.scoring import score_unit
from service.domain.trace import render, to_data

FULL = {
    "target": 95,
    "actual": 96,
    "coverage": 100,
    "report_done": True,
    "bureau_score": 100,
    "review_points": 2,
    "review_reason": "材料齐全",
    "maturity": 100,
    "awards": 0,
    "accidents": 0,
    "major_incident": False,
}


def score(scheme, matcher, **changes):
    facts = {**FULL, **changes}
    facts = {k: v for k, v in facts.items() if v is not None}
    return score_unit(scheme, "甲街道", facts, matcher, "test")


def clause(result, cid):
    return next(c for c in result.clauses if c.id == cid)


@pytest.fixture(params=["oracle", "engine"])
def matcher(request):
    return request.getfixturevalue(request.param)


def test_full_marks(minimal, matcher):
    result = score(minimal, matcher)
    assert result.total == Decimal(20)
    assert result.grade == "优秀"
    assert result.complete and result.version == minimal.version


def test_band_closed_at_upper_end(minimal, matcher):
    at_three = clause(score(minimal, matcher, actual=92), "1")
    assert at_three.points == Decimal(2)
    assert "落在(1, 3]档" in at_three.rules[0].explanation
    past_three = clause(score(minimal, matcher, actual=Decimal("91.99")), "1")
    assert past_three.points == Decimal(0)
    assert "低于目标值的百分点为3.01" in past_three.rules[0].explanation


def test_whole_steps_and_floor(minimal, matcher):
    assert clause(score(minimal, matcher, coverage=96), "2").points == Decimal(5)
    assert clause(score(minimal, matcher, coverage=95), "2").points == Decimal(4)
    assert clause(score(minimal, matcher, coverage=Decimal("90.1")), "2").points == Decimal(4)
    floored = clause(score(minimal, matcher, coverage=0), "2")
    assert floored.points == Decimal(0)
    assert floored.raw == Decimal(-15) and "扣完为止" in floored.clamped


def test_scaled_score_is_exact(minimal, matcher):
    c = clause(score(minimal, matcher, bureau_score=Decimal("87.5")), "3")
    assert c.points == Decimal("3.625")
    assert "87.5×3÷100≈2.63分" in c.rules[1].explanation  # plus 1 for the report
    assert c.rules[1].amount == Decimal("2.625")  # rounded in the sentence only


def test_item_veto_zeroes_the_item_and_says_why(minimal, matcher):
    result = score(minimal, matcher, major_incident=True)
    c = clause(result, "3")
    assert (c.status, c.points) == ("vetoed", Decimal(0))
    assert "发生重大质量事件的不得分" in c.explanation


def test_grade_veto_forces_d_but_keeps_points(minimal, matcher):
    result = score(minimal, matcher, major_incident=True)
    assert result.total == Decimal(16)  # clause 3's 4 points vetoed, nothing else
    assert result.grade == "D"
    assert "考核结果一律为D级" in result.grade_explanation


def test_bonus_pool_cap_after_clause_cap(minimal, matcher):
    result = score(minimal, matcher, awards=5)
    c = clause(result, "6")
    assert (c.rules[0].raw, c.points) == (Decimal(5), Decimal(3))  # clause cap 3
    bonus = next(r for r in result.categories if r.id == "B")
    assert (bonus.raw, bonus.points, bonus.capped) == (Decimal(3), Decimal(2), True)  # pool cap 2
    assert result.total == Decimal(22)


def test_deduction_cap(minimal, matcher):
    result = score(minimal, matcher, accidents=7)
    c = clause(result, "7")
    assert (c.rules[0].raw, c.points) == (Decimal(-7), Decimal(-3))
    assert "超过本规则上限3分，按-3分计" in c.rules[0].explanation
    assert result.total == Decimal(17) and result.deduction == Decimal(-3)


def test_missing_is_not_zero(minimal, matcher):
    result = score(minimal, matcher, actual=None)
    c = clause(result, "1")
    assert (c.status, c.points, c.missing) == ("incomplete", Decimal(0), ["actual"])
    assert not result.complete and result.missing == ["actual"]
    assert "缺少事实：实际合格率（缺失不等于0）" in c.explanation


def test_maturity_level_and_arithmetic(minimal, matcher):
    c = clause(score(minimal, matcher, maturity=Decimal("59.9")), "5")
    assert c.points == Decimal("2.396")
    assert "属“30%以上”档" in c.rules[0].explanation


def test_assessed_points_carry_the_reason(minimal, matcher):
    c = clause(
        score(minimal, matcher, review_points=Decimal("1.25"), review_reason="计划未落实"), "4"
    )
    assert c.points == Decimal("1.25") and "理由：计划未落实" in c.explanation


def test_trace_text_and_data(minimal, matcher):
    result = score(minimal, matcher, actual=Decimal("93.8"), awards=1)
    text = render(result)
    assert "低于目标值的百分点为1.2" in text and "落在(1, 3]档" in text and "扣3分" in text
    assert f"细则版本：{minimal.version[:16]}" in text
    data = to_data(result)
    assert data["total"] == "18" and data["version"] == minimal.version
    assert data["facts"]["actual"] == "93.8"  # exact decimal text, no float


@pytest.mark.parametrize(
    "facts, field, words",
    [
        ({"actual": float("nan")}, "actual", "非有限数"),
        ({"actual": float("inf")}, "actual", "非有限数"),
        ({"actual": True}, "actual", "不能是是/否"),
        ({"actual": "95"}, "actual", "不能是文字"),
        ({"actual": 101}, "actual", "超出范围"),
        ({"awards": Decimal("1.5")}, "awards", "不能有小数"),
        ({"report_done": 1}, "report_done", "应为是（true）或否（false）"),
        ({"nonsense": 1}, "nonsense", "不是本细则声明的事实"),
        ({"actual": Decimal("1.0000000000000001")}, "actual", "有效数字不能超过15位"),
    ],
)
def test_bad_facts_are_rejected_naming_the_field(minimal, oracle, facts, field, words):
    with pytest.raises(InvalidFacts) as err:
        score_unit(minimal, "x", {**FULL, **facts}, oracle, "test")
    assert [e.field for e in err.value.errors] == [field]
    assert words in err.value.errors[0].message
