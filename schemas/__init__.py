"""marshmallow schemas of the HTTP API: what goes in, what comes out.

Points and decimal facts travel as JSON numbers on the way in (parsed as
exact decimals) and as strings of exact digits on the way out ("3.625").
"""

from datetime import UTC
from decimal import Decimal

from flask_smorest.fields import Upload
from marshmallow import Schema, ValidationError, fields, validate

from service.domain.cycle import CHINA
from service.domain.text import (
    EVIDENCE_CHARS_MAX,
    EVIDENCE_ITEMS_MAX,
    FACT_REASON_CHARS_MAX,
    REASON_CHARS_MAX,
    UNIT_CODE_PATTERN,
    invisible,
    is_unit_code,
    line_break,
    normal,
    unstorable,
)

ROLE_CHOICES = ("self", "review")

#: the largest id or version number the databases' INTEGER columns hold: anything beyond is no row
#: that can exist (a 4xx naming the field, or 404 in a path), never a database error (500)
DB_INTEGER_MAX = 2**31 - 1
UNIT_KINDS = ("street", "town", "park")


def _storable(text: str) -> None:
    problem = unstorable(text)
    if problem:
        raise ValidationError(problem)


def _unit_code(text: str) -> None:
    if not is_unit_code(text):
        raise ValidationError("单位代码应为1到64个英文字母、数字、下划线或连字符")


class Text(fields.String):
    """Text that goes into the database or a file: a NUL or a lone surrogate is a 422 naming the
    field, not a database error (500) after the fact."""

    def __init__(self, *args, validate=None, **kwargs):
        validators = [_storable] + ([validate] if callable(validate) else list(validate or []))
        super().__init__(*args, validate=validators, **kwargs)


