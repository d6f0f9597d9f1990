"""n-step returns, built on the worker from the 1-step transitions of each agent.

Every agent keeps up to n open windows, one per step of the last n. A window started at step t
collects r_t + gamma r_{t+1} + ... and is emitted once it spans n steps, or when the episode
ends (all open windows of that agent at once). The bootstrap discount travels with the
transition (`discount`), so the learner needs no n and windows cut short by the episode's end
still bootstrap with the right power of gamma.

State lives in per-slot numpy arrays (one slot per agent in an episode, window k of a slot in
column k % n), so `push` touches all agents of a step with a few array operations.
"""

from __future__ import annotations

import numpy as np

# Slots allocated at first; they double whenever more agents are mid-episode at once.
_EMPTY_SLOTS = 4


class NStep:
    """Turns one step's per-agent 1-step rows into completed n-step transitions."""

    def __init__(self, n: int, gamma: float):
        if n < 1 or not 0.0 <= gamma <= 1.0:
            raise ValueError(f"n-step needs n >= 1 and 0 <= gamma <= 1, got n={n}, gamma={gamma}")
        self.n = n
        self.gamma = gamma
        self._a: dict[str, np.ndarray] = {}  # slot arrays, allocated at the first push

    @property
    def pending(self) -> int:
        """Open windows, over all agents (transitions not emitted yet)."""
        return int(self._a["valid"].sum()) if self._a else 0

    def push(self, agent_ids, obs, action, reward, next_obs, terminated, episode_end,
             policy_version=None) -> dict[str, np.ndarray]:
        """Add one step (a row per agent); return the n-step transitions it completes.

        episode_end = terminated or truncated; a terminated row must also be an episode end.
        Returns obs, action, reward, next_obs, terminated, policy_version (of the window's
        first step; 0 when never given) and discount (gamma^k, or 0 after a termination).
        """
        ids = np.asarray(agent_ids, dtype=np.int64)
        rows = _check(ids, obs, action, reward, next_obs, terminated, episode_end, policy_version)
        if not self._a:
            self._allocate(rows["obs"].shape[1], rows["action"].shape[1])
        if len(ids) == 0:
            return self._gather(np.zeros(0, np.int64), np.zeros(0, np.int64), rows, ids)
        slots = self._slots(ids)
        self._accumulate(slots, rows["reward"])
        self._open(slots, rows)
        out = self._emit(slots, rows)
        ended = slots[rows["episode_end"]]
        # The agent's next step starts a new episode: free the slot (all its windows are out).
        self._a["used"][ended] = False
        self._a["t"][ended] = 0
        return out

    def _allocate(self, obs_size: int, action_size: int, slots: int = _EMPTY_SLOTS) -> None:
        n = self.n
        self._a = {
            "ids": np.zeros(slots, np.int64), "used": np.zeros(slots, bool),
            "t": np.zeros(slots, np.int64),  # steps of the slot's episode so far
            "obs": np.zeros((slots, n, obs_size), np.float32),
            "action": np.zeros((slots, n, action_size), np.float32),
            "ret": np.zeros((slots, n), np.float64), "len": np.zeros((slots, n), np.int64),
            "start": np.zeros((slots, n), np.int64),  # step a window opened at, for ordering
            "policy_version": np.zeros((slots, n), np.int64),
            "valid": np.zeros((slots, n), bool),
        }

    def _grow(self, need: int) -> None:
        """At least `need` more free slots; existing slots keep their index."""
        old = self._a
        size = max(2 * len(old["ids"]), len(old["ids"]) + need)
        self._allocate(old["obs"].shape[2], old["action"].shape[2], size)
        for key, arr in old.items():
            self._a[key][: len(arr)] = arr

    def _slots(self, ids: np.ndarray) -> np.ndarray:
        """Slot of each agent id; agents not in an episode yet get free slots."""
        a = self._a
        # (B, slots) comparison: slots are the agents of one env, tens to hundreds.
        match = (ids[:, None] == a["ids"][None, :]) & a["used"][None, :]
        slots = match.argmax(axis=1)
        new = ~match.any(axis=1)
        if new.any():
            free = np.flatnonzero(~a["used"])
            if len(free) < new.sum():
                self._grow(int(new.sum()) - len(free))
                free = np.flatnonzero(~self._a["used"])
            taken = free[: new.sum()]
            slots[new] = taken
            self._a["ids"][taken] = ids[new]
            self._a["used"][taken] = True
            self._a["t"][taken] = 0
        return slots

    def _accumulate(self, slots: np.ndarray, reward: np.ndarray) -> None:
        """Add gamma^len * r to every open window of these agents (slots are unique)."""
        a = self._a
        valid = a["valid"][slots]
        a["ret"][slots] += np.where(valid, self.gamma ** a["len"][slots] * reward[:, None], 0.0)
        a["len"][slots] += valid

    def _open(self, slots: np.ndarray, rows: dict) -> None:
        """Start this step's window: column t % n, freed when its previous owner was emitted."""
        a = self._a
        col = a["t"][slots] % self.n
        a["obs"][slots, col] = rows["obs"]
        a["action"][slots, col] = rows["action"]
        a["policy_version"][slots, col] = rows["policy_version"]
        a["ret"][slots, col] = rows["reward"]
        a["len"][slots, col] = 1
        a["start"][slots, col] = a["t"][slots]
        a["valid"][slots, col] = True
        a["t"][slots] += 1

    def _emit(self, slots: np.ndarray, rows: dict) -> dict[str, np.ndarray]:
        """Close full windows, and every window of an agent whose episode ended."""
        a = self._a
        close = a["valid"][slots] & ((a["len"][slots] == self.n) | rows["episode_end"][:, None])
        b, col = np.nonzero(close)
        # Per agent (in row order), oldest window first: deterministic and easy to read.
        order = np.lexsort((a["start"][slots[b], col], b))
        b, col = b[order], col[order]
        out = self._gather(b, col, rows, slots)
        a["valid"][slots[b], col] = False
        return out

    def _gather(self, b: np.ndarray, col: np.ndarray, rows: dict, slots: np.ndarray) -> dict:
        """The transitions of windows (slots[b], col), closed at this step's row b."""
        a = self._a
        s = slots[b]
        term = rows["terminated"][b]
        discount = np.where(term > 0, 0.0, self.gamma ** a["len"][s, col].astype(np.float64))
        return {
            "obs": a["obs"][s, col], "action": a["action"][s, col],
            "reward": a["ret"][s, col].astype(np.float32), "next_obs": rows["next_obs"][b],
            "terminated": term, "policy_version": a["policy_version"][s, col],
            "discount": discount.astype(np.float32),
        }

    def reset(self) -> None:
        """Drop every open window (the episodes they belong to are gone, e.g. an env restart)."""
        self._a = {}

    def drop(self, agent_ids) -> None:
        """Drop these agents' open windows and free their slots (agents that vanished)."""
        if not self._a:
            return
        a = self._a
        gone = a["used"] & np.isin(a["ids"], np.asarray(agent_ids, np.int64))
        a["used"][gone] = False
        a["valid"][gone] = False
        a["t"][gone] = 0


