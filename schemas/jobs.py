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