class Label(Text):
    """A unit's code, name or district: on one line, with no bidirectional control or zero-width
    character (a 422 naming the field and the character), kept NFKC-normalised without spaces at
    the ends (a full-width "ＧＵＣＵＮ" is the code "GUCUN")."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        # on the text as sent: a line break at the end is refused, not trimmed away unseen
        problems = [p for p in (invisible(text), line_break(text)) if p]
        if problems:
            raise ValidationError(problems)
        return normal(text)


class WholeNumber(fields.Integer):
    """An integer in a JSON body: 3 (or 3.0), never 1.5 read as 1, "1" or true."""

    default_error_messages = {"invalid": "应为整数"}

    def _deserialize(self, value, attr, data, **kwargs):
        # JSON numbers arrive as int or, with a fraction or exponent, as an exact Decimal
        if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
            raise self.make_error("invalid")
        if isinstance(value, Decimal) and (not value.is_finite() or value != value.to_integral()):
            raise self.make_error("invalid")
        return super()._deserialize(int(value), attr, data, **kwargs)


class Exact(fields.Decimal):
    """A decimal written as a string of its exact digits ("3.625", "96"), and documented so: the
    OpenAPI type is a string of that pattern, not a number, which a client would read as a float."""

    def __init__(self, **kwargs):
        metadata = {
            "type": "string",
            "format": "decimal",
            "pattern": r"^-?[0-9]+(\.[0-9]+)?$",
            "description": "精确的十进制数字（字符串）",
        }
        super().__init__(as_string=True, metadata=metadata | kwargs.pop("metadata", {}), **kwargs)


class ErrorBody(Schema):
    status = fields.Integer(required=True)
    code = fields.String(required=True, metadata={"description": "机器可读的错误代码"})
    message = fields.String(required=True, metadata={"description": "给人看的说明"})
    incident = fields.String(
        allow_none=True, metadata={"description": "服务端事件编号（引擎故障等）"}
    )
    field_errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        data_key="fields",
        metadata={"description": "出错的字段及其说明"},
    )


class Error(Schema):
    error = fields.Nested(ErrorBody, required=True)


class TokenRequest(Schema):
    username = Text(required=True, validate=validate.Length(min=1, max=100))
    password = Text(required=True, validate=validate.Length(min=1, max=200))
    label = Text(load_default="", validate=validate.Length(max=100))  # e.g. "报送脚本"


class TokenResponse(Schema):
    token = fields.String(required=True)
    role = fields.String(required=True)
    unit = fields.String(allow_none=True)
    id = (
        fields.Integer()
    )  # to list or revoke it: GET /api/auth/tokens, DELETE /api/auth/tokens/{id}
    label = fields.String()
    expires_at = fields.DateTime()


class TokenOut(Schema):
    """A token as its holder sees it in the list: never the secret."""

    id = fields.Integer()
    label = fields.String()
    created_at = fields.DateTime()
    last_used_at = fields.DateTime(allow_none=True)
    expires_at = fields.DateTime()


class UserStateOut(Schema):
    username = fields.String()
    role = fields.String()
    active = fields.Boolean()
    disabled_at = fields.DateTime(allow_none=True)


class SchemeSummary(Schema):
    id = fields.String()
    title = fields.String()
    year = fields.String()
    issuer = fields.String()
    total = Exact()
    unit = fields.String()
    version = fields.String()
    clauses = fields.Integer()
    grading = fields.String()


class FactOut(Schema):
    name = fields.String()
    type = fields.String()
    label = fields.String()
    unit = fields.String()
    help = fields.String()
    min = Exact(allow_none=True)
    max = Exact(allow_none=True)
    choices = fields.List(fields.String())
    required = fields.Boolean()
    applies_when = fields.String(
        allow_none=True,
        metadata={"description": "只在该条件成立时适用（需要填报）；null 表示总是适用"},
    )


class ClauseOut(Schema):
    id = fields.String()
    title = fields.String()
    category = fields.String()
    kind = fields.String()
    points = Exact()
    start = fields.String()
    source = fields.String()
    source_ref = fields.String()
    offices = fields.List(fields.String())
    deadline = fields.String()
    evidence = fields.List(fields.String())
    note = fields.String()
    facts = fields.List(fields.String(), metadata={"description": "本条款读取的事实名"})
    rules = fields.List(fields.Dict())


class CategoryOut(Schema):
    id = fields.String()
    title = fields.String()
    kind = fields.String()
    points = Exact(allow_none=True)
    cap = Exact(allow_none=True)
    clauses = fields.List(fields.String())
    categories = fields.List(fields.Nested(lambda: CategoryOut()))


class SchemeDetail(SchemeSummary):
    source = fields.String()
    note = fields.String()
    categories = fields.List(fields.Nested(CategoryOut))
    clause_list = fields.List(fields.Nested(ClauseOut), data_key="clause_details")
    facts = fields.List(fields.Nested(FactOut))
    grading_detail = fields.Dict(data_key="grading_policy")


class EvaluateRequest(Schema):
    # JSON keys are always strings, and the scoring core checks every name and value against the
    # scheme (a 422 naming each bad field), so the schema does not walk the facts a second time
    facts = fields.Dict(required=True, metadata={"description": "事实名到取值"})


class ScoreTrace(Schema):
    # the readable text of the same trace is the text/plain representation (Accept: text/plain)
    result = fields.Dict(
        required=True,
        metadata={"description": "结构化的计分轨迹（每条规则、每个条款都有文字说明）"},
    )


class UnitIn(Schema):
    # a code is unique whatever its case, a name whatever its case, width or spacing (409)
    code = Label(
        required=True,
        validate=_unit_code,
        metadata={
            "pattern": UNIT_CODE_PATTERN,
            "description": "英文字母、数字、下划线或连字符；不区分大小写，全角字母按半角计",
        },
    )
    name = Label(
        required=True,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "一行文字；不区分大小写、全角半角，不能与其他单位重名"},
    )
    kind = fields.String(required=True, validate=validate.OneOf(UNIT_KINDS))
    district = Label(required=True, validate=validate.Length(min=1, max=100))


class UnitOut(Schema):
    code = fields.String()
    name = fields.String()
    kind = fields.String()
    district = fields.String()


class SubmissionIn(Schema):
    role = fields.String(
        required=True,
        validate=validate.OneOf(ROLE_CHOICES),
        metadata={"description": "self 自评；review 评审"},
    )
    facts = fields.Dict(required=True)  # checked against the scheme by the core, as for evaluate
    evidence = fields.Dict(
        keys=Text(),
        values=fields.List(
            Text(
                validate=validate.Length(max=EVIDENCE_CHARS_MAX, error="每条佐证材料不超过{max}字")
            ),
            validate=validate.Length(max=EVIDENCE_ITEMS_MAX, error="佐证材料不超过{max}条"),
        ),
        load_default=dict,
        metadata={
            "description": "事实名到佐证材料：编号或链接，或上传的文件 file:<id>"
            "（须是本单位为本细则上传的文件）"
        },
    )
    reason = Text(
        load_default="",
        validate=validate.Length(max=REASON_CHARS_MAX),
        metadata={
            "description": "更正理由：更正已提交的事实时，改动的每一项要么在 reasons 中有自己的理由，"
            "要么由这里的总理由说明"
        },
    )
    reasons = fields.Dict(
        keys=Text(),
        values=Text(validate=validate.Length(max=FACT_REASON_CHARS_MAX)),
        load_default=dict,
        metadata={"description": "事实名到该项的更正理由"},
    )


class SubmissionOut(Schema):
    unit = fields.String()
    scheme = fields.String()
    version = fields.Integer()
    role = fields.String()
    author = fields.String()
    created_at = fields.DateTime()
    facts = fields.Dict()
    evidence = fields.Dict()
    reason = fields.String()
    reasons = fields.Dict(metadata={"description": "事实名到该项的更正理由"})


class CompareOut(Schema):
    from_ = fields.Integer(attribute="from", data_key="from")  # "from" is a Python keyword
    to = fields.Integer()
    changes = fields.List(fields.Dict())
    reason = fields.String()
    role = fields.String()


class CompareArgs(Schema):
    a = fields.Integer(
        required=True, data_key="from", validate=validate.Range(min=1, max=DB_INTEGER_MAX)
    )
    b = fields.Integer(
        required=True, data_key="to", validate=validate.Range(min=1, max=DB_INTEGER_MAX)
    )


class ScoreRequest(Schema):
    submission_version = WholeNumber(
        load_default=None,
        validate=validate.Range(min=1, max=DB_INTEGER_MAX),
        metadata={"description": "默认：正式得分用已评审版本，预览用最新一版"},
    )
    kind = fields.String(
        load_default=None,
        validate=validate.OneOf(["official", "preview"]),
        metadata={
            "description": "official（正式得分：评审人或管理员，只按已评审版本）或 preview（预览，"
            "不参与排名）；不填：单位已评审且有权计算正式得分时为 official，否则 preview"
        },
    )


class FactSourceOut(Schema):
    """Where a fact's value came from: the version where it last changed (issue 11)."""

    fact = fields.String(metadata={"description": "事实名"})
    value = fields.Raw(allow_none=True, metadata={"description": "计分所用的值（缺失为 null）"})
    present = fields.Boolean(metadata={"description": "计分所依据的版本中有这项事实"})
    changes = fields.Integer(metadata={"description": "填入或改动过它的版本数（首次填入也算）"})
    version = fields.Integer(
        allow_none=True, metadata={"description": "值最后一次改变的提交版本（从未填过为 null）"}
    )
    submission_id = fields.Integer(allow_none=True)
    round = fields.Integer(allow_none=True, metadata={"description": "该版本所属的考核轮次"})
    role = fields.String(
        allow_none=True,
        metadata={"description": "以何身份：self（自评）/ review（评审）/ appeal（申诉更正）"},
    )
    role_words = fields.String(allow_none=True, metadata={"description": "自评 / 评审 / 申诉更正"})
    by = fields.String(allow_none=True, metadata={"description": "录入或最后修改它的人"})
    at = fields.DateTime(allow_none=True, metadata={"description": "何时"})
    reason = fields.String(metadata={"description": "该项的修改理由，没有则为该版的总理由"})
    evidence = fields.List(fields.String(), metadata={"description": "该版为这项事实附的佐证材料"})
    appeal = fields.Integer(allow_none=True, metadata={"description": "申诉更正时：申诉编号"})
    appeal_clause = fields.String(allow_none=True, metadata={"description": "申诉更正时：条款"})


