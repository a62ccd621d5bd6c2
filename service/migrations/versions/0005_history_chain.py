"""The history chain: submissions, scores and journal entries hash-chained (tamper-evident), the
chain's head, and the journal's filter columns (unit, scheme) and indexes.

Existing rows are chained here, in order (each table by id, the three interleaved by time), and
old journal entries get the unit and scheme their targets name.  That is an UPDATE of append-only
tables, which their triggers refuse: they are set aside for it, inside this migration's
transaction, and put back exactly as 0001 made them.

Revision ID: 0005
Revises: 0003
"""

import heapq

import sqlalchemy as sa
from alembic import op

from service.db import (
    CHAIN_COLUMNS,
    GENESIS,
    Base,
    _json_loads,
    journal_subjects,
    row_hash,
)

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

CHAINED = ("submissions", "scores", "journal")
TIME = {"submissions": "created_at", "scores": "created_at", "journal": "at"}


def _triggers(table: str, on: bool) -> None:
    """The append-only triggers of ``table``, off or on again (as 0001 created them)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE {table} {'ENABLE' if on else 'DISABLE'} TRIGGER {table}_no_update")
        return
    for verb in ("UPDATE", "DELETE"):
        if on:
            op.execute(f"""CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table}
                           BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END""")
        else:
            op.execute(f"DROP TRIGGER {table}_no_{verb.lower()}")


def _rows(connection, table: str):
    """(time, table, values) of every row of ``table`` in id order, JSON parsed from its text."""
    t = Base.metadata.tables[table]
    names = [
        n for n in CHAIN_COLUMNS[table] if n not in ("chain_seq", "prev_hash", "unit", "scheme")
    ]
    columns = [
        sa.cast(t.c[n], sa.Text).label(n) if isinstance(t.c[n].type, sa.JSON) else t.c[n]
        for n in names
    ]
    after = None
    while True:
        query = sa.select(*columns).order_by(t.c.id).limit(500)
        if after is not None:
            query = query.where(t.c.id > after)
        batch = connection.execute(query).all()
        for row in batch:
            values = dict(row._mapping)
            for n in names:
                if isinstance(t.c[n].type, sa.JSON):
                    values[n] = _json_loads(values[n])
            yield values[TIME[table]], table, values
        if len(batch) < 500:
            return
        after = batch[-1].id


def upgrade():
    op.create_table(
        "history_head",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.Column("last_table", sa.String(20), nullable=False),
        sa.Column("last_id", sa.BigInteger, nullable=False),
    )
    for table in CHAINED:
        op.add_column(table, sa.Column("chain_seq", sa.BigInteger, nullable=True))
        op.add_column(table, sa.Column("prev_hash", sa.String(64), nullable=True))
        op.add_column(table, sa.Column("row_hash", sa.String(64), nullable=True))
    op.add_column("journal", sa.Column("unit", sa.String(64), nullable=True))
    op.add_column("journal", sa.Column("scheme", sa.String(100), nullable=True))

    connection = op.get_bind()
    updates: dict = {table: [] for table in CHAINED}
    seq, previous, last = 0, GENESIS, ("journal", 0)
    merged = heapq.merge(*(_rows(connection, t) for t in CHAINED), key=lambda item: item[0])
    for _at, table, values in merged:
        seq += 1
        values.update(chain_seq=seq, prev_hash=previous)
        if table == "journal":
            values["unit"], values["scheme"] = journal_subjects(values["target"])
        previous = row_hash(table, values)
        change = {"_id": values["id"], "seq": seq, "prev": values["prev_hash"], "hash": previous}
        if table == "journal":
            change.update(unit=values["unit"], scheme=values["scheme"])
        updates[table].append(change)
        last = (table, values["id"])
    for table, changes in updates.items():
        if not changes:
            continue
        _triggers(table, on=False)
        extra = ", unit = :unit, scheme = :scheme" if table == "journal" else ""
        connection.execute(
            sa.text(
                f"UPDATE {table} SET chain_seq = :seq, prev_hash = :prev, row_hash = :hash{extra}"
                " WHERE id = :_id"
            ),
            changes,
        )
        _triggers(table, on=True)
    connection.execute(
        sa.text(
            "INSERT INTO history_head (id, seq, last_hash, last_table, last_id)"
            " VALUES (1, :seq, :hash, :table, :id)"
        ),
        {"seq": seq, "hash": previous, "table": last[0], "id": last[1]},
    )

    for table in CHAINED:
        op.create_index(f"ix_{table}_chain_seq", table, ["chain_seq"], unique=True)
    for column in ("actor", "unit", "scheme", "action", "outcome"):
        op.create_index(f"ix_journal_{column}", "journal", [column, "id"])
    op.create_index("ix_journal_at", "journal", ["at"])


def downgrade():
    for column in ("actor", "unit", "scheme", "action", "outcome", "at"):
        op.drop_index(f"ix_journal_{column}", "journal")
    for table in CHAINED:
        op.drop_index(f"ix_{table}_chain_seq", table)
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in CHAINED:
        columns = ["chain_seq", "prev_hash", "row_hash"] + (
            ["unit", "scheme"] if table == "journal" else []
        )
        if sqlite:  # SQLite rebuilds the table to drop a column, and its triggers with it
            with op.batch_alter_table(table) as batch:
                for column in columns:
                    batch.drop_column(column)
            _triggers(table, on=True)
        else:
            for column in columns:
                op.drop_column(table, column)
    op.drop_table("history_head")
