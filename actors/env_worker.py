"""EnvWorker: one ML-Agents env process, all of its agents, and a local copy of the policy.

It turns the env's DecisionSteps/TerminalSteps into transitions for every agent
(actors/agents.py matches them by agent id). `env_steps` counts the agent transitions
received, whatever the number of areas, decision periods or agents that come and go;
`env_calls` counts calls to env.step(). Plain Python: actors/ray_worker.py wraps it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

import envs  # noqa: F401  (protobuf fast path before mlagents_envs)
from actors.env_process import (
    ENV_FAULTS,
    REOPEN_FAULTS,
    EnvRestartsExhausted,
    RestartPolicy,
    UnsupportedEnv,
    first_line,
)
from actors.env_start import env_seed, kill_env, last_error, log_of, read_spec, start_env
from actors.agents import Agents, Episode
from actors.config import EnvConfig
from actors.experience import Experience, stack_rows
from actors.config import ExperienceConfig
from actors.noise import explore, make_noise
from actors.config import NoiseConfig
from learner.networks import Actor
from learner.normalizer import NormalizedActor, ObsNormalizer, ObsStats
from mlagents_envs.base_env import ActionTuple


@dataclass
class Rollout:
    """What `EnvWorker.collect` produced."""

    transitions: dict[str, np.ndarray]  # what goes to the replay (n-step: completed windows)
    episodes: list[Episode]
    env_steps: int  # agent transitions received from the env
    env_calls: int  # calls to env.step()

    @property
    def num_transitions(self) -> int:
        return len(self.transitions["reward"])


class EnvWorker:
    """Runs one env for the learner: acts, explores, and emits transitions."""

    def __init__(self, cfg: EnvConfig, noise: NoiseConfig, hidden_size: int = 128,
                 worker_id: int = 0, seed: int = 0, log_folder: str | None = None,
                 id_stride: int = 1, restarts: RestartPolicy | None = None,
                 experience: ExperienceConfig | None = None):
        self.cfg = cfg
        self.worker_id = worker_id  # our index; the env's ML-Agents worker id may differ
        self.seed = seed
        self.log_folder = log_folder
        self.id_stride = id_stride
        self.rng = np.random.default_rng([seed, worker_id])
        self.restart_policy = restarts or RestartPolicy(
            cfg.max_lifetime_restarts, cfg.restarts_rate_limit_n, cfg.restarts_rate_limit_period_s)
        self.restarts = 0
        self.env = None
        self.agents = Agents(cfg.tracks_success(), cfg.agent_timeout)
        self.env_steps = 0  # agent transitions received
        self.env_calls = 0
        self.episodes = 0
        self.closed = False  # close() was called: an env error then is ours, not the env's
        # Until this returns nobody else can close the env: a failure here (a bad
        # hidden_size, Ctrl-C) kills it, or its process and gRPC thread outlive us.
        try:
            self._open()
            self._make_policy(noise, hidden_size, experience or ExperienceConfig())
        except BaseException:
            kill_env(self.env)
            self.env = None
            raise
        if worker_id == 0:  # once per run, not once per env
            note = areas_note(cfg.num_areas, len(self._steps[0]))
            if note:
                print(f"warning: {note}", flush=True)

    def _make_policy(self, noise: NoiseConfig, hidden_size: int,
                     experience: ExperienceConfig) -> None:
        """The actor, its exploration noise and the experience builder, sized by the env."""
        self.actor = Actor(self.obs_size, self.action_size, hidden_size).requires_grad_(False)
        self.normalizer = None  # set by the first weights that carry one (--normalize)
        self.policy = self.actor  # what acts on raw observations
        self.policy_version = 0
        self.noise = make_noise(noise, self.action_size, self.rng)
        self.experience = Experience(experience, self.obs_size, self.action_size, hidden_size)
        # --normalize: what this worker saw since its last report to the learner.
        self.obs_stats = ObsStats(self.obs_size) if experience.obs_stats else None

    def _open(self) -> None:
        """Start the env process (on a free port) and forget any unfinished episode.

        An env whose spec we cannot train (or whose spec changed across a restart) is
        killed before the error is raised: no env process outlives a refusal."""
        self.env = start_env(self.cfg, self.worker_id, self.id_stride,
                             env_seed(self.seed, self.worker_id, self.restarts), self.log_folder)
        try:
            spec = read_spec(self.env, self.cfg.env)
            if hasattr(self, "behavior") and spec != (self.behavior, self.obs_sizes,
                                                      self.action_size):
                raise UnsupportedEnv(f"worker {self.worker_id}: the restarted env has another "
                                     f"spec {spec}; restart the run")
        except UnsupportedEnv:
            kill_env(self.env)
            self.env = None
            raise
        self.behavior, self.obs_sizes, self.action_size = spec
        self.obs_size = sum(self.obs_sizes)
        self._steps = self.env.get_steps(self.behavior)

    def _restart(self, error: Exception) -> None:
        """Replace a crashed, hung or NaN-emitting env; in-flight episodes are dropped.

        A reopen that fails (time-out, port race, changed spec) is one more failed restart,
        under the same limits; once they are spent the env is killed, then we raise."""
        while True:
            if self.closed:  # closed under a running collect (Ray's threads, at Ctrl-C)
                raise error
            reason, log = self._failure(error)
            if not self.restart_policy.allow():
                kill_env(self.env)
                self.env = None
                again = " again" if self.restarts else ""  # (none allowed: its first failure)
                raise EnvRestartsExhausted(
                    f"worker {self.worker_id}: env failed{again} ({reason}) after "
                    f"{self.restarts} restart{'s' * (self.restarts != 1)}, past the restart "
                    "limits" + (f"; its log: {log}" if log else ""))
            print(f"worker {self.worker_id}: env failed ({reason}); restarting it", flush=True)
            kill_env(self.env)
            self.env = None
            self.restarts += 1
            self.noise.reset(np.array(self.agents.clear(), np.int64))
            self.experience.reset()
            try:
                self._open()
                return
            except REOPEN_FAULTS as err:
                error = err

    def _failure(self, error: Exception) -> tuple[str, str | None]:
        """Why the env failed, in one line (with the last error its log holds: an env that
        exited says no more to the client than its exit code), and its log file."""
        log = log_of(self.env) if self.env is not None else None
        said = last_error(log)
        reason = f"{type(error).__name__}: {first_line(error).rstrip('.')}"
        return (f"{reason}; its log ends with {said}" if said else reason), log

    def reset(self) -> None:
        """Reset the env and drop every unfinished episode (the test phase starts): its
        greedy episodes must not carry steps, and return, taken while exploring."""
        self.noise.reset(np.array(self.agents.clear(), np.int64))
        self.experience.reset()
        try:
            self.env.reset()
            self._steps = self.env.get_steps(self.behavior)
        except ENV_FAULTS as err:
            self._restart(err)

    def set_weights(self, weights: dict[str, dict], policy_version: int) -> None:
        """Adopt the learner's weights: {"actor": state_dict, optional "critic" (prioritized
        replay: for the initial priorities), optional "normalizer" (--normalize)}."""
        self.actor.load_state_dict(weights["actor"])
        if "normalizer" in weights:
            if self.normalizer is None:
                self.normalizer = ObsNormalizer(self.obs_size)
                self.policy = NormalizedActor(self.normalizer, self.actor)
            self.normalizer.load_state_dict(weights["normalizer"])
        self.experience.set_critic(weights.get("critic"))
        self.policy_version = policy_version

    def state_dict(self) -> dict:
        """What a checkpoint keeps of this worker: its noise state and its RNG's state."""
        return {"noise": self.noise.state_dict(), "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.noise.load_state_dict(state["noise"])
        self.rng.bit_generator.state = state["rng"]

    def take_obs_stats(self) -> dict | None:
        """The observation statistics counted since the last call (--normalize), or None."""
        return self.obs_stats.take() if self.obs_stats is not None else None

    def act(self, obs: np.ndarray, agent_ids: np.ndarray, mode: str) -> np.ndarray:
        """Actions for the agents' observations: 'random', 'explore' (policy + their own
        noise, clipped to [-1, 1]) or 'greedy'."""
        if mode == "random":
            return self.rng.uniform(-1.0, 1.0, (len(obs), self.action_size)).astype(np.float32)
        with torch.no_grad():
            action = self.policy(torch.from_numpy(obs)).numpy()
        return action if mode == "greedy" else explore(action, self.noise.sample(agent_ids))

    def collect(self, num_steps: int, mode: str = "explore") -> Rollout:
        """Step the env `num_steps` times; every agent's transitions and finished episodes."""
        chunks: list[dict[str, np.ndarray]] = []
        episodes: list[Episode] = []
        received = 0
        for _ in range(num_steps):
            step, ended = self._step(mode)
            received += len(step["reward"])
            chunks.append(self.experience.transitions(step))
            for episode in ended:  # Ray mode's driver places it on the run's step axis
                episode.ended_at = self.env_steps + received
            episodes.extend(ended)
        self.env_steps += received
        self.env_calls += num_steps
        self.episodes += len(episodes)
        if not chunks:  # num_steps == 0, e.g. --test-steps 0
            chunks = [self.experience.transitions(self._no_rows())]
        transitions = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
        if mode != "greedy":  # greedy (test) rows are never stored
            transitions = self.experience.add_priorities(transitions, self.actor,
                                                         self.normalizer)
        return Rollout(transitions, episodes, received, num_steps)

    def _no_rows(self) -> dict[str, np.ndarray]:
        return stack_rows([], self.obs_size, self.action_size, self.policy_version)

    def _step(self, mode: str) -> tuple[dict[str, np.ndarray], list[Episode]]:
        """One env.step(): the rows of every agent that had acted, and ended episodes."""
        decision, _ = self._steps
        obs = flat_obs(decision.obs)
        if self.obs_stats is not None and mode != "greedy":
            self.obs_stats.add(obs)
        action = self.act(obs, decision.agent_id, mode)
        self.agents.decided(decision.agent_id, obs, action)
        try:
            self.env.set_actions(self.behavior, ActionTuple(continuous=action))
            self.env.step()
            self._steps = self.env.get_steps(self.behavior)
        except ENV_FAULTS as err:
            self._restart(err)
            return self._no_rows(), []
        decision, terminal = self._steps
        rows, ended = self.agents.step(decision, terminal, flat_obs(decision.obs),
                                       flat_obs(terminal.obs))
        self._forget(self.agents.vanished())
        for episode in ended:
            self.noise.reset(np.array([episode.agent_id]))
        return stack_rows(rows, self.obs_size, self.action_size, self.policy_version), ended

    def _forget(self, agent_ids: list[int]) -> None:
        """Agents that left without a terminal step: drop their noise and open windows."""
        if agent_ids:
            self.noise.reset(np.array(agent_ids, np.int64))
            self.experience.forget(agent_ids)

    def close(self, kill: bool = False) -> None:
        """Close the env; its process exits (never orphaned). kill: at once, without asking
        it first (one that may hang). Safe to call twice."""
        self.closed = True
        if self.env is not None:
            try:
                if kill:
                    kill_env(self.env)
                else:
                    self.env.close()
            except ENV_FAULTS:
                kill_env(self.env)
            self.env = None


def flat_obs(obs_list: list[np.ndarray]) -> np.ndarray:
    """All vector observations of a batch side by side, float32 (n, obs_size)."""
    if len(obs_list) == 1:
        return obs_list[0].astype(np.float32, copy=False)
    return np.concatenate(obs_list, axis=1).astype(np.float32, copy=False)


def areas_note(num_areas: int, agents: int) -> str | None:
    """An env that starts with fewer agents than --num-areas: its scene does not copy its
    training area on request, so a run gets fewer transitions per step than its flags say,
    and nothing else tells the user (a Unity scene needs ML-Agents' TrainingAreaReplicator)."""
    if agents >= num_areas:
        return None
    return (f"the env started with {agents} agent(s) for --num-areas {num_areas}: its scene "
            "does not copy its training area on request (ML-Agents' TrainingAreaReplicator), "
            f"so each env step gives {agents} transition(s); add the replicator to the scene, "
            "or raise --num-workers for more data")
