"""Exploration noise for the DDPG actor: Gaussian or Ornstein-Uhlenbeck, per agent.

An env worker steps many agents at once, so noise is indexed by ML-Agents agent id. Every
agent and every action dimension gets its own independent draw, an agent's OU state is reset
when its episode ends, and `explore` clips the noisy action so the stored action is the one
actually sent to the env.
"""

from __future__ import annotations

import numpy as np

from actors.config import NoiseConfig


def _agent_list(agent_ids) -> list[int]:
    """Agent ids as plain ints; a repeated id in one call would be ambiguous."""
    ids = [int(i) for i in np.asarray(agent_ids).reshape(-1)]
    if len(set(ids)) != len(ids):
        raise ValueError(f"agent ids must be unique within one call, got {ids}")
    return ids


class OUNoise:
    """Ornstein-Uhlenbeck process, independent per agent and per action dimension."""

    def __init__(
        self, action_size: int, mu: float, theta: float, sigma: float, rng: np.random.Generator
    ):
        self.action_size = action_size
        self.mu = mu
        self.theta = theta
        self.sigma = sigma
        self.rng = rng
        self._states: dict[int, np.ndarray] = {}  # agent id -> (action_size,) float64

    def sample(self, agent_ids: np.ndarray) -> np.ndarray:
        """Advance each listed agent's process one step; (len(agent_ids), action_size) float32."""
        ids = _agent_list(agent_ids)
        mu_row = np.full(self.action_size, self.mu, dtype=np.float64)
        x = np.array([self._states.get(i, mu_row) for i in ids], dtype=np.float64)
        x = x.reshape(len(ids), self.action_size)  # also gives (0, A) for no agents
        # One standard normal per agent and per dimension (the seed shared one across dims).
        eps = self.rng.standard_normal((len(ids), self.action_size))
        x = x + self.theta * (self.mu - x) + self.sigma * eps
        for i, row in zip(ids, x):
            self._states[i] = row
        return x.astype(np.float32)

    def reset(self, agent_ids) -> None:
        """These agents' episodes ended: their processes restart at mu."""
        for i in _agent_list(agent_ids):
            # Dropping the state is the same as setting it to mu (unseen ids start at mu),
            # and keeps the dict from growing if ids are never reused.
            self._states.pop(i, None)

    def state_dict(self) -> dict:
        """Per-agent process states, for resuming a worker."""
        ids = sorted(self._states)
        states = [self._states[i] for i in ids]
        return {
            "agent_ids": np.array(ids, dtype=np.int64),
            "states": np.array(states, dtype=np.float64).reshape(len(ids), self.action_size),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a `state_dict()`; agents not in it start at mu. The empty state of
        Gaussian noise (--noise changed at --resume) leaves every agent at mu."""
        if not state:
            self._states = {}
            return
        states = np.asarray(state["states"], dtype=np.float64)
        ids = _agent_list(state["agent_ids"])
        if states.shape != (len(ids), self.action_size):
            raise ValueError(
                f"OU state: expected shape ({len(ids)}, {self.action_size}), got {states.shape}"
            )
        self._states = {i: row.copy() for i, row in zip(ids, states)}


class GaussianNoise:
    """Independent N(0, sigma^2) per agent, action dimension and step; no state."""

    def __init__(self, action_size: int, sigma: float, rng: np.random.Generator):
        self.action_size = action_size
        self.sigma = sigma
        self.rng = rng

    def sample(self, agent_ids: np.ndarray) -> np.ndarray:
        """(len(agent_ids), action_size) float32 noise."""
        n = len(_agent_list(agent_ids))
        return (self.sigma * self.rng.standard_normal((n, self.action_size))).astype(np.float32)

    def reset(self, agent_ids) -> None:
        """Nothing to reset: Gaussian noise has no memory."""

    def state_dict(self) -> dict:
        """Empty: there is no per-agent state."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Accepts the empty state of `state_dict()`."""


def make_noise(
    cfg: NoiseConfig, action_size: int, rng: np.random.Generator
) -> OUNoise | GaussianNoise:
    """The noise process `cfg` names, drawing from `rng`."""
    if cfg.noise == "ou":
        return OUNoise(action_size, cfg.ou_mu, cfg.ou_theta, cfg.noise_sigma, rng)
    if cfg.noise == "gaussian":
        return GaussianNoise(action_size, cfg.noise_sigma, rng)
    raise ValueError(f"unknown noise {cfg.noise!r}; expected 'gaussian' or 'ou'")


def explore(action: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """clip(action + noise, -1, 1) as float32: the action to send to the env and to store."""
    action = np.asarray(action)
    noise = np.asarray(noise)
    if action.shape != noise.shape:
        raise ValueError(f"action shape {action.shape} != noise shape {noise.shape}")
    return np.clip(action + noise, -1.0, 1.0).astype(np.float32)
