"""Every key a rule file may contain, what it holds, and what it means.

This table is the loader's whole vocabulary: a key not declared here is an
error, and ``tests/test_rules_readme.py`` checks that each one is documented
in ``rules/README.md``.  A rule's keys beyond the common four are declared by its
building block (``service.domain.blocks``) as plain data; this module reads them.
"""

from __future__ import annotations

from service.domain.blocks import BLOCKS

from .reader import (
    BandExpectations,
    Expression,
    FactValues,
    Field,
    Flag,
    Id,
    ListOf,
    Number,
    Obj,
    OneOf,
    Range,
    Text,
    Units,
    Whole,
)

FACT_TYPES = ("number", "integer", "percent", "boolean", "text", "choice")
RULE_KINDS = tuple(BLOCKS)

SOURCE = Obj(
    "出处（source）",
    {
        "document": Field(Text(), True, "来源文件名"),
        "ref": Field(Text(), False, "在来源文件中的位置，如“序号3”“表B.1 第2行”"),
        "text": Field(Text(), True, "原文，逐字照录"),
    },
)

FACT = Obj(
    "事实（fact）",
    {
        "name": Field(Id(), True, "事实名，英文字母、数字和下划线"),
        "type": Field(OneOf(*FACT_TYPES), True, "类型"),
        "label": Field(Text(), True, "中文名称"),
        "unit": Field(Text(), False, "单位，如 %、起、人、分"),
        "help": Field(Text(), False, "填报说明"),
        "min": Field(Number(), False, "允许的最小值"),
        "max": Field(Number(), False, "允许的最大值"),
        "choices": Field(ListOf(Text(), 1), False, "choice 类型的可选值"),
        "required": Field(Flag(), False, "是否必填，默认 true"),
        "applies_when": Field(Expression(), False, "只在该条件成立时适用（读取其他事实）"),
        "previous_year": Field(
            Id(),
            False,
            "上年度的值：取自本单位上一年度考核轮次中所写事实的已评审值（没有时由单位填报）",
        ),
    },
)

BAND = Obj(
    "档（band）",
    {
        "range": Field(Range(), True, "区间"),
        "points": Field(Number(), True, "落在本档时的分值，扣分写负数"),
        "label": Field(Text(), False, "档的名称"),
    },
)

LEVEL = Obj(
    "成熟度档（level）",
    {
        "range": Field(Range(), True, "百分比区间"),
        "label": Field(Text(), True, "档的名称，如“70%以上”"),
        "text": Field(Text(), False, "该档的原文描述"),
    },
)

PART = Obj(
    "加权部分（part）",
    {
        "fact": Field(Id(), True, "该部分读取的数值事实名"),
        "weight": Field(Number(positive=True), True, "该部分的权重，20%写 0.2"),
    },
)

PANEL = Obj(
    "评审组（panel）",
    {
        "reviewers": Field(Whole(), True, "独立打分的评审人数"),
        "drop": Field(
            Obj(
                "去掉的评分（drop）",
                {
                    "highest": Field(Whole(), False, "去掉的最高分个数，如 1"),
                    "lowest": Field(Whole(), False, "去掉的最低分个数，如 1"),
                },
            ),
            False,
            "取平均前去掉的最高分、最低分个数（去掉一个最高分和一个最低分：{highest: 1, lowest: 1}）",
        ),
    },
)

#: What a building block's key holds (``Key.type``), as the reader reads it.
KEY_TYPES = {
    "expression": Expression(),
    "number": Number(),
    "positive": Number(positive=True),
    "flag": Flag(),
    "fact": Id(),
    "text": Text(),
    "bands": ListOf(BAND, 1),
    "levels": ListOf(LEVEL, 1),
    "parts": ListOf(PART, 1),
    "panel": PANEL,
}

#: Keys every rule has, whatever its kind.
COMMON_RULE_FIELDS = {
    "id": Field(Id(), True, "规则编号，在条款内唯一"),
    "kind": Field(OneOf(*RULE_KINDS), True, "积木类型"),
    "title": Field(Text(), False, "规则说明"),
    "note": Field(Text(), False, "解读说明：原文未写明处本规则采取的读法"),
    "bonus": Field(
        Flag(), False, "true：本条款的加分规则，得分在条款分值之外另计，受条款 bonus.cap 限制"
    ),
}


