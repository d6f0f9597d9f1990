"""What an env worker stores of its steps: 1-step or n-step transitions, with Ape-X priorities.

A step's rows (one per agent that acted and got its reward) come in with their agent id and
whether the agent's episode ended there. With n = 1 they are the transitions; with n > 1
they go through `NStep`, which emits n-step transitions carrying their bootstrap `discount`.

With prioritized replay the worker also sends each transition's initial priority, |TD| under
its local copy of the actor and critic (Ape-X): new data is then replayed by its surprise
from the start, instead of waiting at the buffer's max priority for the learner to see it.
"""

from __future__ import annotations

import numpy as np
import torch

from actors.config import ExperienceConfig
from actors.nstep import NStep
from learner.ddpg import bootstrap_target
from learner.networks import Critic


class Experience:
    """Turns one env step's rows into transitions for the replay."""

    def __init__(self, cfg: ExperienceConfig, obs_size: int, action_size: int,
                 hidden_size: int):
        self.cfg = cfg
        self.nstep = NStep(cfg.n_step, cfg.gamma) if cfg.n_step > 1 else None
        self.critic = None  # set by the first weights that include one
        if cfg.priorities:
            self._critic = Critic(obs_size, action_size, hidden_size,
                                  cfg.critic_action_layer).requires_grad_(False)

    def transitions(self, step: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The transitions a step (as `stack_rows` builds it) completes."""
        rows = dict(step)
        ids, ends = rows.pop("agent_id"), rows.pop("episode_end")
        if self.nstep is None:
            return rows
        return self.nstep.push(ids, episode_end=ends, **rows)

    def reset(self) -> None:
        """Forget open n-step windows: the env restarted and its episodes are gone."""
        if self.nstep is not None:
            self.nstep.reset()

    def forget(self, agent_ids: list[int]) -> None:
        """Forget these agents' open n-step windows: they left without ending an episode."""
        if self.nstep is not None:
            self.nstep.drop(agent_ids)

    def set_critic(self, weights: dict[str, torch.Tensor] | None) -> None:
        if weights is not None and self.cfg.priorities:
            self._critic.load_state_dict(weights)
            self.critic = self._critic

    def add_priorities(self, rows: dict[str, np.ndarray], actor: torch.nn.Module,
                       normalizer: torch.nn.Module | None = None) -> dict:
        """`rows` plus `priority` = |r + discount (1 - terminated) Q(s', mu(s')) - Q(s, a)|,
        once a critic has arrived (before that the replay gives new rows its max priority).
        actor: the bare actor; normalizer: what both networks see observations through."""
        if self.critic is None or len(rows["reward"]) == 0:
            return rows
        t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in rows.items()
             if k in ("obs", "action", "reward", "next_obs", "terminated", "discount")}
        if normalizer is not None:
            with torch.no_grad():
                t.update(obs=normalizer(t["obs"]), next_obs=normalizer(t["next_obs"]))
        target = bootstrap_target(self.critic, actor, t, self.cfg.gamma)
        with torch.no_grad():
            td = (target - self.critic(t["obs"], t["action"])).abs()
        return {**rows, "priority": td.numpy().astype(np.float64)}


def stack_rows(rows, obs_size: int, action_size: int, policy_version: int) -> dict:
    """One step's rows (agent, obs, action, reward, next_obs, terminated, episode_end) as
    arrays, every row tagged with the policy version that chose its action."""
    if not rows:
        return {"agent_id": np.zeros(0, np.int64), "obs": np.zeros((0, obs_size), np.float32),
                "action": np.zeros((0, action_size), np.float32),
                "reward": np.zeros(0, np.float32), "next_obs": np.zeros((0, obs_size), np.float32),
                "terminated": np.zeros(0, np.float32), "episode_end": np.zeros(0, bool),
                "policy_version": np.zeros(0, np.int64)}
    agent, obs, action, reward, next_obs, terminated, episode_end = zip(*rows)
    return {"agent_id": np.asarray(agent, np.int64), "obs": np.stack(obs),
            "action": np.stack(action), "reward": np.asarray(reward, np.float32),
            "next_obs": np.stack(next_obs), "terminated": np.asarray(terminated, np.float32),
            "episode_end": np.asarray(episode_end, bool),
            "policy_version": np.full(len(rows), policy_version, np.int64)}
