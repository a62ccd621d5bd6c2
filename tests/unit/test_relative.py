"""Scores relative to the other units (issue 8, mechanism 5), computed when the units are ranked:
totals converted against the best unit's ("其他单位得分=(该单位考核得分/排名第一的单位考核得分)
×600", 瑞安 2012), points by place ("第一名得基本分200分，名次每降低1位减基本分2%"), and the mean
of several rankings.

The fixture schemes tests/fixtures/relative/{ruian,by_place} carry the ranking cases (one unit,
ties at first place, a best total of 0, a missing measure); they run here through durable-rules
(which decides the grade vetoes) and the oracle.
"""

from decimal import Decimal

import pytest

from service.casebook import run_cases
from service.domain.grading import rank_units
from service.domain.relative import places, standings
from service.domain.scoring import assemble, prepare
from service.domain.trace import render, render_ranking, to_data
from service.rulefiles.loader import load_scheme

from ..conftest import FIXTURES

RUIAN = FIXTURES / "relative" / "ruian"
BY_PLACE = FIXTURES / "relative" / "by_place"


def _scored(scheme, matcher, unit, facts):
    fired = matcher.match(scheme, [prepare(scheme, facts)])[0]
    return assemble(scheme, unit, facts, set(fired), "oracle", explain=True)


@pytest.mark.parametrize("folder, ranking_cases", [(RUIAN, 5), (BY_PLACE, 5)])
def test_the_fixture_cases_pass_on_both_matchers(folder, ranking_cases, oracle, engine):
    scheme = load_scheme(folder)
    assert len(scheme.ranking_tests) == ranking_cases
    for matcher in (oracle, engine):
        results = run_cases(scheme, matcher)
        assert results and all(r.ok for r in results), [r for r in results if not r.ok]


