"""Several reviewers scoring a clause (专家评审, issue 9): each enters their own points and reason,
the clause takes the mean, after dropping the highest and the lowest where the rule file says so.

The fixture scheme tests/fixtures/panel carries the cases (3 reviewers without dropping, 5 with the
extremes dropped, ties among the extremes, marks missing, marks in excess); they run through the
oracle and through durable-rules here, and the scoring core's answers are pinned below.
"""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.casebook import run_cases
from service.domain.model import Panel
from service.domain.numbers import CONTEXT
from service.domain.panel import HIGHEST, LOWEST, Mark, combine, with_marks
from service.domain.scoring import score_units
from service.domain.trace import render, render_data, to_data
from service.rulefiles.loader import load_scheme

from ..conftest import FIXTURES, MINIMAL

D = Decimal
PANEL = FIXTURES / "panel"
FIVE = Panel(5, 1, 1)


def _marks(*points, reasons=False):
    names = "甲乙丙丁戊己庚辛壬癸"
    return [
        Mark(f"专家{names[i]}", D(str(p)), f"理由{names[i]}" if reasons else "")
        for i, p in enumerate(points)
    ]


def _one(scheme, matcher, facts=None, marks=None):
    return score_units(
        scheme, {"某镇": facts or {}}, matcher, "m", explain=True, marks={"某镇": marks or {}}
    )[0]


def test_the_fixture_cases_pass_on_both_matchers(oracle, engine):
    scheme = load_scheme(PANEL)
    assert sum(len(c.tests) for c in scheme.clauses.values()) == 9
    assert [len(t.marks) for t in scheme.tests] == [0, 2, 2]  # clause -> marks
    for matcher in (oracle, engine):
        results = run_cases(scheme, matcher)
        assert results and all(r.ok for r in results), [r for r in results if not r.ok]


def test_exactly_one_highest_and_one_lowest_are_dropped_among_ties():
    result = combine(FIVE, _marks(10, 5, 9, 10, 5))
    assert [m.dropped for m in result.marks] == ["", LOWEST, "", HIGHEST, ""]
    # the lowest dropped is the first entered of the tied ones, the highest the last entered
    assert (result.counted, result.sum, result.mean) == (3, D(24), D(8))


def test_all_marks_equal_still_drops_one_each_and_keeps_the_mean():
    result = combine(FIVE, _marks(7, 7, 7, 7, 7))
    assert sorted(m.dropped for m in result.marks) == ["", "", "", HIGHEST, LOWEST]
    assert result.mean == D(7)


def test_without_dropping_every_mark_counts():
    result = combine(Panel(3), _marks(8, 9, 9))
    assert not any(m.dropped for m in result.marks)
    assert result.sum == D(26)
    assert result.mean == CONTEXT.divide(D(26), D(3))  # 34 digits: rounded only when shown


def test_fewer_marks_than_declared_leave_no_mean():
    result = combine(FIVE, _marks(6, 7))
    assert (result.status, result.entered, result.mean) == ("waiting", 2, None)
    assert combine(FIVE, _marks(1, 2, 3, 4, 5, 6)).mean is None  # more than declared: no choosing


def test_the_unit_s_own_value_for_a_panel_clause_is_dropped():
    scheme = load_scheme(PANEL)
    values, panels = with_marks(scheme, {"leader_points": D(10), "leader_reason": "自评"}, None)
    assert "leader_points" not in values and "leader_reason" not in values
    assert panels["1"].status == "waiting"


def test_the_mean_is_exact_in_the_data_and_rounded_in_the_sentence(oracle, engine):
    scheme = load_scheme(PANEL)
    marks = {"1": [Mark("王领导", D(8), "工作扎实"), Mark("李领导", D(9), "有亮点"),
                   Mark("张领导", D(9), "成效突出")]}  # fmt: skip
    for matcher in (oracle, engine):
        result = _one(scheme, matcher, marks=marks)
        clause = result.clauses[0]
        assert clause.status == "scored"
        # the rule's points are the mean to the core's 34 digits (the clause's sum, as every
        # clause's, is taken in the default context)
        assert clause.rules[0].amount == CONTEXT.divide(D(26), D(3))
        assert clause.points == +CONTEXT.divide(D(26), D(3))
        assert clause.explanation == (
            "评审组3人独立打分：王领导8分、李领导9分、张领导9分；3人平均约8.67分。"
            "本项得约8.67分（满分10分）"
        )
        assert clause.facts["leader_reason"] == "王领导：工作扎实；李领导：有亮点；张领导：成效突出"


