"""Evidence files (佐证材料): upload per fact or clause, list, download as an attachment."""

from __future__ import annotations

import io

from flask import current_app, request, send_file
from werkzeug.datastructures import CombinedMultiDict, FileStorage
from werkzeug.exceptions import RequestEntityTooLarge

from schemas import EvidenceOut, EvidenceUploadIn
from service import evidence
from service.errors import error_response
from service.exceptions import Invalid

from .common import Blueprint, ExactJSONParser, actor, ctx


class _MultipartParser(ExactJSONParser):
    def load_files(self, req, schema):
        # the form's fields beside its file: one schema checks, and the OpenAPI document shows, the
        # whole multipart body (flask-smorest documents one request body per operation)
        return self._makeproxy(CombinedMultiDict([req.files, req.form]), schema)


class _Blueprint(Blueprint):
    ARGUMENTS_PARSER = _MultipartParser()


blp = _Blueprint("evidence", __name__, url_prefix="/api", description="佐证材料（上传的文件）")

UPLOAD_ENDPOINTS = {"evidence.upload"}


def store() -> evidence.EvidenceStore:
    return current_app.extensions["evidence"]


def body_limit() -> int:
    """An upload's whole body: one file at the evidence limit, and the form around it within the
    ordinary body limit."""
    return store().max_bytes + current_app.config["SCORING_SETTINGS"].max_body_bytes


@blp.url_value_preprocessor
def _upload_body_limit(endpoint, _values):
    # runs before every before_request (service.errors reads a chunked body against the limit
    # there): an upload's body may be larger than the JSON calls' SCORING_MAX_BODY_BYTES, and is
    # still refused (413) as soon as it passes its own limit, never read whole beyond it
    if endpoint in UPLOAD_ENDPOINTS and request.mimetype == "multipart/form-data":
        request.max_content_length = body_limit()


@blp.errorhandler(RequestEntityTooLarge)
def _too_large(_err):
    err = evidence.too_large(store().max_bytes)
    return error_response(413, err.code, err.message, err.fields)


def _out(row, unit_code: str, names: dict) -> dict:
    return {
        "id": row.id,
        "reference": f"file:{row.id}",
        "unit": unit_code,
        "scheme": row.scheme_id,
        "fact": row.fact,
        "clause": row.clause,
        "name": row.name,
        "size": row.size,
        "sha256": row.sha256,
        "content_type": row.content_type,
        "uploaded_by": names.get(row.uploaded_by, ""),
        "uploaded_at": row.uploaded_at,
        "round_id": row.round_id,
        "download": f"/api/evidence/{row.id}",
    }


@blp.route("/units/<code>/schemes/<scheme_id>/evidence", methods=["POST"])
@blp.arguments(EvidenceUploadIn, location="files")
@blp.errors(400, 401, 403, 404, 413, 422)
@blp.response(201, EvidenceOut)
@blp.alt_response(
    200,
    schema=EvidenceOut,
    description="同一单位同一事实（条款）已有相同内容的文件：返回那一份，不另存",
)
def upload(form, code, scheme_id):
    """上传一份佐证材料（multipart/form-data：file，以及 fact 或 clause）。类型按文件内容判断；
    提交事实时在 evidence 中写 file:<id> 引用它。"""
    sent = form["file"]
    # a part named "file" that is not a file (no filename in its header, or one the multipart
    # parser could not read) arrives as a form field
    if not isinstance(sent, FileStorage) or (not sent.filename and not sent.content_length):
        raise Invalid("no_file", "请选择要上传的文件", {"file": ["请选择要上传的文件"]})
    row, new = evidence.upload(
        ctx(),
        store(),
        actor(),
        code,
        scheme_id,
        sent.stream,
        sent.filename,
        fact=form["fact"],
        clause=form["clause"],
    )
    names = evidence.uploader_names(ctx(), [row])
    return _out(row, code, names), 201 if new else 200


@blp.route("/units/<code>/schemes/<scheme_id>/evidence")
@blp.response(200, EvidenceOut(many=True))
@blp.errors(401, 403, 404)
def list_evidence(code, scheme_id):
    """某单位某细则上传的全部佐证材料（文件名、大小、SHA-256、类型、上传人与时间）。"""
    rows = evidence.list_files(ctx(), actor(), code, scheme_id)
    names = evidence.uploader_names(ctx(), rows)
    return [_out(r, code, names) for r in rows]


# an id beyond the databases' INTEGER is no file (404), not a database error (500)
@blp.route("/evidence/<int(max=2147483647):evidence_id>")
@blp.response(
    200,
    {"type": "string", "format": "binary"},
    content_type="application/octet-stream",
    description="文件内容，作为附件（Content-Disposition: attachment），类型为按内容判断的类型",
)
@blp.errors(401, 403, 404)
def download(evidence_id):
    """下载一份佐证材料（能读取该单位提交的人：单位填报人只限本单位）。"""
    row, _unit, data = evidence.open_file(ctx(), store(), actor(), evidence_id)
    response = send_file(
        io.BytesIO(data),
        mimetype=row.content_type,
        as_attachment=True,  # never shown inline: an uploaded file runs no script in our origin
        download_name=row.name,
        etag=row.sha256,
        conditional=False,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "sandbox"
    return response
