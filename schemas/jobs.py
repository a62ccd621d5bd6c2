"""The schemas of background jobs (service/jobs.py): what starts one, and what a job looks like."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from . import DB_INTEGER_MAX, Exact, Text, WholeNumber

STATES = ("queued", "running", "done", "failed", "cancelled")


class JobIn(Schema):
    kind = Text(
        required=True,
        validate=validate.Length(min=1, max=50),
        metadata={
            "description": "任务类型，如 scores.recompute（按当前规则重算全部单位的最新得分）"
        },
    )
    params = fields.Dict(
        keys=fields.String(),
        load_default=dict,
        metadata={"description": '任务参数；scores.recompute：{"scheme": 细则编号}'},
    )


class JobFailureOut(Schema):
    key = fields.String(metadata={"description": "出错的项目（如单位代码）"})
    label = fields.String(metadata={"description": "出错的项目名称（如单位名称）"})
    message = fields.String(metadata={"description": "出错原因"})
    at = fields.DateTime()


class JobOut(Schema):
    id = fields.Integer()
    kind = fields.String()
    title = fields.String(metadata={"description": "任务类型的中文名称"})
    params = fields.Dict()
    target = fields.String(metadata={"description": "任务对象（操作日志中的写法）"})
    state = fields.String(metadata={"description": "queued / running / done / failed / cancelled"})
    state_words = fields.String(metadata={"description": "状态的中文：排队中、运行中、已完成…"})
    finished = fields.Boolean(metadata={"description": "已结束（已完成、失败或已取消）"})
    total = fields.Integer(metadata={"description": "项目总数"})
    done = fields.Integer(metadata={"description": "已完成的项目数"})
    failed = fields.Integer(metadata={"description": "出错的项目数（任务照常进行）"})
    remaining = fields.Integer(metadata={"description": "尚未处理的项目数"})
    percent = fields.Integer(metadata={"description": "进度百分比（已处理 / 总数）"})
    created_by = fields.String(metadata={"description": "发起人"})
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    heartbeat_at = fields.DateTime(
        allow_none=True, metadata={"description": "运行它的进程最近一次报到的时间"}
    )
    seconds = Exact(allow_none=True, metadata={"description": "已运行或共运行的秒数"})
    lease_owner = fields.String(
        allow_none=True, metadata={"description": "正在运行它的进程（主机:进程号:编号）"}
    )
    lease_until = fields.DateTime(allow_none=True)
    claims = fields.Integer(metadata={"description": "被进程接手的次数（大于1：曾中断后续跑）"})
    cancelled_by = fields.String(allow_none=True)
    result = fields.Dict(allow_none=True, metadata={"description": "结束时的汇总"})
    error = fields.String(allow_none=True, metadata={"description": "任务失败的原因"})


class JobDetailOut(JobOut):
    failures = fields.List(
        fields.Nested(JobFailureOut), metadata={"description": "每个出错项目及其原因"}
    )


class JobArgs(Schema):
    """A page of jobs, newest first."""

    limit = fields.Integer(
        load_default=50,
        validate=validate.Range(min=1, max=200, error="应为1到200"),
        error_messages={"invalid": "应为1到200的整数"},
        metadata={"description": "每页条数（1到200，默认50），最新的在前"},
    )
    cursor = fields.Integer(
        load_default=None,
        validate=validate.Range(min=1, max=DB_INTEGER_MAX, error="应为上一页给出的位置"),
        error_messages={"invalid": "应为上一页给出的位置"},
        metadata={"description": "下一页的位置：上一页响应头 X-Next-Cursor 的值"},
    )
    kind = Text(load_default=None, metadata={"description": "只列这一类型的任务"})
    state = fields.String(
        load_default=None,
        validate=validate.OneOf(STATES, error="应为 queued、running、done、failed、cancelled 之一"),
        metadata={"description": "只列这一状态的任务"},
    )


# --- the impact of a rule change (service/impact.py) --------------------------------------------

_VERSION = validate.Regexp(r"^[0-9a-f]{64}$", error="应为64位十六进制的规则版本号")


class ImpactIn(Schema):
    """Two versions (and a mapping), or a draft: its current files archived as a version and
    compared with the version in force for its scheme id (or the one it was copied from), with
    the mapping saved with it."""

    from_ = fields.String(
        load_default=None,
        data_key="from",
        validate=_VERSION,
        metadata={
            "description": "原规则版本（GET /api/rules/versions 的 version）；给出 draft 时不填"
        },
    )
    to = fields.String(
        load_default=None,
        validate=_VERSION,
        metadata={"description": "新规则版本；给出 draft 时不填"},
    )
    draft = WholeNumber(
        load_default=None,
        validate=validate.Range(min=1, max=DB_INTEGER_MAX, error="应为草案编号"),
        metadata={
            "description": "规则草案编号：按草案当前的文件（存档为一个版本）与该细则在用的版本"
            "（或草案复制自的版本）比较，使用草案保存的事实对应"
        },
    )
    mapping = fields.Dict(
        keys=fields.String(),
        load_default=None,
        metadata={
            "description": '事实对应（给出 from/to 时）：{新事实名: {"from": 原事实名}} 或 '
            '{新事实名: {"value": 值, "reason": 理由}}；没有对应的事实按缺失处理，不按0计'
        },
    )
    year = fields.Integer(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=1900, max=2999, error="应为1900到2999的年度"),
        metadata={"description": "取哪一年度考核轮次的已评审事实（默认：原版本细则最新的轮次）"},
    )

    @validates_schema
    def _versions_or_draft(self, data, **kwargs):
        if data.get("draft") is not None:
            extra = [k for k in ("from_", "to", "mapping") if data.get(k) is not None]
            if extra:
                name = {"from_": "from"}.get(extra[0], extra[0])
                raise ValidationError("给出草案时不再指定版本和对应：用草案保存的对应", name)
            return
        for name, key in (("from", "from_"), ("to", "to")):
            if data.get(key) is None:
                raise ValidationError("必填：规则版本号（或给出草案编号 draft）", name)


class ImpactHeadOut(Schema):
    scheme = fields.String()
    year = fields.String()
    version = fields.String()
    title = fields.String()


class ImpactMissingOut(Schema):
    fact = fields.String(
        metadata={"description": "新版本读取而该单位事实中没有的事实（按缺失处理，不按0计）"}
    )
    label = fields.String()


class ImpactMappedOut(Schema):
    fact = fields.String(metadata={"description": "对应的新事实"})
    label = fields.String()
    how = fields.String(metadata={"description": "renamed 改名而来；set 固定值"})
    from_ = fields.String(attribute="from", data_key="from", allow_none=True)
    from_label = fields.String(allow_none=True)
    value = fields.String(allow_none=True, metadata={"description": "该单位取得的值（没有：null）"})
    reason = fields.String(allow_none=True, metadata={"description": "固定值的理由"})
    text = fields.String(metadata={"description": "该单位这一事实如何取值（中文）"})


class ImpactMappingOut(Schema):
    fact = fields.String()
    label = fields.String()
    how = fields.String(metadata={"description": "renamed 改名而来；set 固定值"})
    from_ = fields.String(attribute="from", data_key="from", allow_none=True)
    value = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    text = fields.String()


class ImpactFactCountOut(Schema):
    fact = fields.String()
    label = fields.String()
    units = fields.Integer(metadata={"description": "单位数"})
    sentence = fields.String()


class ImpactFactsOut(Schema):
    missing = fields.List(
        fields.Nested(ImpactFactCountOut),
        metadata={"description": "新版本读取而已评审事实中没有的事实，及缺少它的单位数"},
    )
    dropped = fields.List(
        fields.Nested(ImpactFactCountOut),
        metadata={"description": "已评审事实中有而新版本不再读取的事实，及有它的单位数"},
    )


class ImpactClauseOut(Schema):
    clause = fields.String()
    title = fields.String()
    before = fields.String(
        allow_none=True, metadata={"description": "原得分（原版本无此条款：null）"}
    )
    after = fields.String(
        allow_none=True, metadata={"description": "新得分（新版本无此条款：null）"}
    )
    change = fields.String()
    why_before = fields.String(metadata={"description": "原版本的计分说明"})
    why_after = fields.String(metadata={"description": "新版本的计分说明"})
    trace_before = fields.String(
        metadata={"description": "原版本下这一条款的计分过程（各规则是否成立、缺少的事实）"}
    )
    trace_after = fields.String(metadata={"description": "新版本下这一条款的计分过程"})


class ImpactUnitOut(Schema):
    unit = fields.String()
    unit_code = fields.String(allow_none=True)
    total_before = fields.String()
    total_after = fields.String()
    change = fields.String()
    rank_before = fields.Integer()
    rank_after = fields.Integer()
    grade_before = fields.String(allow_none=True)
    grade_after = fields.String(allow_none=True)
    grade_pending_before = fields.Boolean(
        metadata={"description": "原版本下等级待定（等级否决读取的事实缺失）"}
    )
    grade_pending_after = fields.Boolean(metadata={"description": "新版本下等级待定"})
    clauses = fields.List(
        fields.Nested(ImpactClauseOut), metadata={"description": "得分有变化的条款"}
    )
    missing = fields.List(fields.Nested(ImpactMissingOut))
    mapped = fields.List(
        fields.Nested(ImpactMappedOut), metadata={"description": "该单位按事实对应取值的事实"}
    )
    dropped = fields.List(
        fields.Nested(ImpactMissingOut),
        metadata={"description": "该单位事实中有而新版本不再读取的事实"},
    )


class ImpactFailureOut(Schema):
    unit_code = fields.String()
    unit = fields.String()
    message = fields.String()


class ImpactOut(Schema):
    job = fields.Integer(metadata={"description": "后台任务编号（进度见 GET /api/jobs/{id}）"})
    state = fields.String(validate=validate.OneOf(STATES))
    finished = fields.Boolean()
    total = fields.Integer(metadata={"description": "要比较的单位数"})
    done = fields.Integer(metadata={"description": "已比较的单位数"})
    round = fields.Integer(allow_none=True)
    year = fields.Integer(allow_none=True)
    from_ = fields.Nested(ImpactHeadOut, attribute="from", data_key="from")
    to = fields.Nested(ImpactHeadOut)
    changed = fields.Integer(metadata={"description": "总分、名次或等级有变化的单位数"})
    units = fields.List(fields.Nested(ImpactUnitOut))
    failures = fields.List(fields.Nested(ImpactFailureOut))
    draft = fields.Integer(
        allow_none=True, metadata={"description": "预览的规则草案（没有：null）"}
    )
    mapping = fields.List(
        fields.Nested(ImpactMappingOut), metadata={"description": "这次预览使用的事实对应"}
    )
    facts = fields.Nested(ImpactFactsOut)
