"""Flask CLI commands:  flask --app wsgi <command>

db-upgrade     apply the Alembic migrations (before the workers start)
create-user    add a user and print an API token
disable-user   disable an account: every token revoked, every admin session ended
enable-user    enable it again (it signs in anew: nothing it held before comes back)
"""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from sqlalchemy import select
from werkzeug.security import generate_password_hash

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def upgrade(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")


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
        upgrade(settings.database_url)
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