def test_the_trace_shows_each_reviewer_what_was_dropped_and_the_mean(oracle):
    scheme = load_scheme(PANEL)
    result = _one(scheme, oracle, marks={"2": _marks(6, 7, 8, 9, 10, reasons=True)})
    clause = next(c for c in result.clauses if c.id == "2")
    assert clause.points == D(8)
    data = to_data(result)["clauses"][1]["rules"][0]
    assert data["panel"]["marks"][0] == {
        "reviewer": "专家甲",
        "points": "6",
        "reason": "理由甲",
        "dropped": "lowest",
    }
    assert [m["dropped"] for m in data["panel"]["marks"]] == ["lowest", "", "", "", "highest"]
    assert (data["panel"]["counted"], data["panel"]["sum"], data["panel"]["mean"]) == (3, "24", "8")
    assert data["explanation"] == (
        "评审组5人独立打分：专家甲6分（最低分，去掉）、专家乙7分、专家丙8分、专家丁9分、"
        "专家戊10分（最高分，去掉）；去掉1个最高分和1个最低分后其余3人平均8分"
    )
    # a rule without a panel has no panel key: the traces of other schemes are as they were
    plain = to_data(score_units(load_scheme(MINIMAL), {"u": {}}, oracle, "m")[0])
    assert not any("panel" in r for c in plain["clauses"] for r in c["rules"])
    text = render(result)
    assert "专家戊10分（最高分，去掉）" in text
    # each reviewer's reason, one line each, in a fresh trace and in a stored one alike
    assert "评审 专家甲：6.00（最低分，去掉）　理由：理由甲" in text
    assert render_data(to_data(result)) == text


def test_missing_marks_make_the_clause_incomplete_never_zero_saying_how_many_are_in(oracle):
    scheme = load_scheme(PANEL)
    result = _one(scheme, oracle, marks={"2": _marks(6, 7)})
    clause = next(c for c in result.clauses if c.id == "2")
    assert clause.status == "incomplete"
    assert not result.complete and "expert_points" in result.missing
    assert clause.explanation == (
        "缺少事实：专家评审得分、专家评审理由（缺失不等于0；评审打分已收到2份，共需5份），本项暂计0分"
    )
    assert clause.rules[0].explanation == (
        "评审组应有5人独立打分，已收到2份（专家甲、专家乙），还缺3份，暂不计分"
    )


def test_scoring_without_marks_never_takes_the_unit_s_own_figure(oracle):
    scheme = load_scheme(PANEL)
    result = score_units(
        scheme, {"u": {"leader_points": D(10), "leader_reason": "自评满分"}}, oracle, "m"
    )[0]
    assert result.clauses[0].status == "incomplete"
    assert result.total == 0


@pytest.mark.parametrize("points", [(0, 0, 0), (10, 10, 10), (0, 10, 5), ("3.33", "3.33", "3.34")])
def test_the_engine_and_the_oracle_agree_on_panel_means(oracle, engine, points):
    scheme = load_scheme(PANEL)
    marks = {"1": _marks(*points)}
    a, b = _one(scheme, oracle, marks=marks), _one(scheme, engine, marks=marks)
    assert a.clauses[0].points == b.clauses[0].points
    assert [o.fired for o in a.clauses[0].rules] == [o.fired for o in b.clauses[0].rules] == [True]


@st.composite
def _panels_and_marks(draw):
    highest, lowest = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    reviewers = draw(st.integers(highest + lowest + 1, highest + lowest + 6))
    points = draw(st.lists(st.decimals(0, 10, places=2), min_size=reviewers, max_size=reviewers))
    return Panel(reviewers, highest, lowest), _marks(*points)


@given(_panels_and_marks())
@settings(max_examples=300, deadline=None)
def test_dropping_sets_aside_exactly_the_declared_extremes(drawn):
    panel, marks = drawn
    result = combine(panel, marks)
    high = [m.points for m in result.marks if m.dropped == HIGHEST]
    low = [m.points for m in result.marks if m.dropped == LOWEST]
    kept = [m.points for m in result.marks if not m.dropped]
    assert (len(high), len(low), len(kept)) == (
        panel.drop_highest,
        panel.drop_lowest,
        panel.counted,
    )
    assert all(h >= k for h in high for k in kept) and all(lo <= k for lo in low for k in kept)
    assert result.mean == CONTEXT.divide(sum(kept, D(0)), D(len(kept)))
    assert min(kept) <= result.mean <= max(kept)