class ScoreProvenanceOut(Schema):
    score = fields.Integer()
    unit = fields.String()
    scheme = fields.String()
    submission_version = fields.Integer()
    facts = fields.Dict(
        keys=fields.String(),
        values=fields.Nested(FactSourceOut),
        metadata={"description": "事实名到它的来源（计分时各条款读取的每项事实）"},
    )
    clauses = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "条款编号到它读取（及缺少）的事实名"},
    )


class FactVersionOut(FactSourceOut):
    changed = fields.Boolean(metadata={"description": "这一版填入或改动了它"})


class FactHistoryOut(Schema):
    unit = fields.String()
    scheme = fields.String()
    fact = fields.String()
    label = fields.String(metadata={"description": "事实的中文名称"})
    versions = fields.List(fields.Nested(FactVersionOut), metadata={"description": "按版本先后"})


class ScoreOut(Schema):
    id = fields.Integer()
    unit = fields.String()
    scheme = fields.String()
    total = fields.String(metadata={"description": "总分，精确的十进制数字"})
    grade = fields.String(allow_none=True)
    complete = fields.Boolean()
    rules_version = fields.String()
    submission_version = fields.Integer()
    engine_version = fields.String()
    computed_by = fields.String()
    created_at = fields.DateTime()
    round = fields.Integer(allow_none=True, metadata={"description": "考核轮次编号"})
    kind = fields.String(
        allow_none=True, metadata={"description": "official（正式得分）或 preview（预览）"}
    )
    kind_words = fields.String(allow_none=True)
    trace = fields.Dict(
        metadata={"description": "完整的计分轨迹；可读文字用 Accept: text/plain 取得"}
    )
    provenance = fields.Nested(
        ScoreProvenanceOut,
        metadata={
            "description": "单个评分（GET /api/scores/{id}）：每个条款读取的每项事实的来源——值、"
            "来自第几版提交、谁录入或最后修改、以何身份、何时、理由与佐证材料（读取时由提交历史得出，"
            "不改变保存的轨迹）"
        },
    )


