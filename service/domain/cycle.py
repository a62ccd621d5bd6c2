"""The assessment round (考核轮次) and each unit's place in it: the review cycle no unit can bypass.

The offices' process (国办发〔2013〕47号 and the district schemes built on it) is 目标备案 → 自评 →
实地核查/评审 → 综合评定 → 公示 → 申诉/复核 → 定稿.  A round fixes the scheme version and the year,
and its dates close each stage: after the self-assessment deadline no unit changes its facts, after
the review deadline no reviewer does, and appeals are taken only inside the appeal window.

Each unit has one state per round.  ``ACTIONS`` is the whole cycle: which states an action starts
from, the state it leaves, who may take it and which deadline closes it.  Everything here is plain
values; the service layer (``service/rounds.py``) stores states and raises what this refuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

#: the states of a unit in a round, in the order the cycle goes through them, with their words
STATES = {
    "none": "未填报",
    "draft": "草稿",
    "submitted": "已提交自评",
    "in_review": "评审中",
    "reviewed": "已评审",
    "published": "公示中",
    "appealed": "申诉中",
    "rechecked": "已复核",
    "final": "定稿",
}

#: who moves a unit on from each state, for the message that refuses an action
NEXT_STEP = {
    "none": "由本单位填报人填写并提交自评",
    "draft": "由本单位填报人提交自评",
    "submitted": "由评审人评审（修改事实、完成评审或退回）",
    "in_review": "由评审人完成评审或退回",
    "reviewed": "由评审人或管理员计算正式得分，管理员发布公示（评审截止前评审人可重新打开评审）",
    "published": "公示期内本单位可申诉；申诉期结束后由管理员定稿",
    "appealed": "由评审人逐条答复申诉（维持或更正）",
    "rechecked": "由管理员重新发布公示（更正后的得分），申诉期结束后定稿",
    "final": "已定稿，不能再改动",
}

#: the round's deadlines, with their words; the order is the order they must come in
DEADLINES = {
    "self_deadline": "自评截止时间",
    "review_deadline": "评审截止时间",
    "publication_start": "公示开始时间",
    "appeal_deadline": "申诉截止时间",
    "publication_end": "公示结束时间",
}

ROUND_STAGES = {"open": "进行中", "published": "公示中", "final": "已定稿"}


@dataclass(frozen=True)
class Action:
    """One step of the cycle: from ``starts`` to ``leaves``, by ``roles``, until ``closed_by``."""

    name: str
    words: str
    starts: frozenset
    leaves: str | None  # None: the state does not change
    roles: frozenset
    closed_by: str | None  # the deadline after which nobody takes it (None: no deadline)


def _action(name, words, starts, leaves, roles, closed_by) -> Action:
    return Action(
        name, words, frozenset(starts.split()), leaves, frozenset(roles.split()), closed_by
    )


ACTIONS = {
    a.name: a
    for a in (
        _action("save_draft", "保存自评草稿", "none draft", "draft", "submitter admin", "self_deadline"),
        _action("submit_self", "提交自评", "none draft", "submitted", "submitter admin", "self_deadline"),
        _action("review", "评审修改事实", "submitted in_review", "in_review", "reviewer admin", "review_deadline"),
        _action("return", "退回自评", "submitted in_review", "draft", "reviewer admin", "review_deadline"),
        _action("complete_review", "完成评审", "submitted in_review", "reviewed", "reviewer admin", "review_deadline"),
        _action("reopen_review", "重新打开评审", "reviewed", "in_review", "reviewer admin", "review_deadline"),
        _action("compute_official", "计算正式得分", "reviewed rechecked", None, "reviewer admin", None),
        _action("publish", "发布公示", "reviewed rechecked", "published", "admin", None),
        _action("appeal", "提出申诉", "published", "appealed", "submitter admin", "appeal_deadline"),
        _action("correct_appeal", "按申诉更正得分", "appealed", None, "reviewer admin", None),
        _action("answer_appeal", "答复申诉", "appealed", "rechecked", "reviewer admin", None),
        _action("finalize", "定稿", "published rechecked", "final", "admin", None),
    )
}  # fmt: skip


class CycleRefusal(Exception):
    """An action the cycle does not allow now; ``kind``: ``state`` (not from this state), ``role``
    (not by this role) or ``deadline`` (its deadline has passed)."""

    def __init__(self, kind: str, message: str, deadline: str | None = None):
        super().__init__(message)
        self.kind, self.message, self.deadline = kind, message, deadline


#: the time zone deadlines are shown in: the offices are in China (UTC+8, no daylight saving)
CHINA = timezone(timedelta(hours=8), "北京时间")


def shown(moment: datetime) -> str:
    """A moment as an office reads it: Beijing time, to the minute."""
    return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class RoundDates:
    self_deadline: datetime
    review_deadline: datetime
    publication_start: datetime
    appeal_deadline: datetime
    publication_end: datetime

    def problems(self) -> dict:
        """{deadline: [why]} when the dates are not in the cycle's order."""
        found: dict = {}
        names = list(DEADLINES)
        for before, after in zip(names, names[1:]):
            if getattr(self, after) < getattr(self, before):
                found.setdefault(after, []).append(
                    f"{DEADLINES[after]}不能早于{DEADLINES[before]}（{shown(getattr(self, before))}）"
                )
        return found


def state_words(state: str, returned_reason: str | None = None) -> str:
    words = STATES.get(state, state)
    if state == "draft" and returned_reason:
        words += "（已退回）"
    return words


def check_action(action_name: str, state: str, role: str, dates: RoundDates, at: datetime) -> str:
    """The state a unit in ``state`` is in after ``action_name`` by ``role`` at ``at``; raises
    ``CycleRefusal`` saying what state the unit is in and who can move it on."""
    action = ACTIONS[action_name]
    if role not in action.roles:
        raise CycleRefusal(
            "role",
            f"“{action.words}”不是{_ROLE_WORDS.get(role, role)}可以做的；单位当前状态：{STATES[state]}，"
            f"下一步{NEXT_STEP[state]}",
        )
    if state not in action.starts:
        raise CycleRefusal(
            "state",
            f"单位当前状态为“{STATES[state]}”，不能{action.words}；下一步{NEXT_STEP[state]}",
        )
    if action.closed_by is not None and at > getattr(dates, action.closed_by):
        deadline = getattr(dates, action.closed_by)
        raise CycleRefusal(
            "deadline",
            f"{DEADLINES[action.closed_by]}（{shown(deadline)}）已过，不能再{action.words}；"
            "如需延期，请管理员延长截止时间并写明理由",
            action.closed_by,
        )
    return action.leaves if action.leaves is not None else state


_ROLE_WORDS = {
    "admin": "管理员",
    "editor": "规则编辑",
    "reviewer": "评审人",
    "auditor": "审计人员",
    "submitter": "单位填报人",
}
