"""Drafts and releases of rule versions (issue 10): a scheme version written in the product, its
files, its state (draft -> proposed -> published, or withdrawn) and its last check
(``service.db.RuleDraft``).  Edited until published, so not append-only and in no hash chain: the
journal keeps every step (create, save, propose, return, approve, withdraw), and an approved
version's files are archived in the append-only ``rule_versions``.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "rule_drafts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("scheme_id", sa.String(100), nullable=False),
        sa.Column("folder", sa.String(300), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("year", sa.String(40), nullable=False),
        sa.Column("origin", sa.String(20), nullable=False),
        sa.Column("base_version", sa.String(64), nullable=True),
        sa.Column("files", sa.JSON, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("version", sa.String(64), nullable=True),
        sa.Column("checked", sa.JSON, nullable=False),
        sa.Column("mapping", sa.JSON, nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("proposed_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("proposed_at", TZ, nullable=True),
        sa.Column("decided_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("decided_at", TZ, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("effective_year", sa.Integer, nullable=True),
        sa.Column("effective_round_id", sa.Integer, sa.ForeignKey("rounds.id"), nullable=True),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("lock", sa.Integer, nullable=False),
    )
    op.create_index("ix_rule_drafts_state", "rule_drafts", ["state", "scheme_id"])


def downgrade():
    op.drop_index("ix_rule_drafts_state", "rule_drafts")
    op.drop_table("rule_drafts")