class ReplayFactOut(Schema):
    fact = fields.String()
    stored = fields.Raw(allow_none=True, metadata={"description": "保存的轨迹中的值"})
    replayed = fields.Raw(allow_none=True, metadata={"description": "重算时的值"})


class ReplayClauseOut(Schema):
    clause = fields.String()
    title = fields.String()
    stored_points = fields.String(allow_none=True)
    replayed_points = fields.String(allow_none=True)
    stored_status = fields.String(allow_none=True)
    replayed_status = fields.String(allow_none=True)
    stored_explanation = fields.String()
    replayed_explanation = fields.String()
    facts = fields.List(
        fields.Nested(ReplayFactOut), metadata={"description": "该条款读取的不同的事实"}
    )
    causes = fields.List(
        fields.String(), metadata={"description": "原因：facts / panel / engine / program"}
    )
    causes_words = fields.List(fields.String())


class ReplayOut(Schema):
    score = fields.Integer()
    rules_version = fields.String()
    reproduced = fields.Boolean()
    stored_total = fields.String()
    replayed_total = fields.String()
    differences = fields.List(fields.String())
    # issue 11: exactly what differs and why
    words = fields.String(metadata={"description": "“已复现”，或哪些条款不同、原因"})
    clauses = fields.List(
        fields.Nested(ReplayClauseOut), metadata={"description": "得分、状态或说明不同的条款"}
    )
    facts = fields.List(fields.Nested(ReplayFactOut), metadata={"description": "不同的事实"})
    causes = fields.List(
        fields.String(),
        metadata={
            "description": "不同的原因：facts（事实不同）、panel（评审组打分不同）、engine（计算引擎不同）、"
            "program（规则版本和事实都相同，计分程序的结果不同）、tampered（保存的评分记录与写入时不符）"
        },
    )
    unit = fields.String()
    unit_name = fields.String()
    scheme = fields.String()
    round = fields.Integer(allow_none=True)
    kind = fields.String(allow_none=True)
    submission_version = fields.Integer()
    engine_version = fields.String(metadata={"description": "计分时的计算引擎"})
    replayed_engine = fields.String(metadata={"description": "重算所用的计算引擎"})


class RankingOut(Schema):
    scheme = fields.String()
    version = fields.String()
    round = fields.Dict(allow_none=True, metadata={"description": "排名所属的考核轮次"})
    method = fields.String()
    entries = fields.List(fields.Dict(), metadata={"description": "有正式得分的单位，按名次"})
    unranked = fields.List(
        fields.Dict(), metadata={"description": "没有正式得分的单位及其状态（未填报 / 待评审）"}
    )


