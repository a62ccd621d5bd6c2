"""Year on year (issue 8, mechanism 4): "与上年度相比…每下降一个百分点扣1分".

The previous year's value is a fact of its own (``previous_year: quality_rate``); the fixture
scheme tests/fixtures/year_on_year carries the boundary cases, run here through the oracle and
durable-rules.  Where the value comes from (the previous round, or the unit) is the service's
business: tests/api/test_year_on_year.py.
"""

from service.casebook import run_cases
from service.rulefiles.loader import load_scheme

from ..conftest import FIXTURES

YEAR_ON_YEAR = FIXTURES / "year_on_year"


def test_the_fixture_cases_pass_on_both_matchers(oracle, engine):
    scheme = load_scheme(YEAR_ON_YEAR)
    assert scheme.facts["quality_rate_last_year"].previous_year == "quality_rate"
    assert scheme.facts["quality_rate"].previous_year == ""
    assert sum(len(c.tests) for c in scheme.clauses.values()) == 7
    for matcher in (oracle, engine):
        results = run_cases(scheme, matcher)
        assert results and all(r.ok for r in results), [r for r in results if not r.ok]