def _rule_fields() -> dict[str, Field]:
    """The common keys, then every block's keys in the order the blocks first declare them."""
    out = dict(COMMON_RULE_FIELDS)
    for block in BLOCKS.values():
        for key in block.keys:
            # a key several kinds use (each, cap, value, …) must be read the same way by each
            field = out.setdefault(key.name, Field(KEY_TYPES[key.type], False, key.doc))
            if field.spec is not KEY_TYPES[key.type]:
                raise TypeError(f"{block.kind}.{key.name} is read unlike another block's")
    return out


RULE_FIELDS = _rule_fields()
RULE = Obj("规则（rule）", RULE_FIELDS)

#: For each kind: the keys it requires and the keys it may use (besides id, kind, title, note).
KIND_FIELDS = {
    kind: (
        {k.name for k in block.keys if k.required},
        {k.name for k in block.keys if not k.required},
    )
    for kind, block in BLOCKS.items()
}

VETO = Obj(
    "否决（veto）",
    {
        "id": Field(Id(), True, "否决编号"),
        "when": Field(Expression(), True, "否决条件"),
        "reason": Field(Text(), True, "原文依据或理由"),
        "note": Field(Text(), False, "解读说明"),
    },
)

MARK = Obj(
    "评审打分（mark）",
    {
        "reviewer": Field(Text(), True, "评审人姓名"),
        "points": Field(Number(), True, "该评审给的分"),
        "reason": Field(Text(), False, "该评审的理由"),
    },
)

SCHEME_MARK = Obj(
    "评审打分（mark，细则测试用例）",
    {
        "clause": Field(Id(), True, "打分的条款编号（须设评审组 panel）"),
        **MARK.fields,
    },
)

CLAUSE_TEST = Obj(
    "测试用例（test）",
    {
        "name": Field(Text(), True, "用例名称"),
        "facts": Field(FactValues(), True, "输入的事实"),
        "marks": Field(ListOf(MARK), False, "设评审组（panel）的条款：各评审的打分，按录入先后"),
        "points": Field(Number(), True, "期望得分"),
        "fired": Field(ListOf(Id(reference=True)), False, "期望触发的规则编号（否决写 !编号）"),
        "status": Field(OneOf("scored", "incomplete", "vetoed"), False, "期望状态"),
        "bands": Field(
            BandExpectations(), False, "期望落入的档或成熟度档：规则编号到档的名称或区间"
        ),
        "note": Field(Text(), False, "说明"),
    },
)

TASK = Obj(
    "工作任务（task）",
    {
        "task": Field(Text(), True, "工作任务"),
        "deadline": Field(Text(), False, "落实时限"),
        "offices": Field(ListOf(Text(), 1), False, "落实部门"),
    },
)

CLAUSE_BONUS = Obj(
    "条款加分（bonus）",
    {"cap": Field(Number(positive=True), True, "本条款加分项最多加的分数，在条款分值之外另计")},
)

CLAUSE = Obj(
    "条款文件",
    {
        "id": Field(Id(), True, "条款编号，取原文序号"),
        "title": Field(Text(), True, "条款名称"),
        "category": Field(Id(), True, "所属类别编号"),
        "points": Field(Number(positive=True), True, "分值；加分项、扣分项为最多加或扣的分数"),
        "start": Field(OneOf("zero", "full"), False, "zero 从0分加起（默认）；full 从满分扣起"),
        "source": Field(SOURCE, True, "出处与原文"),
        "offices": Field(ListOf(Text(), 1), False, "责任部门"),
        "deadline": Field(Text(), False, "落实时限"),
        "tasks": Field(ListOf(TASK, 1), False, "工作任务分解"),
        "evidence": Field(ListOf(Text(), 1), False, "需要的佐证材料"),
        "note": Field(Text(), False, "解读说明"),
        "facts": Field(ListOf(FACT), False, "本条款读取的事实"),
        "rules": Field(ListOf(RULE, 1), True, "计分规则"),
        "bonus": Field(
            CLAUSE_BONUS, False, "该项设有加分项：标 bonus: true 的规则在条款分值之外另计"
        ),
        "vetoes": Field(ListOf(VETO, 1), False, "本条款的否决（不得分）条件"),
        "tests": Field(ListOf(CLAUSE_TEST, 1), True, "本条款的测试用例"),
    },
)

