"""Opening one env for an EnvWorker: start its process, connect, read the spec DDPG trains;
and killing it.

An env that never connects gets a one-line message of ours, with a fix: the stock client's
are several lines (launch.py shows the first) or give no fix.
"""

from __future__ import annotations

import os
import re

import envs  # noqa: F401  (protobuf fast path before mlagents_envs)
from actors.config import EnvConfig
from actors.env_output import last_output, log_file_arg, output_path
from actors.env_process import (
    ENV_FAULTS,
    LocalUnityEnvironment,
    UnsupportedEnv,
    first_line,
    free_worker_id,
)
from envs import resolve_env
from envs.drone import is_bundled
from envs.gymnasium import env_id_of
from envs.in_process import open_in_process
from mlagents_envs.exception import UnityEnvironmentException, UnityTimeOutException
from mlagents_envs.side_channel.engine_configuration_channel import EngineConfigurationChannel
from mlagents_envs.side_channel.environment_parameters_channel import (
    EnvironmentParametersChannel,
)

ML_AGENTS_BUILD = "is it an ML-Agents build (a Unity player with the ML-Agents package)?"
GYM_FLAT_OBS = ("register a wrapped version of the env whose observations are 1-D Boxes "
                "(e.g. gymnasium.wrappers.FlattenObservation)")
GYM_BOX_ACTIONS = "register a wrapped version of the env whose action space is one Box"


def env_seed(seed: int, worker_id: int, restarts: int) -> int:
    """The seed worker `worker_id` gives its env after `restarts` restarts: seed + k for
    worker k, as mlagents-learn seeds its env workers, moved by 2**16 per restart (more than
    any worker index, since ports bound them) so that no two envs of a run share a stream;
    wrapped into the int32 the protocol carries."""
    return (seed + worker_id + (restarts << 16)) % 2**31


def kill_env(env) -> None:
    """Make sure a failed env's processes are gone and its port released (None: nothing).
    Killed before the close: a hung env would not answer one."""
    if env is None:
        return
    env.kill()  # its whole session: children of a script or launcher too
    try:
        env.close()
    except ENV_FAULTS:
        pass


def start_env(cfg: EnvConfig, worker_id: int, id_stride: int, seed: int,
              log_folder: str | None):
    """Worker `worker_id`'s env: in this process (--transport in-process), else its own
    process on a free port (worker_id, or the next free id every id_stride)."""
    if cfg.transport == "in-process":
        try:
            return open_in_process(cfg.env, env_arguments(cfg)[1], seed, cfg.num_areas)
        except ValueError as err:  # what the executable says and exits 2 on
            raise UnsupportedEnv(f"--env {cfg.env}: {first_line(err)}") from err
        except RuntimeError as err:
            raise nan_at_first_reset(err, "") from err
    env_id = free_worker_id(cfg.base_port, worker_id, id_stride)
    return open_env(cfg, env_id, seed, log_folder)[0]


def env_arguments(cfg: EnvConfig) -> tuple[str, list[str]]:
    """What to launch for cfg.env, and its arguments (--env-args and the Drone's limit)."""
    file_name, args = resolve_env(cfg.env)  # the Drone, the Gymnasium bridge, a Unity build
    args += cfg.env_args
    if is_bundled(cfg.env):
        args += ["--max-step", str(cfg.max_step)]
    return file_name, args


