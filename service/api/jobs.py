"""Background jobs: start one, follow its progress, list them, cancel one (service/jobs.py)."""

from __future__ import annotations

from flask import request, url_for

from schemas.jobs import JobArgs, JobDetailOut, JobIn, JobOut
from service import jobs

from .admin import NEXT_PAGE_HEADERS
from .common import Blueprint, actor, ctx

blp = Blueprint("jobs", __name__, url_prefix="/api", description="后台任务：批量操作及其进度")

JOB_ID = "<int(max=2147483647):job_id>"


@blp.route("/jobs", methods=["POST"])
@blp.arguments(JobIn)
@blp.errors(400, 401, 403, 409, 413, 422)
@blp.response(201, JobDetailOut)
def start(body):
    """发起一个后台任务（如 scores.recompute：按本轮规则重算一套细则最新考核轮次中全部已评审单位的正式得分）。

    谁可以发起由任务类型决定；任务立即排队，由任一服务进程执行，进度见 GET /api/jobs/{id}。"""
    return jobs.start_job(ctx(), actor(), body["kind"], body["params"])


@blp.route("/jobs")
@blp.arguments(JobArgs, location="query")
@blp.response(200, JobOut(many=True), headers=NEXT_PAGE_HEADERS)
@blp.errors(401, 403, 422)
def list_jobs(args):
    """最近的后台任务，最新的在前；按 id 键集翻页（响应头 X-Next-Cursor）。"""
    views, cursor = jobs.list_jobs(ctx(), actor(), **args)
    headers = {}
    if cursor is not None:
        query = {k: v for k, v in request.args.items() if k != "cursor"}
        link = url_for("jobs.list_jobs", **query, cursor=cursor)
        headers = {"X-Next-Cursor": str(cursor), "Link": f'<{link}>; rel="next"'}
    return views, 200, headers


@blp.route(f"/jobs/{JOB_ID}")
@blp.response(200, JobDetailOut)
@blp.errors(401, 403, 404)
def get_job(job_id):
    """一个任务的状态、进度（已完成/总数）、每个出错项目及原因和用时；任何主机都看得到。"""
    return jobs.read_job(ctx(), actor(), job_id)


@blp.route(f"/jobs/{JOB_ID}/cancel", methods=["POST"])
@blp.response(200, JobDetailOut)
@blp.errors(401, 403, 404, 409)
def cancel(job_id):
    """取消排队中或运行中的任务（管理员）：正在处理的那一项回滚，已完成的保留；已结束的任务不能取消（409）。"""
    return jobs.cancel_job(ctx(), actor(), job_id)
