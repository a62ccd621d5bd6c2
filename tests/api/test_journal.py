"""The journal: every entry fits its columns (whatever a caller sends), and it pages through the
whole history with filters."""

from __future__ import annotations

from urllib.parse import quote

import pytest
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


def _fill(api, n: int) -> None:
    """``n`` journal entries by several actors about two units (one transaction: quick)."""
    from service.access import Actor, journal

    people = [Actor(0, "reviewer", "reviewer", None), Actor(0, "auditor", "auditor", None)]
    with api.ctx.db.transaction() as s:
        for i in range(n):
            unit = ("gucun", "dachang")[i % 2]
            journal(
                s, people[i % 2 == 0 and i % 3 == 0], "submissions.read",
                f"unit:{unit}/scheme:gumeilu-2022", "ok" if i % 5 else "denied", n=i,
            )  # fmt: skip


def test_the_journal_pages_through_the_whole_history(api):
    """Beyond the newest 500 (all the journal used to show): keyset pages, each naming the next,
    the pages together exactly the journal, newest first, none repeated."""
    _fill(api, 540)
    with api.ctx.db.transaction() as s:
        everything = list(s.scalars(select(JournalEntry.id).order_by(JournalEntry.id.desc())))
    assert len(everything) > 540

    first = api.get("/api/journal", "auditor")
    assert first.status_code == 200 and len(first.json) == 500  # the default page, as before
    seen, url, pages = [], "/api/journal?limit=200", 0
    while url:
        page = api.get(url, "auditor")
        assert page.status_code == 200, page.json
        seen += [e["id"] for e in page.json]
        pages += 1
        cursor = page.headers.get("X-Next-Cursor")
        if cursor is None:
            assert "Link" not in page.headers
            url = None
        else:
            assert (
                page.headers["Link"].endswith('; rel="next"')
                and f"cursor={cursor}" in page.headers["Link"]
            )
            url = page.headers["Link"][1 : page.headers["Link"].index(">")]
    # the reads of the journal itself are not journaled: the pages are the journal as it was
    assert seen == everything and pages == -(-len(everything) // 200)


def test_the_journal_filters(api):
    _fill(api, 40)
    everything = []
    url = "/api/journal?limit=1000"
    everything = api.get(url, "admin").json

    def ids(query):
        response = api.get(f"/api/journal?{query}", "admin")
        assert response.status_code == 200, response.json
        return [e["id"] for e in response.json]

    def expected(keep):
        return [e["id"] for e in everything if keep(e)]

    assert ids("actor=auditor") == expected(lambda e: e["actor"] == "auditor")
    assert ids("role=reviewer") == expected(lambda e: e["role"] == "reviewer")
    assert ids("unit=dachang") == expected(lambda e: "unit:dachang" in e["target"])
    assert ids("unit=dachang&outcome=denied") == expected(
        lambda e: "unit:dachang" in e["target"] and e["outcome"] == "denied"
    )
    assert ids("scheme=gumeilu-2022&action=submissions.read") == expected(
        lambda e: "scheme:gumeilu-2022" in e["target"] and e["action"] == "submissions.read"
    )
    assert ids("action=rules.publish") == expected(lambda e: e["action"] == "rules.publish")
    assert len(ids("unit=dachang")) == 20 and ids("actor=nobody") == []
    # a time range: since included, until not; a time without a zone is UTC
    middle = sorted(e["at"] for e in everything)[len(everything) // 2]
    after = ids(f"since={quote(middle)}")
    before = ids(f"until={quote(middle)}")
    assert sorted(after + before, reverse=True) == [e["id"] for e in everything]
    assert after and before
    assert ids("since=2099-01-01T00:00:00") == [] and ids("until=2000-01-01") == []


@pytest.mark.parametrize(
    "query, field",
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=x", "limit"),
        ("cursor=abc", "cursor"),
        ("cursor=0", "cursor"),
        ("outcome=maybe", "outcome"),
        ("since=yesterday", "since"),
        ("actor=a%00b", "actor"),
    ],
)
def test_bad_journal_queries_are_refused_by_field(api, query, field):
    response = api.get(f"/api/journal?{query}", "admin")
    assert response.status_code == 422, response.json
    assert any(field in name for name in response.json["error"]["fields"]), response.json


def test_the_journal_pages_and_filters_are_documented(api):
    spec = api.get("/api/openapi.json").json
    journal = spec["paths"]["/api/journal"]["get"]
    names = {p["name"] for p in journal["parameters"]}
    assert {
        "limit",
        "cursor",
        "actor",
        "role",
        "unit",
        "scheme",
        "action",
        "outcome",
        "since",
        "until",
    } <= names
    assert "X-Next-Cursor" in journal["responses"]["200"]["headers"]
    assert "/api/journal/verify" in spec["paths"]


def _rows_after(api, last: int) -> list[tuple]:
    with api.ctx.db.transaction() as s:
        return [
            (e.actor, e.action, e.unit, e.outcome)
            for e in s.scalars(
                select(JournalEntry).where(JournalEntry.id > last).order_by(JournalEntry.id)
            )
        ]


def _last_id(api) -> int:
    return _last_entry(api).id


def test_reads_of_a_units_data_by_others_are_journaled_once_per_request(api):
    """A reviewer, admin or auditor reading a unit's submissions, history, comparison or scores
    leaves one row per request; the unit's own submitter reading their own unit leaves none."""
    base = "/api/units/gucun/schemes/gumeilu-2022"
    facts = {"leader_evaluation_score": 4}
    assert (
        api.post(
            f"{base}/submissions", "submitter", json={"role": "self", "facts": facts}
        ).status_code
        == 201
    )
    score = api.post(f"{base}/scores", "submitter", json={}).json["id"]

    last = _last_id(api)
    for path in (
        f"{base}/submissions",
        f"{base}/submissions/latest",
        f"{base}/scores",
        f"/api/scores/{score}",
    ):
        assert api.get(path, "submitter").status_code == 200
    assert _rows_after(api, last) == []  # their own unit: not journaled

    reads = [
        ("reviewer", "GET", f"{base}/submissions", "submissions.read"),
        ("auditor", "GET", f"{base}/submissions/latest", "submissions.read"),
        ("admin", "GET", f"{base}/submissions/1", "submissions.read"),
        ("auditor", "GET", f"{base}/compare?from=1&to=1", "submissions.read"),
        ("reviewer", "GET", f"{base}/scores", "scores.read"),
        ("auditor", "GET", f"/api/scores/{score}", "scores.read"),
        ("auditor", "POST", f"/api/scores/{score}/replay", "scores.replay"),
    ]
    for who, method, path, action in reads:
        last = _last_id(api)
        response = api.call(method, path, who)
        assert response.status_code == 200, (path, response.json)
        assert _rows_after(api, last) == [(who, action, "gucun", "ok")], path

    # nothing read, nothing journaled: an unknown score, a unit without that submission
    last = _last_id(api)
    assert api.get("/api/scores/999999", "auditor").status_code == 404
    assert (
        api.get("/api/units/nowhere/schemes/gumeilu-2022/submissions", "auditor").status_code == 404
    )
    assert _rows_after(api, last) == []

    # the admin page of a unit reads its facts and scores for every scheme: one row
    from ..admin.conftest import sign_in

    client = api.app.test_client()
    assert sign_in(client, "auditor").status_code == 302
    last = _last_id(api)
    assert client.get("/admin/units/gucun").status_code == 200
    assert _rows_after(api, last) == [("auditor", "submissions.read", "gucun", "ok")]
    # and the filter finds who read gucun's data
    readers = api.get("/api/journal?unit=gucun&outcome=ok&action=scores.read", "admin").json
    assert [(e["actor"], e["target"]) for e in readers] == [
        ("auditor", f"unit:gucun/scheme:gumeilu-2022/score:{score}"),
        ("reviewer", "unit:gucun/scheme:gumeilu-2022"),
    ]