def _check(ids, obs, action, reward, next_obs, terminated, episode_end, policy_version) -> dict:
    """The step's rows as arrays of the stored dtypes; ValueError on inconsistent input."""
    b = len(ids)
    rows = {
        "obs": np.asarray(obs, np.float32),
        "action": np.asarray(action, np.float32),
        "reward": np.asarray(reward, np.float32).reshape(b),
        "next_obs": np.asarray(next_obs, np.float32),
        "terminated": np.asarray(terminated, np.float32).reshape(b),
        "episode_end": np.asarray(episode_end, bool).reshape(b),
        "policy_version": np.zeros(b, np.int64) if policy_version is None
        else np.asarray(policy_version, np.int64).reshape(b),
    }
    if ids.ndim != 1 or len(np.unique(ids)) != b:
        raise ValueError(f"agent_ids must be distinct, one per row; got {ids.tolist()}")
    shapes = [rows[k].shape for k in ("obs", "action", "next_obs")]
    if any(len(s) != 2 or s[0] != b for s in shapes) or shapes[0] != shapes[2]:
        raise ValueError(f"obs, action, next_obs need {b} rows each, obs and next_obs the same "
                         f"width; got shapes {shapes}")
    if np.any((rows["terminated"] > 0) & ~rows["episode_end"]):
        raise ValueError("a terminated row must also have episode_end set")
    return rows
