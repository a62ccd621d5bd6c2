"""The schemas of drafts and releases of rule versions (service/releases.py)."""

from flask_smorest.fields import Upload
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from . import DB_INTEGER_MAX, Text, WholeNumber

STATES = ("draft", "proposed", "published", "withdrawn")
_VERSION = validate.Regexp(r"^[0-9a-f]{64}$", error="应为64位十六进制的规则版本号")
_LOCK = {
    "required": True,
    "validate": validate.Range(min=0, max=DB_INTEGER_MAX),
    "metadata": {"description": "读取草案时的 lock：他人已修改时为 409，请重新读取"},
}


class DraftListArgs(Schema):
    state = fields.String(
        load_default=None,
        validate=validate.OneOf(STATES),
        metadata={"description": "只列出这一状态的草案：draft / proposed / published / withdrawn"},
    )


class DraftCopyIn(Schema):
    version = fields.String(
        required=True, validate=_VERSION, metadata={"description": "复制的规则版本（任一存档版本）"}
    )
    year = Text(
        required=True,
        validate=validate.Length(min=1, max=40),
        metadata={"description": "新年度，如 2023；编号、标题、文件夹中的旧年度数字随之改写"},
    )
    scheme_id = Text(
        load_default=None,
        validate=validate.Length(min=1, max=100),
        metadata={"description": "新细则编号（默认：旧编号中的年度改为新年度）"},
    )
    title = Text(
        load_default=None,
        validate=validate.Length(min=1, max=300),
        metadata={"description": "新标题（默认：旧标题中的年度改为新年度）"},
    )


class DraftCreateIn(Schema):
    copy = fields.Nested(DraftCopyIn, load_default=None, metadata={"description": "复制一个版本"})
    disk = Text(
        load_default=None,
        validate=validate.Length(min=1, max=100),
        metadata={"description": "从规则目录（磁盘）中这一细则编号的文件夹导入"},
    )

    @validates_schema
    def _one(self, data, **kwargs):
        if (data.get("copy") is None) == (data.get("disk") is None):
            raise ValidationError("copy 与 disk 须且只须填一项", "copy")


class DraftUploadIn(Schema):
    file = Upload(
        required=True,
        error_messages={"required": "请选择要上传的 zip 文件"},
        metadata={"description": "一个细则文件夹的 zip（scheme.yaml 在根部或唯一的顶层文件夹中）"},
    )


class DraftFilesIn(Schema):
    lock = WholeNumber(**_LOCK)
    files = fields.Dict(
        keys=Text(),
        values=Text(),
        required=True,
        validate=validate.Length(min=1, max=1000),
        metadata={"description": "细则文件夹内的相对路径到文件内容（全部文件）"},
    )
    what = Text(
        load_default="修改规则文件",
        validate=validate.Length(max=200),
        metadata={"description": "这次修改的简短说明（记入操作日志）"},
    )


class DraftProposeIn(Schema):
    lock = WholeNumber(**_LOCK)
    note = Text(load_default="", validate=validate.Length(max=2000))


class DraftReasonIn(Schema):
    lock = WholeNumber(**_LOCK)
    reason = Text(required=True, validate=validate.Length(min=1, max=2000))


class DraftApproveIn(Schema):
    lock = WholeNumber(**_LOCK)
    effective_year = WholeNumber(
        required=True,
        validate=validate.Range(min=2000, max=2100),
        metadata={"description": "新版本自哪一年度起生效（此后开启的该年度及以后的轮次使用它）"},
    )
    round = WholeNumber(
        load_default=None,
        validate=validate.Range(min=1, max=DB_INTEGER_MAX),
        metadata={"description": "同时改用新版本的考核轮次（须进行中且尚无正式得分）"},
    )


class CheckedErrorOut(Schema):
    file = fields.String(metadata={"description": "细则文件夹内的文件路径"})
    line = fields.Integer()
    column = fields.Integer()
    message = fields.String()


class CheckedOut(Schema):
    ok = fields.Boolean(metadata={"description": "规则文件无错误，且测试用例全部通过"})
    errors = fields.List(fields.Nested(CheckedErrorOut))
    failing = fields.List(
        fields.Dict(),
        metadata={"description": "未通过的测试用例：scheme、file、line、case、problems、text"},
    )
    cases = fields.Integer(metadata={"description": "运行的测试用例数"})
    version = fields.String(allow_none=True)


