"""A fact that applies only sometimes (``applies_when``): "没有成立扣5分，不是主要负责人担任主任委员扣2.5分"."""

from decimal import Decimal

from service.casebook import run_cases
from service.domain.facts import applicable, not_applicable
from service.domain.scoring import score_unit
from service.domain.trace import render, render_data, to_data
from service.rulefiles.loader import load_scheme

from ..conftest import FIXTURES
from .test_scoring import FULL

APPLIES = FIXTURES / "applies"


def test_the_clause_cases_pass_on_both_matchers(oracle, engine):
    scheme = load_scheme(APPLIES)
    assert scheme.facts["chair_is_principal"].applies_when_text == "committee_established"
    for matcher in (oracle, engine):
        results = run_cases(scheme, matcher)
        assert len(results) >= 6 and all(r.ok for r in results), [r for r in results if not r.ok]


def test_a_fact_that_does_not_apply_is_not_missing_and_reads_nothing(oracle):
    scheme = load_scheme(APPLIES)
    facts = {**FULL, "committee_established": False, "chair_is_principal": False}
    # (incident_reported does not apply either: FULL has no major incident)
    assert not_applicable(scheme, facts) == {"chair_is_principal", "incident_reported"}
    assert "chair_is_principal" not in applicable(scheme, facts)
    result = score_unit(scheme, "甲街道", facts, oracle, "test")
    c = next(c for c in result.clauses if c.id == "8")
    assert (c.status, c.points, c.missing) == ("scored", Decimal(-5), [])
    assert result.complete and result.not_applicable == ["chair_is_principal", "incident_reported"]
    assert "不适用的事实：chair_is_principal" in render(result)
    assert "不适用的事实：chair_is_principal" in render_data(to_data(result))


def test_a_fact_whose_condition_is_undetermined_counts_as_missing(oracle):
    scheme = load_scheme(APPLIES)
    facts = {**FULL, "chair_is_principal": True}  # committee_established not given
    assert "chair_is_principal" not in not_applicable(scheme, facts)
    assert "chair_is_principal" not in applicable(scheme, facts)
    result = score_unit(scheme, "甲街道", facts, oracle, "test")
    c = next(c for c in result.clauses if c.id == "8")
    assert c.status == "incomplete"
    assert set(c.missing) == {"committee_established", "chair_is_principal"}
    assert not result.complete


def test_a_fact_that_applies_is_read_as_usual(oracle):
    scheme = load_scheme(APPLIES)
    facts = {**FULL, "committee_established": True, "chair_is_principal": False}
    assert applicable(scheme, facts)["chair_is_principal"] is False
    result = score_unit(scheme, "甲街道", facts, oracle, "test")
    c = next(c for c in result.clauses if c.id == "8")
    assert (c.status, c.points) == ("scored", Decimal("-2.5"))
    assert result.not_applicable == ["incident_reported"]


def test_the_form_marks_a_fact_that_does_not_apply():
    from admin import forms

    scheme = load_scheme(APPLIES)
    chair = forms.layout(scheme).fields["chair_is_principal"]
    assert chair.applies_words == "“成立质量工作委员会”"
    assert forms.layout(scheme).fields["committee_established"].applies_words == ""
    # as the form holds the values: strings as typed
    assert forms.not_applying(scheme, {"committee_established": "false"}) == {"chair_is_principal"}
    assert forms.not_applying(scheme, {"committee_established": "true"}) == set()
    assert forms.not_applying(scheme, {}) == set()  # not yet known: asked for
    assert forms.not_applying(scheme, {"committee_established": "也许"}) == set()


def test_the_rule_reading_a_fact_that_does_not_apply_says_so(oracle):
    scheme = load_scheme(APPLIES)
    facts = {**FULL, "committee_established": False}
    result = score_unit(scheme, "甲街道", facts, oracle, "test")
    r2 = next(c for c in result.clauses if c.id == "8").rules[1]
    assert not r2.fired
    assert "读取的事实“由主要负责人担任主任委员”不适用，不计分" in r2.explanation
    assert "缺少事实" not in r2.explanation


def test_a_grade_veto_on_a_fact_that_does_not_apply_neither_fires_nor_waits(oracle):
    """incident_reported applies only after a major incident: without one, 优秀 is not 待定."""
    scheme = load_scheme(APPLIES)
    facts = {**FULL, "committee_established": True, "chair_is_principal": True}
    result = score_unit(scheme, "甲街道", facts, oracle, "test")
    assert result.not_applicable == ["incident_reported"]
    assert (result.grade, result.grade_pending, result.grade_pending_vetoes) == ("优秀", False, [])
    # with an incident the fact applies: the force veto decides (D), nothing waits on it
    result = score_unit(scheme, "甲街道", {**facts, "major_incident": True}, oracle, "test")
    assert result.grade == "D"


def test_a_shared_fact_read_only_by_a_condition_counts_as_read(tmp_path):
    import shutil

    folder = tmp_path / "applies"
    shutil.copytree(APPLIES, folder)
    scheme_yaml = folder / "scheme.yaml"
    scheme_yaml.write_text(
        scheme_yaml.read_text("utf-8").replace(
            "  - {name: major_incident,",
            "  - {name: has_plan, type: boolean, label: 有应急预案}\n"
            "  - {name: plan_drilled, type: boolean, label: 预案已演练, applies_when: has_plan}\n"
            "  - {name: major_incident,",
        ),
        "utf-8",
    )
    clause = folder / "clauses" / "08-committee.yaml"
    clause.write_text(
        clause.read_text("utf-8").replace(
            "  - {id: r2,",
            "  - {id: r3, kind: fixed, when: not plan_drilled, points: -1}\n  - {id: r2,",
        ),
        "utf-8",
    )
    scheme = load_scheme(folder)  # has_plan is read by plan_drilled's condition only: not unused
    assert scheme.facts["plan_drilled"].applies_when_text == "has_plan"
