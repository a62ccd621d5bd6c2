"""The scoring core: schemes, clauses, facts, scores, grades and traces.

Nothing in this package imports Flask, SQLAlchemy, durable-rules or a YAML
library; rule files are read by ``service.rulefiles`` and conditions are
matched by whatever implements ``service.domain.scoring.Matcher``.
"""
