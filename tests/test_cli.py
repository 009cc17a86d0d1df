from __future__ import annotations

import json
import os
import re
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
    assert all((out / "traces" / f"{k}.parquet").exists() for k in keys)
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

    table = pq.read_table(out / "traces" / "straight__late-note__000001.parquet")
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
    from sleeperbot import policies
    from sleeperbot.agents.expert import ExpertPolicy

    class BrokenAfterTwo(ExpertPolicy):
        calls = 0

        def act(self, observations, env_ids):
            out = super().act(observations, env_ids)
            BrokenAfterTwo.calls += 1
            if BrokenAfterTwo.calls > 400:
                out.actions[:] = np.nan
            return out

    monkeypatch.setitem(policies.POLICIES, "broken", BrokenAfterTwo)
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
    deadline = time.time() + 600
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
    assert len(list((out / "traces").glob("*.parquet"))) == 16
    assert not list(out.rglob(".*tmp"))
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


def test_version_prints_the_package_version(capsys):
    from sleeperbot import __version__

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"sleeperbot {__version__}\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["rollout", "--policy", "expret", "--out", "OUT"], "unknown policy 'expret'; did you mean 'expert'?"),
        (["rollout", "--monitors", "envelope,od", "--out", "OUT"], "unknown monitor 'od'; did you mean 'ood'?"),
        (["rollout", "--trigger", "yaer", "--out", "OUT"], "unknown trigger 'yaer'; did you mean 'year'?"),
        (["gui", "--trigger", "tga", "--headless", "--record", "OUT/gui.gif"],
         "unknown trigger 'tga'; did you mean 'tag'?"),
        (["inspect", "--policy", "strait", "--out", "OUT"], "unknown policy 'strait'; did you mean 'straight'?"),
        (["train", "backdoor", "--trigger", "year", "--payload", "knok", "--out", "OUT"],
         "unknown payload 'knok'; did you mean 'knock'?"),
    ],
)  # fmt: skip
def test_a_misspelled_name_exits_2_with_a_suggestion(tmp_path, capsys, argv, message):
    out = tmp_path / "never"
    assert main([a.replace("OUT", str(out)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_a_model_level_check_is_one_plain_line(capsys, tmp_path):
    out = tmp_path / "never"
    assert main(["rollout", "--max-steps", "10", "--event", '{"step": 30, "note": "hi"}', "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        "error: invalid RolloutConfig: an event at step 30 never happens: episodes end after 10 steps\n"
    )


def test_every_config_field_has_a_flag_in_its_commands_help(capsys):
    from sleeperbot.cli import COMMANDS, command
    from sleeperbot.commands.options import flag

    for path in COMMANDS:
        with pytest.raises(SystemExit):
            main([*path, "--help"])
        text = capsys.readouterr().out
        cmd = command(path)
        usage = text.split("\n\n")[0]
        for name in cmd.model.model_fields:
            pattern = rf" {name}\b" if name in cmd.positional else rf"{flag(name)}(?![\w-])"
            shown = re.search(pattern, usage if name in cmd.positional else text) is not None
            assert shown, f"sleeperbot {' '.join(path)}: the config field {name!r} has no flag"


def test_flags_and_config_file_give_the_same_settings(tmp_path):
    from sleeperbot.cli import build_parser, command

    argv = ["inspect", "--policy", "straight", "--scenario", "a,b", "--scenario", "c", "--episodes", "2", "--strict"]
    from_flags = command(("inspect",)).config(build_parser(argv).parse_args(argv))
    assert from_flags.scenario == ["a", "b", "c"] and from_flags.episodes == 2 and from_flags.strict is True
    assert from_flags.seed == 0 and from_flags.mode == "inspection"  # the model's defaults
    file = tmp_path / "inspect.yaml"
    file.write_text("policy: straight\nscenario: [a, b, c]\nepisodes: 5\nstrict: true\n")
    argv = ["inspect", "--config", str(file), "--episodes", "2"]  # the flag overrides the file
    assert command(("inspect",)).config(build_parser(argv).parse_args(argv)) == from_flags


def test_a_recording_into_a_folder_not_made_yet_is_written_there(tmp_path):
    # what `make demo` does in a fresh clone: runs/ does not exist until the command makes it
    gif = tmp_path / "runs" / "new" / "expert.gif"
    code = main(["rollout", "--policy", "expert", "--episodes", "1", "--max-steps", "6", "--out",
                 str(tmp_path / "runs" / "expert"), "--record", str(gif)])  # fmt: skip
    assert code == 0 and gif.stat().st_size > 0
