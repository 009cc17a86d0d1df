"""The code stays ruff clean (lint rules and formatting from pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUFF = Path(sys.executable).with_name("ruff")


def test_ruff_check_and_format_are_clean() -> None:
    for args in (["check", "."], ["format", "--check", "."]):
        r = subprocess.run([str(RUFF), *args], cwd=ROOT, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
