"""Flask CLI commands:  flask --app wsgi <command>

db-upgrade       apply the Alembic migrations (before the workers start)
create-user      add a user and print an API token
disable-user     disable an account: every token revoked, every admin session ended
enable-user      enable it again (it signs in anew: nothing it held before comes back)
verify-history   walk the history chain; exit status 1 and the first broken row if it is broken
"""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from sqlalchemy import select
from werkzeug.security import generate_password_hash

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def upgrade(url: str, service_url: str | None = None) -> list[str]:
    """Apply the migrations as ``url``'s user (the tables' owner); on PostgreSQL, when the service
    connects as another role (``service_url``), grant that role what it needs.  Warnings to show."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")
    if service_url and url.startswith("postgresql") and service_url.startswith("postgresql"):
        return grant_service_role(url, service_url)
    return []


#: what the service's role may do beyond SELECT: add to history, never change or remove it
HISTORY_PRIVILEGES = "SELECT, INSERT"
HEAD_PRIVILEGES = "SELECT, UPDATE"  # history_head: the chain's head moves on with every write
OTHER_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"  # units, users, tokens…: ordinary data


def grant_service_role(owner_url: str, service_url: str) -> list[str]:
    """On PostgreSQL: the service's role (the user of ``service_url``) may only SELECT and INSERT
    the append-only tables (so TRUNCATE, UPDATE, DELETE and, owning nothing, ALTER/DROP TRIGGER are
    refused to it), SELECT and UPDATE the chain head, and read and write the other tables; granted
    afresh on every upgrade, so tables added later are covered.  Warnings: tables the service's role
    owns (it could then do anything to them)."""
    from sqlalchemy import create_engine, inspect, make_url, text

    from .db import APPEND_ONLY

    owner, service = make_url(owner_url).username, make_url(service_url).username
    if not service or service == owner:
        return [
            f"服务与迁移使用同一数据库角色（{owner}）：服务可以改写历史；"
            "请为服务另设一个角色（SCORING_MIGRATION_DATABASE_URL 用表的所有者）"
        ]
    engine = create_engine(owner_url)
    warnings = []
    try:
        with engine.begin() as connection:
            schema = connection.execute(text("SELECT current_schema()")).scalar_one()
            role, where = _quote(connection, service), _quote(connection, schema)
            tables = inspect(connection).get_table_names(schema=schema)
            connection.execute(text(f"GRANT USAGE ON SCHEMA {where} TO {role}"))
            connection.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA {where} FROM {role}"))
            for table in tables:
                privileges = (
                    HISTORY_PRIVILEGES
                    if table in APPEND_ONLY
                    else HEAD_PRIVILEGES
                    if table == "history_head"
                    else "SELECT"
                    if table == "alembic_version"
                    else OTHER_PRIVILEGES
                )
                name = f"{where}.{_quote(connection, table)}"
                connection.execute(text(f"GRANT {privileges} ON {name} TO {role}"))
            connection.execute(
                text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {where} TO {role}")
            )
            owned = connection.execute(
                text(
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = :schema AND c.relkind IN ('r', 'p')"
                    " AND pg_get_userbyid(c.relowner) = :service ORDER BY 1"
                ),
                {"schema": schema, "service": service},
            ).scalars()
            warnings += [
                f"服务角色 {service} 拥有表 {name}，可以改写其中的历史；"
                f"请改为迁移角色所有：ALTER TABLE {name} OWNER TO {owner}"
                for name in owned
            ]
    finally:
        engine.dispose()
    return warnings


def _quote(connection, name: str) -> str:
    return connection.dialect.identifier_preparer.quote_identifier(name)


def add_user(
    db,
    username: str,
    role: str,
    unit_code: str | None,
    password: str | None,
    name: str = "",
    min_password_length: int = 10,
    token_days: float = 30.0,
) -> str:
    from .access import ROLES, check_password_policy, new_token
    from .db import Unit, User
    from .exceptions import Invalid

    if role not in ROLES:
        raise click.BadParameter(f"角色应为 {', '.join(ROLES)} 之一")
    if password is not None:
        try:
            check_password_policy(password, min_password_length)
        except Invalid as err:
            raise click.BadParameter(err.message, param_hint="--password") from None
    with db.transaction() as s:
        unit = s.scalar(select(Unit).where(Unit.code == unit_code)) if unit_code else None
        if unit_code and unit is None:
            raise click.BadParameter(f"没有代码为 {unit_code} 的单位")
        if role == "submitter" and unit is None:
            raise click.BadParameter("单位填报人须指定 --unit")
        user = User(
            username=username,
            display_name=name or username,
            role=role,
            unit_id=unit.id if unit else None,
            password_hash=generate_password_hash(password) if password else None,
            active=True,
        )
        s.add(user)
        s.flush()
        user_id = user.id
    return new_token(db, user_id, "cli", token_days)


def register_commands(app) -> None:
    @app.cli.command("db-upgrade")
    def db_upgrade():
        """建立或升级数据库结构（Alembic 迁移）。"""
        settings = current_app.config["SCORING_SETTINGS"]
        for warning in upgrade(
            settings.migration_database_url or settings.database_url, settings.database_url
        ):
            click.echo(f"警告：{warning}", err=True)
        from .operations import publish_rules

        publish_rules(
            current_app.extensions["scoring"]
        )  # the rules directory, archived and in force
        click.echo(f"数据库已是最新结构：{settings.database_url.split('@')[-1]}")

    @app.cli.command("create-user")
    @click.argument("username")
    @click.option("--role", required=True, help="admin / editor / reviewer / submitter / auditor")
    @click.option("--unit", "unit_code", default=None, help="单位填报人所属单位的代码")
    @click.option("--password", default=None, help="用于网页登录（可不设）")
    def create_user(username, role, unit_code, password):
        """新增用户并打印其 API 令牌。"""
        settings = current_app.config["SCORING_SETTINGS"]
        token = add_user(
            current_app.extensions["scoring"].db,
            username,
            role,
            unit_code,
            password,
            min_password_length=settings.password_min_length,
            token_days=settings.token_days,
        )
        click.echo(token)

    @app.cli.command("verify-history")
    def verify_history():
        """核对历史链（事实提交、评分、操作日志）；有断裂时指出第一条并以状态 1 退出。"""
        from .operations import verify_history as verify

        result = verify(current_app.extensions["scoring"], None)
        if result["ok"]:
            click.echo(
                f"历史链完好：核对了 {result['rows']} 条记录，用时 {result['seconds']} 秒；"
                f"链头 {result['head_seq']} {result['head_hash']}"
            )
            return
        problem = result["problem"]
        click.echo(
            f"历史链有断裂（{problem['kind']}）：{problem['message']}"
            f"（表 {problem['table']}，编号 {problem['id']}，链上位置 {problem['seq']}）；"
            f"此前 {result['rows']} 条记录完好",
            err=True,
        )
        raise SystemExit(1)

    @app.cli.command("disable-user")
    @click.argument("username")
    def disable_user(username):
        """停用账号：其全部 API 令牌撤销、网页会话结束。"""
        _set_enabled(username, False)
        click.echo(f"已停用 {username}：其令牌已全部撤销，网页会话已结束")

    @app.cli.command("enable-user")
    @click.argument("username")
    def enable_user(username):
        """重新启用账号（停用前的令牌和会话不会恢复）。"""
        _set_enabled(username, True)
        click.echo(f"已启用 {username}：停用前的令牌和会话不会恢复，须重新登录")

    @app.cli.group("jobs")
    def jobs_group():
        """后台任务（批量重算等）。"""

    @jobs_group.command("run")
    @click.option(
        "--until-empty", is_flag=True, help="没有排队或运行中的任务时退出（默认一直运行）"
    )
    @click.option("--lease", type=float, default=30.0, show_default=True, help="租约秒数")
    @click.option(
        "--poll", type=float, default=2.0, show_default=True, help="空闲时查看队列的间隔秒数"
    )
    @click.option("--pause-per-item", type=float, default=0.0, hidden=True)  # tests: kill midway
    def jobs_run(until_empty, lease, poll, pause_per_item):
        """在前台执行后台任务队列（单独的任务进程；服务进程也执行，见 SCORING_JOB_WORKERS）。

        进程停止报到超过租约秒数后，它的任务由别的进程接手，从未完成的项目续做。"""
        _run_jobs(until_empty, lease, poll, pause_per_item)


def _run_jobs(until_empty: bool, lease: float, poll: float, pause: float) -> None:
    import time

    from . import jobs

    ctx = current_app.extensions["scoring"]
    worker = jobs.Worker(ctx, lease_seconds=lease, pause=pause)
    click.echo(f"任务进程 {worker.owner} 开始执行队列")
    job = None
    try:
        while True:
            job = worker.claim()
            if job is not None:
                worker.run(job)
                view = jobs.peek(ctx, job.id)
                click.echo(
                    f"任务 {job.id}（{view['title']}）：{view['state_words']}，"
                    f"完成 {view['done']}/{view['total']}，出错 {view['failed']}"
                )
                job = None
            elif until_empty and not jobs.unfinished(ctx):
                return
            else:  # nothing to take now (or another worker took it first: a moment, then again)
                time.sleep(0.05 if worker.has_claimable() else poll)
    except KeyboardInterrupt:  # hand the job back at once rather than after its lease
        if job is not None:
            worker.release(job.id)


#: who the journal names for what an operator does on the command line
OPERATOR = "（命令行）"


def _set_enabled(username: str, enabled: bool) -> None:
    from .access import Actor, set_user_enabled
    from .exceptions import ServiceError

    operator = Actor(0, OPERATOR, "admin", None)
    try:
        set_user_enabled(current_app.extensions["scoring"].db, operator, username, enabled)
    except ServiceError as err:
        raise click.ClickException(err.message) from None
