"""Demonstration data: ``python -m tools.demo`` (what ``make run`` does before serving).

``seed(app)`` adds ten 宝山 units, five users (password ``demo-password``), an assessment round
of every scheme (self-assessment open for two weeks) and the example facts of 宝山 表B.1 taken
through the review cycle to official scores (``populate``), to an empty database, and prints the
users' API tokens.


``build(folder)`` migrates a fresh SQLite database in ``folder``, adds the ten
宝山 demonstration units and five users of ``flask seed-demo`` (password
``demo``), submits and scores the example facts of 宝山 表B.1 for every unit
and of the largest seed scheme (shuangtaizi-2016, 36 clauses) for three of
them, and adds a reviewed correction to 顾村镇 (2.3.2) so its history has two versions.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from service import operations as ops
from service import rounds
from service.access import Actor
from service.app import create_app
from service.cli import read_facts_file
from service.commands import add_user, upgrade
from service.config import PROJECT_ROOT, Settings
from service.db import Unit, User
from service.domain.cycle import RoundDates

DEMO_UNITS = [  # code, name, kind; their facts come from examples/baoshan-2022-b1.yaml
    ("luodian", "罗店镇", "town"),
    ("gucun", "顾村镇", "town"),
    ("dachang", "大场镇", "town"),
    ("youyilu", "友谊路街道", "street"),
    ("yanghang", "杨行镇", "town"),
    ("yuepu", "月浦镇", "town"),
    ("bsip", "宝山工业园区", "park"),
    ("wusong", "吴淞街道", "street"),
    ("gaojing", "高境镇", "town"),
    ("zhangmiao", "张庙街道", "street"),
]
DEMO_USERS = [
    ("admin", "admin", None),
    ("editor", "editor", None),
    ("reviewer", "reviewer", None),
    ("auditor", "auditor", None),
    ("gucun", "submitter", "gucun"),
]


PASSWORD = (
    "demo-password"  # at least SCORING_PASSWORD_MIN_LENGTH (10) characters, as every password
)
LARGEST = "shuangtaizi-2016"
RANKED = "baoshan-2022-b1"


def build(folder: Path, engine=None):
    folder = Path(folder)
    url = f"sqlite:///{folder / 'scoring.db'}"
    upgrade(url)
    settings = Settings(
        rules_dir=PROJECT_ROOT / "rules",
        engine_workers=1,
        engine_deadline=10,
        database_url=url,
        secret_key=secrets.token_hex(32),
        instance_dir=folder / "instance",
    )
    app = create_app(settings, engine=engine)
    ctx = app.extensions["scoring"]
    with ctx.db.transaction() as s:
        for code, name, kind in DEMO_UNITS:
            s.add(Unit(code=code, name=name, kind=kind, district="宝山区"))
    for username, role, unit in DEMO_USERS:
        add_user(
            ctx.db,
            username,
            role,
            unit,
            PASSWORD,
            {
                "admin": "系统管理员",
                "editor": "规则编辑",
                "reviewer": "评审组 王敏",
                "auditor": "审计 李强",
                "gucun": "顾村镇 张丽",
            }[username],
        )
    populate(ctx, largest=True)
    return app


def _actor(ctx, username: str) -> Actor:
    with ctx.db.transaction() as s:
        user = s.scalar(select(User).where(User.username == username))
    return Actor(user.id, user.username, user.role, user.unit_id)


def open_rounds(ctx, admin: Actor) -> dict[str, int]:
    """A round of every served scheme for its own year, its self-assessment open for two weeks."""
    now = datetime.now(UTC)
    dates = RoundDates(
        now + timedelta(days=14),
        now + timedelta(days=28),
        now + timedelta(days=29),
        now + timedelta(days=36),
        now + timedelta(days=40),
    )
    opened = {}
    for scheme_id, scheme in ctx.registry.schemes().items():
        digits = "".join(c for c in str(scheme.year) if c.isdigit())[:4]
        year = int(digits) if len(digits) == 4 else datetime.now(UTC).year
        opened[scheme_id] = rounds.open_round(ctx, admin, scheme_id, year, "", dates).id
    return opened


def _official(ctx, admin, reviewer, round_id, code, scheme_id, facts) -> None:
    """A unit through the cycle: self-assessment (entered by the admin for the unit), review
    completed, official score."""
    ops.submit(ctx, admin, code, scheme_id, "self", facts, {}, "", None)
    rounds.complete_review(ctx, reviewer, round_id, code)
    ops.compute_score(ctx, reviewer, code, scheme_id, kind="official")


def populate(ctx, largest: bool = False) -> None:
    """Rounds of every scheme; 表B.1's example facts for every unit but two, reviewed and official,
    顾村镇's self-assessment by its own submitter with a reviewer's correction (two versions);
    张庙街道 submitted and waiting for review, 高境镇 not yet submitted.  ``largest``: also three
    units of the largest scheme, official."""
    admin, reviewer, gucun = (_actor(ctx, u) for u in ("admin", "reviewer", "gucun"))
    opened = open_rounds(ctx, admin)
    examples = PROJECT_ROOT / "examples"
    ranked = read_facts_file(examples / f"{RANKED}.yaml")
    waiting, untouched = "zhangmiao", "gaojing"
    for code, name, _ in DEMO_UNITS:
        if name not in ranked or code in (untouched, "gucun"):
            continue
        if code == waiting:
            ops.submit(ctx, admin, code, RANKED, "self", ranked[name], {}, "", None)
            continue
        _official(ctx, admin, reviewer, opened[RANKED], code, RANKED, ranked[name])
    ops.submit(ctx, gucun, "gucun", RANKED, "self", ranked["顾村镇"], {}, "", None)
    facts = dict(ranked["顾村镇"])
    facts.update(own_training_score=2, own_training_reason="补充了专场培训签到表，材料齐全")
    ops.submit(
        ctx,
        reviewer,
        "gucun",
        RANKED,
        "review",
        facts,
        {"own_training_score": ["顾村镇质量专场培训签到表（2022-06）"]},
        "补充了专场培训签到表，2.3.2 改为满分",
        '"1"',
    )
    rounds.complete_review(ctx, reviewer, opened[RANKED], "gucun")
    ops.compute_score(ctx, reviewer, "gucun", RANKED, kind="official")
    if largest:
        facts_of = list(read_facts_file(examples / f"{LARGEST}.yaml").values())
        for (code, _name, _kind), facts in zip(DEMO_UNITS, facts_of):
            _official(ctx, admin, reviewer, opened[LARGEST], code, LARGEST, facts)


def seed(app) -> dict[str, str] | None:
    """The demonstration units, users and scored 表B.1 submissions; None when data exists."""
    ctx = app.extensions["scoring"]
    with ctx.db.transaction() as s:
        if s.scalar(select(Unit).limit(1)) is not None:
            return None
        for code, name, kind in DEMO_UNITS:
            s.add(Unit(code=code, name=name, kind=kind, district="宝山区"))
    tokens = {
        username: add_user(ctx.db, username, role, unit, PASSWORD)
        for username, role, unit in DEMO_USERS
    }
    populate(ctx)
    return tokens


def main() -> None:
    app = create_app()
    tokens = seed(app)
    if tokens is None:
        print("已有数据，不再添加演示数据。")
        return
    print(f"演示用户（密码都是 {PASSWORD}）及其 API 令牌：")
    for username, token in tokens.items():
        print(f"  {username:<10} {token}")


if __name__ == "__main__":
    main()
