"""The agents of one env: who is waiting for a reward, their running episodes, and who left.

Agents are matched by ML-Agents agent id, never by list position: a terminal step and the
same agent's next first decision arrive in one message, agents with a decision period skip
steps, and agents come and go. An agent that stops asking for decisions without a terminal
step (destroyed, disabled) is forgotten after `timeout` env steps, so that nothing is kept
for it forever.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Episode:
    """One finished episode of one agent."""

    agent_id: int
    episode_return: float
    length: int
    success: bool | None  # None: the env defines no success (EnvConfig.success)
    interrupted: bool
    ended_at: int = 0  # its worker's env steps (agent transitions) when it ended


class Agents:
    """Per-agent state between a decision and the reward that answers it."""

    def __init__(self, tracks_success: bool, timeout: int):
        self.tracks_success = tracks_success
        self.timeout = timeout
        self.last: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # id -> (obs, action)
        self.returns: dict[int, float] = {}
        self.lengths: dict[int, int] = {}
        self.seen: dict[int, int] = {}  # id -> env step it last appeared at
        self.now = 0

    def decided(self, agent_ids: np.ndarray, obs: np.ndarray, action: np.ndarray) -> None:
        """These agents chose these actions from these observations."""
        for agent, o, a in zip(agent_ids.tolist(), obs, action):
            self.last[agent] = (o, a)
            self.seen[agent] = self.now

    def step(self, decision, terminal, next_obs: np.ndarray, terminal_obs: np.ndarray
             ) -> tuple[list[tuple], list[Episode]]:
        """One env step's rows (agent, obs, action, reward, next_obs, terminated,
        episode_end), one per agent that had acted, and the episodes that ended."""
        self.now += 1
        rows, ended = [], []
        # Terminal steps first: the same agent's next first decision may be in `decision`.
        for i, agent in enumerate(terminal.agent_id.tolist()):
            if agent in self.last:
                reward, interrupted = float(terminal.reward[i]), bool(terminal.interrupted[i])
                rows.append(self._row(agent, reward, terminal_obs[i], not interrupted, True))
                ended.append(self._finish(agent, reward, interrupted))
        for i, agent in enumerate(decision.agent_id.tolist()):
            if agent in self.last:  # a continuing episode; otherwise a new one starts here
                rows.append(self._row(agent, float(decision.reward[i]), next_obs[i], False,
                                      False))
        return rows, ended

    def _row(self, agent: int, reward: float, next_obs: np.ndarray, terminated: bool,
             episode_end: bool) -> tuple:
        obs, action = self.last.pop(agent)
        self.returns[agent] = self.returns.get(agent, 0.0) + reward
        self.lengths[agent] = self.lengths.get(agent, 0) + 1
        return agent, obs, action, reward, next_obs, float(terminated), episode_end

    def _finish(self, agent: int, reward: float, interrupted: bool) -> Episode:
        self.seen.pop(agent, None)
        success = (not interrupted and reward > 0.0) if self.tracks_success else None
        return Episode(agent, self.returns.pop(agent), self.lengths.pop(agent), success,
                       interrupted)

    def vanished(self) -> list[int]:
        """Forget the agents not seen for `timeout` env steps; returns their ids."""
        gone = [a for a, t in self.seen.items() if self.now - t > self.timeout]
        for agent in gone:
            self.forget(agent)
        return gone

    def forget(self, agent: int) -> None:
        for table in (self.last, self.returns, self.lengths, self.seen):
            table.pop(agent, None)

    def clear(self) -> list[int]:
        """Forget every agent (the env restarted); returns the ids that were mid-episode."""
        ids = list(self.seen)
        for table in (self.last, self.returns, self.lengths, self.seen):
            table.clear()
        return ids
