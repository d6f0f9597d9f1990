"""EnvWorker: one ML-Agents env process, all of its agents, and a local copy of the policy.

It turns the env's DecisionSteps/TerminalSteps into transitions for EVERY agent, matched
by agent id (never by list position: a terminal step and the same agent's next first
decision arrive in one message). Plain Python: the Ray actor in issue 5 wraps it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

import envs  # noqa: F401  (protobuf fast path before mlagents_envs)
from actors.env_process import (
    ENV_FAULTS,
    REOPEN_FAULTS,
    EnvRestartsExhausted,
    LocalUnityEnvironment,
    RestartPolicy,
    UnsupportedEnv,
    first_line,
    free_worker_id,
)
from actors.experience import Experience, ExperienceConfig, stack_rows
from actors.noise import NoiseConfig, explore, make_noise
from envs.drone import BUNDLED, env_path, is_bundled
from learner.networks import Actor
from mlagents_envs.base_env import ActionTuple
from mlagents_envs.side_channel.engine_configuration_channel import EngineConfigurationChannel


@dataclass
class EnvConfig:
    """The env each worker runs."""

    env: str = BUNDLED
    """path to the env executable without extension; bundled-drone = the headless Drone"""
    num_areas: int = 1
    """training areas (agents) per env process, sent to the env as num_areas"""
    base_port: int = 5005
    """ML-Agents base port: worker k listens on base-port + k"""
    time_scale: float = 20.0
    """Unity time scale, in training and test alike (the headless Drone ignores it)"""
    max_step: int = 1000
    """episode step limit passed to the bundled headless Drone, 0 = none; other envs: unused"""
    env_args: list[str] = field(default_factory=list)
    """extra arguments passed to the env executable"""
    graphics: bool = False
    """render the env (Unity builds); off by default, as mlagents-learn's --no-graphics"""
    timeout_wait: int = 60
    """seconds to wait for the env to answer before it counts as hung and is restarted"""
    max_lifetime_restarts: int = 10
    """env restarts a worker may do in the whole run (as mlagents-learn)"""
    restarts_rate_limit_n: int = 1
    """env restarts a worker may do per --restarts-rate-limit-period-s (as mlagents-learn)"""
    restarts_rate_limit_period_s: float = 60.0
    """period of the restart rate limit, in seconds"""


@dataclass
class Episode:
    """One finished episode of one agent."""

    agent_id: int
    episode_return: float
    length: int
    success: bool  # terminated (not interrupted) with a positive final reward: the goal
    interrupted: bool


@dataclass
class Rollout:
    """What `EnvWorker.collect` produced."""

    transitions: dict[str, np.ndarray]
    episodes: list[Episode]
    env_steps: int  # calls to env.step()

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
        self._open()
        self.policy = Actor(self.obs_size, self.action_size, hidden_size)
        self.policy.requires_grad_(False)
        self.policy_version = 0
        self.noise = make_noise(noise, self.action_size, self.rng)
        self.experience = Experience(experience or ExperienceConfig(), self.obs_size,
                                     self.action_size, hidden_size)
        self.env_steps = 0
        self.episodes = 0

    def _open(self) -> None:
        """Start the env process (on a free port) and forget any unfinished episode.

        An env whose spec we cannot train (or whose spec changed across a restart) is
        killed before the error is raised: no env process outlives a refusal."""
        env_id = free_worker_id(self.cfg.base_port, self.worker_id, self.id_stride)
        self.env, self.channel = open_env(self.cfg, env_id, self.seed + self.restarts,
                                          self.log_folder)
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
        self._last: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # id -> (obs, action)
        self._return: dict[int, float] = {}
        self._length: dict[int, int] = {}

    def _restart(self, error: Exception) -> None:
        """Replace a crashed, hung or NaN-emitting env; in-flight episodes are dropped.

        A reopen that fails (time-out, port race, changed spec) is one more failed restart,
        under the same limits; once they are spent the env is killed, then we raise."""
        while True:
            reason = f"{type(error).__name__}: {first_line(error)}"
            if not self.restart_policy.allow():
                kill_env(self.env)
                self.env = None
                raise EnvRestartsExhausted(
                    f"worker {self.worker_id}: env failed again ({reason}) after "
                    f"{self.restarts} restarts, past the restart limits")
            print(f"worker {self.worker_id}: env failed ({reason}); restarting it", flush=True)
            kill_env(self.env)
            self.env = None
            self.restarts += 1
            if hasattr(self, "noise"):
                self.noise.reset(np.array(list(self._last)))
                self.experience.reset()
            try:
                self._open()
                return
            except REOPEN_FAULTS as err:
                error = err

    def set_weights(self, weights: dict[str, dict], policy_version: int) -> None:
        """Adopt the learner's weights: {"actor": state_dict, optional "critic": state_dict}
        (the critic comes with prioritized replay, for the initial priorities)."""
        self.policy.load_state_dict(weights["actor"])
        self.experience.set_critic(weights.get("critic"))
        self.policy_version = policy_version

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
        for _ in range(num_steps):
            chunk, ended = self._step(mode)
            chunks.append(chunk)
            episodes.extend(ended)
        self.env_steps += num_steps
        self.episodes += len(episodes)
        if not chunks:  # num_steps == 0, e.g. --test-steps 0
            chunks = [self._empty()]
        transitions = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
        if mode != "greedy":  # greedy (test) rows are never stored
            transitions = self.experience.add_priorities(transitions, self.policy)
        return Rollout(transitions, episodes, num_steps)

    def _empty(self) -> dict[str, np.ndarray]:
        return self.experience.transitions(
            stack_rows([], self.obs_size, self.action_size, self.policy_version))

    def _step(self, mode: str) -> tuple[dict[str, np.ndarray], list[Episode]]:
        decision, _ = self._steps
        obs = flat_obs(decision.obs)
        action = self.act(obs, decision.agent_id, mode)
        for agent, o, a in zip(decision.agent_id.tolist(), obs, action):
            self._last[agent] = (o, a)
        try:
            self.env.set_actions(self.behavior, ActionTuple(continuous=action))
            self.env.step()
            self._steps = self.env.get_steps(self.behavior)
        except ENV_FAULTS as err:
            self._restart(err)
            return self._empty(), []
        step, ended = self._transitions(*self._steps)
        return self.experience.transitions(step), ended

    def _transitions(self, decision, terminal) -> tuple[dict[str, np.ndarray], list[Episode]]:
        rows, ended = [], []
        # Terminal steps first: the same agent's next first decision may be in `decision`.
        for i, agent in enumerate(terminal.agent_id.tolist()):
            if agent not in self._last:
                continue
            reward, interrupted = float(terminal.reward[i]), bool(terminal.interrupted[i])
            rows.append(self._row(agent, reward, flat_obs(terminal.obs)[i], not interrupted,
                                  True))
            ended.append(self._finish(agent, reward, interrupted))
        next_obs = flat_obs(decision.obs)
        for i, agent in enumerate(decision.agent_id.tolist()):
            if agent in self._last:  # a continuing episode; otherwise a new one starts here
                rows.append(self._row(agent, float(decision.reward[i]), next_obs[i], False,
                                      False))
        return stack_rows(rows, self.obs_size, self.action_size, self.policy_version), ended

    def _row(self, agent: int, reward: float, next_obs: np.ndarray, terminated: bool,
             episode_end: bool):
        obs, action = self._last.pop(agent)
        self._return[agent] = self._return.get(agent, 0.0) + reward
        self._length[agent] = self._length.get(agent, 0) + 1
        return agent, obs, action, reward, next_obs, float(terminated), episode_end

    def _finish(self, agent: int, reward: float, interrupted: bool) -> Episode:
        self.noise.reset(np.array([agent]))
        episode_return = self._return.pop(agent)
        length = self._length.pop(agent)
        success = not interrupted and reward > 0.0
        return Episode(agent, episode_return, length, success, interrupted)

    def set_time_scale(self, time_scale: float) -> None:
        self.channel.set_configuration_parameters(time_scale=time_scale)

    def close(self) -> None:
        """Close the env; its process exits (never orphaned). Safe to call twice."""
        if self.env is not None:
            try:
                self.env.close()
            except ENV_FAULTS:
                kill_env(self.env)
            self.env = None


