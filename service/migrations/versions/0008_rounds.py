"""Assessment rounds (考核轮次): rounds, their deadline changes, each unit's state in a round; the
round of every submission, score and draft, and whether a score is official or a preview.

``round_deadline_changes`` is append-only like the other history tables.  The new columns of
``submissions`` and ``scores`` are covered by the history chain when they are set
(``service.db.CHAIN_COLUMNS_WHEN_SET``), so rows chained before this revision keep their hashes.
They carry no foreign key: SQLite cannot add one to an existing table without rebuilding it, and
rebuilding an append-only, chained table is what its triggers are there to refuse.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "rounds",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("scheme_id", sa.String(100), nullable=False),
        sa.Column(
            "rules_version", sa.String(64), sa.ForeignKey("rule_versions.version"), nullable=False
        ),
        sa.Column("folder", sa.String(300), nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("self_deadline", TZ, nullable=False),
        sa.Column("review_deadline", TZ, nullable=False),
        sa.Column("publication_start", TZ, nullable=False),
        sa.Column("appeal_deadline", TZ, nullable=False),
        sa.Column("publication_end", TZ, nullable=False),
        sa.Column("stage", sa.String(20), nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("published_at", TZ, nullable=True),
        sa.Column("finalized_at", TZ, nullable=True),
        sa.UniqueConstraint("scheme_id", "year", name="uq_rounds_scheme_year"),
    )
    op.create_table(
        "round_deadline_changes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("round_id", sa.Integer, sa.ForeignKey("rounds.id"), nullable=False),
        sa.Column("deadline", sa.String(40), nullable=False),
        sa.Column("old", TZ, nullable=False),
        sa.Column("new", TZ, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("changed_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("changed_at", TZ, nullable=False),
    )
    op.create_table(
        "round_units",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("round_id", sa.Integer, sa.ForeignKey("rounds.id"), nullable=False),
        sa.Column("unit_id", sa.Integer, sa.ForeignKey("units.id"), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("self_version", sa.Integer, nullable=True),
        sa.Column("reviewed_version", sa.Integer, nullable=True),
        sa.Column("official_score_id", sa.Integer, sa.ForeignKey("scores.id"), nullable=True),
        sa.Column("returned_reason", sa.Text, nullable=True),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("updated_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("lock", sa.Integer, nullable=False),
        sa.UniqueConstraint("round_id", "unit_id", name="uq_round_units"),
    )
    op.add_column("submissions", sa.Column("round_id", sa.Integer, nullable=True))
    op.add_column("scores", sa.Column("round_id", sa.Integer, nullable=True))
    op.add_column("scores", sa.Column("kind", sa.String(20), nullable=True))
    op.create_index("ix_submissions_round", "submissions", ["round_id", "unit_id"])
    op.create_index("ix_scores_round", "scores", ["round_id", "unit_id"])
    with op.batch_alter_table("drafts") as batch:
        batch.add_column(sa.Column("round_id", sa.Integer, nullable=False, server_default="0"))
        batch.drop_constraint("uq_drafts_owner", type_="unique")
        batch.create_unique_constraint(
            "uq_drafts_owner", ["user_id", "unit_id", "scheme_id", "round_id"]
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION round_deadline_changes_append_only() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION 'round_deadline_changes is append-only'; END $$ LANGUAGE plpgsql""")
        op.execute("""CREATE TRIGGER round_deadline_changes_no_update
                       BEFORE UPDATE OR DELETE ON round_deadline_changes
                       FOR EACH ROW EXECUTE FUNCTION round_deadline_changes_append_only()""")
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"""CREATE TRIGGER round_deadline_changes_no_{verb.lower()}
                           BEFORE {verb} ON round_deadline_changes
                           BEGIN SELECT RAISE(ABORT, 'round_deadline_changes is append-only'); END""")


def downgrade():
    with op.batch_alter_table("drafts") as batch:
        batch.drop_constraint("uq_drafts_owner", type_="unique")
        batch.drop_column("round_id")
        batch.create_unique_constraint("uq_drafts_owner", ["user_id", "unit_id", "scheme_id"])
    op.drop_index("ix_scores_round", "scores")
    op.drop_index("ix_submissions_round", "submissions")
    op.drop_column("scores", "kind")
    op.drop_column("scores", "round_id")
    op.drop_column("submissions", "round_id")
    op.drop_table("round_units")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION round_deadline_changes_append_only() CASCADE")
    op.drop_table("round_deadline_changes")
    op.drop_table("rounds")
