"""drone-ddpg's one entry point: `python launch.py [CONFIG.yaml] [--preset NAME] [flags]`,
and `python launch.py plot --run-id X` for a run's learning curve.

`--mode ray` (the default) runs env workers, replay and learner as Ray actors: on a fresh
local Ray instance, or on an existing cluster with `--address auto|host:port`.
`--mode local` builds every component in this one process and never imports Ray. Bad
input ends with one line on stderr naming the problem and the fix, and exit status 2.
"""

from __future__ import annotations

import os
import signal
import sys

import envs  # noqa: F401  (protobuf fast path before mlagents_envs)


def gymnasium_problem(cfg, env_id: str) -> str | None:
    """env_problem for --env gymnasium:<env_id>: the env made once, as the bridge will make
    it, and its spec checked as a worker will check it."""
    from actors.env_start import check_behavior
    from envs.gymnasium import check_env_id
    from envs.gymnasium.__main__ import bridge_options
    from envs.in_process import mlagents_spec

    if any(a.split("=", 1)[0] == "--env-id" for a in cfg.env.env_args):
        return (f"--env-args --env-id conflicts with --env {cfg.env.env}, which names the env "
                "(the bridge took the last one given): drop --env-id from --env-args")
    try:  # its --env-args too
        bridge = check_env_id(env_id, *bridge_options(cfg.env.env_args))
    except ValueError as err:  # said for the env process's --env-id: say it for --env
        return str(err).replace(f"--env-id {env_id}:", f"--env {cfg.env.env}:", 1)
    try:  # one the bridge serves but DDPG cannot train (images, discrete actions)
        check_behavior(bridge.behavior_name, mlagents_spec(bridge.behavior), cfg.env.env)
    except ValueError as err:
        return str(err)
    return None


