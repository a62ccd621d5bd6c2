"""The comparison of two scheme versions (service.domain.compare): pairs of versions built by
editing copies of fixture and shipped schemes' texts in memory, each kind of change asserted
with its exact sentence."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from service.domain.compare import compare, match_clauses, text_changes
from service.rulefiles.loader import load_files, snapshot

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
BAOSHAN = ROOT / "rules" / "baoshan" / "2022-b1"
GUMEILU = ROOT / "rules" / "minhang-gumeilu" / "2022"


def files_of(folder: Path) -> dict:
    return {rel: data.decode("utf-8") for rel, data in snapshot(folder).items()}


def edited(files: dict, edits: dict) -> dict:
    """A copy of ``files`` with each (old, new) text replaced once in its file; a file given as
    None is removed, one given as a string is added."""
    out = dict(files)
    for rel, change in edits.items():
        if change is None:
            del out[rel]
        elif isinstance(change, str):
            out[rel] = change
        else:
            text = out[rel]
            for old, new in change:
                assert old in text, (rel, old)
                text = text.replace(old, new)
            out[rel] = text
    return out


def pair(fixture: str, edits: dict):
    files = files_of(BAOSHAN if fixture == "baoshan" else FIXTURES / fixture)
    return load_files(files, fixture), load_files(edited(files, edits), fixture)


def sentences(old, new) -> list[str]:
    return [d.sentence for g in compare(old, new) for d in g.differences]


S = "scheme.yaml"
C1, C2, C3 = "clauses/01-rate.yaml", "clauses/02-coverage.yaml", "clauses/03-work.yaml"
C5, C6, C7 = "clauses/05-maturity.yaml", "clauses/06-awards.yaml", "clauses/07-accidents.yaml"

CASES = {
    "header, total, category points, clause points": (
        "minimal",
        {
            S: [
                ("title: 测试用细则", "title: 测试用细则（修订）"),
                ('year: "2026"', 'year: "2027"'),
                ("issuer: 测试", "issuer: 测试局"),
                (
                    "source: {document: test, text: 测试用细则}",
                    "source: {document: test, text: 测试用评分细则}",
                ),
                ("total: 20\ncategories", "total: 22\ncategories"),
                ("title: 基本分\n    points: 20", "title: 基本分\n    points: 22"),
                ("{id: A1, title: 目标, points: 10}", "{id: A1, title: 目标, points: 12}"),
                ("优秀, min: 18", "优秀, min: 20"),
                ("    total: 20\n", "    total: 22\n"),
            ],
            C1: [("points: 5\nstart", "points: 7\nstart")],
        },
        [
            "细则标题由“测试用细则”改为“测试用细则（修订）”",
            "年度由“2026”改为“2027”",
            "发布单位由“测试”改为“测试局”",
            "总分由20分改为22分",
            "细则原文修改：“测试用”后加入“评分”",
            "基本分分值由20分改为22分",
            "目标分值由10分改为12分",
            "“优秀”等级最低分由18分改为20分",
            "第1条分值由5分改为7分",
        ],
    ),
    "category cap and title": (
        "minimal",
        {
            S: [
                (
                    "{id: B, title: 加分项, kind: bonus, cap: 2}",
                    "{id: B, title: 加分项, kind: bonus, cap: 3}",
                ),
                ("{id: A2, title: 工作, points: 10}", "{id: A2, title: 日常工作, points: 10}"),
            ],
        },
        [
            "分类“工作”名称由“工作”改为“日常工作”",
            "加分项总计上限由2分改为3分",
        ],
    ),
    "category kind": (
        "minimal",
        {
            S: [
                (
                    "{id: B, title: 加分项, kind: bonus, cap: 2}",
                    "{id: B, title: 加分项, kind: deduction, cap: 2}",
                )
            ],
            C6: [
                ("each: 1, cap: 3", "each: -1, cap: 3"),
                ("points: 3, fired", "points: -3, fired"),
            ],
        },
        [
            "加分项类别由加分改为扣分",
            "第6条类别由加分改为扣分",
            "第6条每项分值由1分改为-1分",
        ],
    ),
    "a band's boundaries, points and name": (
        "minimal",
        {
            C1: [
                ('{range: "(1, 3]", points: -3}', '{range: "(1, 4]", points: -4}'),
                (
                    '{range: "(3, inf)", points: -5}',
                    '{range: "(4, inf)", points: -5, label: 差距过大}',
                ),
                ("points: 0, fired: [r1]", "points: 1, fired: [r1]"),
            ]
        },
        [
            "第1条第3档上限由3改为4",
            "第1条第3档分值由-3分改为-4分",
            "第1条第4档下限由3改为4",
            "第1条第4档名称由无改为“差距过大”",
        ],
    ),
    "a band's closure": (
        "minimal",
        {
            C1: [
                (
                    '{range: "(0, 1]", points: -1}\n      - {range: "(1, 3]"',
                    '{range: "(0, 1)", points: -1}\n      - {range: "[1, 3]"',
                )
            ]
        },
        [
            "第1条第2档上限由1（含）改为1（不含）",
            "第1条第3档下限由1（不含）改为1（含）",
        ],
    ),
    "a band added": (
        "minimal",
        {
            C1: [
                (
                    '{range: "(3, inf)", points: -5}',
                    '{range: "(3, 4]", points: -5}\n      - {range: "(4, inf)", points: -5}',
                )
            ]
        },
        [
            "第1条档数由4档改为5档",
            "第1条第4档上限由不限改为4",
            "第1条加入第5档（(4, inf)，-5分）",
        ],
    ),
    "steps: step, per-unit amount, cap, whole steps; a rule's condition": (
        "minimal",
        {
            C2: [
                (
                    "{id: r2, kind: steps, measure: 100 - coverage, step: 5, each: -1}",
                    "{id: r2, kind: steps, measure: 100 - coverage, step: 4, each: -1.5, cap: 5, whole_steps: false}",
                ),
                ("when: coverage >= 0,", "when: coverage >= 10,"),
                ("facts: {coverage: 96}, points: 5", "facts: {coverage: 96}, points: 3.5"),
                ("facts: {coverage: 90.1}, points: 4", "facts: {coverage: 90.1}, points: 1.2875"),
            ]
        },
        [
            "第2条规则“r1”的条件由“coverage >= 0”改为“coverage >= 10”",
            "第2条规则“r2”的每档大小由5改为4",
            "第2条规则“r2”的每项分值由-1分改为-1.5分",
            "第2条规则“r2”的只计满档由是改为否",
            "第2条规则“r2”的上限由不限改为5分",
        ],
    ),
    "per unit: amount, cap and count": (
        "minimal",
        {
            C6: [
                ("count: awards, each: 1, cap: 3", "count: awards + 1, each: 0.5, cap: 2"),
                ("points: 3, fired", "points: 2, fired"),
            ]
        },
        [
            "第6条件数由“awards”改为“awards + 1”",
            "第6条每项分值由1分改为0.5分",
            "第6条上限由3分改为2分",
        ],
    ),
    "maturity levels": (
        "minimal",
        {
            C5: [
                ('{range: "[60, 100)", label: 60%以上}', '{range: "[70, 100)", label: 70%以上}'),
                (
                    '{range: "[30, 60)", label: 30%以上}',
                    '{range: "[30, 70)", label: 30%以上, text: 基本建立}',
                ),
                ("points: 2.4, fired: [r1]}", "points: 2.4, fired: [r1], bands: {r1: 30%以上}}"),
            ]
        },
        [
            "第5条第2档下限由60改为70",
            "第5条第2档名称由“60%以上”改为“70%以上”",
            "第5条第3档上限由60改为70",
            "第5条第3档说明由无改为“基本建立”",
        ],
    ),
    "scaled: scale from and to; fixed points; a clause veto changed and added": (
        "minimal",
        {
            C3: [
                ("scale_from: 100, scale_to: 3", "scale_from: 50, scale_to: 2.5"),
                (
                    "reason: 发生重大质量事件的不得分}",
                    "reason: 发生重大质量事件的本项不得分}\n  - {id: v2, when: not report_done, reason: 未报送报告的不得分}",
                ),
                (
                    "{id: r1, kind: fixed, when: report_done, points: 1}",
                    "{id: r1, kind: fixed, when: report_done, points: 1.5}",
                ),
                (
                    "bureau_score: 87.5, major_incident: false}, points: 3.625",
                    "bureau_score: 25, major_incident: false}, points: 2.75",
                ),
            ]
        },
        [
            "第3条规则“r1”的分值由1分改为1.5分",
            "第3条规则“r2”的来源满分由100改为50",
            "第3条规则“r2”的折算满分由3分改为2.5分",
            "第3条否决项“v1”理由由“发生重大质量事件的不得分”改为“发生重大质量事件的本项不得分”",
            "新增第3条否决项“v2”",
        ],
    ),
    "rules added, removed, kind changed; clause start; source text": (
        "minimal",
        {
            C2: [
                (
                    "{id: r1, kind: fixed, when: coverage >= 0, points: 5}",
                    "{id: r3, kind: fixed, when: coverage >= 0, points: 5}",
                ),
                ("[r1", "[r3"),
                ("text: 共5分，每少5%扣1分，扣完为止", "text: 共5分，每少4%扣1分，扣完为止"),
            ],
            C6: [
                (
                    "kind: per_unit, count: awards, each: 1, cap: 3",
                    "kind: steps, measure: awards, step: 1, each: 1, cap: 3",
                )
            ],
            C1: [("start: full\n", "")],
        },
        [
            "第1条计分起点由从满分起扣改为从0分起算",
            "第2条原文修改：“共5分，每少”后删去“5”、加入“4”",
            "第2条新增规则“r3”（固定分值）",
            "第2条删除规则“r1”（固定分值）",
            "第6条计分方式由按件计分改为按幅度计分",
        ],
    ),
    "facts: renamed (removed and added), type, range, label, unit, help; evidence": (
        "minimal",
        {
            C3: [
                (
                    "{name: bureau_score, type: number, label: 区局考核分数, min: 0, max: 100}",
                    "{name: bureau_score, type: number, label: 区局考核得分, min: 0, max: 120, unit: 分}",
                ),
                ("scale_from: 100", "scale_from: 120"),
                (
                    "label: 区局考核得分, min: 0, max: 120, unit: 分}",
                    "label: 区局考核得分, min: 0, max: 120, unit: 分, help: 按区局通报填写}",
                ),
                ("rules:\n", "evidence: [区局考核通报]\nrules:\n"),
                (
                    "bureau_score: 87.5, major_incident: false}, points: 3.625",
                    "bureau_score: 90, major_incident: false}, points: 3.25",
                ),
            ],
            C6: [("type: integer, label: 获奖项数", "type: number, label: 获奖项数")],
            C2: [("coverage", "cover_rate")],
            S: [("coverage", "cover_rate")],
        },
        [
            "第2条规则“r1”的条件由“coverage >= 0”改为“cover_rate >= 0”",
            "第2条规则“r2”的衡量数值由“100 - coverage”改为“100 - cover_rate”",
            "新增事实“覆盖率”（cover_rate，百分比）",
            "删除事实“覆盖率”（coverage）",
            "第3条佐证材料由无改为“区局考核通报”",
            "第3条规则“r2”的来源满分由100改为120",
            "事实“区局考核得分”取值范围由0至100改为0至120",
            "事实bureau_score名称由“区局考核分数”改为“区局考核得分”",
            "事实“区局考核得分”单位由无改为“分”",
            "事实“区局考核得分”填写说明由无改为“按区局通报填写”",
            "事实“获奖项数”类型由整数改为数值",
        ],
    ),
    "clause renamed and moved": (
        "minimal",
        {
            S: [
                ("{id: A1, title: 目标, points: 10}", "{id: A1, title: 目标, points: 5}"),
                ("{id: A2, title: 工作, points: 10}", "{id: A2, title: 工作, points: 15}"),
            ],
            C3: [("title: 工作", "title: 工作报告")],
            C2: [("category: A1", "category: A2")],
        },
        [
            "目标分值由10分改为5分",
            "工作分值由10分改为15分",
            "第2条所属分类由“目标”改为“工作”",
            "第3条标题由“工作”改为“工作报告”",
        ],
    ),
    "clause and category added, clause and category removed": (
        "minimal",
        {
            C7: None,
            "clauses/08-visits.yaml": 'id: "8"\ntitle: 领导视察\ncategory: E\npoints: 1\nsource: {document: test, text: 每次加0.5分}\nfacts:\n  - {name: visits, type: integer, label: 视察次数, unit: 次, min: 0, max: 10}\nrules:\n  - {id: r1, kind: per_unit, count: visits, each: 0.5, cap: 1}\ntests:\n  - {name: 两次, facts: {visits: 2}, points: 1, fired: [r1]}\n',
            S: [
                (" accidents: 0,", ""),
                (
                    "  - {id: C, title: 扣分项, kind: deduction}",
                    "  - {id: E, title: 附加项, kind: bonus}",
                ),
            ],
        },
        [
            "新增分类“附加项”",
            "删除分类“扣分项”",
            "新增第8条“领导视察”（“附加项”，1分）",
            "新增事实“视察次数”（visits，整数）",
            "删除第7条“事故”（原3分）",
            "删除事实“事故起数”（accidents）",
        ],
    ),
    "clause renumbered (matched by title)": (
        "minimal",
        {C6: [('id: "6"', 'id: "9"')]},
        [
            "第6条“获奖”编号由第6条改为第9条",
        ],
    ),
    "clause matched by source text": (
        "minimal",
        {C7: [('id: "7"', 'id: "9"'), ("title: 事故", "title: 安全事故")]},
        [
            "第7条“事故”编号由第7条改为第9条",
            "第9条标题由“事故”改为“安全事故”",
        ],
    ),
    "grading: tiers, grade vetoes": (
        "minimal",
        {
            S: [
                (
                    "- {grade: 合格, min: 12}",
                    "- {grade: 良好, min: 15}\n    - {grade: 合格, min: 11.5}",
                ),
                (
                    "effect: force, grade: D, reason: 发生重大质量事件的，考核结果一律为D级}",
                    "effect: force, grade: 不合格, reason: 发生重大质量事件的，考核结果一律为不合格}",
                ),
            ]
        },
        [
            "新增“良好”等级",
            "“合格”等级最低分由12分改为11.5分",
            "等级否决“v1”等级由“D”改为“不合格”",
            "等级否决“v1”理由由“发生重大质量事件的，考核结果一律为D级”改为“发生重大质量事件的，考核结果一律为不合格”",
        ],
    ),
    "grading: distinctions and tiers by rank": (
        "baoshan",
        {
            S: [
                ("{grade: A, top: 6, title: A档}", "{grade: A, top: 5, title: A档}"),
                ("{name: 优秀, grade: A, top: 3}", "{name: 优秀, grade: A, top: 2}"),
            ]
        },
        [
            "“A”等级名额由6名改为5名",
            "“优秀”称号名额由3名改为2名",
        ],
    ),
    "points by place among the units": (
        "relative/by_place",
        {
            S: [
                ("points: 200\n      per_place: 0.02", "points: 180\n      per_place: 0.025"),
                (
                    "- {measure: complaints, label: 投诉件数, better: lower}",
                    "- {measure: complaints, label: 投诉件数}",
                ),
            ]
        },
        [
            "排名赋分“P1”分值由200分改为180分",
            "排名赋分“P1”每降一名扣减由2%改为2.5%",
            "排名赋分“P2”排名依据由“产值增长率”（越高越好）、“投诉件数”（越低越好）改为“产值增长率”（越高越好）、“投诉件数”（越高越好）",
        ],
    ),
    "conversion of totals": (
        "relative/ruian",
        {S: [("    scale: 600\n", "    scale: 650\n")]},
        [
            "总分折算由按第一名折算为600分改为按第一名折算为650分",
        ],
    ),
    "clause bonus cap and bonus rules": (
        "clause_bonus",
        {
            "clauses/01-meeting.yaml": [
                ("bonus: {cap: 5}", "bonus: {cap: 6}"),
                ("count: leader_visits, each: 2.5}", "count: leader_visits, each: 3}"),
            ]
        },
        [
            "第1条加分上限由5分改为6分",
            "第1条规则“b1”的每项分值由2.5分改为3分",
        ],
    ),
    "applies_when": (
        "applies",
        {S: [("applies_when: major_incident}", "applies_when: not major_incident}")]},
        [
            "事实“发生重大质量事件后按时上报”适用条件由“major_incident”改为“not major_incident”",
        ],
    ),
    "panel": (
        "panel",
        {
            "clauses/01-leaders.yaml": [
                ("panel: {reviewers: 3}", "panel: {reviewers: 5, drop: {highest: 1, lowest: 1}}")
            ]
        },
        [
            "第1条评审组由3名评审改为5名评审（去掉最高分1个、最低分1个）",
        ],
    ),
    "weighted parts": (
        "weighted",
        {
            "clauses/01-appraisal.yaml": [
                ("{fact: leader_score, weight: 0.2}", "{fact: leader_score, weight: 0.3}"),
                ("{fact: staff_score, weight: 0.4}", "{fact: staff_score, weight: 0.3}"),
            ]
        },
        [
            "第1条各部分由leader_score×0.2＋staff_score×0.4＋panel_score×0.4改为leader_score×0.3＋staff_score×0.3＋panel_score×0.4",
        ],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_kind_of_change_has_its_sentence(case):
    fixture, edits, expected = CASES[case]
    old, new = pair(fixture, edits)
    assert sentences(old, new) == expected


C20 = """id: "20"
title: 质量基础设施“一站式”服务站点
category: 加分项
points: 1
source: {document: 2023年度细则（测试用）, text: 20、新建质量基础设施“一站式”服务站点的加1分。}
facts:
  - {name: service_station_built, type: boolean, label: 新建“一站式”服务站点}
