"""Unit codes and names unique as a reader sees them: whatever the case, width or spacing.

Two keys beside the code and the name (NFKC, case folded, runs of spaces as one), each with a
unique index, so the database itself refuses a second "GUCUN" beside "gucun" or a second
"顾村镇 " beside "顾村镇", even from two requests at once.

Self-contained: the key is computed here as service.domain.text.identity_key computed it when
this revision was written, so the migration means the same whatever the code becomes later.
Existing units whose codes or names clash stop the upgrade with a list of them, to be renamed
first; nothing is changed then.

Revision ID: 0006
Revises: 0003
"""
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _key(text: str) -> str:
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return " ".join(folded.split())


def upgrade():
    units = sa.table(
        "units",
        sa.column("id", sa.Integer),
        sa.column("code", sa.String),
        sa.column("name", sa.String),
        sa.column("code_key", sa.String),
        sa.column("name_key", sa.String),
    )
    connection = op.get_bind()
    keys, seen, clashes = {}, {}, []
    rows = connection.execute(sa.select(units.c.id, units.c.code, units.c.name).order_by(units.c.id))
    for unit_id, code, name in rows.all():
        keys[unit_id] = {"code_key": _key(code), "name_key": _key(name)}
        for column, key in keys[unit_id].items():
            other = seen.setdefault((column, key), code)
            if other != code:
                what = "代码" if column == "code_key" else "名称"
                clashes.append(f"单位“{other}”与“{code}”的{what}只有大小写、全角半角或空格不同")
    if clashes:  # before anything is changed
        raise RuntimeError(
            "无法升级：以下单位的代码或名称视为相同，请先改名再升级：\n" + "\n".join(clashes)
        )
    op.add_column("units", sa.Column("code_key", sa.String(64), nullable=True))
    op.add_column("units", sa.Column("name_key", sa.String(600), nullable=True))
    for unit_id, values in keys.items():
        connection.execute(units.update().where(units.c.id == unit_id).values(**values))
    with op.batch_alter_table("units") as batch:
        batch.alter_column("code_key", existing_type=sa.String(64), nullable=False)
        batch.alter_column("name_key", existing_type=sa.String(600), nullable=False)
        batch.create_index("uq_units_code_key", ["code_key"], unique=True)
        batch.create_index("uq_units_name_key", ["name_key"], unique=True)


def downgrade():
    with op.batch_alter_table("units") as batch:
        batch.drop_index("uq_units_name_key")
        batch.drop_index("uq_units_code_key")
        batch.drop_column("name_key")
        batch.drop_column("code_key")
