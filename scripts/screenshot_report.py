"""Screenshot a benchmark run's report.html in Debian's headless Chromium (for the docs).

    python scripts/screenshot_report.py RUN_FOLDER OUT.png [--height 2200]

The top of the page (header, pooled headline table) at 1400 px wide, so the image stays readable.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Write the screenshot; exit 2 with one line when the report or the browser is missing."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--height", type=int, default=2200)
    args = ap.parse_args(argv)
    report = args.run / "report.html"
    if not report.exists() or not Path(CHROMIUM).exists():
        print(f"error: needs {report} and {CHROMIUM}", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": args.height})
        page.goto(report.resolve().as_uri(), wait_until="load")
        page.screenshot(path=str(args.out))
        browser.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
