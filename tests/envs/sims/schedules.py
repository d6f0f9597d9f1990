"""Test scenes where agents report on their own schedule, as Unity agents do.

decision-periods: 4 agents per area (id 4 * area + k) with decision period p = k + 1:
agent k appears in the message of step s (s = 1, 2, ... STEP calls since the last RESET)
only when s % p == 0, as Unity's DecisionRequester does; between decisions it repeats its
action, and the rewards of those steps add up into the next report. Every report ends one
of its decisions; after 4 decisions the episode ends (terminated for the agent's even
episodes 0, 2, ..., truncated for odd ones) and the next episode's first decision comes
in the same message (reward 0). So N steps give every agent floor(N / p) transitions:
sum over p = 1..4 of floor(N / p) per area (N = 12: 12 + 6 + 4 + 3 = 25), and
floor(floor(N / p) / 4) ended episodes per agent.

vanishing: 2 agents per area at any time. The agent in slot j lives L_j = 3 + 2 j steps
(3 and 5): it gives its first decision at step s0, decisions at s0 + 1 ... s0 + L_j - 1,
and is never seen again from step s0 + L_j, with no terminal step; at that step a new
agent (the next unused id) gives its first decision in its slot. N steps give each slot
N - floor(N / L_j) transitions and floor(N / L_j) vanished agents.
"""

from __future__ import annotations

import numpy as np

from envs.unity_player.simulation import Actions, AgentBatch, BehaviorSpec, ObservationSpec

PERIODIC = BehaviorSpec("Periodic?team=0", (ObservationSpec((3,), "VectorSensor_size3"),),
                        continuous=1)
VANISHING = BehaviorSpec("Vanishing?team=0", (ObservationSpec((2,), "VectorSensor_size2"),),
                         continuous=1)
DECISIONS_PER_EPISODE = 4
LIFETIMES = (3, 5)


def step_reward(action: np.ndarray) -> np.ndarray:
    """Per env step: 1 - |a - 0.5| with a clipped to [-1, 1]; the best action is 0.5."""
    return 1.0 - np.abs(np.clip(action, -1.0, 1.0) - 0.5)


class DecisionPeriods:
    """Agents with decision periods 1, 2, 3, 4 in every area."""

    name = "decision-periods"
    behaviors = (PERIODIC,)

    def start(self, num_areas: int, seed: int) -> None:
        self.num_areas = num_areas

    def reset(self) -> dict[str, AgentBatch]:
        n = 4 * self.num_areas
        self.period = np.tile(np.arange(1, 5), self.num_areas)
        self.ids = np.arange(n)
        self.held = np.zeros(n)  # the action each agent repeats until its next decision
        self.pending = np.zeros(n)  # reward accumulated since its last report
        self.decisions = np.zeros(n, np.int64)  # decisions made in the current episode
        self.episode = np.zeros(n, np.int64)  # index of the current episode
        self.step_count = 0
        return {PERIODIC.name: AgentBatch.decisions(self.ids, self._obs(self.ids))}

    def _obs(self, idx: np.ndarray) -> list[np.ndarray]:
        rows = np.stack([self.period[idx] / 4.0, self.decisions[idx] / DECISIONS_PER_EPISODE,
                         self.held[idx]], axis=1)
        return [rows.astype(np.float32)]

    def step(self, actions: dict[str, Actions]) -> dict[str, AgentBatch]:
        if PERIODIC.name in actions:  # only the agents that decided last time act anew
            a = actions[PERIODIC.name]
            self.held[a.agent_id] = a.continuous[:, 0]
        self.step_count += 1
        self.pending += step_reward(self.held)
        report = np.flatnonzero(self.step_count % self.period == 0)
        self.decisions[report] += 1
        reward = self.pending[report].astype(np.float32)
        self.pending[report] = 0.0
        ends = self.decisions[report] == DECISIONS_PER_EPISODE
        ended = report[ends]
        if not len(ended):
            return {PERIODIC.name: AgentBatch.decisions(report, self._obs(report), reward)}
        terminal = AgentBatch.terminals(ended, self._obs(ended), reward[ends],
                                        self.episode[ended] % 2 == 1)
        self.decisions[ended] = 0
        self.episode[ended] += 1
        reward[ends] = 0.0  # the next episode's first decision
        fresh = AgentBatch.decisions(report, self._obs(report), reward)
        return {PERIODIC.name: AgentBatch.concat([terminal, fresh])}

    def close(self) -> None:
        pass

    def summary(self) -> str:
        return f"{int(self.episode.sum())} episodes"


class Vanishing:
    """Agents that stop reporting without a terminal step; new ids take their place."""

    name = "vanishing"
    behaviors = (VANISHING,)

    def start(self, num_areas: int, seed: int) -> None:
        self.lifetime = np.tile(LIFETIMES, num_areas)
        self.slot = np.tile(np.arange(len(LIFETIMES)), num_areas)
        self.reset()

    def reset(self) -> dict[str, AgentBatch]:
        n = len(self.lifetime)
        self.ids = np.arange(n)  # the agent in each slot
        self.next_id = n
        self.age = np.zeros(n, np.int64)  # steps since the slot's agent appeared
        self.vanished = 0
        return {VANISHING.name: AgentBatch.decisions(self.ids, self._obs())}

    def _obs(self) -> list[np.ndarray]:
        return [np.stack([self.age / self.lifetime, self.slot], axis=1).astype(np.float32)]

    def step(self, actions: dict[str, Actions]) -> dict[str, AgentBatch]:
        reward = np.zeros(len(self.ids), np.float32)
        if VANISHING.name in actions:
            a = actions[VANISHING.name]
            action = dict(zip(a.agent_id.tolist(), a.continuous[:, 0].tolist()))
            for slot, agent in enumerate(self.ids.tolist()):
                if agent in action:
                    reward[slot] = step_reward(np.float64(action[agent]))
        self.age += 1
        gone = np.flatnonzero(self.age >= self.lifetime)
        for slot in gone.tolist():  # replaced: the old id is never sent again
            self.ids[slot] = self.next_id
            self.next_id += 1
        self.age[gone] = 0
        reward[gone] = 0.0
        self.vanished += len(gone)
        return {VANISHING.name: AgentBatch.decisions(self.ids.copy(), self._obs(), reward)}

    def close(self) -> None:
        pass

    def summary(self) -> str:
        return f"{self.vanished} agents vanished"
