"""The schemas of the auditor's desk (issue 11, service/audit.py): a round's replay report, a round's
audit, and the last check of the history chain."""

from marshmallow import Schema, fields

from . import HistoryProblemOut, ReplayClauseOut, ReplayFactOut, ScoreProvenanceOut


class AuditRoundOut(Schema):
    id = fields.Integer()
    title = fields.String()
    year = fields.Integer()
    scheme = fields.String()
    stage = fields.String()
    stage_words = fields.String()
    rules_version = fields.String()


class ReplayRowOut(Schema):
    score = fields.Integer()
    unit = fields.String()
    unit_name = fields.String()
    reproduced = fields.Boolean()
    words = fields.String(metadata={"description": "“已复现”，或哪些条款不同、原因"})
    stored_total = fields.String(allow_none=True)
    replayed_total = fields.String(allow_none=True)
    rules_version = fields.String()
    submission_version = fields.Integer()
    engine_version = fields.String()
    replayed_engine = fields.String()
    differences = fields.List(fields.String())
    clauses = fields.List(fields.Nested(ReplayClauseOut))
    facts = fields.List(fields.Nested(ReplayFactOut))
    causes = fields.List(fields.String())


class ReplayFailureOut(Schema):
    score = fields.Integer()
    unit_name = fields.String()
    message = fields.String()


class ReplayReportOut(Schema):
    job = fields.Integer()
    state = fields.String(metadata={"description": "queued / running / done / failed / cancelled"})
    finished = fields.Boolean()
    created_by = fields.String()
    created_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)
    total = fields.Integer(metadata={"description": "要复核的正式得分数"})
    round = fields.Nested(AuditRoundOut, allow_none=True)
    scores = fields.List(fields.Nested(ReplayRowOut), metadata={"description": "已复核的得分"})
    reproduced = fields.Integer(metadata={"description": "已复现的个数"})
    not_reproduced = fields.Integer(metadata={"description": "未复现的个数"})
    pending = fields.Integer(metadata={"description": "尚未复核的个数"})
    failures = fields.List(fields.Nested(ReplayFailureOut))


class AuditScoreOut(Schema):
    id = fields.Integer()
    total = fields.String()
    grade = fields.String(allow_none=True)
    complete = fields.Boolean()
    rules_version = fields.String()
    submission_version = fields.Integer()
    engine_version = fields.String()
    computed_by = fields.String()
    computed_at = fields.DateTime()


class AuditMarkOut(Schema):
    clause = fields.String()
    reviewer = fields.String()
    points = fields.String()
    reason = fields.String()
    entered_at = fields.DateTime()


class AuditAppealOut(Schema):
    appeal = fields.Integer()
    filed_by = fields.String()
    filed_at = fields.DateTime()
    clause = fields.String()
    reason = fields.String()
    answer = fields.String(
        allow_none=True, metadata={"description": "uphold（维持）/ correct（更正）"}
    )
    answer_words = fields.String()
    answer_reason = fields.String(allow_none=True)
    answered_by = fields.String(allow_none=True)
    answered_at = fields.DateTime(allow_none=True)
    new_submission_version = fields.Integer(allow_none=True)
    new_score_id = fields.Integer(allow_none=True)


class AuditUnitOut(Schema):
    unit = fields.String()
    unit_name = fields.String()
    state = fields.String()
    state_words = fields.String()
    reviewed_version = fields.Integer(allow_none=True)
    score = fields.Nested(AuditScoreOut, allow_none=True, metadata={"description": "正式得分"})
    provenance = fields.Nested(ScoreProvenanceOut, metadata={"description": "各项事实的来源"})
    titles = fields.Dict(keys=fields.String(), values=fields.String())
    marks = fields.List(fields.Nested(AuditMarkOut), metadata={"description": "评审组各成员的打分"})
    appeals = fields.List(fields.Nested(AuditAppealOut), metadata={"description": "申诉及答复"})
    replay = fields.Nested(ReplayRowOut, metadata={"description": "现在按其规则版本重算的结果"})


class RoundAuditOut(Schema):
    round = fields.Nested(AuditRoundOut)
    units = fields.List(fields.Nested(AuditUnitOut))


class HistoryCheckLastOut(Schema):
    checked = fields.Boolean(metadata={"description": "核对过（false：从未核对）"})
    ok = fields.Boolean(allow_none=True, metadata={"description": "上次核对时链完好"})
    at = fields.DateTime(allow_none=True, metadata={"description": "上次核对的时间"})
    actor = fields.String(allow_none=True, metadata={"description": "谁核对的"})
    rows = fields.Integer(allow_none=True)
    head_seq = fields.Integer(allow_none=True)
    head_hash = fields.String(allow_none=True)
    problem = fields.Nested(HistoryProblemOut, allow_none=True)
