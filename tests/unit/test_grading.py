"""Ranking and grades by the 宝山 policy (reading 7), on synthetic totals."""

from decimal import Decimal

from service.domain.grading import competition_ranks, decide
from service.domain.model import Distinction, Grading, Scheme, Source, Tier
from service.domain.scoring import GradeVetoResult


def scheme(grading):
    return Scheme(
        id="g",
        title="g",
        year="2022",
        issuer="",
        source=Source("", "", ""),
        total=Decimal(100),
        unit="分",
        categories=[],
        clauses={},
        facts={},
        grading=grading,
    )


RANKED = scheme(Grading("rank", (Tier("A", top=6), Tier("B")), (Distinction("优秀", "A", top=3),)))
BAR = GradeVetoResult("v", "bar", "优秀", "发生重大质量安全事故", "major_incident", {})
FORCE = GradeVetoResult("v", "force", "D", "区域性产品质量安全事件", "regional_incident", {})


def test_ties_share_a_rank():
    assert competition_ranks([Decimal(90), Decimal(95), Decimal(90), Decimal(80)]) == [2, 1, 2, 4]


def test_shared_rank_straddling_the_boundary_gets_the_better_grade():
    totals = [Decimal(t) for t in (99, 98, 97, 96, 95, 90, 90, 80)]
    grades = [decide(RANKED, t, r, [])[0] for t, r in zip(totals, competition_ranks(totals))]
    assert grades == ["A"] * 7 + ["B"]


def test_barred_unit_keeps_rank_and_a_and_excellence_is_not_passed_down():
    grade, distinctions, why = decide(RANKED, Decimal(97), 2, [BAR])
    assert (grade, distinctions) == ("A", [])
    assert "不顺延" in why
    assert decide(RANKED, Decimal(96), 4, [])[:2] == ("A", [])


def test_tie_at_third_gives_both_excellence():
    totals = [Decimal(t) for t in (99, 98, 97, 97, 90)]
    ranks = competition_ranks(totals)
    assert [decide(RANKED, t, r, [])[1] for t, r in zip(totals, ranks)] == [["优秀"]] * 4 + [[]]


def test_force_replaces_grade_and_distinctions():
    assert decide(RANKED, Decimal(99), 1, [FORCE])[:2] == ("D", [])


def test_thresholds():
    s = scheme(
        Grading(
            "thresholds",
            (Tier("优秀", min=Decimal(90)), Tier("合格", min=Decimal(60)), Tier("不合格")),
        )
    )
    assert [decide(s, Decimal(t), None, [])[0] for t in (90, "89.99", 60, 59)] == [
        "优秀",
        "合格",
        "合格",
        "不合格",
    ]


def test_rank_grading_waits_for_the_ranking():
    grade, _, why = decide(RANKED, Decimal(99), None, [])
    assert grade is None and "需与其他单位一同排名" in why