rules:
  - {id: r1, kind: fixed, when: service_station_built, points: 1}
tests:
  - {name: 新建站点, facts: {service_station_built: true}, points: 1, fired: [r1]}
"""


def gumeilu_2023(files: dict) -> dict:
    """古美路 2022 moved to a 2023 scheme as the issue tells it: two clauses' points changed,
    a threshold moved, a cap changed, a clause removed (and its fact from the scheme tests),
    a clause added."""
    scheme = "\n".join(
        line for line in files[S].split("\n") if not line.strip().startswith("commendations:")
    )
    return edited(
        {**files, S: scheme},
        {
            S: [
                ("id: gumeilu-2022", "id: gumeilu-2023"),
                ("title: 2022年度", "title: 2023年度"),
                ('year: "2022"', 'year: "2023"'),
            ],
            "clauses/01-leading-group.yaml": [("points: 2\n", "points: 3\n")],
            "clauses/03-publicity.yaml": [
                ("points: 5\n", "points: 4\n"),
                ("when: publicity_campaigns >= 1", "when: publicity_campaigns >= 2"),
                (
                    "publicity_channels >= 2\n    points: 2.5",
                    "publicity_channels >= 2\n    points: 1.5",
                ),
            ],
            "clauses/17-innovation.yaml": [("    cap: 2\n", "    cap: 1\n")],
            "clauses/18-commendations.yaml": None,
            "clauses/20-service-station.yaml": C20,
        },
    )


def test_gumeilu_2022_to_a_2023_variant():
    files = files_of(GUMEILU)
    old = load_files(files, "minhang-gumeilu/2022")
    new = load_files(gumeilu_2023(files), "minhang-gumeilu/2023")
    groups = compare(old, new)
    assert [(g.clause, g.heading, [d.sentence for d in g.differences]) for g in groups] == [
        (
            "",
            "细则",
            [
                "细则标题由“2022年度古美路街道质量管理绩效评估考核细则任务分解表”"
                "改为“2023年度古美路街道质量管理绩效评估考核细则任务分解表”",
                "年度由“2022”改为“2023”",
            ],
        ),
        ("1", "第1条 完善质量工作机制", ["第1条分值由2分改为3分"]),
        (
            "3",
            "第3条 质量舆论宣传",
            [
                "第3条分值由5分改为4分",
                "第3条规则“r1”的条件由“publicity_campaigns >= 1”改为“publicity_campaigns >= 2”",
                "第3条规则“r2”的分值由2.5分改为1.5分",
            ],
        ),
        ("17", "第17条 质量提升工作创新举措", ["第17条规则“r2”的上限由2分改为1分"]),
        (
            "20",
            "第20条 质量基础设施“一站式”服务站点",
            [
                "新增第20条“质量基础设施“一站式”服务站点”（“六、加分项”，1分）",
                "新增事实“新建“一站式”服务站点”（service_station_built，是否）",
            ],
        ),
        (
            "18",
            "第18条 受区质量工作领导小组及其办公室表彰",
            [
                "删除第18条“受区质量工作领导小组及其办公室表彰”（原2分）",
                "删除事实“受区质量（安全）工作领导小组及其办公室表彰次数”（commendations）",
            ],
        ),
    ]
    points = next(d for g in groups for d in g.differences if d.kind == "clause_points")
    assert (points.clause, points.before, points.after) == ("1", Decimal(2), Decimal(3))


SHIPPED = sorted(p.parent for p in (ROOT / "rules").glob("*/*/scheme.yaml"))


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_identical_versions_give_no_differences(folder):
    files = files_of(folder)
    assert compare(load_files(files, "a"), load_files(dict(files), "b")) == []


def test_sentences_round_to_two_decimals_and_the_data_stays_exact():
    old, new = pair(
        "minimal",
        {
            C3: [
                ("when: report_done, points: 1}", "when: report_done, points: 0.875}"),
                (
                    "bureau_score: 87.5, major_incident: false}, points: 3.625",
                    "bureau_score: 100, major_incident: false}, points: 3.875",
                ),
            ]
        },
    )
    [group] = compare(old, new)
    [d] = group.differences
    assert (group.clause, group.heading) == ("3", "第3条 工作")
    assert d.sentence == "第3条规则“r1”的分值由1分改为约0.88分"
    assert (d.kind, d.clause, d.before, d.after) == (
        "rule_points",
        "3",
        Decimal(1),
        Decimal("0.875"),
    )


def test_band_edges_in_the_data_keep_their_closure():
    old, new = pair(
        "minimal",
        {
            C1: [
                ('{range: "(1, 3]", points: -3}', '{range: "(1, 3)", points: -3}'),
                ('{range: "(3, inf)"', '{range: "[3, inf)"'),
            ]
        },
    )
    [d, _] = compare(old, new)[0].differences
    assert d.sentence == "第1条第3档上限由3（含）改为3（不含）"
    assert (d.kind, d.before, d.after) == (
        "band_high",
        {"value": Decimal(3), "closed": True},
        {"value": Decimal(3), "closed": False},
    )


def test_source_text_changes_are_words_of_the_chinese_text():
    assert text_changes("低于目标值5个百分点扣3分", "低于目标值4个百分点扣3分") == [
        "“低于目标值”后删去“5”、加入“4”"
    ]
    assert text_changes("每项加1分，封顶3分", "每项加2分，封顶4分") == [
        "“每项加”后删去“1”、加入“2”",
        "“加1分，封顶”后删去“3”、加入“4”",
    ]
    # changes one character apart read as one change, and a line break is named
    assert text_changes("每项加1分", "每项加1.5分，封顶3分") == [
        "“每项加”后删去“1分”、加入“1.5分，封顶3分”"
    ]
    assert text_changes("第一段\n第二段", "第一段\n第三段\n附则") == [
        "“第”后删去“二段”、加入“三段（换行）附则”"
    ]
    assert text_changes("总分100分\n扣完为止", "总分100分\n不倒扣") == [
        "另起一行处删去“扣完为止”、加入“不倒扣”"
    ]
    assert text_changes("附件：细则", "细则") == ["开头删去“附件：”"]


def test_clauses_match_by_id_then_title_then_source_text():
    old, new = pair(
        "minimal",
        {
            C6: [('id: "6"', 'id: "9"')],
            C7: [('id: "7"', 'id: "8"'), ("title: 事故", "title: 安全事故")],
        },
    )
    pairs, added, removed = match_clauses(old, new)
    assert sorted((a.id, b.id) for a, b in pairs) == [
        ("1", "1"),
        ("2", "2"),
        ("3", "3"),
        ("4", "4"),
        ("5", "5"),
        ("6", "9"),
        ("7", "8"),
    ]
    assert (added, removed) == (set(), [])


def test_every_key_of_every_block_has_words_for_the_comparison():
    # a new kind brings its keys' names in its own module; the comparison needs nothing else
    from service.domain.blocks import BLOCKS

    for block in BLOCKS.values():
        for key in block.keys:
            assert key.label, f"{block.kind}.{key.name} has no label for the comparison"


def test_the_comparison_is_of_the_scoring_core():
    # no web, database, engine or YAML library: the CLI, the API and the pages share it as is
    import subprocess
    import sys

    code = (
        "import sys, service.domain.compare;"
        "print(sorted({m.split('.')[0] for m in sys.modules}"
        " & {'flask', 'sqlalchemy', 'durable', 'yaml', 'ruamel', 'marshmallow'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stderr
