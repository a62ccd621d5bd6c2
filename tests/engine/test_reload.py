"""A changed rule set loads while the old one serves; the old one is released."""

import re
import shutil
import threading
from decimal import Decimal

import pytest

from service.domain.scoring import score_unit
from service.registry import Registry
from service.rulefiles import RuleSetError

from ..conftest import MINIMAL
from ..unit.test_scoring import FULL


@pytest.fixture()
def rules_dir(tmp_path):
    target = tmp_path / "rules" / "minimal"
    shutil.copytree(MINIMAL, target)
    return tmp_path / "rules"


def _set_award_points(rules_dir, points):
    path = rules_dir / "minimal" / "clauses" / "06-awards.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r"each: \d+,", f"each: {points},", text, count=1), encoding="utf-8")


def test_reload_swaps_versions_and_releases_the_old(rules_dir, fresh_engine):
    registry = Registry(rules_dir, engine=fresh_engine)
    registry.reload()
    old = registry.get("minimal")
    facts = dict(FULL, awards=1)
    assert score_unit(old, "甲", facts, fresh_engine, "e").total == Decimal(21)

    _set_award_points(rules_dir, 2)
    changes = registry.reload()
    new = registry.get("minimal")
    assert changes == {"minimal": (old.version, new.version)} and new.version != old.version
    assert score_unit(new, "甲", facts, fresh_engine, "e").total == Decimal(22)
    # a call already holding the old version still scores by it
    assert score_unit(old, "甲", facts, fresh_engine, "e").total == Decimal(21)
    assert registry.by_version(old.version) is old  # kept for replay
    stats = fresh_engine.stats()[0]
    # the old version was re-created for that late call; the next call releases it again
    score_unit(new, "甲", facts, fresh_engine, "e")
    stats = fresh_engine.stats()[0]
    assert stats["rulesets"] == [new.program_name]
    assert stats["released"] >= 1


def test_a_broken_file_leaves_the_current_version_serving(rules_dir, fresh_engine):
    registry = Registry(rules_dir, engine=fresh_engine)
    registry.reload()
    serving = registry.get("minimal")
    path = rules_dir / "minimal" / "clauses" / "06-awards.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("each: 1,", "each: one,"), encoding="utf-8"
    )
    with pytest.raises(RuleSetError) as err:
        registry.reload()
    assert [str(e) for e in err.value.errors] == [
        "minimal/clauses/06-awards.yaml:9:51: each：应为数值，这里是“one”"
    ]
    assert registry.get("minimal") is serving
    assert score_unit(serving, "甲", FULL, fresh_engine, "e").total == Decimal(20)


def test_reloads_during_concurrent_scoring(rules_dir, engine):
    registry = Registry(rules_dir, engine=engine)
    registry.reload()
    first = registry.get("minimal").program_name
    errors, done = [], threading.Event()

    def score_loop():
        while not done.is_set():
            scheme = registry.get("minimal")
            try:
                result = score_unit(scheme, "甲", dict(FULL, awards=1), engine, "e")
                assert result.total in (Decimal(21), Decimal(22))
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

    threads = [threading.Thread(target=score_loop) for _ in range(4)]
    for t in threads:
        t.start()
    versions = set()
    for i in range(30):
        _set_award_points(rules_dir, i + 2)  # 30 distinct versions
        registry.reload()
        versions.add(registry.get("minimal").program_name)
    done.set()
    for t in threads:
        t.join()
    assert errors == [] and len(versions) == 30
    current = registry.get("minimal").program_name
    retired = (versions | {first}) - {current}
    for stats in engine.stats():
        # every version this test replaced is released in every worker (the shared pool
        # may hold other tests' versions of the fixture scheme; those are not ours to judge)
        assert not set(stats["rulesets"]) & retired


def test_a_version_put_back_in_force_stays_loaded(rules_dir, fresh_engine):
    """Back to the first version (a reload of reverted files, or another worker's rule set): it is
    served again, so it is no longer released after each call and compiled again before the next."""
    registry = Registry(rules_dir, engine=fresh_engine)
    registry.reload()
    first = registry.get("minimal")
    score_unit(first, "甲", FULL, fresh_engine, "e")
    _set_award_points(rules_dir, 2)
    registry.reload()
    assert fresh_engine.stats()[0]["rulesets"] == []  # the first version was released
    _set_award_points(rules_dir, 1)
    changes = registry.reload()
    assert changes == {"minimal": (changes["minimal"][0], first.version)}
    assert registry.get("minimal") is first  # the very object, already compiled
    released = fresh_engine.stats()[0]["released"]
    for _ in range(3):
        assert score_unit(registry.get("minimal"), "甲", FULL, fresh_engine, "e").total == Decimal(
            20
        )
    stats = fresh_engine.stats()[0]
    assert stats["rulesets"] == [first.program_name] and stats["released"] == released
