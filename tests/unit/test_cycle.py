"""The cycle's table (domain/cycle.py): each refusal says the state, who moves it on, or the deadline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.domain.cycle import ACTIONS, STATES, CycleRefusal, RoundDates, check_action

T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)
DATES = RoundDates(
    T0, T0 + timedelta(days=10), T0 + timedelta(days=11), T0 + timedelta(days=18),
    T0 + timedelta(days=20),
)  # fmt: skip
BEFORE = T0 - timedelta(hours=1)


def test_the_cycle_goes_through_every_state_in_order():
    state = "none"
    for action, role in (
        ("save_draft", "submitter"),
        ("submit_self", "submitter"),
        ("review", "reviewer"),
        ("complete_review", "reviewer"),
        ("publish", "admin"),
        ("appeal", "submitter"),
        ("answer_appeal", "reviewer"),
        ("finalize", "admin"),
    ):
        state = check_action(action, state, role, DATES, BEFORE)
    assert state == "final"
    assert all(a.leaves in (None, *STATES) for a in ACTIONS.values())
    assert all(a.starts <= set(STATES) for a in ACTIONS.values())


def test_a_submitted_unit_cannot_change_its_facts_and_is_told_who_moves_it_on():
    with pytest.raises(CycleRefusal) as refused:
        check_action("submit_self", "submitted", "submitter", DATES, BEFORE)
    assert refused.value.kind == "state"
    assert refused.value.message == (
        "单位当前状态为“已提交自评”，不能提交自评；下一步由评审人评审（修改事实、完成评审或退回）"
    )


def test_a_role_that_does_not_take_a_step_is_told_so():
    with pytest.raises(CycleRefusal) as refused:
        check_action("return", "submitted", "submitter", DATES, BEFORE)
    assert refused.value.kind == "role"
    assert refused.value.message.startswith("“退回自评”不是单位填报人可以做的")


def test_a_deadline_closes_its_stage_at_the_minute_it_names():
    assert check_action("submit_self", "draft", "submitter", DATES, T0) == "submitted"  # at it
    with pytest.raises(CycleRefusal) as refused:
        check_action("submit_self", "draft", "submitter", DATES, T0 + timedelta(seconds=1))
    assert (refused.value.kind, refused.value.deadline) == ("deadline", "self_deadline")
    assert refused.value.message.startswith("自评截止时间（2026-03-01 17:00）已过，不能再提交自评")
    # the review goes on after the self-assessment deadline, until its own
    assert check_action("return", "submitted", "reviewer", DATES, T0 + timedelta(days=1)) == "draft"


def test_dates_out_of_order_are_named():
    bad = RoundDates(T0, T0 - timedelta(days=1), T0, T0, T0)
    assert bad.problems() == {
        "review_deadline": ["评审截止时间不能早于自评截止时间（2026-03-01 17:00）"]
    }
    assert DATES.problems() == {}
