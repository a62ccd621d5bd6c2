"""Fuzz the HTTP API against its own OpenAPI document with schemathesis.

    python -m tools.fuzz_api                              # 10 minutes, SQLite
    python -m tools.fuzz_api --seconds 60                 # shorter
    python -m tools.fuzz_api --max-examples 200           # per operation, token and mode
    python -m tools.fuzz_api --database-url postgresql+psycopg://u:p@127.0.0.1/db

What it does, in a temporary directory (nothing is written into the repository and nothing
listens on any port: requests go to the WSGI app in the process):

1. a fresh instance as the tests build it (``tests/apps.py``: Alembic migrations, the shipped
   rules, three units of 宝山区, one user per role with an API token); on PostgreSQL, a schema of
   its own in the given database, dropped at the end;
2. the document served at ``/api/openapi.json`` loaded by schemathesis; for every operation, as the
   admin and as the submitter of 顾村镇, cases generated from the document (valid ones, and in a
   second round invalid ones: wrong types, out-of-range numbers, missing fields), round after
   round until the time is up or ``--max-examples`` per operation, token and mode is reached;
3. every answer checked: no 5xx, the status code documented for the operation, the content type
   documented, and the body valid against the documented schema of that status;
4. a summary: cases, 5xx, schema mismatches, and each distinct failure once with a request that
   reproduces it.

``tests/api/test_fuzz_api.py`` runs the same harness, bounded to about a minute, on SQLite and
PostgreSQL in the test suite. schemathesis 4.32 (the version of the figures in the README).

Measured on the 2-core machine, 600 s each (schemathesis 4.32.5, hypothesis 6.170):
SQLite 23,951 cases, PostgreSQL 27,868 cases; 0 answers 5xx, 0 schema mismatches on either.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

#: the users whose tokens the fuzzer sends: everything, and one unit's submitter (own-unit rules)
AS = ("admin", "submitter")


@dataclass
class Report:
    cases: int = 0
    server_errors: int = 0
    mismatches: int = 0  # answers that contradict the document (status, content type, body)
    statuses: Counter = field(default_factory=Counter)
    operations: Counter = field(default_factory=Counter)  # "GET /api/units" -> cases sent
    failures: dict = field(default_factory=dict)  # (operation, check, status) -> an example

    def add(self, other: Report) -> None:
        self.cases += other.cases
        self.server_errors += other.server_errors
        self.mismatches += other.mismatches
        self.statuses.update(other.statuses)
        self.operations.update(other.operations)
        for key, example in other.failures.items():
            self.failures.setdefault(key, example)

    def summary(self) -> str:
        lines = [
            f"cases: {self.cases}   5xx: {self.server_errors}   schema mismatches: {self.mismatches}",
            "statuses: " + ", ".join(f"{s}×{n}" for s, n in sorted(self.statuses.items())),
        ]
        for (operation, check, status), example in sorted(self.failures.items()):
            lines.append(f"FAIL {operation} [{check}] {status}: {example}")
        return "\n".join(lines)


def _checks():
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    return [
        not_a_server_error,
        status_code_conformance,
        documented_status,
        content_type_conformance,
        response_schema_conformance,
    ]


def documented_status(ctx, response, case):
    """The status is one the operation names, not only covered by the catch-all "default" (which
    stands for an unexpected 500 alone, itself caught by ``not_a_server_error``)."""
    named = set(case.operation.definition.raw.get("responses", {})) - {"default"}
    if str(response.status_code) not in named and response.status_code < 500:
        raise AssertionError(
            f"status {response.status_code} is not documented for this operation "
            f"(documented: {', '.join(sorted(named))})"
        )
    return None


def _describe(case, response) -> str:
    body = response.content[:300].decode("utf-8", "replace")
    sent = case.body if case.body is not None else ""
    return (
        f"{case.method} {case.formatted_path} query={case.query or {}} "
        f"body={str(sent)[:200]!r} -> {response.status_code} {body!r}"
    )


def fuzz_operation(app, operation, token: str, max_examples: int, deadline: float, mode) -> Report:
    """Cases of one operation in one generation mode, sent with ``token``, until ``max_examples``
    or ``deadline`` (time.monotonic())."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis.errors import Unsatisfiable

    report = Report()
    checks = _checks()
    label = f"{operation.method.upper()} {operation.path}"

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        if time.monotonic() > deadline:
            return
        response = case.call(headers={"Authorization": f"Bearer {token}"})
        report.cases += 1
        report.operations[label] += 1
        report.statuses[response.status_code] += 1
        if response.status_code >= 500:
            report.server_errors += 1
        for check in checks:
            try:
                case.validate_response(response, checks=[check])
            except (Exception, BaseExceptionGroup) as failure:  # a failure, or a group of them
                if check.__name__ == "not_a_server_error":
                    key = (label, "5xx", response.status_code)
                else:
                    report.mismatches += 1
                    key = (label, check.__name__, response.status_code)
                text = str(failure).strip().splitlines()
                report.failures.setdefault(
                    key, _describe(case, response) + " | " + " ".join(text[:6])[:400]
                )

    try:
        run()
    except Unsatisfiable:
        pass  # no invalid case of an operation that takes nothing (GET /api/units)
    return report


