"""Any Gymnasium env as a Unity scene: `num_areas` independent copies, one agent each.

Area k is agent id k. Its first reset is seeded from the trainer's seed and k; later
resets continue the env's own RNG. Every agent decides every step. An episode that ends
(`terminated`: done; `truncated`: done with max_step_reached) is reset at once, and its
terminal step and the next episode's first decision (reward 0) go in the same message,
as Unity sends them. Observations and rewards are passed on as they are, NaN and Inf
included (the stock client refuses those; the trainer restarts the env).
"""

from __future__ import annotations

import logging

import numpy as np

from envs.gymnasium.check import make_env, open_env
from envs.unity_player.simulation import Actions, AgentBatch

log = logging.getLogger("gymnasium_bridge")


def area_seed(seed: int, area: int) -> int:
    """The first reset's seed of area `area`: independent streams for every (seed, area)."""
    sequence = np.random.SeedSequence([seed & 0xFFFFFFFFFFFFFFFF, area])
    return int(sequence.generate_state(1)[0])


class GymnasiumSimulation:
    """One behavior; agent k acts in copy k of the env."""

    def __init__(self, env_id: str, max_episode_steps: int | None = None,
                 kwargs: dict | None = None):
        first, self.spec, self.parts, self.actions = open_env(env_id, max_episode_steps, kwargs)
        self.env_id, self.max_episode_steps, self.kwargs = env_id, max_episode_steps, kwargs
        self.name = f"Gymnasium {env_id}"
        self.behaviors = (self.spec.behavior,)
        self.behavior = self.spec.behavior.name
        self.envs = [first]
        self.seeds: list[int] = []
        self.episodes = 0

    def start(self, num_areas: int, seed: int) -> None:
        for _ in range(num_areas - 1):  # one by one: close() finds those made before a failure
            self.envs.append(make_env(self.env_id, self.max_episode_steps, self.kwargs))
        self.seeds = [area_seed(seed, k) for k in range(num_areas)]
        log.info("%s; %d areas, seed %d", self.spec.summary(), num_areas, seed)

    def reset(self) -> dict[str, AgentBatch]:
        # The first reset seeds each area; a later RESET continues each env's own RNG.
        seeds, self.seeds = self.seeds or [None] * len(self.envs), []
        obs = [env.reset(seed=s)[0] for env, s in zip(self.envs, seeds)]
        ids = np.arange(len(self.envs))
        return {self.behavior: AgentBatch.decisions(ids, self._tensors(obs))}

    def step(self, actions: dict[str, Actions]) -> dict[str, AgentBatch]:
        rows = self._env_actions(actions.get(self.behavior))
        obs, rewards, terminated, truncated = [], [], [], []
        for env, action in zip(self.envs, rows):
            o, r, term, trunc, _ = env.step(action)
            obs.append(o)
            rewards.append(self._number(r))
            terminated.append(bool(term))  # an array of one flag is read as that flag
            truncated.append(bool(trunc))
        n = len(self.envs)
        ids = np.arange(n)
        done = np.logical_or(terminated, truncated)
        if not done.any():
            return {self.behavior: AgentBatch.decisions(ids, self._tensors(obs), rewards)}
        ended = np.flatnonzero(done)
        self.episodes += len(ended)
        # terminated wins when both are set: the episode really ended, it was not cut.
        interrupted = np.logical_and(truncated, np.logical_not(terminated))[ended]
        terminal = AgentBatch.terminals(ended, self._tensors([obs[k] for k in ended]),
                                        np.asarray(rewards, np.float32)[ended], interrupted)
        for k in ended.tolist():
            obs[k] = self.envs[k].reset()[0]
            rewards[k] = 0.0
        fresh = AgentBatch.decisions(ids, self._tensors(obs), rewards)
        return {self.behavior: AgentBatch.concat([terminal, fresh])}

    def _number(self, reward):
        """A step's reward as a number: envs that compute it with array maths often return
        an array of one, which Gymnasium only warns about."""
        if isinstance(reward, (int, float, np.generic)):
            return reward
        array = np.asarray(reward)
        if array.size != 1:
            raise ValueError(f"{self.env_id}'s step() returned a reward of shape {array.shape}"
                             "; a Gymnasium env returns one number: fix its step()")
        return array.item()

    def _env_actions(self, actions: Actions | None) -> list:
        """Each area's action in the env's own space; areas the trainer left out get the
        action that the trainer's zeros map to."""
        n, mapping = len(self.envs), self.actions
        continuous = np.zeros((n, mapping.continuous), np.float32)
        discrete = np.zeros((n, len(self.spec.discrete_branches)), np.int64)
        if actions is not None:
            continuous[actions.agent_id] = actions.continuous
            discrete[actions.agent_id] = actions.discrete
        return mapping.env_actions(continuous, discrete)

    def _tensors(self, obs: list) -> list[np.ndarray]:
        """The observation tensors of a list of env observations, (n, *shape) each."""
        out = []
        for part in self.parts:
            rows = obs if part.key is None else [o[part.key] for o in obs]
            tensor = np.array(rows, dtype=np.float32).reshape((len(obs),) + part.spec.shape)
            out.append(tensor if part.scale is None else tensor * np.float32(part.scale))
        return out

    def close(self) -> None:
        # Every copy, whatever one of them raises: an env whose step failed often fails to
        # close too (a simulator already gone), and the others must not leak. One line, no
        # traceback: the log's last error stays the one that stopped the env, which the
        # trainer reports (actors/env_start.last_error).
        envs, self.envs = self.envs, []
        for env in envs:
            try:
                env.close()
            except Exception as err:  # noqa: BLE001
                log.warning("closing a copy of %s failed too (%s: %s)", self.env_id,
                            type(err).__name__, err)

    def summary(self) -> str:
        return f"{self.episodes} episodes"
