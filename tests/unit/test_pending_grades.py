"""A missing fact never awards a grade or distinction (rules/README.md §4: missing is not "no")."""

from decimal import Decimal
from pathlib import Path

import yaml

from service.domain.grading import rank_units
from service.domain.scoring import score_units
from service.domain.trace import render, to_data

from .test_scoring import clause, score

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def baoshan_units():
    return yaml.safe_load((EXAMPLES / "baoshan-2022-b1.yaml").read_text("utf-8"))["units"]


def test_baoshan_unit_without_the_incident_fact_is_not_excellent(shipped, oracle):
    """The case of issue 9: 罗店镇 without major_quality_incident was still A（优秀）."""
    scheme = shipped["baoshan-2022-b1"]
    units = baoshan_units()
    assert "major_quality_incident" in units["罗店镇"]
    complete = score_units(scheme, units, oracle, "test")
    before = {e.unit: e for e in rank_units(scheme, complete)}
    assert before["罗店镇"].distinctions == ["优秀"]  # the unit of the case, with the fact

    del units["罗店镇"]["major_quality_incident"]
    results = score_units(scheme, units, oracle, "test")
    entries = {e.unit: e for e in rank_units(scheme, results)}
    luodian = entries["罗店镇"]
    # same points, same rank and tier: the fact only decides the distinction
    assert (luodian.rank, luodian.grade) == (before["罗店镇"].rank, "A")
    assert luodian.distinctions == []
    assert luodian.pending_distinctions == ["优秀"]
    assert luodian.grade_pending is False
    assert any("当年度辖区内发生重大产品" in why for why in luodian.pending)
    assert "待定" in luodian.explanation
    # the 优秀 is not passed down either, and nobody else changes
    for unit, entry in entries.items():
        if unit != "罗店镇":
            assert (entry.grade, entry.distinctions) == (
                before[unit].grade,
                before[unit].distinctions,
            )
    result = next(r for r in results if r.unit == "罗店镇")
    assert result.pending_distinctions == ["优秀"]
    data = to_data(result)
    assert data["pending_distinctions"] == ["优秀"]
    assert data["grade_pending_vetoes"][0]["id"] == "major_incident"
    assert data["grade_pending_vetoes"][0]["missing"] == ["major_quality_incident"]
    assert "待定" in render(result)


def test_missing_fact_of_a_force_veto_leaves_the_grade_pending(minimal, oracle):
    result = score(minimal, oracle, major_incident=None)
    assert result.grade is None and result.grade_pending is True
    assert "待定" in result.grade_explanation and "发生重大质量事件" in result.grade_explanation
    text = render(result)
    assert "等级：待定" in text
    # with the fact given either way, the grade is decided
    assert score(minimal, oracle, major_incident=False).grade == "优秀"
    assert score(minimal, oracle, major_incident=True).grade == "D"


def test_bar_on_a_distinction_the_unit_would_not_reach_is_not_pending(shipped, oracle):
    scheme = shipped["baoshan-2022-b1"]
    units = baoshan_units()
    results = score_units(scheme, units, oracle, "test")
    last = min(results, key=lambda r: r.total)
    del units[last.unit]["major_quality_incident"]
    entries = {e.unit: e for e in rank_units(scheme, score_units(scheme, units, oracle, "test"))}
    # not in the top 3: 优秀 was never within reach, so nothing waits on the missing fact
    assert entries[last.unit].pending_distinctions == []
    assert entries[last.unit].grade_pending is False


def test_clause_veto_with_its_fact_missing_is_incomplete_not_scored(minimal, oracle):
    """Clause 3's veto reads major_incident: missing, the clause is not scored as if it held."""
    result = score(minimal, oracle, major_incident=None)
    c = clause(result, "3")
    assert (c.status, c.points) == ("incomplete", Decimal(0))
    assert "major_incident" in c.missing
    assert "缺少事实" in c.explanation
    assert result.complete is False
