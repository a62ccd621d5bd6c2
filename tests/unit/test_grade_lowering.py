"""A grade veto with ``effect: lower`` (降一级) moves the grade one tier down the scheme's order."""

from decimal import Decimal

from service.domain.grading import decide, decision
from service.domain.model import Grading, Tier
from service.domain.scoring import GradePending, GradeVetoResult

from .test_grading import RANKED, scheme

LOWER = GradeVetoResult(
    "l", "lower", "", "发生较大质量安全事故的，考核等次降一级", "big_incident", {}
)
THRESHOLDS = scheme(
    Grading(
        "thresholds",
        (
            Tier("优秀", min=Decimal(90)),
            Tier("良好", min=Decimal(75)),
            Tier("合格", min=Decimal(60)),
            Tier("不合格"),
        ),
    )
)


def test_lower_moves_one_tier_down_and_says_why():
    grade, distinctions, why = decide(THRESHOLDS, Decimal(95), None, [LOWER])
    assert grade == "良好"
    assert "降一级" in why and "优秀" in why and "发生较大质量安全事故" in why


def test_lower_at_each_boundary():
    cases = {"90": "良好", "89.99": "合格", "75": "合格", "74.99": "不合格", "60": "不合格"}
    for total, want in cases.items():
        assert decide(THRESHOLDS, Decimal(total), None, [LOWER])[0] == want, total


def test_the_lowest_tier_stays_lowest():
    grade, _, why = decide(THRESHOLDS, Decimal(10), None, [LOWER])
    assert grade == "不合格" and "最低" in why


def test_lowered_unit_loses_the_distinction_of_its_old_tier():
    grade, distinctions, _ = decide(RANKED, Decimal(99), 1, [LOWER])
    assert (grade, distinctions) == ("B", [])


def test_force_wins_over_lower():
    force = GradeVetoResult("f", "force", "D", "区域性事件", "regional", {})
    assert decide(THRESHOLDS, Decimal(95), None, [LOWER, force])[0] == "D"


def test_missing_fact_of_a_lower_veto_leaves_the_grade_pending_unless_already_lowest():
    pending = [
        GradePending("l", "lower", "", "降一级", "big_incident", ["big_incident"], "较大事故")
    ]
    d = decision(THRESHOLDS, Decimal(95), None, [], pending)
    assert d.grade is None and d.grade_pending and "待定" in d.explanation
    d = decision(THRESHOLDS, Decimal(10), None, [], pending)
    assert (d.grade, d.grade_pending) == ("不合格", False)


def test_the_fixture_scheme_tests_pass_and_bite(oracle, engine):
    from service.casebook import run_cases
    from service.rulefiles.loader import load_scheme

    from ..conftest import FIXTURES

    lowering = load_scheme(FIXTURES / "lowering")
    names = {c.name for c in lowering.tests}
    assert (
        "恰好18分，发生较大事故：降为合格" in names
        and "未填是否发生较大事故：等级待定，不评优秀" in names
    )
    for matcher in (oracle, engine):
        results = run_cases(lowering, matcher)
        assert results and all(r.ok for r in results), [r for r in results if not r.ok]
    # and a case that expects the unlowered grade fails, naming both grades
    import copy
    import dataclasses

    wrong = copy.copy(lowering)
    wrong.tests = [
        dataclasses.replace(c, grade="优秀") if c.name.startswith("满分，发生较大事故") else c
        for c in lowering.tests
    ]
    failed = [r for r in run_cases(wrong, oracle) if not r.ok]
    assert len(failed) == 1 and "期望等级优秀，实得合格" in failed[0].problems[0]