class DraftOut(Schema):
    id = fields.Integer()
    scheme_id = fields.String()
    folder = fields.String(metadata={"description": "在规则目录中的文件夹（计分说明中的文件名）"})
    title = fields.String()
    year = fields.String()
    origin = fields.String(metadata={"description": "copy / upload / disk"})
    base_version = fields.String(allow_none=True)
    state = fields.String(metadata={"description": "draft / proposed / published / withdrawn"})
    version = fields.String(allow_none=True)
    checked = fields.Nested(CheckedOut)
    mapping = fields.Dict(metadata={"description": "影响预览的事实对应关系"})
    note = fields.String(allow_none=True)
    proposed_by = fields.String(allow_none=True)
    proposed_at = fields.DateTime(allow_none=True)
    decided_by = fields.String(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    reason = fields.String(allow_none=True, metadata={"description": "退回或撤回的理由"})
    effective_year = fields.Integer(allow_none=True)
    effective_round_id = fields.Integer(allow_none=True)
    created_by = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_by = fields.String(allow_none=True)
    updated_at = fields.DateTime()
    lock = fields.Integer()


class DraftDetailOut(DraftOut):
    files = fields.Dict(
        keys=fields.String(), values=fields.String(), metadata={"description": "路径到文件内容"}
    )


class DiskStatusOut(Schema):
    scheme = fields.String()
    title = fields.String()
    folder = fields.String(allow_none=True)
    served_version = fields.String(allow_none=True)
    disk_version = fields.String(allow_none=True)
    differs = fields.Boolean(metadata={"description": "磁盘上的与产品中使用的不同"})
    imported = fields.Boolean(metadata={"description": "磁盘上的版本曾经被使用过"})


# --- the publication record of a version (releases.publication_record) ----------------------------


class VersionRoundRefOut(Schema):
    id = fields.Integer()
    title = fields.String()
    year = fields.Integer()


class VersionReleaseOut(Schema):
    draft = fields.Integer(metadata={"description": "发布它的规则草案编号"})
    origin = fields.String(metadata={"description": "草案的来历：copy / upload / disk"})
    base_version = fields.String(allow_none=True, metadata={"description": "草案所据的版本"})
    note = fields.String(allow_none=True, metadata={"description": "提交批准时的说明"})
    proposed_by = fields.String(allow_none=True)
    proposed_at = fields.DateTime(allow_none=True)
    approved_by = fields.String(allow_none=True)
    approved_at = fields.DateTime(allow_none=True)
    effective_year = fields.Integer(allow_none=True, metadata={"description": "自哪一年度起生效"})
    effective_round = fields.Nested(
        VersionRoundRefOut,
        allow_none=True,
        metadata={"description": "批准时同时改用它的考核轮次"},
    )
    rule_set = fields.Integer(allow_none=True, metadata={"description": "批准时发布的规则集"})
    against = fields.String(
        allow_none=True,
        metadata={"description": "批准时对照的版本（同一细则在用的，或草案所据的）"},
    )


class VersionServedOut(Schema):
    from_rule_set = fields.Integer(metadata={"description": "开始使用它的规则集"})
    from_at = fields.DateTime()
    by = fields.String(metadata={"description": "发布那个规则集的人（启动时为“（启动）”）"})
    how = fields.String(metadata={"description": "approval（批准发布）/ start / reload"})
    how_words = fields.String()
    until_rule_set = fields.Integer(
        allow_none=True, metadata={"description": "不再使用它的规则集；仍在使用时为空"}
    )
    until_at = fields.DateTime(allow_none=True)


class VersionRoundOut(Schema):
    id = fields.Integer()
    title = fields.String()
    year = fields.Integer()
    stage = fields.String()


class VersionRepinOut(Schema):
    round = fields.Nested(VersionRoundRefOut, metadata={"description": "改用版本的考核轮次"})
    from_version = fields.String(allow_none=True, metadata={"description": "轮次原来使用的版本"})
    to_version = fields.String(allow_none=True, metadata={"description": "轮次改用的版本"})
    draft = fields.Integer(allow_none=True, metadata={"description": "批准时改用它的规则草案"})
    by = fields.String(metadata={"description": "批准人"})
    at = fields.DateTime(metadata={"description": "改用的时间"})


class VersionDraftOut(Schema):
    id = fields.Integer()
    state = fields.String(allow_none=True, metadata={"description": "草案现在的状态"})


class VersionFileOut(Schema):
    path = fields.String(metadata={"description": "细则文件夹内的路径"})
    bytes = fields.Integer()
    sha256 = fields.String()


class VersionRecordOut(Schema):
    version = fields.String()
    scheme = fields.String()
    title = fields.String()
    year = fields.String()
    folder = fields.String(metadata={"description": "在规则目录中的文件夹"})
    loaded_at = fields.DateTime(allow_none=True, metadata={"description": "首次存档的时间"})
    serving = fields.Boolean(metadata={"description": "产品现在按它计分"})
    origin = fields.String(
        metadata={
            "description": "release（在产品中发布）/ directory（从规则目录导入）/ "
            "draft（草案的文件，未发布）/ unknown"
        }
    )
    origin_words = fields.String()
    releases = fields.List(fields.Nested(VersionReleaseOut))
    served = fields.List(
        fields.Nested(VersionServedOut),
        metadata={"description": "使用它的各段时间（按规则集），最早的在前"},
    )
    rounds = fields.List(fields.Nested(VersionRoundOut), metadata={"description": "使用它的轮次"})
    repinned = fields.List(
        fields.Nested(VersionRepinOut),
        metadata={
            "description": "批准发布时从这一版本改用别的版本、或从别的版本改用这一版本的轮次"
            "（来自操作日志 rounds.rules_version），最早的在前"
        },
    )
    drafts = fields.List(
        fields.Nested(VersionDraftOut),
        metadata={"description": "文件曾是这一版本、未发布的草案"},
    )
    files = fields.List(fields.Nested(VersionFileOut))
