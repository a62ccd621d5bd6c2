"""The schemas of background jobs (service/jobs.py): what starts one, and what a job looks like."""

from marshmallow import Schema, fields, validate

from . import DB_INTEGER_MAX, Exact, Text

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
        metadata={
            "description": '任务参数；scores.recompute：{"scheme": 细则编号}；'
            'scores.replay（复核一个考核轮次的全部正式得分）：{"round": 考核轮次编号}'
        },
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
    from_ = fields.String(
        required=True,
        data_key="from",
        validate=_VERSION,
        metadata={"description": "原规则版本（GET /api/rules/versions 的 version）"},
    )
    to = fields.String(required=True, validate=_VERSION, metadata={"description": "新规则版本"})
    year = fields.Integer(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=1900, max=2999, error="应为1900到2999的年度"),
        metadata={"description": "取哪一年度考核轮次的已评审事实（默认：原版本细则最新的轮次）"},
    )


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
