"""The auditor's desk (issue 11): where each fact of a score came from, one fact's history, a round's
official scores replayed as a background job and its report, a round's audit, and the history
chain's tamper check (its last result, and running it)."""

from __future__ import annotations

from decimal import Decimal

from schemas import FactHistoryOut, HistoryCheckOut, ScoreProvenanceOut
from schemas.audit import HistoryCheckLastOut, ReplayReportOut, RoundAuditOut
from schemas.jobs import JobDetailOut
from service import audit, provenance
from service.domain.numbers import plain

from .common import Blueprint, actor, ctx

blp = Blueprint(
    "audit", __name__, url_prefix="/api", description="审计：事实来源、复核与历史链核对"
)

ID = "int(max=2147483647)"


def _exact(value):
    """A stored number as the exact digits the API writes (as the submissions do)."""
    return (
        plain(Decimal(value))
        if isinstance(value, (int, Decimal)) and not isinstance(value, bool)
        else value
    )


def exact_sources(data: dict) -> dict:
    """A score's provenance with its values written as the API writes facts."""
    facts = {k: dict(v, value=_exact(v["value"])) for k, v in data["facts"].items()}
    return dict(data, facts=facts)


@blp.route(f"/scores/<{ID}:score_id>/provenance")
@blp.response(200, ScoreProvenanceOut)
@blp.errors(401, 403, 404)
def score_provenance(score_id):
    """一个已保存评分的每项事实的来源：值、来自第几版提交、谁录入或最后修改、以何身份（自评、评审、
    申诉更正）、何时、理由与佐证材料；以及每个条款读取了哪些事实。由提交历史在读取时得出，
    不改变保存的轨迹和它的哈希。"""
    return exact_sources(provenance.score_provenance(ctx(), actor(), score_id))


@blp.route("/units/<code>/schemes/<scheme_id>/facts/<fact>/history")
@blp.response(200, FactHistoryOut)
@blp.errors(401, 403, 404)
def fact_history(code, scheme_id, fact):
    """一项事实在本单位各版提交中的全部历史：每一版的值、这一版是否改动了它、谁、何时、以何身份、
    理由与佐证材料。"""
    out = provenance.fact_history(ctx(), actor(), code, scheme_id, fact)
    out["versions"] = [dict(v, value=_exact(v["value"])) for v in out["versions"]]
    return out


@blp.route(f"/rounds/<{ID}:round_id>/replay", methods=["POST"])
@blp.errors(401, 403, 404, 409)
@blp.response(201, JobDetailOut)
def start_replay(round_id):
    """复核本轮全部正式得分：后台任务（scores.replay），逐个按评分当时的规则版本和事实重算并比较，
    不改动任何数据；进度见 GET /api/jobs/{id}，报告见 GET /api/replays/{job_id}。"""
    return audit.start_round_replay(ctx(), actor(), round_id)


@blp.route(f"/replays/<{ID}:job_id>")
@blp.response(200, ReplayReportOut)
@blp.errors(401, 403, 404)
def replay_report(job_id):
    """复核任务的报告：每个正式得分是否复现，未复现的条款、数值和原因；任务未结束时为已完成部分。"""
    return audit.replay_report(ctx(), actor(), job_id)


@blp.route(f"/rounds/<{ID}:round_id>/audit")
@blp.response(200, RoundAuditOut)
@blp.errors(401, 403, 404)
def round_audit(round_id):
    """一个考核轮次的审计数据（审计工作簿的内容）：每个单位的正式得分及其规则版本、提交版本，
    各项事实及其来源，评审组各成员的打分，申诉及答复，以及现在重算的结果。"""
    out = audit.round_audit(ctx(), actor(), round_id)
    for row in out["units"]:
        if "provenance" in row:
            row["provenance"] = exact_sources(row["provenance"])
    return out


@blp.route("/journal/checks/last")
@blp.response(200, HistoryCheckLastOut)
@blp.errors(401, 403)
def last_history_check():
    """历史链上一次核对的结果（谁、何时、是否完好、第一处断裂）；从未核对时 checked 为 false。"""
    return audit.last_check(ctx(), actor())


@blp.route("/journal/checks", methods=["POST"])
@blp.response(200, HistoryCheckOut)
@blp.errors(401, 403)
def run_history_check():
    """立即核对历史链（管理员）；结果记入操作日志，审计人员可读取（GET /api/journal/checks/last）。"""
    return audit.run_history_check(ctx(), actor())
