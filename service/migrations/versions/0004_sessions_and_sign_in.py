"""Sessions, sign-in throttle and secrets in the database; tokens that expire and can be revoked.

Everything hosts must share lives here, so several hosts behind a load balancer need nothing but
this database: admin sessions (``admin_sessions``), failed sign-ins per account and per client
address (``sign_in_counters``), anonymous refusals counted per client and window
(``denial_counts``) and the made secret key (``service_secrets``).  Tokens get an expiry, a
last-used time and a revocation time; users a time they were disabled.

None of the new tables is append-only: they are working state, not history (the journal keeps
the history of sign-ins, revocations and disabled accounts).

Revision ID: 0004
Revises: 0003
"""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)
TOKEN_DAYS = 30  # the default of SCORING_TOKEN_DAYS: tokens made before this revision end then


def upgrade():
    op.add_column("users", sa.Column("disabled_at", WHEN, nullable=True))
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("expires_at", WHEN, nullable=True))
        batch.add_column(sa.Column("last_used_at", WHEN, nullable=True))
        batch.add_column(sa.Column("revoked_at", WHEN, nullable=True))
    # tokens made before tokens expired: they end TOKEN_DAYS after this upgrade, not never
    tokens = sa.table("tokens", sa.column("expires_at", WHEN))
    op.execute(tokens.update().values(expires_at=datetime.now(UTC) + timedelta(days=TOKEN_DAYS)))
    with op.batch_alter_table("tokens") as batch:
        batch.alter_column("expires_at", existing_type=WHEN, nullable=False)
        batch.create_index("ix_tokens_user", ["user_id"])
    # users disabled in SQL before this revision: disabled as of now, their tokens revoked, so
    # enabling them again revives none of them
    users = sa.table(
        "users",
        sa.column("id", sa.Integer),
        sa.column("active", sa.Boolean),
        sa.column("disabled_at", WHEN),
    )
    revoke = sa.table("tokens", sa.column("user_id", sa.Integer), sa.column("revoked_at", WHEN))
    moment = datetime.now(UTC)
    op.execute(users.update().where(users.c.active.is_(False)).values(disabled_at=moment))
    op.execute(
        revoke.update()
        .where(revoke.c.user_id.in_(sa.select(users.c.id).where(users.c.active.is_(False))))
        .values(revoked_at=moment)
    )

    op.create_table(
        "admin_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("seen_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
    )
    op.create_index("ix_admin_sessions_expires", "admin_sessions", ["expires_at"])
    op.create_index("ix_admin_sessions_user", "admin_sessions", ["user_id"])
    op.create_table(
        "sign_in_counters",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("window_start", WHEN, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
    )
    op.create_table(
        "denial_counts",
        sa.Column("address", sa.String(64), primary_key=True),
        sa.Column("action", sa.String(100), primary_key=True),
        sa.Column("window_start", WHEN, primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("last_target", sa.String(300), nullable=False),
        sa.Column("last_at", WHEN, nullable=False),
    )
    op.create_table(
        "service_secrets",
        sa.Column("name", sa.String(50), primary_key=True),
        sa.Column("value", sa.String(200), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
    )


def downgrade():
    for table in ("service_secrets", "denial_counts", "sign_in_counters", "admin_sessions"):
        op.drop_table(table)
    with op.batch_alter_table("tokens") as batch:
        batch.drop_index("ix_tokens_user")
        batch.drop_column("revoked_at")
        batch.drop_column("last_used_at")
        batch.drop_column("expires_at")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("disabled_at")
