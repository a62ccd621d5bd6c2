"""Appeals (申诉): a unit's appeal of its published official score, clause by clause, and each
clause's answer (维持 or 更正, with the new reviewed version and official score a 更正 made).

Not history tables (an item is answered after it is filed), so no append-only triggers and no hash
chain: the journal keeps every filing and every answer, and a 更正's new facts and score are rows of
the append-only, chained ``submissions`` and ``scores``.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "appeals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("round_id", sa.Integer, sa.ForeignKey("rounds.id"), nullable=False),
        sa.Column("unit_id", sa.Integer, sa.ForeignKey("units.id"), nullable=False),
        sa.Column("filed_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("filed_at", TZ, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("appealed_score_id", sa.Integer, sa.ForeignKey("scores.id"), nullable=False),
        sa.Column("lock", sa.Integer, nullable=False),
    )
    op.create_index("ix_appeals_round_unit", "appeals", ["round_id", "unit_id"])
    op.create_table(
        "appeal_items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("appeal_id", sa.Integer, sa.ForeignKey("appeals.id"), nullable=False),
        sa.Column("clause_id", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("answer", sa.String(20), nullable=True),
        sa.Column("answer_reason", sa.Text, nullable=True),
        sa.Column("answered_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("answered_at", TZ, nullable=True),
        sa.Column("new_submission_version", sa.Integer, nullable=True),
        sa.Column("new_score_id", sa.Integer, sa.ForeignKey("scores.id"), nullable=True),
        sa.UniqueConstraint("appeal_id", "clause_id", name="uq_appeal_items_clause"),
    )


def downgrade():
    op.drop_table("appeal_items")
    op.drop_index("ix_appeals_round_unit", "appeals")
    op.drop_table("appeals")
