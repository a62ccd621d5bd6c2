"""The journal: every entry fits its columns (whatever a caller sends), and it pages through the
whole history with filters."""

from __future__ import annotations

from sqlalchemy import select

from service.db import JournalEntry


def _last_entry(api) -> JournalEntry:
    with api.ctx.db.transaction() as s:
        return s.scalars(select(JournalEntry).order_by(JournalEntry.id.desc()).limit(1)).first()


def test_a_denial_with_a_target_longer_than_its_column_is_journaled_shortened(api):
    """``GET /api/units/<400 × a>``: PostgreSQL used to refuse the journal row (varchar(300)), so the
    denial answered 500 and was not journaled; now the target is cut with a marker and its full
    length kept in the detail."""
    long_code = "a" * 400
    anonymous = api.get(f"/api/units/{long_code}")
    assert anonymous.status_code == 401, anonymous.json
    entry = _last_entry(api)
    assert (entry.outcome, entry.action) == ("denied", "authenticate")
    assert len(entry.target) <= 300 and entry.target.endswith("…（已截断）")
    assert entry.target.startswith(f"GET /api/units/{'a' * 100}")
    assert entry.detail["target_length"] == len(f"GET /api/units/{long_code}")

    submitter = api.get(f"/api/units/{long_code}", "submitter")
    assert submitter.status_code == 403, submitter.json
    entry = _last_entry(api)
    assert (entry.outcome, entry.actor, entry.action) == ("denied", "submitter", "units.read")
    assert len(entry.target) <= 300 and entry.target.endswith("…（已截断）")
    assert entry.detail["target_length"] == len(f"unit:{long_code}")


def test_a_denial_naming_text_no_database_can_keep_is_journaled(api):
    """A NUL or a lone surrogate in the request line is written escaped, not refused by PostgreSQL."""
    response = api.get("/api/units/ab%00cd")
    assert response.status_code == 401, response.json
    entry = _last_entry(api)
    assert entry.outcome == "denied" and entry.target == "GET /api/units/ab\\x00cd"
