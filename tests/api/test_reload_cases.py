"""A reload runs the cases of new versions only (issue 12): a version whose cases passed once
(journaled, ``rules.tested``) passes again, the same bytes through the same program and engine,
so a reload of unchanged rules runs no case and a changed scheme runs its own.  After an upgrade
of the program (``service.build.PROGRAM``) or of the engine (the matcher's ``name``) every
version's cases run once again, so a code change that breaks a shipped scheme's case is caught."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from service import build, casebook, operations
from service.db import JournalEntry
from service.engine.oracle import OracleMatcher

from .shapes import assert_error

OTHER_PROGRAM = "0" * 64  # the fingerprint of some other release of the scoring code


@pytest.fixture
def ran(monkeypatch) -> list:
    """The ids of the schemes whose cases run, in order."""
    ran: list = []
    run_cases = casebook.run_cases

    def counted(scheme, matcher):
        ran.append(scheme.id)
        return run_cases(scheme, matcher)

    monkeypatch.setattr(casebook, "run_cases", counted)
    return ran


def passes(api) -> list[dict]:
    """The ``rules.tested`` entries' details, oldest first."""
    with api.ctx.db.engine.connect() as connection:
        return list(
            connection.execute(
                select(JournalEntry.detail)
                .where(JournalEntry.action == operations.TESTED)
                .order_by(JournalEntry.id)
            ).scalars()
        )


def test_reload_of_unchanged_rules_runs_no_case_and_a_changed_scheme_only_its_own(api_on_copy, ran):
    """A version's cases passed once (journaled) pass again: the same bytes, the same engine."""
    api = api_on_copy
    assert api.post("/api/rules/reload", "editor").json["changes"] == {}
    assert ran == []
    with (api.rules_dir / "minimal" / "clauses" / "01-rate.yaml").open("a", encoding="utf-8") as f:
        f.write("# 修订\n")
    reloaded = api.post("/api/rules/reload", "editor")
    assert list(reloaded.json["changes"]) == ["minimal"]
    assert ran == ["minimal"]


def test_a_pass_is_remembered_with_the_program_and_the_engine_it_passed_under(api_on_copy):
    [first] = passes(api_on_copy)  # the start ran the cases
    assert first == {
        "cases": first["cases"],
        "program": build.PROGRAM,
        "engine": api_on_copy.ctx.engine.name,
    }
    assert first["cases"] > 0 and len(build.PROGRAM) == 64


def test_after_an_upgrade_of_the_program_a_reload_runs_the_cases_again_once(
    api_on_copy, ran, monkeypatch
):
    api = api_on_copy
    # new scoring code (a restart computes its fingerprint): the old pass does not count
    monkeypatch.setattr(build, "PROGRAM", OTHER_PROGRAM)
    reloaded = api.post("/api/rules/reload", "editor")
    assert reloaded.status_code == 200, reloaded.json
    assert reloaded.json["changes"] == {}  # the same version, tested again, served as it was
    assert ran == ["minimal"]
    # and remembered under the new program: the next reload runs nothing
    assert api.post("/api/rules/reload", "editor").status_code == 200
    assert ran == ["minimal"]
    assert [d["program"] for d in passes(api)] == [build.fingerprint(), OTHER_PROGRAM]


def test_after_an_upgrade_of_the_engine_a_reload_runs_the_cases_again(api_on_copy, ran):
    api = api_on_copy
    # another matcher (the oracle: the same answers, another name) runs every case once again
    api.ctx.engine, pool = OracleMatcher(), api.ctx.engine
    try:
        assert api.post("/api/rules/reload", "editor").status_code == 200
        assert ran == ["minimal"]
        assert api.post("/api/rules/reload", "editor").status_code == 200
        assert ran == ["minimal"]
        assert [d["engine"] for d in passes(api)] == [pool.name, "oracle"]
    finally:
        api.ctx.engine = pool


class _MatchesNothing(OracleMatcher):
    """An engine upgrade that broke matching: no rule ever fires."""

    def match(self, scheme, batch):
        return [set() for _ in batch]


def test_an_engine_that_breaks_a_passed_versions_cases_is_caught_at_reload(api_on_copy):
    api = api_on_copy
    before = api.get("/api/schemes/minimal", "auditor").json["version"]
    api.ctx.engine, pool = _MatchesNothing(), api.ctx.engine
    try:
        # under the old engine's name its pass would count (the journal trusts the name) ...
        _MatchesNothing.name = pool.name
        assert api.post("/api/rules/reload", "editor").status_code == 200
        # ... under its own, the cases run and fail: refused, the version in force keeps serving
        _MatchesNothing.name = "durable-rules 9.9.9"
        refused = assert_error(api.post("/api/rules/reload", "editor"), 422, "failing_tests")
        assert "个测试用例未通过" in refused["message"]
    finally:
        api.ctx.engine = pool
    assert api.get("/api/schemes/minimal", "auditor").json["version"] == before


def test_a_pass_journaled_before_programs_were_remembered_does_not_count(api_on_copy):
    """Entries written before this change say no program or engine: they are kept (the journal is
    append-only) and simply not passes any more, so the first start after it runs every case."""
    api = api_on_copy
    served = api.get("/api/schemes/minimal", "auditor").json["version"]
    with api.ctx.db.transaction() as s:
        operations.journal(
            s,
            operations.STARTUP,
            operations.TESTED,
            "scheme:minimal/version:" + "f" * 64,
            "ok",
            cases=3,
        )
    assert operations.passed_versions(api.ctx) == {served}
