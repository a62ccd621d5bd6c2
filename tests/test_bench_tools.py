"""The benchmark's zen-engine graph generator (tools/zen_graph.py) gives this project's totals.

The benchmark times zen-engine on a JDM graph generated from a loaded scheme; the figures mean
something only if the graph scores alike.  These tests run the generator's own equality check on
small schemes (every example, every case in the rule files, random fact sets) and show that the
check catches a graph that scores differently.  Skipped when zen-engine (the ``bench`` extra) is
not installed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.domain.facts import validate_facts
from service.domain.scoring import score_units
from service.engine.oracle import OracleMatcher
from service.rulefiles.loader import load_scheme
from tools import zen_graph as zg

zen = pytest.importorskip("zen")

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"


def _checked(scheme, graph, randoms=120):
    units = zg.fact_sets(scheme, ROOT / "examples", randoms=randoms)
    valid = {u: validate_facts(scheme, f) for u, f in units.items()}
    ours = {
        u: r.total for u, r in zip(valid, score_units(scheme, valid, OracleMatcher(), "oracle"))
    }
    decision = zen.ZenEngine().create_decision(json.dumps(graph, ensure_ascii=False))
    return zg.check_equal(scheme, units, ours, decision, zg.Floor(scheme), zg.body), units, ours


@pytest.mark.parametrize(
    "folder",
    [
        RULES / "jiangsu-zhenxing" / "2010",  # steps, per_unit, clause vetoes
        RULES / "minhang-gumeilu" / "2022",  # scaled, assessed, bonus and deduction categories
        ROOT / "tests" / "fixtures" / "clause_bonus",  # a clause's own capped bonus
    ],
    ids=lambda p: p.parent.name + "/" + p.name,
)
def test_zen_graph_and_floor_give_our_totals(folder):
    scheme = load_scheme(folder, folder.parent)
    checked, units, ours = _checked(scheme, zg.graph(scheme))
    assert checked == len(units) >= 120
    # the fact sets reach more than one total, and some units are incomplete (a fact left out)
    assert len(set(ours.values())) > 10


def test_a_graph_that_scores_differently_stops_the_check_naming_the_unit():
    folder = RULES / "jiangsu-zhenxing" / "2010"
    scheme = load_scheme(folder, folder.parent)
    graph = zg.graph(scheme)
    clause = next(n for n in graph["nodes"] if n["type"] == "expressionNode")
    points = next(e for e in clause["content"]["expressions"] if e["key"].endswith(".points"))
    points["value"] = f"({points['value']}) + 1"
    with pytest.raises(zg.Mismatch) as caught:
        _checked(scheme, graph, randoms=5)
    assert caught.value.unit in str(caught.value)
    assert caught.value.theirs == caught.value.ours + 1


def test_a_kind_without_a_translation_is_skipped_with_the_reason():
    folder = RULES / "baoshan" / "2022-c1"
    scheme = load_scheme(folder, folder.parent)
    with pytest.raises(zg.Unsupported, match="maturity"):
        zg.graph(scheme)
