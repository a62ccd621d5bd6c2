"""The schemas of the fact mapping kept with a rule draft (service/mapping.py)."""

from marshmallow import Schema, fields

from . import WholeNumber

MAPPING_DESCRIPTION = (
    '新版本读取而原版本没有的事实如何取值：{新事实名: {"from": 原事实名}}（改名而来，类型须相容），'
    '或 {新事实名: {"value": 值, "reason": 理由}}（每个单位都取这一固定值，按新事实的类型和范围'
    "检查，理由必填并写进结果和工作簿）。没有对应的事实按缺失处理，不按0计。"
)


class DraftMappingIn(Schema):
    lock = WholeNumber(
        required=True,
        metadata={"description": "读取草案时的 lock（已被他人修改时返回 409）"},
    )
    mapping = fields.Dict(
        keys=fields.String(),
        required=True,
        metadata={"description": MAPPING_DESCRIPTION},
    )


class MappingHeadOut(Schema):
    scheme = fields.String()
    year = fields.String()
    title = fields.String()
    version = fields.String()


class MappingFactOut(Schema):
    fact = fields.String()
    label = fields.String()
    type = fields.String(
        metadata={"description": "boolean / integer / number / percent / text / choice"}
    )
    type_words = fields.String()
    allowed = fields.String(metadata={"description": "可取的值（中文）"})
    unit = fields.String()
    choices = fields.List(fields.String())


class MappingEntryOut(Schema):
    how = fields.String(metadata={"description": "renamed 改名而来；set 固定值"})
    from_ = fields.String(attribute="from", data_key="from", allow_none=True)
    value = fields.String(allow_none=True, metadata={"description": "固定值（文字形式）"})
    reason = fields.String(allow_none=True)
    text = fields.String(metadata={"description": "这一对应的中文说明"})


class MappingLackingOut(MappingFactOut):
    sources = fields.List(
        fields.Nested(MappingFactOut),
        metadata={"description": "类型相容、可以改名对应的原事实"},
    )
    entry = fields.Nested(
        MappingEntryOut, allow_none=True, metadata={"description": "已保存的对应（没有：null）"}
    )


class DraftMappingOut(Schema):
    draft = fields.Integer()
    lock = fields.Integer(metadata={"description": "草案当前的 lock"})
    state = fields.String()
    old = fields.Nested(
        MappingHeadOut,
        metadata={"description": "比较的原版本：该细则编号在用的版本，或草案复制自的版本"},
    )
    new = fields.Nested(MappingHeadOut, metadata={"description": "草案"})
    facts = fields.List(
        fields.Nested(MappingLackingOut),
        metadata={"description": "草案读取而原版本没有的事实，及其对应"},
    )
    dropped = fields.List(
        fields.Nested(MappingFactOut),
        metadata={"description": "原版本有、草案不再读取且没有用于对应的事实"},
    )
    stale = fields.List(
        fields.String(),
        metadata={"description": "已保存但草案已不再需要对应的事实（影响预览不使用）"},
    )