def open_env(cfg: EnvConfig, worker_id: int, seed: int, log_folder: str | None):
    """Start the env process and connect; returns (env, engine configuration channel)."""
    channel, params = EngineConfigurationChannel(), EnvironmentParametersChannel()
    for name, value in cfg.env_params.items():  # sent with the first reset, as mlagents-learn
        params.set_float_parameter(name, value)
    file_name, args = env_arguments(cfg)
    close_clients_at_exit()
    try:
        env = LocalUnityEnvironment(file_name=file_name, worker_id=worker_id,
                                    base_port=cfg.base_port, seed=seed,
                                    no_graphics=not cfg.graphics,
                                    timeout_wait=cfg.timeout_wait, additional_args=args,
                                    side_channels=[channel, params], log_folder=log_folder,
                                    num_areas=cfg.num_areas)
    except (UnityTimeOutException, UnityEnvironmentException) as err:
        raise did_not_connect(err, cfg, env_log(log_folder, worker_id, args)) from err
    try:
        channel.set_configuration_parameters(time_scale=cfg.time_scale)
        env.reset()
    except (UnityTimeOutException, UnityEnvironmentException) as err:  # e.g. making its areas
        kill_env(env)
        log = env_log(log_folder, worker_id, args)
        raise did_not_connect(err, cfg, log, first_reset=True) from err
    except RuntimeError as err:
        kill_env(env)
        log = env_log(log_folder, worker_id, args)
        raise nan_at_first_reset(err, f" (its log: {log})") from err
    except BaseException:
        kill_env(env)
        raise
    return env, channel


def nan_at_first_reset(err: RuntimeError, log: str) -> Exception:
    """The stock client's NaN/Inf guard (or the in-process env's), tripped by the first
    reset: no restart mends a reset that gives them, so one line with the fix. Any other
    RuntimeError as it was."""
    if "NaN" not in str(err) and "Infinite" not in str(err):  # the stock client's two words
        return err
    return UnityEnvironmentException(
        f"its first reset gave NaN or Inf ({first_line(err).rstrip('.')}): fix the env's "
        f"reset or its observations{log}")


def did_not_connect(err: Exception, cfg: EnvConfig, log: str,
                    first_reset: bool = False) -> Exception:
    """Our one line for an env that timed out, exited or spoke another protocol version
    before its handshake (or, first_reset, that connected and then failed at its first
    reset); any other start-up error as it was (one line with its fix)."""
    said = last_error(log)
    said = f" its log ends with {said};" if said else ""
    printed = last_output(log)  # e.g. a dynamic linker's error, which no log holds
    said += f" it last printed {printed!r} ({output_path(log)});" if printed else ""
    log = f"its log: {log}" if os.path.isfile(log) else f"it wrote no log ({log})"
    build = "" if first_reset else f" {ML_AGENTS_BUILD}"  # it spoke ML-Agents: it is one
    if isinstance(err, UnityTimeOutException):
        what = "did not answer its first reset" if first_reset else "did not connect"
        return UnityTimeOutException(
            f"{what} within --timeout-wait {cfg.timeout_wait} s:{build} {log}; raise "
            "--timeout-wait for a slow start")
    stock = first_line(err).rstrip(".")
    if stock.startswith("Environment shut down with "):  # "... return code 0."
        how = stock.removeprefix("Environment shut down with ")
        when = "at its first reset" if first_reset else "before connecting"
        return UnityEnvironmentException(
            f"exited {when} ({how}):{said}{build} {log}; run it by hand to see why it exits")
    if stock.startswith("The communication API version is not compatible"):
        return UnityEnvironmentException(
            f"{stock}: build it with an ML-Agents release whose API matches "
            "(https://github.com/Unity-Technologies/ml-agents/releases)")
    return err


def env_log(log_folder: str | None, worker_id: int, args: list[str]) -> str:
    """Where the env writes its log: -logFile in its arguments, else the client's choice
    (Player-<ML-Agents worker id>.log in the run's env_logs)."""
    given = log_file_arg(args)
    if given is not None:
        return given
    if log_folder is None:
        return "none (no log folder)"
    return os.path.join(log_folder, f"Player-{worker_id}.log")


def log_of(env) -> str | None:
    """The log file of an env this worker started over the protocol; None in-process, or
    when it writes none (no log folder: its output is the trainer's)."""
    if not isinstance(env, LocalUnityEnvironment):
        return None
    log = env_log(env._log_folder, env._worker_id, list(env._additional_args or []))
    return log if os.path.isfile(log) else None