def test_a_wrong_expectation_fails_with_the_reason(oracle, tmp_path):
    # the ranking cases check what they say: a wrong part or total is reported, explained
    import shutil

    shutil.copytree(BY_PLACE, tmp_path / "s")
    path = tmp_path / "s" / "scheme.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("total: 406, relative: {P1: 196,", "total: 407, relative: {P1: 200,"),
        encoding="utf-8",
    )
    failed = [r for r in run_cases(load_scheme(tmp_path / "s"), oracle) if not r.ok]
    assert [p for r in failed for p in r.problems] == [
        "乙镇：期望排名时总分407，实得406",
        "乙镇：排名计分P1期望200分，实得196分（排名第一的单位（甲镇）产值增长率10，本单位8，"
        "在4个单位中排第2名；第一名得200分，名次每降低1位减4分，200-1×4，得196分）",
    ]


def test_the_conversion_names_the_reference_unit_and_its_total():
    scheme = load_scheme(RUIAN)
    stood = standings(
        scheme, [("甲镇", Decimal(95), {}), ("乙镇", Decimal(76), {}), ("丙镇", Decimal(70), {})]
    )
    jia, yi, bing = stood
    assert (jia.total, yi.total) == (Decimal(600), Decimal(480))
    assert yi.scored_total == Decimal(76)
    assert yi.converted.explanation == ("排名第一的单位（甲镇）考核得分95，本单位76，76/95×600=480")
    assert (yi.converted.reference, yi.converted.reference_value) == ("甲镇", Decimal(95))
    # exact in the data, rounded only in the sentence
    assert bing.total == Decimal(70) / Decimal(95) * Decimal(600)
    assert bing.converted.explanation.endswith("70/95×600≈442.11")


def test_a_best_total_of_zero_is_undefined_not_a_division_error():
    scheme = load_scheme(RUIAN)
    stood = standings(scheme, [("甲镇", Decimal(0), {}), ("乙镇", Decimal(0), {})])
    assert [s.total for s in stood] == [Decimal(0), Decimal(0)]
    assert stood[0].converted.points is None
    assert stood[0].converted.explanation == (
        "排名第一的单位（甲镇、乙镇）考核得分0，不大于0，与第一名的比值无定义，总分不折算，保留0分"
    )


def test_equal_values_share_a_place_and_the_next_is_as_far_down_as_units_ahead():
    assert places([Decimal(10), Decimal(8), Decimal(8), Decimal(4)]) == [1, 2, 2, 4]
    assert places([Decimal(3), Decimal(1), Decimal(5), Decimal(1)], "lower") == [3, 1, 4, 1]
    assert places([Decimal(1)]) == [1]


def test_points_by_place_and_the_mean_of_two_rankings_explained():
    scheme = load_scheme(BY_PLACE)
    units = [
        ("甲镇", Decimal(85), {"growth": Decimal(10), "complaints": Decimal(3)}),
        ("乙镇", Decimal(90), {"growth": Decimal(8), "complaints": Decimal(1)}),
        ("丙镇", Decimal(70), {"growth": Decimal(8), "complaints": Decimal(5)}),
        ("丁镇", Decimal(75), {"growth": Decimal(4), "complaints": Decimal(1)}),
    ]
    ding = standings(scheme, units)[3]
    p1, p2, p3 = ding.relative
    assert (p1.points, p1.place, p1.reference, p1.reference_value) == (
        Decimal(188),
        4,
        "甲镇",
        Decimal(10),
    )
    assert p1.explanation == (
        "排名第一的单位（甲镇）产值增长率10，本单位4，在4个单位中排第4名；"
        "第一名得200分，名次每降低1位减4分，200-3×4，得188分"
    )
    assert p2.points == Decimal(50)
    assert p2.explanation.endswith(
        "100-3×40，减完为止，得0分；投诉件数：排名第一的单位（乙镇、丁镇）"
        "投诉件数1，本单位1，在4个单位中排第1名；第一名得100分，"
        "名次每降低1位减40分，得100分；取2项排名得分的平均值：(0+100)/2=50分"
    )
    assert p3.explanation == "排名第一的单位（甲镇）产值增长率10，本单位4，4/10×50=20"
    assert ding.total == Decimal(333)


def test_a_missing_measure_is_named_by_label_and_counts_nothing():
    scheme = load_scheme(BY_PLACE)
    stood = standings(
        scheme,
        [
            ("甲镇", Decimal(85), {"growth": Decimal(10), "complaints": Decimal(3)}),
            ("丁镇", Decimal(75), {"complaints": Decimal(1)}),
        ],
    )
    part = stood[1].relative[0]
    assert part.points is None
    assert part.explanation == "产值增长率无法确定（缺少事实“产值增长率”），不参加该项排名，不计分"
    assert stood[1].total == Decimal(75)


def test_a_unit_scored_alone_shows_the_parts_as_computed_in_ranking(oracle):
    scheme = load_scheme(RUIAN)
    result = _scored(scheme, oracle, "乙镇", {"work_score": Decimal(76), "major_incident": False})
    assert result.total == Decimal(76)
    (conversion,) = result.relative
    assert (conversion.points, conversion.pending) == (None, True)
    assert conversion.explanation == "排名时计算：总分按排名第一的单位折算为600分制"
    # a threshold on the 600-point scale cannot grade the 100-point total alone
    assert result.grade is None
    assert result.grade_explanation == "总分含排名时计算的部分，等级在与其他单位一同排名时评定"
    data = to_data(result)
    assert data["relative"][0]["explanation"].startswith("排名时计算")
    assert "排名计分[总分折算]：—　排名时计算" in render(result)


def test_ranking_entries_carry_the_relative_points_and_the_ranked_total(oracle):
    scheme = load_scheme(RUIAN)
    results = [
        _scored(scheme, oracle, unit, {"work_score": Decimal(s), "major_incident": False})
        for unit, s in (("甲镇", 95), ("乙镇", 76))
    ]
    entries = rank_units(scheme, results)
    yi = next(e for e in entries if e.unit == "乙镇")
    assert (yi.rank, yi.total, yi.scored_total, yi.grade) == (2, Decimal(480), Decimal(76), "合格")
    assert yi.converted.explanation == "排名第一的单位（甲镇）考核得分95，本单位76，76/95×600=480"
    assert to_data(yi)["converted"]["points"] == "480"
    assert "  2  乙镇  480.00  合格" in render_ranking(entries)
    text = render(results[1], yi)
    assert "排名计分[总分折算]：480.00　排名第一的单位（甲镇）考核得分95" in text
    assert "排名时总分：480.00分（含排名计分，按此排名）" in text


def test_the_parts_change_the_order_of_the_ranking(oracle):
    # 丁镇 scores more than 丙镇 alone, less once the parts computed in ranking are added
    scheme = load_scheme(BY_PLACE)
    facts = {
        "甲镇": (85, 10, 3),
        "乙镇": (90, 8, 1),
        "丙镇": (70, 8, 5),
        "丁镇": (75, 4, 1),
    }
    results = [
        _scored(
            scheme,
            oracle,
            unit,
            {"work_score": Decimal(s), "growth": Decimal(g), "complaints": Decimal(c)},
        )
        for unit, (s, g, c) in facts.items()
    ]
    entries = rank_units(scheme, results)
    assert [(e.unit, e.rank, e.total) for e in entries] == [
        ("乙镇", 1, Decimal(406)),
        ("甲镇", 2, Decimal(395)),
        ("丙镇", 3, Decimal(336)),
        ("丁镇", 4, Decimal(333)),
    ]
    assert [e.grade for e in entries] == ["A", "B", "B", "B"]


def test_the_ranking_page_and_workbook_show_the_parts_from_stored_scores(tmp_path, engine):
    # the service layer ranks stored scores: the parts are worked out from the stored traces' facts
    import html
    import io
    import shutil

    from openpyxl import load_workbook

    from admin import export
    from service import operations as ops
    from service import rounds

    from ..admin.conftest import make_app, sign_in
    from ..admin.test_pages import _actor

    rules = tmp_path / "rules"
    shutil.copytree(BY_PLACE, rules / "by_place")
    app = make_app(tmp_path, engine, rules)
    try:
        ctx, reviewer = app.extensions["scoring"], _actor(app, "reviewer")
        admin = _actor(app, "admin")
        scheme = "relative_by_place"
        (rnd,) = rounds.list_rounds(ctx, admin, scheme)
        for code, (score, growth, complaints) in {
            "gucun": (85, 10, 3),
            "dachang": (90, 8, 1),
            "bsip": (75, 4, 1),
        }.items():
            facts = {"work_score": score, "growth": growth, "complaints": complaints}
            # through the review cycle to an official score (the ranking reads no other)
            ops.submit(ctx, admin, code, scheme, "self", facts, {}, "", None)
            rounds.complete_review(ctx, reviewer, rnd.id, code)
            stored = ops.compute_score(ctx, reviewer, code, scheme, kind="official")
            assert stored.trace["relative"][0]["explanation"].startswith("排名时计算")
        data = ops.ranking(ctx, reviewer, scheme)
        by_unit = {e["unit"]: e for e in data["entries"]}
        bsip = by_unit["宝山工业园区"]
        assert (bsip["rank"], bsip["total"], bsip["scored_total"]) == (3, "347", "75")
        assert [p["points"] for p in bsip["relative"]] == ["192", "60", "20"]
        assert bsip["relative"][0]["explanation"] == (
            "排名第一的单位（顾村镇）产值增长率10，本单位4，在3个单位中排第3名；"
            "第一名得200分，名次每降低1位减4分，200-2×4，得192分"
        )

        client = app.test_client()
        sign_in(client, "reviewer")
        page = html.unescape(client.get(f"/admin/schemes/{scheme}/ranking").text)
        assert "单独计分 75.00分，排名时计算" in page
        assert "右侧数字是含这些部分的排名时总分" in page
        assert "工作业绩排名赋分</strong> 192.00分：排名第一的单位（顾村镇）产值增长率10" in page

        book = client.get(f"/admin/schemes/{scheme}/ranking.xlsx")
        ws = load_workbook(io.BytesIO(book.data))["排名"]
        header = [c.value for c in ws[4]]
        # the top-level categories' subtotals after 总分 (issue 9's publication outputs)
        cats = [
            t
            for _id, t in export.top_categories(
                ops.ranking(ctx, reviewer, scheme, with_traces=True)["traces"]
            )
        ]
        assert cats and header[3 : 3 + len(cats)] == cats
        del header[3 : 3 + len(cats)]
        assert header == list(export.RANK_HEADER) + [
            "单独计分总分",
            "工作业绩排名赋分",
            "两项排名平均赋分",
            "增长率与第一名之比",
            "排名计分说明",
        ]
        last = [c.value for c in ws[7]]
        del last[3 : 3 + len(cats)]
        # after 说明 and 状态: the total scored alone and each part
        assert last[1] == "宝山工业园区" and last[2] == 347 and last[7:11] == [75, 192, 60, 20]
        assert last[11].startswith("工作业绩排名赋分：排名第一的单位（顾村镇）")
    finally:
        app.extensions["scoring"].db.engine.dispose()


def test_no_unit_scored_yet_ranks_nobody():
    # the ranking page of a converting scheme before any unit is scored: no best total to divide by
    assert rank_units(load_scheme(RUIAN), []) == []
    assert standings(load_scheme(BY_PLACE), []) == []
