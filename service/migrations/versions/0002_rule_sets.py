"""Served rule sets: which scheme versions every worker serves, from when (append-only).

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "rule_sets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("follows", sa.Integer, nullable=False, unique=True),
        sa.Column("schemes", sa.JSON, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION rule_sets_append_only() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION 'rule_sets is append-only'; END $$ LANGUAGE plpgsql""")
        op.execute("""CREATE TRIGGER rule_sets_no_update BEFORE UPDATE OR DELETE ON rule_sets
                       FOR EACH ROW EXECUTE FUNCTION rule_sets_append_only()""")
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"""CREATE TRIGGER rule_sets_no_{verb.lower()} BEFORE {verb} ON rule_sets
                           BEGIN SELECT RAISE(ABORT, 'rule_sets is append-only'); END""")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION rule_sets_append_only() CASCADE")
    op.drop_table("rule_sets")
