"""Opening one env for an EnvWorker: start its process, connect, read the spec DDPG trains;
and killing it."""

from __future__ import annotations

import envs  # noqa: F401  (protobuf fast path before mlagents_envs)
from actors.config import EnvConfig
from actors.env_process import ENV_FAULTS, LocalUnityEnvironment, UnsupportedEnv
from envs import resolve_env
from envs.drone import is_bundled
from mlagents_envs.side_channel.engine_configuration_channel import EngineConfigurationChannel


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
    file_name, args = resolve_env(cfg.env)  # the Drone, the Gymnasium bridge, a Unity build
    args += cfg.env_args
    if is_bundled(cfg.env):
        args += ["--max-step", str(cfg.max_step)]
    env = LocalUnityEnvironment(file_name=file_name, worker_id=worker_id,
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
