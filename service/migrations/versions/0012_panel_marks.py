"""Several reviewers scoring a clause (专家评审): each reviewer's points and reason for a clause of a
unit in a round, one row per reviewer (``service.db.PanelMark``).  Replaceable until the unit's
review is complete (every change journaled), so not append-only.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "panel_marks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("round_id", sa.Integer, sa.ForeignKey("rounds.id"), nullable=False),
        sa.Column("unit_id", sa.Integer, sa.ForeignKey("units.id"), nullable=False),
        sa.Column("clause_id", sa.String(100), nullable=False),
        sa.Column("reviewer_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("points", sa.String(40), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "round_id", "unit_id", "clause_id", "reviewer_id", name="uq_panel_marks_reviewer"
        ),
    )
    op.create_index("ix_panel_marks_unit", "panel_marks", ["round_id", "unit_id"])


def downgrade():
    op.drop_index("ix_panel_marks_unit", "panel_marks")
    op.drop_table("panel_marks")
