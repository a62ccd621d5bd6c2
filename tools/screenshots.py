"""Screenshots of every admin page at 1366×768 in headless Chromium.

    .venv/bin/python -m tools.screenshots OUTDIR      (or: make screenshots OUT=OUTDIR)

Builds the demonstration instance (``tools.demo``) on a temporary SQLite
database, serves it on 127.0.0.1 and saves one PNG per page in OUTDIR: the
first screen as a person sees it (``*-screen.png``, 1366×768) and, for long
pages, the whole page (``*-full.png``, 1366 wide).  Also the fact form with an
error, the score page as printed (A4 width, print CSS) and the 403 page a
submitter gets for another unit.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tools.browser import chromium, serve, sign_in, sign_out
from tools.demo import LARGEST, PASSWORD, RANKED, build

SHOTS = [  # name, path, whole page too
    ("02-home", "/admin/", False),
    ("03-unit", "/admin/units/gucun", False),
    ("04-facts", f"/admin/units/dachang/schemes/{RANKED}/facts", True),
    ("06-score", f"/admin/units/gucun/schemes/{RANKED}/score", True),
    ("07-score-largest", f"/admin/units/gucun/schemes/{LARGEST}/score", True),
    ("08-ranking", f"/admin/schemes/{RANKED}/ranking", True),
    ("09-ranking-largest", f"/admin/schemes/{LARGEST}/ranking", False),
    ("10-history", f"/admin/units/gucun/schemes/{RANKED}/history", False),
    ("11-scheme-rules", f"/admin/schemes/{RANKED}/rules", True),
    ("12-facts-largest", f"/admin/units/luodian/schemes/{LARGEST}/facts", False),
]


def take(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []

    def shot(page, name, full=False):
        wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        if wide > 0:
            print(f"警告：{name} 在 1366 宽时横向溢出 {wide}px", file=sys.stderr)
        page.screenshot(path=str(out / f"{name}-screen.png"))
        made.append(out / f"{name}-screen.png")
        if full:
            page.screenshot(path=str(out / f"{name}-full.png"), full_page=True)
            made.append(out / f"{name}-full.png")

    with tempfile.TemporaryDirectory() as tmp:
        app = build(Path(tmp))
        with serve(app) as base, chromium() as browser:
            page = browser.new_page()
            page.on("dialog", lambda d: d.accept())
            page.goto(f"{base}/admin/login")
            shot(page, "01-login")
            sign_in(page, base, "reviewer", PASSWORD)
            for name, path, full in SHOTS:
                page.goto(base + path)
                shot(page, name, full)
            # the fact form with one deliberate error, as it comes back
            page.goto(f"{base}/admin/units/dachang/schemes/{RANKED}/facts")
            page.fill("#f-org_leadership_score", "3.5")
            page.fill("#reason", "核对佐证材料后更正")
            page.click("button[value=review]")
            page.wait_for_load_state()
            shot(page, "05-facts-error")
            page.evaluate(
                "document.getElementById('f-org_leadership_score-box')"
                ".scrollIntoView({block: 'center'})"
            )
            shot(page, "05-facts-error-field")
            # the explained score as printed on A4
            page.set_viewport_size({"width": 794, "height": 1123})
            page.emulate_media(media="print")
            page.goto(f"{base}/admin/units/gucun/schemes/{RANKED}/score")
            page.screenshot(path=str(out / "13-score-print-a4.png"), full_page=True)
            made.append(out / "13-score-print-a4.png")
            page.pdf(path=str(out / "13-score-print.pdf"), format="A4", print_background=True)
            made.append(out / "13-score-print.pdf")
            page.emulate_media(media="screen")
            page.set_viewport_size({"width": 1366, "height": 768})
            sign_out(page)
            sign_in(page, base, "editor", PASSWORD)
            page.goto(f"{base}/admin/rules/check")
            shot(page, "14-rules-checked")
            sign_out(page)
            sign_in(page, base, "gucun", PASSWORD)
            shot(page, "15-submitter-home")
            page.goto(f"{base}/admin/units/dachang")
            shot(page, "16-submitter-403")
        app.extensions["scoring"].db.engine.dispose()
    return made


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip())
        return 2
    for path in take(Path(argv[0])):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
