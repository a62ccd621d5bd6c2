"""A reload runs the cases of new versions only (issue 12): a version whose cases passed once
(journaled, ``rules.tested``) passes again, the same bytes through the same engine, so a reload
of unchanged rules runs no case and a changed scheme runs its own."""

from __future__ import annotations

from service import casebook


def test_reload_of_unchanged_rules_runs_no_case_and_a_changed_scheme_only_its_own(
    api_on_copy, monkeypatch
):
    """A version's cases passed once (journaled) pass again: the same bytes, the same engine."""
    ran: list = []
    run_cases = casebook.run_cases

    def counted(scheme, matcher):
        ran.append(scheme.id)
        return run_cases(scheme, matcher)

    monkeypatch.setattr(casebook, "run_cases", counted)
    api = api_on_copy
    assert api.post("/api/rules/reload", "editor").json["changes"] == {}
    assert ran == []
    with (api.rules_dir / "minimal" / "clauses" / "01-rate.yaml").open("a", encoding="utf-8") as f:
        f.write("# 修订\n")
    reloaded = api.post("/api/rules/reload", "editor")
    assert list(reloaded.json["changes"]) == ["minimal"]
    assert ran == ["minimal"]
