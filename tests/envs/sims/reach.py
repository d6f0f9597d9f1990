"""A tiny task the test scenes share: points chasing goals, stepped for all agents at once."""

from __future__ import annotations

import numpy as np

from envs.unity_player.simulation import AgentBatch

SPEED = 0.1  # distance per step at full action
GOAL_RADIUS = 0.1


class Reach:
    """`n` points in [-1, 1]^dim, each chasing its own goal; episodes of at most
    `max_steps` steps (truncated), terminated when within GOAL_RADIUS of the goal."""

    def __init__(self, n: int, dim: int, seed: int, max_steps: int = 20):
        self.rng = np.random.default_rng(seed)
        self.n, self.dim, self.max_steps = n, dim, max_steps
        self.pos = np.zeros((n, dim))
        self.goal = np.zeros((n, dim))
        self.steps = np.zeros(n, np.int64)
        self.reset(np.arange(n))

    def reset(self, idx: np.ndarray) -> None:
        self.pos[idx] = 0.0
        self.goal[idx] = self.rng.uniform(-1.0, 1.0, (len(idx), self.dim))
        self.steps[idx] = 0

    def delta(self) -> np.ndarray:
        """(n, dim) float32: point - goal."""
        return (self.pos - self.goal).astype(np.float32)

    def step(self, velocity: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Move by SPEED x clip(velocity); (reward = progress, terminated, truncated)."""
        before = np.linalg.norm(self.pos - self.goal, axis=1)
        self.pos += SPEED * np.clip(velocity, -1.0, 1.0)
        self.steps += 1
        after = np.linalg.norm(self.pos - self.goal, axis=1)
        terminated = after < GOAL_RADIUS
        truncated = ~terminated & (self.steps >= self.max_steps)
        return (before - after).astype(np.float32), terminated, truncated


def step_batch(reach: Reach, ids: np.ndarray, velocity: np.ndarray, observe) -> AgentBatch:
    """Step every agent; terminal rows for ended episodes, then every agent's decision
    (a restarted agent's first one, reward 0) in the same message, as Unity sends them.
    `observe()` gives the observation tensors of all agents."""
    reward, terminated, truncated = reach.step(velocity)
    ended = np.flatnonzero(terminated | truncated)
    if not len(ended):
        return AgentBatch.decisions(ids, observe(), reward)
    terminal = AgentBatch.terminals(ids[ended], [o[ended] for o in observe()],
                                    reward[ended], truncated[ended])
    reach.reset(ended)
    reward[ended] = 0.0
    return AgentBatch.concat([terminal, AgentBatch.decisions(ids, observe(), reward)])
