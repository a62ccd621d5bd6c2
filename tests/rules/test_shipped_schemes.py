"""Every shipped scheme loads, adds up, passes its own cases, and scores its example units.

The cases live in the rule files (OpenFisca style); this module runs each one
as a pytest test, through durable-rules and through the oracle.
"""

import pytest

from service.casebook import run_cases
from service.cli import read_facts_file
from service.domain.grading import rank_units
from service.domain.scoring import score_units
from service.domain.trace import render, to_data
from service.rulefiles.loader import find_schemes, load_all

from ..conftest import ROOT, RULES

SCHEMES = load_all(RULES)
EXAMPLES = ROOT / "examples"
SEED_SCHEMES = {
    "gumeilu-2022",
    "zhenxing-2010",
    "baoshan-2022-b1",
    "baoshan-2022-c1",
    "shuangtaizi-2016",
    "zhuanqiao-2018",
}


def test_all_five_seed_documents_are_encoded():
    assert set(SCHEMES) == SEED_SCHEMES
    documents = {s.source.document for s in SCHEMES.values()}
    assert {d[:3] for d in documents} == {"000", "001", "002", "003", "004"}


@pytest.mark.parametrize("scheme_id", sorted(SCHEMES))
@pytest.mark.parametrize("matcher_name", ["engine", "oracle"])
def test_embedded_cases(scheme_id, matcher_name, request):
    scheme = SCHEMES[scheme_id]
    cases = run_cases(scheme, request.getfixturevalue(matcher_name))
    assert len(cases) >= len(scheme.clauses)  # every clause carries cases
    failures = [f"{c.where} {c.name}: {'; '.join(c.problems)}" for c in cases if not c.ok]
    assert failures == []


@pytest.mark.parametrize("scheme_id", sorted(SCHEMES))
def test_every_clause_has_cases_and_source_text(scheme_id):
    scheme = SCHEMES[scheme_id]
    for clause in scheme.clauses.values():
        assert clause.tests, f"{clause.file} has no test cases"
        assert clause.source.text.strip(), f"{clause.file} has no source text"


@pytest.mark.parametrize("scheme_id", sorted(SCHEMES))
def test_example_units_score_with_a_full_trace(scheme_id, engine, oracle):
    scheme = SCHEMES[scheme_id]
    units = read_facts_file(EXAMPLES / f"{scheme_id}.yaml")
    results = score_units(scheme, units, engine, engine.name)
    expected = score_units(scheme, units, oracle, oracle.name)
    assert [r.total for r in results] == [r.total for r in expected]
    entries = rank_units(scheme, results)
    for result in results:
        assert result.version == scheme.version
        assert len(result.clauses) == len(scheme.clauses)
        text = render(result)
        for clause in result.clauses:
            assert clause.explanation and f"{clause.id} {clause.title}" in text
    assert len(entries) == len(units)


def test_one_scheme_folder_per_scheme():
    assert len(find_schemes(RULES)) == len(SCHEMES)


@pytest.mark.parametrize("scheme_id", sorted(SCHEMES))
def test_sentences_written_at_once_or_when_read_are_the_same(scheme_id, oracle):
    """The API writes every sentence while scoring (explain=True); batch scoring writes one only
    when it is read.  Both must give the same trace, on the example units and every clause case."""
    scheme = SCHEMES[scheme_id]
    fact_sets = list(read_facts_file(EXAMPLES / f"{scheme_id}.yaml").values())
    fact_sets += [case.facts for clause in scheme.clauses.values() for case in clause.tests]
    for facts in fact_sets:
        when_read = score_units(scheme, {"甲": facts}, oracle, oracle.name)[0]
        at_once = score_units(scheme, {"甲": facts}, oracle, oracle.name, explain=True)[0]
        assert to_data(at_once) == to_data(when_read)