#: path parameters that name something the fresh instance has: random text almost never names a
#: unit or a scheme, and a fuzzer that only ever meets 404 tests little beyond routing
EXISTING = {
    "code": ["gucun", "dachang"],  # the submitter's own unit, and another one
    "scheme_id": ["gumeilu-2022", "baoshan-2022-b1"],
    "score_id": [1, 2, 3],
    "version": [1, 2, 3],
}


def _aim_at_what_exists(schema) -> None:
    """Half of the cases name existing units, schemes, scores and versions instead of random ones;
    ``compare`` asks for versions that may exist."""
    from hypothesis import strategies as st

    def aimed(values, names: dict):
        """``values`` as generated, or with the parameters of ``names`` drawn from what exists."""
        if not isinstance(values, dict) or not set(names) & set(values):
            return st.just(values)
        known = {k: st.sampled_from(v) for k, v in names.items() if k in values}
        other = {k: st.just(v) for k, v in values.items() if k not in known}
        return st.one_of(st.just(values), st.fixed_dictionaries({**other, **known}))

    def flatmap_path_parameters(context, path_parameters):
        return aimed(path_parameters, EXISTING)

    def flatmap_query(context, query):
        return aimed(query, {"from": EXISTING["version"], "to": EXISTING["version"]})

    schema.hook(flatmap_path_parameters)
    schema.hook(flatmap_query)


def fuzz(app, tokens: dict, max_examples: int = 100, seconds: float = 600.0, out=None) -> Report:
    """Fuzz every operation of ``app``'s API as each user of ``AS``, round after round (valid
    cases, then invalid ones), until ``seconds`` are spent or every operation had
    ``max_examples`` cases per user and mode."""
    import schemathesis
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    _aim_at_what_exists(schema)
    operations = [result.ok() for result in schema.get_all_operations()]
    report = Report()
    deadline = time.monotonic() + seconds
    # rounds of growing size, so that a short run still reaches every operation
    per_round = [n for n in (5, 20, 50, 100, 200, 500, 1000) if n < max_examples] + [max_examples]
    done = 0
    for size in per_round:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for operation in operations:
                for who in AS:
                    if time.monotonic() > deadline:
                        return report
                    report.add(
                        fuzz_operation(app, operation, tokens[who], size - done, deadline, mode)
                    )
        done = size
        if out is not None:
            print(
                f"  {report.cases} cases, {report.server_errors} 5xx, "
                f"{report.mismatches} mismatches",
                file=out,
                flush=True,
            )
    return report


def _instance(directory: Path, database_url: str | None):
    """(app, tokens, cleanup) on a fresh database: SQLite in ``directory``, or a schema of its own
    in the PostgreSQL database ``database_url``."""
    import uuid

    from sqlalchemy import create_engine, make_url, text

    from service.engine.pool import EnginePool
    from tests.apps import make_app

    engine = EnginePool(size=1, deadline=10)
    if not database_url:
        app, tokens = make_app(directory, f"sqlite:///{directory / 'scoring.db'}", engine)
        return app, tokens, engine.close
    schema = f"scoring_fuzz_{uuid.uuid4().hex[:12]}"
    admin = create_engine(database_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(database_url).update_query_dict({"options": f"-csearch_path={schema}"})
    app, tokens = make_app(directory, url.render_as_string(hide_password=False), engine)

    def cleanup():
        app.extensions["scoring"].db.engine.dispose()
        engine.close()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()

    return app, tokens, cleanup


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600, help="time budget (default 600)")
    parser.add_argument(
        "--max-examples",
        type=int,
        default=100_000,
        help="cases per operation, user and mode (default: as many as the time allows)",
    )
    parser.add_argument("--database-url", default=os.environ.get("SCORING_FUZZ_DATABASE_URL"))
    args = parser.parse_args(argv)

    import logging

    import schemathesis

    logging.disable(logging.ERROR)  # the 5xx are counted here, not printed as stack traces
    with tempfile.TemporaryDirectory(prefix="scoring-fuzz-") as directory:
        app, tokens, cleanup = _instance(Path(directory), args.database_url)
        try:
            database = "PostgreSQL" if args.database_url else "SQLite"
            print(
                f"schemathesis {schemathesis.__version__ if hasattr(schemathesis, '__version__') else ''}"
                f" on {database}, as {', '.join(AS)}, {args.seconds:.0f} s",
                flush=True,
            )
            started = time.monotonic()
            report = fuzz(app, tokens, args.max_examples, args.seconds, out=sys.stdout)
            print(f"{time.monotonic() - started:.0f} s")
            print(report.summary())
        finally:
            cleanup()
    return 1 if report.server_errors or report.mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
