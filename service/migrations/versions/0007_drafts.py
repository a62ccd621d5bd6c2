"""Fact-entry drafts on the server: one per user, unit and scheme (they were in the sign-in session).

Not history: no append-only triggers and no hash chain; a draft is replaced or deleted.  The review
cycle will add a ``round_id`` column to ``uq_drafts_owner``.

Drafts kept in signed-in sessions until now (``admin_sessions.data["drafts"]``, keyed
"unit code|scheme id") move into the table, so nobody signed in during the upgrade loses one; when a
user has one in two sessions, the session seen last wins.  Self-contained: it reads the session
data as the admin pages wrote it when this revision was written.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _texts(value) -> dict:
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def _base(value) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def upgrade():
    drafts = op.create_table(
        "drafts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("unit_id", sa.Integer, sa.ForeignKey("units.id"), nullable=False),
        sa.Column("scheme_id", sa.String(100), nullable=False),
        sa.Column("values", sa.JSON, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("base_version", sa.Integer, nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("user_id", "unit_id", "scheme_id", name="uq_drafts_owner"),
    )
    sessions = sa.table(
        "admin_sessions",
        sa.column("id", sa.String),
        sa.column("user_id", sa.Integer),
        sa.column("data", sa.JSON),
        sa.column("seen_at", sa.DateTime(timezone=True)),
    )
    units = sa.table("units", sa.column("id", sa.Integer), sa.column("code", sa.String))
    connection = op.get_bind()
    unit_ids = dict(connection.execute(sa.select(units.c.code, units.c.id)).all())
    found = {}
    rows = connection.execute(
        sa.select(sessions.c.id, sessions.c.user_id, sessions.c.data, sessions.c.seen_at)
        .where(sessions.c.user_id.is_not(None))
        .order_by(sessions.c.seen_at)  # the session seen last overwrites the others
    ).all()
    for session_id, user_id, data, seen_at in rows:
        kept = data.get("drafts") if isinstance(data, dict) else None
        if not isinstance(kept, dict):
            continue
        for key, draft in kept.items():
            code, _, scheme_id = str(key).partition("|")
            if code not in unit_ids or not scheme_id or not isinstance(draft, dict):
                continue
            found[(user_id, unit_ids[code], scheme_id[:100])] = {
                "values": _texts(draft.get("values")),
                "evidence": _texts(draft.get("evidence")),
                "reason": draft.get("reason") if isinstance(draft.get("reason"), str) else "",
                "reasons": _texts(draft.get("reasons")),
                "base_version": _base(draft.get("base")),
                "saved_at": seen_at,  # the session kept only a display string of the time
            }
        rest = {k: v for k, v in data.items() if k != "drafts"}
        connection.execute(sessions.update().where(sessions.c.id == session_id).values(data=rest))
    if found:
        op.bulk_insert(
            drafts,
            [
                {"user_id": u, "unit_id": unit, "scheme_id": s, **draft}
                for (u, unit, s), draft in found.items()
            ],
        )


def downgrade():
    op.drop_table("drafts")
