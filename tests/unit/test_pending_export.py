"""The ranking workbook and page write a pending grade or distinction as 待定, never as awarded."""

from openpyxl import Workbook

from admin.export import _styles, ranking_sheet


def entry(**changes):
    base = {
        "unit": "罗店镇",
        "total": "95",
        "rank": 1,
        "grade": "A",
        "distinctions": [],
        "explanation": "排名第1，在前6名内，评为A档",
        "complete": False,
        "grade_pending": False,
        "pending_distinctions": [],
    }
    return {**base, **changes}


def grades_written(entries):
    wb = Workbook()
    _styles(wb)
    ws = wb.active
    ranking_sheet(ws, "宝山", "0" * 40, entries)
    return [ws.cell(row=5 + i, column=5).value for i in range(len(entries))]


def test_workbook_marks_pending_distinction_and_grade():
    assert grades_written(
        [
            entry(pending_distinctions=["优秀"]),
            entry(unit="顾村镇", grade=None, grade_pending=True),
            entry(unit="月浦镇", distinctions=["优秀"], complete=True),
        ]
    ) == ["A（优秀待定）", "待定", "A（优秀）"]