class RankingArgs(Schema):
    round = WholeNumber(
        load_default=None,
        validate=validate.Range(min=1, max=DB_INTEGER_MAX),
        metadata={"description": "考核轮次编号；默认为这套细则最新的轮次"},
    )


_DEADLINE_DOC = "ISO 8601 时间，如 2026-12-31T17:00:00+08:00；不带时区按北京时间"


class RoundIn(Schema):
    scheme = Text(required=True, validate=validate.Length(min=1, max=100))
    year = WholeNumber(required=True, validate=validate.Range(min=2000, max=2100))
    title = Text(load_default="", validate=validate.Length(max=300))
    self_deadline = fields.AwareDateTime(
        required=True,
        default_timezone=CHINA,
        metadata={"description": "自评截止；" + _DEADLINE_DOC},
    )
    review_deadline = fields.AwareDateTime(
        required=True, default_timezone=CHINA, metadata={"description": "评审截止"}
    )
    publication_start = fields.AwareDateTime(
        required=True, default_timezone=CHINA, metadata={"description": "公示开始"}
    )
    appeal_deadline = fields.AwareDateTime(
        required=True, default_timezone=CHINA, metadata={"description": "申诉截止"}
    )
    publication_end = fields.AwareDateTime(
        required=True, default_timezone=CHINA, metadata={"description": "公示结束"}
    )


class RoundOut(Schema):
    id = fields.Integer()
    scheme = fields.String(attribute="scheme_id")
    year = fields.Integer()
    title = fields.String()
    rules_version = fields.String()
    stage = fields.String()
    self_deadline = fields.DateTime()
    review_deadline = fields.DateTime()
    publication_start = fields.DateTime()
    appeal_deadline = fields.DateTime()
    publication_end = fields.DateTime()
    created_at = fields.DateTime()
    published_at = fields.DateTime(allow_none=True)
    finalized_at = fields.DateTime(allow_none=True)


class DeadlineIn(Schema):
    deadline = fields.String(
        required=True,
        validate=validate.OneOf(
            ["self_deadline", "review_deadline", "publication_start", "appeal_deadline",
             "publication_end"]
        ),
    )  # fmt: skip
    new = fields.AwareDateTime(
        required=True, default_timezone=CHINA, metadata={"description": _DEADLINE_DOC}
    )
    reason = Text(required=True, validate=validate.Length(min=1, max=REASON_CHARS_MAX))


class ReasonIn(Schema):
    reason = Text(required=True, validate=validate.Length(min=1, max=REASON_CHARS_MAX))


class PreviousYearOut(Schema):
    facts = fields.Dict(
        metadata={"description": "事实名 → {value: 上年度已评审的值（精确十进制）, source: 出处}"}
    )


class RoundUnitOut(Schema):
    unit = fields.String()
    name = fields.String()
    state = fields.String(
        metadata={
            "description": "none draft submitted in_review reviewed "
            "published appealed rechecked final"
        }
    )
    state_words = fields.String()
    returned_reason = fields.String(allow_none=True)
    self_version = fields.Integer(allow_none=True)
    reviewed_version = fields.Integer(allow_none=True)
    official_score_id = fields.Integer(allow_none=True)
    official_total = fields.String(allow_none=True)
    updated_at = fields.String(allow_none=True)


class RulesValidateIn(Schema):
    files = fields.Dict(
        keys=Text(),
        values=Text(),
        required=True,
        validate=validate.Length(min=1, max=1000),
        metadata={
            "description": "细则文件夹内的相对路径到文件内容，如 scheme.yaml、clauses/01-x.yaml"
        },
    )


class RulesValidateOut(Schema):
    valid = fields.Boolean(metadata={"description": "规则文件无错误，且其中的测试用例全部通过"})
    errors = fields.List(fields.Dict())
    failing = fields.List(
        fields.Dict(),
        metadata={
            "description": "未通过的测试用例：scheme、file、line（用例所在行）、case、problems"
            "（期望与实得的差别），text 为 scoring check 打印的原文"
        },
    )
    cases = fields.Integer(metadata={"description": "运行的测试用例数"})
    schemes = fields.List(fields.Dict())


class ReloadOut(Schema):
    changes = fields.Dict(metadata={"description": "细则编号到 {from, to}：变化前后的版本"})
    rule_set = fields.Integer(
        metadata={"description": "现行规则集的编号（每个工作进程都按它计分）"}
    )


