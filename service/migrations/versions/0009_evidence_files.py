"""Evidence files (佐证材料): the bytes once per content, and one upload record per unit, scheme,
fact or clause and content.

Both tables are append-only, with the triggers 0001 gives the history tables, in both databases:
a submission references its files (``file:<id>``) and a score relies on that submission, so a file
that could be replaced or removed afterwards would take the evidence for a decided score with it.
``round_id`` has no foreign key yet: the review cycle adds rounds alongside this revision.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TABLES = ("evidence_blobs", "evidence_files")


def _append_only(table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION {table}_append_only() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION '{table} is append-only'; END $$ LANGUAGE plpgsql""")
        op.execute(f"""CREATE TRIGGER {table}_no_update BEFORE UPDATE OR DELETE ON {table}
                       FOR EACH ROW EXECUTE FUNCTION {table}_append_only()""")
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"""CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table}
                           BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END""")


def upgrade():
    op.create_table(
        "evidence_blobs",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "evidence_files",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("unit_id", sa.Integer, sa.ForeignKey("units.id"), nullable=False),
        sa.Column("scheme_id", sa.String(100), nullable=False),
        sa.Column("fact", sa.String(100), nullable=False),
        sa.Column("clause", sa.String(100), nullable=False),
        sa.Column("sha256", sa.String(64), sa.ForeignKey("evidence_blobs.sha256"), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("uploaded_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("round_id", sa.Integer, nullable=True),
        sa.UniqueConstraint(
            "unit_id", "scheme_id", "fact", "clause", "sha256", name="uq_evidence_files_place"
        ),
    )
    op.create_index("ix_evidence_files_unit_scheme", "evidence_files", ["unit_id", "scheme_id"])
    for table in TABLES:
        _append_only(table)


def downgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in reversed(TABLES):
        op.drop_table(table)  # its triggers go with it
        if postgres:
            op.execute(f"DROP FUNCTION {table}_append_only()")
