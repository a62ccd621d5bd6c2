"""Drafts and releases of rule versions: create (copy, upload, disk), save, check, propose,
return, approve, withdraw, download as a zip; the rules directory beside the product."""

from __future__ import annotations

from flask import Response
from flask.views import MethodView
from werkzeug.datastructures import FileStorage

from schemas.drafts import (
    DiskStatusOut,
    DraftApproveIn,
    DraftCreateIn,
    DraftDetailOut,
    DraftFilesIn,
    DraftListArgs,
    DraftOut,
    DraftProposeIn,
    DraftReasonIn,
    DraftUploadIn,
)
from service import releases
from service.exceptions import Invalid

from .common import Blueprint, actor, ctx

blp = Blueprint("drafts", __name__, url_prefix="/api/rules", description="规则草案与发布")

_DRAFT = "<int(max=2147483647):draft_id>"
ZIP = {"type": "string", "format": "binary"}


def _zip(name: str, data: bytes) -> Response:
    return Response(
        data,
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# one route for both methods (a GET and a POST route on one path answer 405 where 404 belongs)
@blp.route("/drafts")
class Drafts(MethodView):
    @blp.arguments(DraftListArgs, location="query")
    @blp.errors(401, 403, 422)
    @blp.response(200, DraftOut(many=True))
    def get(self, args):
        """全部规则草案（最新的在前），可按状态筛选；不含文件内容（见 GET /api/rules/drafts/{id}）。"""
        return releases.list_drafts(ctx(), actor(), args["state"])

    @blp.arguments(DraftCreateIn)
    @blp.errors(400, 401, 403, 404, 409, 413, 422)
    @blp.response(201, DraftDetailOut)
    def post(self, body):
        """新建草案：复制任一版本为新年度（copy：编号、年度、标题随之改写，其余原样保留），或从规则
        目录导入某一细则（disk）。新建后即检查（加载并运行全部测试用例），结果在 checked 中。"""
        if body["copy"] is not None:
            c = body["copy"]
            return releases.copy_version(
                ctx(), actor(), c["version"], c["year"], c["scheme_id"], c["title"]
            )
        return releases.draft_from_disk(ctx(), actor(), body["disk"])


@blp.route("/drafts/upload", methods=["POST"])
@blp.arguments(DraftUploadIn, location="files")
@blp.errors(400, 401, 403, 409, 413, 422)
@blp.response(201, DraftDetailOut)
def upload(form):
    """上传一个细则文件夹的 zip（multipart/form-data：file）为草案；无法加载的也保存为草案，
    错误在 checked 中。"""
    sent = form["file"]
    if not isinstance(sent, FileStorage) or not sent.filename:
        raise Invalid("no_file", "请选择要上传的 zip 文件", {"file": ["请选择要上传的 zip 文件"]})
    return releases.upload_draft(ctx(), actor(), sent.stream.read(releases.MAX_UPLOAD_BYTES + 1))


@blp.route(f"/drafts/{_DRAFT}")
@blp.errors(401, 403, 404)
@blp.response(200, DraftDetailOut)
def read(draft_id):
    """一个草案及其全部文件、最近一次检查的结果。"""
    return releases.read_draft(ctx(), actor(), draft_id)


@blp.route(f"/drafts/{_DRAFT}/files", methods=["PUT"])
@blp.arguments(DraftFilesIn)
@blp.errors(400, 401, 403, 404, 409, 413, 422)
@blp.response(200, DraftDetailOut)
def save(body, draft_id):
    """保存草案的全部文件（须带读取时的 lock）并检查；文件无法加载时照样保存，错误在 checked 中。"""
    return releases.save_files(ctx(), actor(), draft_id, body["lock"], body["files"], body["what"])


@blp.route(f"/drafts/{_DRAFT}/check", methods=["POST"])
@blp.errors(401, 403, 404)
@blp.response(200, DraftDetailOut)
def check(draft_id):
    """重新检查草案：加载并运行全部测试用例，结果存入 checked。"""
    return releases.check_draft(ctx(), actor(), draft_id)


@blp.route(f"/drafts/{_DRAFT}/propose", methods=["POST"])
@blp.arguments(DraftProposeIn)
@blp.errors(400, 401, 403, 404, 409, 413, 422)
@blp.response(200, DraftDetailOut)
def propose(body, draft_id):
    """提交批准：须加载无误且测试用例全部通过（否则 422，逐项列出未通过的用例）。"""
    return releases.propose(ctx(), actor(), draft_id, body["lock"], body["note"])


@blp.route(f"/drafts/{_DRAFT}/return", methods=["POST"])
@blp.arguments(DraftReasonIn)
@blp.errors(400, 401, 403, 404, 409, 413, 422)
@blp.response(200, DraftDetailOut)
def return_(body, draft_id):
    """退回待批准的草案（管理员），写明理由；草案回到“草稿”，编辑者看到理由。"""
    return releases.return_draft(ctx(), actor(), draft_id, body["lock"], body["reason"])


@blp.route(f"/drafts/{_DRAFT}/approve", methods=["POST"])
@blp.arguments(DraftApproveIn)
@blp.errors(400, 401, 403, 404, 409, 413, 422, 503)
@blp.response(200, DraftDetailOut)
def approve(body, draft_id):
    """批准并发布（管理员，且不能是提交人）：再次检查，存档并发布为新的规则集，各进程随之使用；
    写明生效年度，可指定同时改用新版本的进行中轮次。操作日志记下与现行版本的比较。"""
    return releases.approve(
        ctx(), actor(), draft_id, body["lock"], body["effective_year"], body["round"]
    )


@blp.route(f"/drafts/{_DRAFT}/withdraw", methods=["POST"])
@blp.arguments(DraftReasonIn)
@blp.errors(400, 401, 403, 404, 409, 413, 422)
@blp.response(200, DraftDetailOut)
def withdraw(body, draft_id):
    """撤回草稿或待批准的草案，写明理由。"""
    return releases.withdraw(ctx(), actor(), draft_id, body["lock"], body["reason"])


@blp.route(f"/drafts/{_DRAFT}/zip")
@blp.errors(401, 403, 404)
@blp.response(200, ZIP, content_type="application/zip", description="草案的文件（zip）")
def draft_zip(draft_id):
    """下载草案为 zip（顶层文件夹为细则文件夹名）：scoring check / scoring test 可直接检查。"""
    return _zip(*releases.draft_zip(ctx(), actor(), draft_id))


@blp.route("/versions/<version>/zip")
@blp.errors(401, 403, 404)
@blp.response(200, ZIP, content_type="application/zip", description="该版本的文件（zip）")
def version_zip(version):
    """下载任一规则版本为 zip（原样的文件内容）：scoring check / scoring test 可直接检查。"""
    return _zip(*releases.version_zip(ctx(), actor(), version))


@blp.route("/disk")
@blp.errors(401, 403)
@blp.response(200, DiskStatusOut(many=True))
def disk():
    """规则目录（磁盘）与产品中使用的规则逐套对比：使用中的版本、磁盘上的版本、是否不同、
    磁盘上的版本是否曾被使用。"""
    return releases.disk_status(ctx(), actor())