class RuleVersionOut(Schema):
    version = fields.String()
    scheme = fields.String()
    title = fields.String()
    loaded_at = fields.String()
    serving = fields.Boolean()


class RulesCompareArgs(Schema):
    old = fields.String(
        required=True,
        data_key="from",
        validate=validate.Regexp(r"^[0-9a-f]{64}$", error="应为64位十六进制的规则版本号"),
        metadata={"description": "较早的规则版本（GET /api/rules/versions 的 version）"},
    )
    new = fields.String(
        required=True,
        data_key="to",
        validate=validate.Regexp(r"^[0-9a-f]{64}$", error="应为64位十六进制的规则版本号"),
        metadata={"description": "较新的规则版本"},
    )


class RuleVersionHeadOut(Schema):
    version = fields.String()
    scheme = fields.String()
    title = fields.String()
    year = fields.String()


class RuleDifferenceOut(Schema):
    kind = fields.String(metadata={"description": "改动的类别，如 clause_points、band_high"})
    clause = fields.String(metadata={"description": "条款编号（新版本中的；细则整体的改动为空）"})
    sentence = fields.String(metadata={"description": "改动的中文说明，数值至多两位小数"})
    before = fields.Raw(allow_none=True, metadata={"description": "改动前的确切值（小数为字符串）"})
    after = fields.Raw(allow_none=True, metadata={"description": "改动后的确切值"})


class RuleDifferenceGroupOut(Schema):
    clause = fields.String(metadata={"description": "条款编号；细则、分类、等级、全局事实为空"})
    heading = fields.String()
    differences = fields.List(fields.Nested(RuleDifferenceOut))


class RulesCompareOut(Schema):
    from_ = fields.Nested(RuleVersionHeadOut, attribute="from", data_key="from")
    to = fields.Nested(RuleVersionHeadOut)
    count = fields.Integer(metadata={"description": "改动的条数"})
    groups = fields.List(fields.Nested(RuleDifferenceGroupOut))


class JournalOut(Schema):
    id = fields.Integer()
    at = fields.DateTime()
    actor = fields.String()
    role = fields.String()
    action = fields.String()
    target = fields.String()
    outcome = fields.String()
    detail = fields.Dict()


class JournalArgs(Schema):
    """The journal's page and filters (query string); every filter is an exact match."""

    limit = fields.Integer(
        load_default=500,
        validate=validate.Range(min=1, max=1000, error="应为1到1000"),
        error_messages={"invalid": "应为1到1000的整数"},
        metadata={"description": "每页条数（1到1000，默认500），最新的在前"},
    )
    cursor = fields.String(
        load_default=None,
        validate=validate.Regexp(r"^[1-9][0-9]{0,18}$", error="应为上一页给出的位置"),
        metadata={"description": "下一页的位置：上一页响应头 X-Next-Cursor 的值"},
    )
    actor = Text(load_default=None, metadata={"description": "操作人的用户名"})
    role = fields.String(
        load_default=None,
        validate=validate.OneOf(
            ("admin", "editor", "reviewer", "submitter", "auditor", "system", ""),
            error="应为 admin、editor、reviewer、submitter、auditor、system 之一，或空（未登录）",
        ),
        metadata={"description": "操作人的角色（未登录者为空字符串）"},
    )
    unit = Text(load_default=None, metadata={"description": "单位代码"})
    scheme = Text(load_default=None, metadata={"description": "细则编号"})
    action = Text(
        load_default=None,
        metadata={"description": "动作，如 submissions.write、submissions.read、history.verify"},
    )
    outcome = fields.String(
        load_default=None,
        validate=validate.OneOf(("ok", "denied", "failed"), error="应为 ok、denied、failed 之一"),
        metadata={"description": "结果：ok / denied / failed"},
    )
    since = fields.AwareDateTime(
        load_default=None,
        default_timezone=UTC,
        error_messages={"invalid": "应为 ISO 8601 时间，如 2024-01-31T08:00:00+08:00"},
        metadata={"description": "起始时间（含），ISO 8601；不带时区按 UTC"},
    )
    until = fields.AwareDateTime(
        load_default=None,
        default_timezone=UTC,
        error_messages={"invalid": "应为 ISO 8601 时间，如 2024-01-31T08:00:00+08:00"},
        metadata={"description": "截止时间（不含），ISO 8601；不带时区按 UTC"},
    )