CATEGORY_FIELDS = {
    "id": Field(Id(), True, "类别编号"),
    "title": Field(Text(), True, "类别名称"),
    "kind": Field(
        OneOf("standard", "bonus", "deduction"),
        False,
        "standard 基本分（默认）、bonus 加分、deduction 扣分",
    ),
    "points": Field(
        Number(positive=True), False, "类别分值；standard 类别必填，须等于其下条款与子类别之和"
    ),
    "cap": Field(Number(positive=True), False, "加分或扣分总计上限"),
    "source": Field(Text(), False, "原文"),
    "note": Field(Text(), False, "解读说明"),
}
CATEGORY = Obj("类别（category）", CATEGORY_FIELDS)
CATEGORY_FIELDS["categories"] = Field(ListOf(CATEGORY, 1), False, "子类别")

TIER = Obj(
    "等级（tier）",
    {
        "grade": Field(Text(), True, "等级名称，如 A、B、优秀"),
        "min": Field(Number(), False, "按分数：不低于该分"),
        "top": Field(Whole(), False, "按名次：前若干名"),
        "title": Field(Text(), False, "等级的全称，如“A档”"),
    },
)

DISTINCTION = Obj(
    "称号（distinction）",
    {
        "name": Field(Text(), True, "称号，如 优秀"),
        "grade": Field(Text(), True, "须先获得的等级"),
        "top": Field(Whole(), False, "名次在前若干名"),
        "min": Field(Number(), False, "分数不低于"),
    },
)

GRADE_VETO = Obj(
    "等级否决（grade veto）",
    {
        "id": Field(Id(), True, "否决编号"),
        "when": Field(Expression(), True, "否决条件"),
        "effect": Field(
            OneOf("force", "bar", "lower"),
            True,
            "force 直接定为某级；bar 不得评某级或某称号；lower 等级降一级",
        ),
        # required for force and bar, forbidden for lower: checked by the loader, which knows effect
        "grade": Field(Text(), False, "force 时定为的等级；bar 时不得评的等级或称号；lower 时不写"),
        "reason": Field(Text(), True, "原文依据"),
        "note": Field(Text(), False, "解读说明"),
    },
)

GRADING = Obj(
    "评级办法（grading）",
    {
        "method": Field(
            OneOf("none", "thresholds", "rank"),
            True,
            "none 不评级；thresholds 按分数线；rank 按名次",
        ),
        "tiers": Field(ListOf(TIER, 1), False, "各等级，自高到低"),
        "distinctions": Field(ListOf(DISTINCTION, 1), False, "在等级之上另评的称号"),
        "vetoes": Field(ListOf(GRADE_VETO, 1), False, "等级否决"),
        "source": Field(Text(), False, "原文"),
        "note": Field(Text(), False, "解读说明"),
    },
)

SCHEME_TEST = Obj(
    "细则测试用例（scheme test）",
    {
        "name": Field(Text(), True, "用例名称"),
        "facts": Field(FactValues(), True, "全部事实"),
        "marks": Field(
            ListOf(SCHEME_MARK), False, "设评审组（panel）的条款的评审打分，每项写明条款 clause"
        ),
        "total": Field(Number(), True, "期望总分"),
        "grade": Field(Text(), False, "期望等级（按分数线评级时）"),
        "note": Field(Text(), False, "说明"),
    },
)

RANKED_UNIT = Obj(
    "参评单位（unit）",
    {
        "total": Field(Number(), True, "总分"),
        "facts": Field(FactValues(), False, "等级否决所读的事实"),
    },
)

EXPECTED_PLACE = Obj(
    "期望名次（expectation）",
    {
        "rank": Field(Whole(), True, "期望名次"),
        "grade": Field(Text(), False, "期望等级"),
        "distinctions": Field(ListOf(Text()), False, "期望称号"),
        "total": Field(Number(), False, "期望排名时的总分（含排名计分，折算后）"),
        "relative": Field(
            FactValues(), False, "期望的排名计分：编号到分值，无定义（不计分）写 null"
        ),
    },
)

