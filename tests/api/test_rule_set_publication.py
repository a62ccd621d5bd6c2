"""Every way a rule set is published writes the same two things: the next ``rule_sets`` row
(following the newest, by whom) and its ``rules.publish`` journal entry (the versions each
changed scheme had and has).  A start and a reload publish what a worker serves
(``operations.publish_rules``), an approval one scheme's new version (``operations.publish_scheme``
through ``releases.approve``); both share that writing.  Pinned here row by row and entry by entry,
on SQLite and PostgreSQL, so that the sharing changes neither."""

from __future__ import annotations

from sqlalchemy import select

from service import operations
from service.db import RuleSet
from service.rulefiles.loader import version_of

from .test_releases import (  # noqa: F401 -- ``own`` is a fixture
    GUMEILU,
    _new_gumeilu_2022,
    actor,
    copy_2023,
    journaled,
    own,
    proposed,
)


def _rule_sets(api) -> list:
    with api.ctx.db.transaction() as s:
        return [
            (row.id, row.follows, row.schemes, row.actor)
            for row in s.scalars(select(RuleSet).order_by(RuleSet.id))
        ]


def _publications(api) -> list:
    return [
        (e.actor, e.role, e.target, e.outcome, e.detail) for e in journaled(api, "rules.publish")
    ]


def test_a_start_an_approval_and_a_reload_each_write_the_next_row_and_its_entry(own):  # noqa: F811
    api = own
    v2022 = version_of(GUMEILU)
    g2022 = {"version": v2022, "folder": "minhang-gumeilu/2022"}
    assert _rule_sets(api) == [(1, 0, {"gumeilu-2022": g2022}, "（启动）")]
    assert _publications(api) == [
        ("（启动）", "system", "rule_set:1", "ok", {"changes": {"gumeilu-2022": [None, v2022]}})
    ]

    # an approval: the newest row with the scheme's entry added (publish_scheme)
    draft = copy_2023(api)
    new = operations.publish_rules(api.ctx)  # nothing new served: no row, no entry
    assert new == 1 and len(_rule_sets(api)) == 1
    done = api_approve(api, draft, 2023)
    g2023 = {"version": done.version, "folder": "minhang-gumeilu/2023"}
    assert _rule_sets(api)[1:] == [(2, 1, {"gumeilu-2022": g2022, "gumeilu-2023": g2023}, "admin")]
    assert _publications(api)[1:] == [
        ("admin", "admin", "rule_set:2", "ok", {"changes": {"gumeilu-2023": [None, done.version]}})
    ]

    # an approval replacing a served scheme's version
    edited = _new_gumeilu_2022(api)
    again = api_approve(api, edited, 2027)
    g2022b = {"version": again.version, "folder": "minhang-gumeilu/2022"}
    assert _rule_sets(api)[2:] == [(3, 2, {"gumeilu-2022": g2022b, "gumeilu-2023": g2023}, "admin")]
    assert _publications(api)[2:] == [
        (
            "admin",
            "admin",
            "rule_set:3",
            "ok",
            {"changes": {"gumeilu-2022": [v2022, again.version]}},
        )
    ]

    # a reload that serves new disk content (publish_rules, by the one who reloaded)
    clause = api.rules_dir / "minhang-gumeilu" / "2022" / "clauses" / "02-meeting-and-plan.yaml"
    clause.write_text(clause.read_text(encoding="utf-8") + "# 磁盘上的新改动\n", encoding="utf-8")
    v_disk = version_of(api.rules_dir / "minhang-gumeilu" / "2022")
    operations.reload_rules(api.ctx, actor(api, "editor"))
    g2022c = {"version": v_disk, "folder": "minhang-gumeilu/2022"}
    assert _rule_sets(api)[3:] == [
        (4, 3, {"gumeilu-2022": g2022c, "gumeilu-2023": g2023}, "editor")
    ]
    assert _publications(api)[3:] == [
        (
            "editor",
            "editor",
            "rule_set:4",
            "ok",
            {"changes": {"gumeilu-2022": [again.version, v_disk]}},
        )
    ]

    # a reload with nothing new: the same row, nothing written
    assert operations.reload_rules(api.ctx, actor(api, "editor"))["changes"] == {}
    assert len(_rule_sets(api)) == 4 and len(_publications(api)) == 4

    # a worker serving one scheme fewer: the row without it, its version going to nothing
    api.ctx.registry.swap({"gumeilu-2022": api.ctx.registry.get("gumeilu-2022")})
    assert operations.publish_rules(api.ctx, actor(api, "admin")) == 5
    assert _rule_sets(api)[4:] == [(5, 4, {"gumeilu-2022": g2022c}, "admin")]
    assert _publications(api)[4:] == [
        ("admin", "admin", "rule_set:5", "ok", {"changes": {"gumeilu-2023": [done.version, None]}})
    ]
    assert api.ctx.registry.generation == 5


def api_approve(api, draft, year: int):
    from service import releases

    return releases.approve(api.ctx, actor(api, "admin"), draft.id, proposed(api, draft).lock, year)
