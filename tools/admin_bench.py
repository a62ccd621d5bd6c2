"""Render time of every admin page for the largest seed scheme.

    .venv/bin/python -m tools.admin_bench [ROUNDS]      (or: make admin-bench)

Builds the demonstration instance (``tools.demo``: shuangtaizi-2016, 36
clauses and 70 facts, scored for three units; 宝山 表B.1 for ten), signs in as
the administrator with the Flask test client and requests each page ROUNDS
times (default 30) after two warm-up requests, through the whole stack:
session, CSRF, the service layer, the database (SQLite) and the templates.
Prints the median and the 95th percentile; the target is < 200 ms a page
(the Excel downloads are reported too, but they are files, not pages).
Not a test: timings depend on the machine.
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from admin import forms
from service import operations as ops
from tools.demo import LARGEST, PASSWORD, RANKED, build

TARGET_MS = 200


def _token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def run(rounds: int = 30) -> list[tuple[str, float, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        app = build(Path(tmp))
        ctx = app.extensions["scoring"]
        scheme = ctx.registry.get(LARGEST)
        client = app.test_client()
        page = client.get("/admin/login")
        client.post(
            "/admin/login",
            data={"username": "admin", "password": PASSWORD, "csrf_token": _token(page.text)},
        )
        facts_url = f"/admin/units/luodian/schemes/{LARGEST}/facts"
        form_page = client.get(facts_url).text
        token = _token(form_page)
        rows = {
            name: forms.to_text(v)
            for name, v in ops.history(ctx, _admin(ctx), "luodian", LARGEST)[-1].facts.items()
        }
        wrong = {f"f.{k}": v for k, v in rows.items()}
        first_number = next(f for f in forms.layout(scheme).fields.values() if f.input == "number")
        wrong[first_number.key] = "一百"
        version = [1]

        def post_error():
            return client.post(
                facts_url,
                data=dict(
                    wrong,
                    csrf_token=token,
                    action="review",
                    base_version=str(version[0]),
                    reason="基准测试",
                ),
            )

        def post_submit():
            r = client.post(
                facts_url,
                data=dict(
                    {f"f.{k}": v for k, v in rows.items()},
                    csrf_token=token,
                    action="review",
                    base_version=str(version[0]),
                    reason="基准测试",
                ),
            )
            version[0] += 1
            return r

        def compute():
            return client.post(
                f"/admin/units/luodian/schemes/{LARGEST}/score", data={"csrf_token": token}
            )

        pages = [
            ("登录页", lambda: client.get("/admin/login?next=/admin/")),
            ("首页", lambda: client.get("/admin/")),
            ("单位页（6套细则的填报与得分）", lambda: client.get("/admin/units/luodian")),
            ("事实填报表单（36条款，70项事实）", lambda: client.get(facts_url)),
            ("填报有误，带错误重新显示", post_error),
            ("得分说明", lambda: client.get(f"/admin/units/luodian/schemes/{LARGEST}/score")),
            (
                "提交历史与比较",
                lambda: client.get(f"/admin/units/luodian/schemes/{LARGEST}/history"),
            ),
            ("排名（含条形图）", lambda: client.get(f"/admin/schemes/{LARGEST}/ranking")),
            ("排名（宝山10个单位）", lambda: client.get(f"/admin/schemes/{RANKED}/ranking")),
            (
                "下载 Excel（排名+各单位）",
                lambda: client.get(f"/admin/schemes/{LARGEST}/ranking.xlsx"),
            ),
            (
                "下载 Excel（宝山10个单位）",
                lambda: client.get(f"/admin/schemes/{RANKED}/ranking.xlsx"),
            ),
            ("细则条款与测试用例", lambda: client.get(f"/admin/schemes/{LARGEST}/rules")),
            ("规则管理", lambda: client.get("/admin/rules")),
            # writes last: each round adds a version or a score, and the pages above would grow with them
            ("提交一版事实（评审）", post_submit),
            ("计算并保存得分", compute),
        ]
        out = []
        for name, call in pages:
            for _ in range(2):
                r = call()
                assert r.status_code in (200, 302, 422), (name, r.status_code, r.text[:300])
            times = []
            for _ in range(rounds):
                start = time.perf_counter()
                r = call()
                times.append((time.perf_counter() - start) * 1000)
                assert r.status_code in (200, 302, 422), (name, r.status_code)
            times.sort()
            out.append(
                (name, statistics.median(times), times[max(0, int(round(0.95 * len(times))) - 1)])
            )
        start = time.perf_counter()
        client.get("/admin/rules/check")
        out.append(
            (
                "检查规则目录（全部6套细则重新读取并运行全部测试用例，操作而非页面）",
                (time.perf_counter() - start) * 1000,
                float("nan"),
            )
        )
        ctx.db.engine.dispose()
    return out


def _admin(ctx):
    from sqlalchemy import select

    from service.access import Actor
    from service.db import User

    with ctx.db.transaction() as s:
        user = s.scalar(select(User).where(User.username == "admin"))
    return Actor(user.id, user.username, user.role, user.unit_id)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    rounds = int(argv[0]) if argv else 30
    import logging

    logging.disable(logging.INFO)
    print(
        f"机器：{os.cpu_count()} 核；最大的种子细则 {LARGEST}；每页 {rounds} 次（另预热2次），Flask 测试客户端，SQLite"
    )
    results = run(rounds)
    width = max(len(n) for n, _, _ in results)
    print(f"{'页面':<{width}}  {'中位数':>8}  {'p95':>8}")
    slow = []
    for name, median, p95 in results:
        p95_text = "—" if p95 != p95 else f"{p95:.1f} ms"
        print(f"{name:<{width}}  {median:>5.1f} ms  {p95_text:>8}")
        if p95 == p95 and median >= TARGET_MS and not name.startswith("下载"):
            slow.append(name)
    print(
        f"目标：每个页面 < {TARGET_MS} ms（中位数）："
        + ("全部达到" if not slow else "未达到：" + "、".join(slow))
    )
    print("（Excel 下载是文件生成，openpyxl 每个工作表约 15 ms，不计入页面目标）")
    return 0


if __name__ == "__main__":
    sys.exit(main())