RANKING = Obj(
    "排名（ranking）",
    {
        "measure": Field(
            Expression(), True, "排名所依据的数值：读取 scheme.yaml 中共用事实的表达式"
        ),
        "label": Field(Text(), True, "该数值的中文名称，如“考核得分”“产值增长率”"),
        "better": Field(
            OneOf("higher", "lower"), False, "higher 数值越高名次越前（默认）；lower 越低越前"
        ),
    },
)

RELATIVE_PART = Obj(
    "排名计分（relative part）",
    {
        "id": Field(Id(), True, "排名计分编号"),
        "title": Field(Text(), True, "名称"),
        "method": Field(
            OneOf("rank", "ratio"),
            True,
            "rank 按名次赋分（第一名得 points，每降一位减 per_place）；ratio 按与第一名的比值",
        ),
        "points": Field(Number(positive=True), True, "第一名所得分值，如“第一名得基本分200分”"),
        "per_place": Field(
            Number(positive=True), False, "rank：名次每降低1位减第一名分值的比例，2%写 0.02"
        ),
        "rankings": Field(ListOf(RANKING, 1), True, "排名依据；列出多项时，取各项排名得分的平均值"),
        "source": Field(Text(), False, "原文"),
        "note": Field(Text(), False, "解读说明"),
    },
)

CONVERSION = Obj(
    "总分折算（convert）",
    {
        "scale": Field(Number(positive=True), True, "排名第一的单位折算后的分数，如“×600”写 600"),
        "source": Field(Text(), False, "原文"),
        "note": Field(Text(), False, "解读说明"),
    },
)

RELATIVE = Obj(
    "排名时计算（relative）",
    {
        "parts": Field(ListOf(RELATIVE_PART, 1), False, "按与其他单位的排名计分、加入总分的部分"),
        "convert": Field(CONVERSION, False, "总分按排名第一的单位折算"),
        "note": Field(Text(), False, "解读说明"),
    },
)

RANKING_TEST = Obj(
    "排名测试用例（ranking test）",
    {
        "name": Field(Text(), True, "用例名称"),
        "units": Field(Units(RANKED_UNIT), True, "各单位的总分与事实"),
        "expect": Field(Units(EXPECTED_PLACE), True, "各单位期望的名次、等级、称号"),
        "note": Field(Text(), False, "说明"),
    },
)

SCHEME = Obj(
    "细则文件 scheme.yaml",
    {
        "id": Field(Id(), True, "细则编号"),
        "title": Field(Text(), True, "细则名称"),
        "year": Field(Id(), True, "考核年度"),
        "issuer": Field(Text(), True, "发布单位"),
        "source": Field(SOURCE, True, "出处"),
        "total": Field(Number(positive=True), True, "基本分总分"),
        "unit": Field(Text(), False, "计分单位，默认“分”"),
        "note": Field(Text(), False, "解读说明"),
        "categories": Field(ListOf(CATEGORY, 1), True, "类别树"),
        "facts": Field(ListOf(FACT, 1), False, "多个条款或评级共用的事实"),
        "grading": Field(GRADING, True, "评级办法"),
        "relative": Field(RELATIVE, False, "排名时才计算的部分：按名次或比值计分、总分折算"),
        "tests": Field(ListOf(SCHEME_TEST, 1), False, "整套细则的测试用例"),
        "ranking_tests": Field(ListOf(RANKING_TEST, 1), False, "排名与评级的测试用例"),
    },
)


def all_keys() -> dict[str, set[str]]:
    """Object name -> keys it accepts, for the documentation check."""
    out: dict[str, set[str]] = {}
    seen = set()

    def walk(spec):
        if id(spec) in seen:
            return
        seen.add(id(spec))
        if isinstance(spec, Obj):
            out[spec.name] = set(spec.fields)
            for f in spec.fields.values():
                walk(f.spec)
        elif isinstance(spec, (ListOf, Units)):
            walk(spec.item)

    walk(SCHEME)
    walk(CLAUSE)
    return out
