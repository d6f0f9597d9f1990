"""A hand-written proportional controller for the headless Drone (a baseline and a test aid).

The env's flight controller already tracks a target velocity (action x axis speed), so
position control needs only one proportional term: fly toward the goal at a speed of
`gain` x distance per axis, i.e. desired velocity = -gain * (drone_pos - goal_pos). Each
axis command is that velocity divided by the axis speed for its sign (forward +z is 7,
every other direction 5), clipped to [-1, 1], then placed at its action index
(a0 -> z, a1 -> x, a2 -> y; physics.ACTION_TO_AXIS). Far away the drone flies at full
speed; near the goal it slows down exponentially, so it settles inside the 0.5 m goal
radius without overshooting.
"""

from __future__ import annotations

import numpy as np

from envs.drone.physics import ACTION_TO_AXIS, SPEED_NEG, SPEED_POS

DEFAULT_GAIN = 4.0  # 1/s; tuned in tests/envs/test_controller.py


def proportional_action(obs: np.ndarray, gain: float = DEFAULT_GAIN) -> np.ndarray:
    """(N, 9) observations -> (N, 3) float32 actions in [-1, 1] flying toward the goal."""
    desired = -gain * np.asarray(obs, dtype=np.float64)[:, 0:3]  # world x, y, z velocity
    speed = np.where(desired > 0, SPEED_POS, SPEED_NEG)
    axis_command = np.clip(desired / speed, -1.0, 1.0)
    return axis_command[:, list(ACTION_TO_AXIS)].astype(np.float32)