class HistoryProblemOut(Schema):
    table = fields.String(metadata={"description": "表：submissions / scores / journal"})
    id = fields.Integer(allow_none=True, metadata={"description": "出问题的记录编号"})
    seq = fields.Integer(allow_none=True, metadata={"description": "它在链上的位置"})
    kind = fields.String(
        metadata={"description": "changed（内容被改）/ missing（记录缺失）/ inserted（插入的记录）"}
    )
    message = fields.String()


class HistoryCheckOut(Schema):
    ok = fields.Boolean(metadata={"description": "链完好"})
    rows = fields.Integer(metadata={"description": "核对过的记录数"})
    head_seq = fields.Integer(allow_none=True, metadata={"description": "链头所记的最后位置"})
    head_hash = fields.String(
        allow_none=True, metadata={"description": "链头哈希（可记下，供日后比对）"}
    )
    problem = fields.Nested(
        HistoryProblemOut, allow_none=True, metadata={"description": "第一处断裂"}
    )
    seconds = Exact(metadata={"description": "核对用时（秒）"})
    checked_at = fields.DateTime()


class EvidenceUploadIn(Schema):
    """An evidence upload: one multipart/form-data body, the file and the form fields beside it."""

    file = Upload(
        required=True,
        error_messages={"required": "请选择要上传的文件"},
        metadata={
            "description": "PDF、PNG、JPEG、Word（doc/docx）、Excel（xls/xlsx）或 PowerPoint"
            "（pptx），按内容判断类型；不超过 SCORING_EVIDENCE_MAX_BYTES（默认 20 MB）"
        },
    )
    fact = Text(
        load_default="",
        validate=validate.Length(max=100),
        metadata={"description": "这份材料佐证的事实名（与 clause 至少填一项）"},
    )
    clause = Text(
        load_default="",
        validate=validate.Length(max=100),
        metadata={"description": "这份材料佐证的条款编号"},
    )


class EvidenceOut(Schema):
    id = fields.Integer()
    reference = fields.String(
        metadata={"description": "在提交的 evidence 中引用这份文件时写的文字：file:<id>"}
    )
    unit = fields.String()
    scheme = fields.String()
    fact = fields.String(metadata={"description": "佐证的事实名（为条款上传时为空）"})
    clause = fields.String(metadata={"description": "佐证的条款编号（为事实上传时为空）"})
    name = fields.String(metadata={"description": "上传时的文件名"})
    size = fields.Integer(metadata={"description": "字节数"})
    sha256 = fields.String()
    content_type = fields.String(metadata={"description": "按内容判断的类型"})
    uploaded_by = fields.String()
    uploaded_at = fields.DateTime()
    round_id = fields.Integer(allow_none=True)
    download = fields.String(metadata={"description": "下载地址（作为附件）"})


# --- appeals (申诉) ---------------------------------------------------------------------------

_EVIDENCE_REFS = fields.List(
    Text(validate=validate.Length(max=EVIDENCE_CHARS_MAX, error="每条佐证材料不超过{max}字")),
    validate=validate.Length(max=EVIDENCE_ITEMS_MAX, error="佐证材料不超过{max}条"),
)


class AppealItemIn(Schema):
    clause = Text(
        required=True,
        validate=validate.Length(min=1, max=100),
        metadata={"description": "申诉的条款编号（本轮细则中的条款）"},
    )
    reason = Text(
        required=True,
        validate=validate.Length(min=1, max=REASON_CHARS_MAX),
        metadata={"description": "申诉理由（必填）"},
    )
    evidence = fields.Dict(
        keys=Text(),
        values=_EVIDENCE_REFS,
        load_default=dict,
        metadata={"description": "事实名到佐证材料编号或链接（与提交事实的佐证材料同样的形式）"},
    )


class AppealIn(Schema):
    items = fields.List(
        fields.Nested(AppealItemIn),
        required=True,
        validate=validate.Length(min=1, max=200, error="应申诉1到{max}个条款"),
        metadata={"description": "逐条申诉：每个条款的理由与佐证材料"},
    )