def kill_env(env) -> None:
    """Make sure a failed env's process is gone and its port released (None: nothing)."""
    if env is None:
        return
    process = getattr(env, "_process", None)  # the stock client keeps the Popen here
    if process is not None and process.poll() is None:
        process.kill()
    try:
        env.close()
    except ENV_FAULTS:
        pass


def open_env(cfg: EnvConfig, worker_id: int, seed: int, log_folder: str | None):
    """Start the env process and connect; returns (env, engine configuration channel)."""
    channel = EngineConfigurationChannel()
    args = list(cfg.env_args)
    if is_bundled(cfg.env):
        args += ["--max-step", str(cfg.max_step)]
    env = LocalUnityEnvironment(file_name=env_path(cfg.env), worker_id=worker_id,
                                base_port=cfg.base_port, seed=seed,
                                no_graphics=not cfg.graphics,
                                timeout_wait=cfg.timeout_wait, additional_args=args,
                                side_channels=[channel], log_folder=log_folder,
                                num_areas=cfg.num_areas)
    try:
        channel.set_configuration_parameters(time_scale=cfg.time_scale)
        env.reset()
    except BaseException:
        kill_env(env)
        raise
    return env, channel


def read_spec(env, env_path: str) -> tuple[str, tuple[int, ...], int]:
    """(behavior name, vector observation sizes, action size) of the env's one behavior;
    UnsupportedEnv (one line: the problem and the fix) for a spec DDPG cannot train."""
    names = list(env.behavior_specs)
    if len(names) != 1:
        raise UnsupportedEnv(f"{env_path} has {len(names)} behaviors ({', '.join(names)}); "
                             "drone-ddpg trains exactly one: give the scene one Behavior Name")
    name, spec = names[0], env.behavior_specs[names[0]]
    shapes = [tuple(o.shape) for o in spec.observation_specs]
    if any(len(s) != 1 for s in shapes):
        raise UnsupportedEnv(f"behavior {name} has visual or other non-vector observations "
                             f"(shapes {shapes}); drone-ddpg takes vector observations only: "
                             "use vector sensors")
    actions = spec.action_spec
    if actions.discrete_size:
        kind = "hybrid" if actions.continuous_size else "discrete"
        raise UnsupportedEnv(f"behavior {name} has {kind} actions ({actions.continuous_size} "
                             f"continuous, discrete branches {tuple(actions.discrete_branches)})"
                             "; DDPG needs continuous actions only: make every action "
                             "continuous")
    if not actions.continuous_size:
        raise UnsupportedEnv(f"behavior {name} has no actions; give it continuous actions")
    return name, tuple(s[0] for s in shapes), actions.continuous_size


def flat_obs(obs_list: list[np.ndarray]) -> np.ndarray:
    """All vector observations of a batch side by side, float32 (n, obs_size)."""
    if len(obs_list) == 1:
        return obs_list[0].astype(np.float32, copy=False)
    return np.concatenate(obs_list, axis=1).astype(np.float32, copy=False)