def env_problem(cfg) -> str | None:
    """A one-line complaint about --env, or None when it looks launchable. A Gymnasium env
    is made once here, so that a space the bridge cannot serve is refused before anything
    starts."""
    from envs import resolve_env
    from envs.drone import is_bundled
    from envs.executable import executable_problem, launch_problem, missing_problem
    from envs.gymnasium import env_id_of

    env_id = env_id_of(cfg.env.env)
    problem = gymnasium_problem(cfg, env_id) if env_id is not None else None
    if problem:
        return problem
    if env_id is not None or is_bundled(cfg.env.env):  # one of this project's launchers
        if cfg.env.transport == "in-process":
            return None  # nothing is launched
        file_name = resolve_env(cfg.env.env)[0]
        return launch_problem(cfg.env.env, file_name, file_name + ".x86_64")
    base = cfg.env.env
    for suffix in (".x86_64", ".x86"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    candidates = [base + ".x86_64", base + ".x86", base]
    found = [c for c in candidates if os.path.isfile(c)]
    if not found:
        return missing_problem(cfg.env.env, base) or (
            f"--env {cfg.env.env!r}: no such env executable (looked for {base}.x86_64); "
            "give the path of a Unity Linux build without its extension, bundled-drone, "
            "or gymnasium:<env-id>")
    if not os.access(found[0], os.X_OK):
        return f"--env {found[0]!r} is not executable: run chmod +x {found[0]!r}"
    return (executable_problem(found[0], other_machines=bool(cfg.run.address))
            or launch_problem(cfg.env.env, resolve_env(cfg.env.env)[0], found[0]))


def device_problem(cfg) -> str | None:
    """--device cuda or --cudagraphs on a machine (or fresh local Ray) without a GPU."""
    wants_gpu = cfg.learner.device == "cuda" or cfg.learner.cudagraphs
    if not wants_gpu or (cfg.run.mode == "ray" and cfg.run.address):
        return None  # on a cluster the GPU may be on another node: checked after joining
    import torch

    if torch.cuda.is_available():
        return None
    if cfg.learner.cudagraphs:
        return "--cudagraphs needs a CUDA device and none is available here; drop --cudagraphs"
    return "--device cuda but no CUDA device is available here; use --device auto or cpu"


def initialize_mismatch(cfg) -> str | None:
    """--initialize-from's checkpoint against this run's options (the env's sizes wait for
    the env), said before anything starts."""
    from learner.checkpoint import INITIALIZING, CheckpointError, check_options, load_checkpoint
    from runner.run_dir import initialize_path

    path = initialize_path(cfg.run.results_dir, cfg.run.initialize_from)
    try:
        check_options(load_checkpoint(path, holds="learner")["learner"], cfg.learner,
                      INITIALIZING)
    except CheckpointError as err:
        return f"--initialize-from {path}: {err}"
    return None


def stop_on_sigterm() -> None:
    """SIGTERM (a scheduler, `kill`) ends the run the way Ctrl-C does: checkpoint, close."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def main(argv: list[str]) -> int:
    if argv[:1] == ["plot"]:  # launch.py plot --run-id X: the run's learning curve
        from runner.plot import main as plot

        return plot(argv[1:])
    from runner.cli import parse
    from runner.config import validate
    from runner.config_warnings import warnings_for
    from runner.errors import RunError
    from runner.ray_address import address_problem
    from runner.run_dir import initialize_problem, prepare_run_dir, release_run_dir

    try:
        cfg = parse(argv)
        validate(cfg)
        problem = env_problem(cfg) or device_problem(cfg) or (
            not (cfg.run.resume or cfg.run.inference) and cfg.run.initialize_from is not None
            and (initialize_problem(cfg.run.results_dir, cfg.run.run_id,
                                    cfg.run.initialize_from) or initialize_mismatch(cfg))) or (
            cfg.run.mode == "ray" and address_problem(
                cfg.run.address, resumed=cfg.run.resume or cfg.run.inference))
        if problem:
            raise ValueError(problem)
        run_dir = prepare_run_dir(cfg.run.results_dir, cfg.run.run_id, cfg.run.resume,
                                  cfg.run.force, cfg.run.inference)
    except (ValueError, RunError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"run {cfg.run.run_id!r} ({cfg.run.mode} mode): results in {run_dir}", flush=True)
    for warning in warnings_for(cfg):
        print(f"warning: {warning}", flush=True)
    try:
        return train_and_report(cfg, run_dir)
    finally:  # --force: the replaced run goes only if this one started
        note = release_run_dir(run_dir, cfg.run.force)
        if note:
            print(note, flush=True)


def train_and_report(cfg, run_dir: str) -> int:
    from actors.signals import signals_deferred

    # A Ctrl-C in the middle of these imports (torch, numpy, onnx) could leave a module half
    # made: torch swallowed one in numpy's import, and the next import of numpy.exceptions
    # recursed until RecursionError (a traceback and status 1, not one line and 130). It is
    # raised once they are done.
    with signals_deferred():
        from runner.report import end_of_run_table
        from runner.run_dir import checkpoint_path
        from runner.session import finished_before_start

        if cfg.run.mode == "local":
            from runner.local import run_local as run
        else:  # Ray is imported only here
            from runner.ray_start import run_ray as run
    finished = finished_before_start(cfg, checkpoint_path(run_dir))
    if finished:  # said before anything starts
        print(finished)
        return 0

    try:
        summary = run(cfg, run_dir)
    except KeyboardInterrupt:
        print("interrupted: envs closed", file=sys.stderr)
        return 130
    except Exception as err:
        line = error_line(err, cfg, run_dir)
        if line is None:
            raise  # a bug, whose traceback says where
        print(f"error: {line}", file=sys.stderr)
        return 2
    if summary is None:
        return 0
    print(end_of_run_table(summary, run_dir, onnx_path(run_dir), cfg.run.test_steps))
    return 0


def error_line(err: Exception, cfg, run_dir: str) -> str | None:
    """The one line (problem and fix) for what ended a run with exit status 2, or None
    when `err` is none of those."""
    from actors.env_process import EnvRestartsExhausted
    from learner.checkpoint import CheckpointError
    from mlagents_envs.exception import UnityException, UnityWorkerInUseException
    from runner.errors import RayUnreachable, RunAborted, out_of_memory, write_error

    if isinstance(err, UnityWorkerInUseException):  # ours names the ports, the client's not
        return str(err) if "--base-port" in str(err) else f"{err} Pass another --base-port."
    if isinstance(err, UnityException):  # the env did not start or stopped answering
        return f"env {cfg.env.env!r}: {str(err).splitlines()[0]}"
    if isinstance(err, EnvRestartsExhausted):  # (it names the env's log, if it has one)
        return f"{err}; fix the env, then --resume continues from the checkpoint"
    if isinstance(err, (CheckpointError, ValueError, RayUnreachable, RunAborted)):
        return str(err)
    memory = out_of_memory(err)  # numpy's MemoryError, torch's allocators' RuntimeError
    if memory is not None:
        return (f"out of memory ({str(memory)[:200] or 'no detail'}); lower --hidden-size "
                f"({cfg.learner.hidden_size}) or --buffer-size ({cfg.replay.buffer_size} "
                "rows), or use a machine with more memory")
    if isinstance(err, OSError):  # last: none of the above is one
        return write_error(err, run_dir)  # None: not a file we write
    return None


def onnx_path(run_dir: str) -> str | None:
    found = sorted(f for f in os.listdir(run_dir) if f.endswith(".onnx"))
    return os.path.join(run_dir, found[0]) if found else None


def entry(argv: list[str]) -> int:
    """main, and a Ctrl-C before the run's own handlers (while torch or Ray import). SIGTERM
    is a Ctrl-C from here on: installed later, a SIGTERM while the flags were read and the
    env checked (about a second) killed the process with no line and status 143."""
    stop_on_sigterm()
    try:
        return main(argv)
    except KeyboardInterrupt:
        print("interrupted before training started: nothing to save", file=sys.stderr)
        return 130


def finish(code: int):
    """Exit with `code`. Once Ray was imported, past the C library's exit handlers: Ray
    2.60's (CoreWorkerProcess::HandleAtExit) destroys the driver's core worker while that
    worker's own thread still records metrics on it, and now and then (3 in 40 Ctrl-Cs
    during start-up) the process died with a segfault, status 139, after its clean exit.
    Ray is shut down by then (runner/ray_start.py); Python's atexit handlers still run.
    A Ctrl-C or SIGTERM from here on (a second one, pressed while the process winds down:
    everything is saved and closed) no longer changes `code`: it killed the process with
    that signal (status -2 or -15, 143 for SIGTERM in a shell, not 130), or raised in an
    atexit handler. Ignored where the interpreter winds down (its own clean-up puts back
    the default action of any handler of ours), and ends an atexit handler at once."""
    if "ray" not in sys.modules:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        sys.exit(code)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: os._exit(code))
    import atexit

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    finish(entry(sys.argv[1:]))
