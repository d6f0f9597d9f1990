"""The headless Drone as a Simulation: `num_areas` drones, one agent each (id = area)."""

from __future__ import annotations

import logging

import numpy as np

from envs.drone.physics import ACTION_SIZE, OBS_SIZE, DronePhysics
from envs.unity_player.simulation import Actions, AgentBatch, BehaviorSpec, ObservationSpec

log = logging.getLogger("drone")

# Unity appends the team id to the behavior name it sends over the wire.
BEHAVIOR = "My Behavior?team=0"
ENV_NAME = "Drone"
SPEC = BehaviorSpec(BEHAVIOR, (ObservationSpec((OBS_SIZE,), f"VectorSensor_size{OBS_SIZE}"),),
                    continuous=ACTION_SIZE)


class DroneSimulation:
    """Every drone decides every step; an ended episode restarts in the same message."""

    name = ENV_NAME
    behaviors = (SPEC,)

    def __init__(self, max_step: int = 0, nan_at_step: int = 0):
        if max_step < 0:
            raise ValueError(f"--max-step must be >= 0 (0 = no limit), got {max_step}")
        self.max_step = max_step  # 0: no limit, as in the original scene
        self.nan_at_step = nan_at_step  # fault injection for tests: a NaN observation
        self.physics: DronePhysics | None = None
        self.env_steps = 0
        self.episodes = 0
        self.successes = 0

    def start(self, num_areas: int, seed: int) -> None:
        self.physics = DronePhysics(num_areas, seed, self.max_step)
        log.info("%d drones, seed %d, max_step=%d", num_areas, seed, self.max_step)

    def reset(self) -> dict[str, AgentBatch]:
        self.physics.reset()
        ids = np.arange(self.physics.num_areas)
        return {BEHAVIOR: AgentBatch.decisions(ids, [self.physics.observe()])}

    def step(self, actions: dict[str, Actions]) -> dict[str, AgentBatch]:
        physics = self.physics
        n = physics.num_areas
        action = np.zeros((n, ACTION_SIZE))
        if BEHAVIOR in actions:  # every drone was asked; missing rows stay zero
            action[actions[BEHAVIOR].agent_id] = actions[BEHAVIOR].continuous
        result = physics.step(action)
        self.env_steps += 1
        ids = np.arange(n)
        done = result.terminated | result.truncated
        if not done.any():
            return {BEHAVIOR: AgentBatch.decisions(ids, [self._observe()], result.reward)}
        # Unity sends an agent's terminal step and its next episode's first decision in
        # one message, with the same agent id; the new decision carries reward 0.
        ended = np.flatnonzero(done)
        terminal = AgentBatch.terminals(ended, [physics.observe()[ended]],
                                        result.reward[ended], result.truncated[ended])
        self.episodes += len(ended)
        self.successes += int(result.reached_goal.sum())
        physics.reset(done)
        reward = np.where(done, 0.0, result.reward)
        fresh = AgentBatch.decisions(ids, [self._observe()], reward)
        return {BEHAVIOR: AgentBatch.concat([terminal, fresh])}

    def _observe(self) -> np.ndarray:
        obs = self.physics.observe()
        if self.nan_at_step and self.env_steps == self.nan_at_step:
            obs[0, 0] = np.nan  # what a broken Unity scene sends; the client must refuse it
        return obs

    def close(self) -> None:
        pass

    def summary(self) -> str:
        return f"{self.episodes} episodes ({self.successes} at the goal)"
