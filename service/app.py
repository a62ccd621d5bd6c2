"""The application factory: ``create_app()`` builds the Flask application.

Configuration from the environment (``service.config``), the database adapter, the rules
registry (loaded all-or-nothing at start), the contained durable-rules engine (one pool per
process, started on first use so it survives gunicorn's fork), the API blueprints and the admin
pages, one JSON error shape, and the CLI. This module is the composition root: it imports the
adapters (``service.api``, ``admin``); nothing imports it but ``wsgi.py``, tools and tests.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading

from flask import Flask


class LazyEnginePool:
    """The engine pool of this process, started on first use (after gunicorn forks)."""

    def __init__(self, workers: int, deadline: float):
        self.workers, self.deadline = workers, deadline
        self._pool, self._pid, self._lock = None, None, threading.Lock()
        self._retired: list = []

    @property
    def pool(self):
        if self._pool is None or self._pid != os.getpid():
            with self._lock:
                if self._pool is None or self._pid != os.getpid():
                    from service.engine.pool import EnginePool

                    self._pool = EnginePool(size=self.workers, deadline=self.deadline)
                    self._pid = os.getpid()
                    for key in self._retired:
                        self._pool.retire(key)
        return self._pool

    @property
    def name(self) -> str:
        from service.engine.pool import EnginePool

        return EnginePool.name

    def match(self, scheme, batch):
        return self.pool.match(scheme, batch)

    def start(self, scheme, batch):
        return self.pool.start(scheme, batch)

    def retire(self, key: str) -> None:
        self._retired.append(key)
        if self._pool is not None and self._pid == os.getpid():
            self._pool.retire(key)

    def serve(self, key: str) -> None:
        self._retired = [k for k in self._retired if k != key]
        if self._pool is not None and self._pid == os.getpid():
            self._pool.serve(key)

    def close(self) -> None:
        if self._pool is not None and self._pid == os.getpid():
            self._pool.close()
            self._pool = None


def create_app(settings=None, engine=None) -> Flask:
    from flask_smorest import Api
    from sqlalchemy import inspect

    from admin import init_app as init_admin_pages

    from . import errors
    from .access import SignInLimits, stored_secret
    from .api import admin as admin_api
    from .api import appeals as appeals_api
    from .api import audit as audit_api
    from .api import auth as auth_api
    from .api import drafts as drafts_api
    from .api import evidence as evidence_api
    from .api import jobs as jobs_api
    from .api import panel as panel_api
    from .api import rounds as rounds_api
    from .api import schemes as schemes_api
    from .api import units as units_api
    from .casebook import FailingCases
    from .config import from_environment
    from .db import Database
    from .evidence import EvidenceStore
    from .jsonio import ExactJSON
    from .operations import Context, publish_rules, serve_rules_at_start, sync_rules
    from .registry import Registry
    from .rulefiles import RuleSetError

    settings = settings or from_environment()
    app = Flask(__name__, instance_path=str(settings.instance_dir), instance_relative_config=False)
    app.json = ExactJSON(app)
    if settings.proxy_hops:  # behind a load balancer: the client address is the one it saw
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops
        )
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        API_TITLE="评分引擎 API",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        PROPAGATE_EXCEPTIONS=False,
        SCORING_SETTINGS=settings,
    )
    logging.basicConfig(level=logging.INFO)
    os.makedirs(settings.instance_dir, exist_ok=True)

    engine = engine or LazyEnginePool(settings.engine_workers, settings.engine_deadline)
    registry = Registry(settings.rules_dir, engine=engine)
    db = Database(settings.database_url)
    ctx = Context(
        db=db,
        registry=registry,
        engine=engine,
        rules_check_seconds=settings.rules_check_seconds,
        pause_in_submit=float(os.environ.get("SCORING_TEST_PAUSE_IN_SUBMIT", "0")),
        sign_in=SignInLimits(
            window_seconds=settings.sign_in_window_seconds,
            per_account=settings.sign_in_failures_per_account,
            per_address=settings.sign_in_failures_per_address,
            denial_window_seconds=settings.denial_window_seconds,
        ),
        token_days=settings.token_days,
    )
    app.extensions["scoring"] = ctx
    app.extensions["evidence"] = EvidenceStore(settings.evidence_max_bytes, settings.evidence_dir)
    tables = inspect(db.engine)
    migrated = tables.has_table("rule_sets")  # not yet when the app is built for db-upgrade
    # the key that signs sessions and CSRF tokens: SCORING_SECRET_KEY, or else the one made once
    # and kept in the database, the same for every worker of every host (no instance folder to
    # share); an app built before the migrations (for db-upgrade) serves nothing and signs nothing
    if settings.secret_key:
        app.config["SECRET_KEY"] = settings.secret_key
    elif tables.has_table("service_secrets"):
        app.config["SECRET_KEY"] = stored_secret(db)
    else:
        app.config["SECRET_KEY"] = secrets.token_hex(32)
    try:
        # a start publishes the rules directory, as a reload does, checked as a reload checks it:
        # loaded strictly, then the test cases of every version not journaled as passed (run
        # through this worker's engine, which keeps them compiled to serve); an app built before
        # the migrations (for db-upgrade) only loads: it serves nothing, and has no journal
        if migrated:
            serve_rules_at_start(ctx)
        else:
            registry.reload()
    except (RuleSetError, FailingCases) as err:
        # a broken directory, or one failing its own test cases, stops a first start with
        # file:line errors; a worker that gunicorn restarts later keeps serving the rule set in
        # force, which the others serve too
        if migrated:
            sync_rules(ctx, force=True)
        if registry.generation is None:  # no rule set in force to serve instead
            raise
        what = "规则目录有错误" if isinstance(err, RuleSetError) else "规则目录的测试用例未通过"
        logging.getLogger(__name__).error("%s，未加载；继续使用当前发布的规则：\n%s", what, err)
    else:
        if migrated:
            publish_rules(ctx)
    if migrated and settings.evidence_dir is not None:
        from .evidence import sweep

        # files in the evidence directory that an upload killed mid-transaction left unrecorded
        for sha256 in sweep(ctx, app.extensions["evidence"]):
            logging.getLogger(__name__).warning("佐证材料目录中未记录的文件已删除：%s", sha256)

    from schemas import Error

    class _Api(Api):
        ERROR_SCHEMA = Error  # document the one error shape that errors.register() really returns

    api = _Api(app)
    api.register_blueprint(schemes_api.blp)
    api.register_blueprint(units_api.blp)
    api.register_blueprint(admin_api.blp)
    api.register_blueprint(auth_api.blp)
    api.register_blueprint(rounds_api.blp)
    api.register_blueprint(evidence_api.blp)
    api.register_blueprint(jobs_api.blp)
    api.register_blueprint(appeals_api.blp)
    api.register_blueprint(panel_api.blp)
    api.register_blueprint(drafts_api.blp)
    api.register_blueprint(audit_api.blp)
    _journal_reads_per_request(app)
    errors.register(app)  # after flask-smorest, so its handlers give way to the one error shape
    init_admin_pages(app)  # the admin web pages under /admin (admin/)

    if migrated:

        @app.before_request
        def _serve_the_rule_set_in_force():
            sync_rules(ctx)  # at most every SCORING_RULES_CHECK_SECONDS

    _start_job_workers(app, ctx, settings.job_workers if tables.has_table("jobs") else 0)

    @app.get("/api/health")
    def health():
        return {"status": "ok", "schemes": len(registry.schemes()), "rule_set": registry.generation}

    from .commands import register_commands

    register_commands(app)
    return app


def _start_job_workers(app: Flask, ctx, threads: int) -> None:
    """The background-job workers of this process (SCORING_JOB_WORKERS threads), started now and
    again after a fork (gunicorn --preload forks after this), never under a command of the
    ``flask`` CLI (db-upgrade, create-user…: short-lived; ``flask jobs run`` runs its own)."""
    import click

    from .jobs import Runner

    runner = Runner(ctx, threads)
    app.extensions["scoring_jobs"] = runner
    if threads <= 0 or click.get_current_context(silent=True) is not None:
        return
    runner.ensure_started()
    app.before_request(runner.ensure_started)


def _journal_reads_per_request(app: Flask) -> None:
    """Every request of the application, the admin pages' included, is the scope in which reads of
    a unit's data are journaled once per unit (``operations.begin_reads``), and a row served though
    changed since it was written (the history chain) is said so in a header."""
    from . import operations as ops

    app.before_request(ops.begin_reads)

    @app.after_request
    def _warn_of_tampered_rows(response):
        rows = ops.tampered_rows()
        if rows:  # ASCII: a header
            response.headers["X-History-Warning"] = (
                f"rows changed since they were written (history chain): {', '.join(rows[:20])}"
            )
        return response

    @app.teardown_request
    def _end_reads(_error=None):
        ops.end_reads()
