"""A reason for each corrected fact of a submission.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    # adding a column is no UPDATE: the append-only triggers stay as they are; older rows have none
    op.add_column("submissions", sa.Column("reasons", sa.JSON, nullable=False, server_default=sa.text("'{}'")))


def downgrade():
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("reasons")
