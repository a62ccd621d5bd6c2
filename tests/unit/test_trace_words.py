"""The sentences of a trace: numbers to 2 places, no doubled words, names apart from labels."""

from decimal import Decimal

import pytest

from service.domain.scoring import score_unit
from service.domain.trace import render, to_data
from tests.conftest import RULES


@pytest.fixture(scope="module")
def shipped_by_dir():
    from service.rulefiles.loader import load_scheme

    return {
        name: load_scheme(RULES / name)
        for name in ("shuangtaizi/2016-2017", "minhang-gumeilu/2022", "jiangsu-zhenxing/2010")
    }


def _clause(result, cid):
    return next(c for c in result.clauses if c.id == cid)


def test_proportional_points_are_shown_to_two_places_and_kept_exact(shipped_by_dir, oracle):
    scheme = shipped_by_dir["shuangtaizi/2016-2017"]
    rate = Decimal("81.9444444444444")  # 18.0555…% short: 5.41666…7 points at 0.3 each
    result = score_unit(
        scheme,
        "甲",
        {"tourism_campaigns": 2, "tourism_complaint_completion_rate": rate},
        oracle,
        "test",
    )
    rule = _clause(result, "6").rules[1]
    assert rule.raw == (100 - rate) * Decimal("-0.3")  # the exact value stays in the data
    assert "按比例计约-5.42分" in rule.explanation
    assert "5.4166" not in rule.explanation and "5.4166" not in render(result)
    data = next(c for c in to_data(result)["clauses"] if c["id"] == "6")
    assert data["rules"][1]["raw"] == str(rule.raw)


def test_a_note_that_starts_with_its_own_heading_is_not_headed_twice(shipped_by_dir, oracle):
    scheme = shipped_by_dir["minhang-gumeilu/2022"]
    text = render(score_unit(scheme, "甲", {}, oracle, "test"))
    assert "解读：解读：" not in text
    assert "解读：考核要求列出四件可核查的事项" in text


def test_a_missing_fact_is_named_apart_from_the_guard(shipped_by_dir, oracle):
    scheme = shipped_by_dir["jiangsu-zhenxing/2010"]
    result = score_unit(scheme, "甲", {}, oracle, "test")
    words = _clause(result, "7").rules[0].explanation
    assert "缺少事实建立" not in words
    assert "缺少事实“建立打假工作责任制”" in words


def test_a_group_header_does_not_repeat_an_id_equal_to_its_title(shipped_by_dir, oracle):
    scheme = shipped_by_dir["shuangtaizi/2016-2017"]
    text = render(score_unit(scheme, "甲", {}, oracle, "test"))
    assert "【质量目标 质量目标】" not in text
    assert "【质量目标】基本分" in text
    assert "【2 主要农产品质量安全监测合格率】" in text  # a different id is still shown


def test_a_rounded_result_says_it_is_rounded_and_keeps_two_places(minimal, oracle):
    facts = {
        "target": 95,
        "actual": 96,
        "coverage": 100,
        "report_done": True,
        "bureau_score": 100,
        "review_points": 2,
        "review_reason": "材料齐全",
        "maturity": Decimal("99.9"),
        "awards": 0,
        "accidents": 0,
        "major_incident": False,
    }
    c = _clause(score_unit(minimal, "甲", facts, oracle, "test"), "5")
    assert c.points == Decimal("3.996")  # 4 × 99.9 %, exact
    assert "4×99.9%≈4.00分" in c.explanation  # not "=4分": 3.996 is not 4
    assert "本项得约4.00分" in c.explanation