ERROR_LINE = re.compile(r"^(?:[\w.]+\.)?(\w+(?:Error|Exception|Exit)): \S")
# What our players (the Drone, the Gymnasium bridge) put before each line of their log.
PLAYER_PREFIX = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ \[[^\]]* pid \d+\] ")


def last_error(log: str | None, tail_bytes: int = 65536) -> str:
    """The last 'SomeError: message' line of an env's log, '' if none: why a Python env
    (the Drone, the Gymnasium bridge) or a Unity player stopped, which the stock client
    reports only as its exit code."""
    try:
        with open(log or "", "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - tail_bytes))
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    lines = [PLAYER_PREFIX.sub("", line.strip()) for line in lines]
    found = [line for line in lines if ERROR_LINE.match(line)]
    return found[-1][:300] if found else ""


def read_spec(env, env_path: str) -> tuple[str, tuple[int, ...], int]:
    """(behavior name, vector observation sizes, action size) of the env's one behavior;
    UnsupportedEnv (one line: the problem and the fix) for a spec DDPG cannot train."""
    names = list(env.behavior_specs)
    if len(names) != 1:
        raise UnsupportedEnv(f"{env_path} has {len(names)} behaviors ({', '.join(names)}); "
                             "drone-ddpg trains exactly one: give the scene one Behavior Name")
    return check_behavior(names[0], env.behavior_specs[names[0]], env_path)


def check_behavior(name: str, spec, env_path: str) -> tuple[str, tuple[int, ...], int]:
    """read_spec for one behavior's stock-client BehaviorSpec (also checked before a
    Gymnasium env starts, from what the bridge will serve)."""
    gym = env_id_of(env_path) is not None  # the fix is then a wrapper, not a Unity setting
    shapes = [tuple(o.shape) for o in spec.observation_specs]
    if any(len(s) != 1 for s in shapes):
        raise UnsupportedEnv(f"behavior {name} has visual or other non-vector observations "
                             f"(shapes {shapes}); drone-ddpg takes vector observations only: "
                             + (GYM_FLAT_OBS if gym else "use vector sensors"))
    actions = spec.action_spec
    if actions.discrete_size:
        kind = "hybrid" if actions.continuous_size else "discrete"
        raise UnsupportedEnv(f"behavior {name} has {kind} actions ({actions.continuous_size} "
                             f"continuous, discrete branches {tuple(actions.discrete_branches)})"
                             "; DDPG needs continuous actions only: "
                             + (GYM_BOX_ACTIONS if gym else "make every action continuous"))
    if not actions.continuous_size:
        raise UnsupportedEnv(f"behavior {name} has no actions; give it continuous actions")
    return name, tuple(s[0] for s in shapes), actions.continuous_size


_closing_at_exit: list[bool] = []  # close_clients_at_exit's hook is registered


def close_clients_at_exit() -> None:
    """Before this process joins its threads at exit, close every stock client still open
    (registered once per process, by the first env it opens).

    The client's gRPC handler thread waits on a pipe for the client's next message. A
    process made to exit while its env opened (a Ray actor whose driver was interrupted, a
    Ctrl-C mid-handshake) left a client that would never send one, and Python's exit joined
    that thread forever: the process outlived the run. Registered after concurrent.futures
    registered its own join, so this runs first (threading runs the last one first)."""
    if _closing_at_exit:
        return
    _closing_at_exit.append(True)
    import threading
    from mlagents_envs.rpc_communicator import RpcCommunicator  # (imports the pool's join)

    def close_open_clients() -> None:
        import gc

        for obj in gc.get_objects():
            # type(), not isinstance(): that reads __class__, which some objects (torch's
            # deprecated aliases) answer with a warning
            if issubclass(type(obj), RpcCommunicator) and obj.is_open:
                try:
                    obj.close()  # the pipe's waiting handler gets the client's 'bye'
                except Exception:  # noqa: BLE001  (at exit: nothing to report it to)
                    pass

    register = getattr(threading, "_register_atexit", None)  # CPython >= 3.9
    if register is not None:
        register(close_open_clients)