class AnswerIn(Schema):
    answer = fields.String(
        required=True,
        validate=validate.OneOf(
            ("uphold", "correct"), error="应为 uphold（维持）或 correct（更正）"
        ),
        metadata={"description": "uphold 维持原评分；correct 更正（须给出改正后的事实）"},
    )
    reason = Text(
        required=True,
        validate=validate.Length(min=1, max=REASON_CHARS_MAX),
        metadata={"description": "答复理由（必填，单位可见）"},
    )
    facts = fields.Dict(
        load_default=dict,
        metadata={"description": "更正时：本条款读取的事实改正后的值（只改本条款读取的事实）"},
    )
    reasons = fields.Dict(
        keys=Text(),
        values=Text(validate=validate.Length(max=FACT_REASON_CHARS_MAX)),
        load_default=dict,
        metadata={"description": "更正时：事实名到该项的更正理由（改动的每一项都须有）"},
    )


class AppealItemOut(Schema):
    clause = fields.String()
    clause_title = fields.String()
    reason = fields.String()
    evidence = fields.Dict()
    answer = fields.String(
        allow_none=True, metadata={"description": "uphold / correct；未答复为空"}
    )
    answer_words = fields.String(metadata={"description": "维持 / 更正 / 待答复"})
    answer_reason = fields.String(allow_none=True)
    answered_by = fields.String(allow_none=True)
    answered_at = fields.DateTime(allow_none=True)
    new_submission_version = fields.Integer(
        allow_none=True, metadata={"description": "更正产生的新已评审版本"}
    )
    new_score_id = fields.Integer(allow_none=True, metadata={"description": "更正后的正式得分"})
    new_total = fields.String(allow_none=True)


class AppealOut(Schema):
    id = fields.Integer()
    round = fields.Integer()
    unit = fields.String()
    scheme = fields.String()
    filed_by = fields.String(allow_none=True)
    filed_at = fields.DateTime()
    state = fields.String(metadata={"description": "open 待答复 / answered 已答复"})
    state_words = fields.String()
    appealed_score_id = fields.Integer(metadata={"description": "被申诉的正式得分"})
    appealed_total = fields.String(allow_none=True)
    unit_state = fields.String(metadata={"description": "单位在本轮的当前状态"})
    unit_state_words = fields.String()
    official_score_id = fields.Integer(allow_none=True, metadata={"description": "当前正式得分"})
    items = fields.List(fields.Nested(AppealItemOut))


# --- several reviewers scoring a clause (专家评审) ----------------------------------------------


class MarkIn(Schema):
    points = fields.Raw(
        required=True,
        # no "type": JSON numbers come in and are read as exact decimals (the document's numbers
        # are all strings of exact digits going out)
        metadata={
            "description": "本评审给本条款的分数：JSON 数值，按精确十进制读取"
            "（在该条款评审分数事实的 min 到 max 之间）",
        },
    )
    reason = Text(required=True, validate=validate.Length(min=1, max=REASON_CHARS_MAX))


class MarkOut(Schema):
    round = fields.Integer()
    unit = fields.String()
    clause = fields.String()
    reviewer = fields.String(metadata={"description": "录入者的用户名"})
    points = Exact()
    reason = fields.String()
    entered_at = fields.DateTime()
    entered = fields.Integer(metadata={"description": "本条款已收到的打分份数"})
    reviewers = fields.Integer(metadata={"description": "评审组应有的打分份数"})


class MarkRowOut(Schema):
    reviewer = fields.String()
    reviewer_name = fields.String()
    points = Exact()
    reason = fields.String()
    entered_at = fields.DateTime()
    own = fields.Boolean(metadata={"description": "是否为调用者自己的打分"})


class MarksOut(Schema):
    round = fields.Integer()
    unit = fields.String()
    clause = fields.String()
    reviewers = fields.Integer(metadata={"description": "评审组应有的打分份数"})
    entered = fields.Integer(metadata={"description": "已收到的打分份数（任何能读的人都可知道）"})
    panel = fields.String(metadata={"description": "评审组的计分办法"})
    visible = fields.Boolean(
        metadata={"description": "false：其他评审的打分对调用者保密（只返回调用者自己的）"}
    )
    why_hidden = fields.String()
    marks = fields.List(fields.Nested(MarkRowOut))
