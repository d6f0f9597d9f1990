"""drone-ddpg's one entry point: `python launch.py [--preset NAME] [flags]`.

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


def env_problem(cfg) -> str | None:
    """A one-line complaint about --env, or None when it looks launchable."""
    from envs.drone import DRONE_EXECUTABLE

    if cfg.env.env == DRONE_EXECUTABLE:
        return None
    base = cfg.env.env
    for suffix in (".x86_64", ".x86"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    candidates = [base + ".x86_64", base + ".x86", base]
    found = [c for c in candidates if os.path.isfile(c)]
    if not found:
        return (f"--env {cfg.env.env!r}: no such env executable (looked for {base}.x86_64); "
                "give the path of a Unity Linux build without its extension")
    if not os.access(found[0], os.X_OK):
        return f"--env {found[0]!r} is not executable: run chmod +x {found[0]!r}"
    return None


def stop_on_sigterm() -> None:
    """SIGTERM (a scheduler, `kill`) ends the run the way Ctrl-C does: checkpoint, close."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def main(argv: list[str]) -> int:
    from runner.config import parse, validate
    from runner.results import RunError, prepare_run_dir

    try:
        cfg = parse(argv)
        validate(cfg)
        problem = env_problem(cfg)
        if problem:
            raise ValueError(problem)
        run_dir = prepare_run_dir(cfg.run.results_dir, cfg.run.run_id, cfg.run.resume,
                                  cfg.run.force, cfg.run.inference)
    except (ValueError, RunError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    stop_on_sigterm()
    return train_and_report(cfg, run_dir)


def train_and_report(cfg, run_dir: str) -> int:
    from learner.checkpoint import CheckpointError
    from runner.local import run_local
    from mlagents_envs.exception import UnityException, UnityWorkerInUseException

    print(f"run {cfg.run.run_id!r} ({cfg.run.mode} mode): results in {run_dir}", flush=True)
    try:
        summary = run_local(cfg, run_dir) if cfg.run.mode == "local" else run_ray(cfg, run_dir)
    except UnityWorkerInUseException as err:
        print(f"error: {err} Pass another --base-port.", file=sys.stderr)
        return 2
    except UnityException as err:  # the env did not start or stopped answering
        print(f"error: env {cfg.env.env!r}: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    except (CheckpointError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: envs closed", file=sys.stderr)
        return 130
    if summary is None:
        return 0
    test, train = summary["test"], summary["train"]
    print(f"done: {summary['env_steps']} env steps, {summary['learner_steps']} updates in "
          f"{summary['wall_s']:.0f} s; train success {train['success_rate']}, test success "
          f"{test['success_rate']} over {test['episodes']} episodes; results in {run_dir}")
    return 0


def run_ray(cfg, run_dir: str):
    """Start (or join) Ray, train on it, and always shut it down."""
    import ray

    from runner.distributed import run_distributed

    if cfg.run.address is None:
        # address="local": a fresh instance; a bare init() could join a stale cluster.
        ray.init(address="local", include_dashboard=False, log_to_driver=True,
                 configure_logging=True, logging_level="warning")
    else:
        ray.init(address=cfg.run.address, log_to_driver=True, logging_level="warning")
    stop_on_sigterm()  # after ray.init, which may install its own handler
    try:
        return run_distributed(cfg, os.path.abspath(run_dir))
    finally:
        ray.shutdown()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
