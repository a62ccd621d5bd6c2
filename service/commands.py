"""Flask CLI commands:  flask --app wsgi <command>

db-upgrade       apply the Alembic migrations (before the workers start)
create-user      add a user and print an API token
verify-history   walk the history chain; exit status 1 and the first broken row if it is broken
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
    db, username: str, role: str, unit_code: str | None, password: str | None, name: str = ""
) -> str:
    from .access import ROLES, new_token
    from .db import Unit, User

    if role not in ROLES:
        raise click.BadParameter(f"角色应为 {', '.join(ROLES)} 之一")
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
    return new_token(db, user_id, "cli")


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
        token = add_user(current_app.extensions["scoring"].db, username, role, unit_code, password)
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
