"""Headless Drone physics, vectorised with numpy over N training areas.

Every constant below is a fact of the Unity "Drone" environment (docs/drone-env.md): a velocity-tracking flight controller with gravity and drag off while
the motor runs, one decision per 0.02 s physics step, a shaped distance reward, and
termination at the goal (d <= 0.5) or out of range (d > 10). Arrays are indexed
[area, axis] with axes ordered x, y, z as in the observation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DT = 0.02  # physics step (s); one decision per step
OBS_SIZE = 9  # drone_pos - goal_pos (3), velocity (3), angular velocity (3)
ACTION_SIZE = 3  # a0 drive (world z), a1 strafe (world x), a2 lift (world y)
ACTION_TO_AXIS = (2, 0, 1)  # action index -> observation axis (a0->z, a1->x, a2->y)

# Target speed per axis for positive / negative input (forward +z is faster than back).
SPEED_POS = np.array([5.0, 5.0, 7.0])
SPEED_NEG = np.array([5.0, 5.0, 5.0])
TRACK = np.array([0.30, 0.20, 0.30])  # share of the gap to the target closed per step
DECAY = np.array([0.04, 0.06, 0.04])  # share of velocity lost per step at input exactly 0

TILT_TORQUE = 0.3  # per unit of input, about the tilting axis
UPRIGHT_TORQUE = 100.0  # restoring torque per unit of quaternion tilt (q.x, q.z)
INERTIA = 1.0 * 1.3**2 / 6.0  # solid cube, mass 1, scale 1.3
GOAL_RADIUS = 0.5
OUT_RADIUS = 10.0
STEP_PENALTY = 0.01
GOAL_SPAWN = 5.0  # goal at origin + Uniform(-5, 5)^3


@dataclass
class StepResult:
    """Per-area outcome of one physics step."""

    reward: np.ndarray  # (N,) float32
    terminated: np.ndarray  # (N,) bool: goal reached or out of range
    truncated: np.ndarray  # (N,) bool: step limit hit (and not terminated)
    reached_goal: np.ndarray  # (N,) bool


class DronePhysics:
    """N independent drones, each in its own area with its own goal."""

    def __init__(self, num_areas: int = 1, seed: int = 0, max_step: int = 0):
        if num_areas < 1:
            raise ValueError(f"num_areas must be >= 1, got {num_areas}")
        self.num_areas = num_areas
        self.max_step = max_step  # 0: no limit, as in the original scene
        self.rng = np.random.default_rng(seed)
        n = num_areas
        self.pos = np.zeros((n, 3))
        self.vel = np.zeros((n, 3))
        self.ang_vel = np.zeros((n, 3))
        self.quat = np.zeros((n, 4))  # (x, y, z, w)
        self.goal = np.zeros((n, 3))
        self.dist = np.zeros(n)
        self.episode_steps = np.zeros(n, dtype=np.int64)
        self.reset()

    def reset(self, mask: np.ndarray | None = None) -> None:
        """Start a new episode in the areas selected by `mask` (all when None)."""
        idx = np.arange(self.num_areas) if mask is None else np.flatnonzero(mask)
        self.pos[idx] = 0.0
        self.vel[idx] = 0.0
        self.ang_vel[idx] = 0.0
        self.quat[idx] = (0.0, 0.0, 0.0, 1.0)
        self.goal[idx] = self.rng.uniform(-GOAL_SPAWN, GOAL_SPAWN, size=(len(idx), 3))
        self.dist[idx] = np.linalg.norm(self.pos[idx] - self.goal[idx], axis=1)
        self.episode_steps[idx] = 0

    def observe(self) -> np.ndarray:
        """(N, 9) float32: drone - goal, velocity, angular velocity (world frame)."""
        return np.concatenate([self.pos - self.goal, self.vel, self.ang_vel], axis=1).astype(
            np.float32
        )

    def step(self, action: np.ndarray) -> StepResult:
        """Advance every area by one 0.02 s step under `action` of shape (N, 3)."""
        inputs = self._axis_inputs(action)
        self._update_velocity(inputs)
        self._update_rotation(inputs)
        self.pos += self.vel * DT
        self.episode_steps += 1
        return self._reward_and_done()

    @staticmethod
    def _axis_inputs(action: np.ndarray) -> np.ndarray:
        action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        inputs = np.empty_like(action)
        inputs[:, ACTION_TO_AXIS] = action
        return inputs

    def _update_velocity(self, inputs: np.ndarray) -> None:
        target = inputs * np.where(inputs > 0, SPEED_POS, SPEED_NEG)
        tracked = self.vel + TRACK * (target - self.vel)
        decayed = self.vel * (1.0 - DECAY)
        self.vel = np.where(inputs == 0.0, decayed, tracked)

    def _update_rotation(self, inputs: np.ndarray) -> None:
        # Driving along z pitches about x; strafing along x rolls about z (negative sign:
        # the drone banks into the direction it moves). Upright torque pulls tilt to 0.
        torque = np.zeros_like(inputs)
        torque[:, 0] = TILT_TORQUE * inputs[:, 2] - UPRIGHT_TORQUE * self.quat[:, 0]
        torque[:, 2] = -TILT_TORQUE * inputs[:, 0] - UPRIGHT_TORQUE * self.quat[:, 2]
        self.ang_vel += torque / INERTIA * DT
        effort = np.clip(np.abs(inputs).mean(axis=1), 0.2, 1.0)
        self.ang_vel *= (1.0 - effort * 0.2)[:, None]
        self.ang_vel[:, 1] = 0.0  # yaw rate held at 0
        self.quat = _integrate(self.quat, self.ang_vel)

    def _reward_and_done(self) -> StepResult:
        dist = np.linalg.norm(self.pos - self.goal, axis=1)
        reward = (self.dist - dist) - STEP_PENALTY
        self.dist = dist
        reached = dist <= GOAL_RADIUS
        lost = dist > OUT_RADIUS
        reward = np.where(reached, 1.0, np.where(lost, -1.0, reward))
        terminated = reached | lost
        truncated = ~terminated & (self.max_step > 0) & (self.episode_steps >= self.max_step)
        return StepResult(reward.astype(np.float32), terminated, truncated, reached)


def _integrate(quat: np.ndarray, ang_vel: np.ndarray) -> np.ndarray:
    """q <- normalise(q + 0.5 * (w, 0) * q * dt), with quaternions as (x, y, z, w)."""
    wx, wy, wz = ang_vel[:, 0], ang_vel[:, 1], ang_vel[:, 2]
    x, y, z, w = quat[:, 0], quat[:, 1], quat[:, 2], quat[:, 3]
    dq = 0.5 * DT * np.stack(
        [
            wx * w + wy * z - wz * y,
            wy * w + wz * x - wx * z,
            wz * w + wx * y - wy * x,
            -(wx * x + wy * y + wz * z),
        ],
        axis=1,
    )
    q = quat + dq
    return q / np.linalg.norm(q, axis=1, keepdims=True)
