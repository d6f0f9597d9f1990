"""Soak: train on Ray for a bounded time while a random env process is SIGKILLed every 30 s.

Printed and written to bench/results/soak.json: env steps, learner steps, env restarts,
the time from each kill to its worker's restart being seen by the driver, and the
transitions lost (what the killed envs were stepping when they died: at most the
in-flight step of a killed worker, never data already collected). Target: it completes,
and every kill is followed by a restart within 15 s.

Run: `.venv/bin/python -m bench.soak [--minutes 5] [--kill-every 30] [--workers 2]`.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import random
import signal
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import ray

import envs  # noqa: F401
from runner.config import Config
from runner.distributed_metrics import Monitor
from runner.ray_fleet import Fleet

RESULTS = os.path.join(ROOT, "bench", "results")
RESTART_DEADLINE_S = 15.0


def soak_config(workers: int) -> Config:
    cfg = Config()
    cfg.run = dataclasses.replace(cfg.run, run_id="soak", num_workers=workers,
                                  train_steps=10**9, log_interval=30.0)
    # Killing every 30 s is far above mlagents-learn's default budget (1 restart/min, 10
    # in a lifetime): allow it, this benchmark is about recovering, not rate limiting.
    cfg.env = dataclasses.replace(cfg.env, base_port=6200, max_lifetime_restarts=1000,
                                  restarts_rate_limit_n=10, restarts_rate_limit_period_s=60.0)
    return cfg


def kill_random_env(fleet: Fleet, rng: random.Random) -> int:
    k = rng.randrange(len(fleet.workers))
    pid = ray.get(fleet.workers[k].env_pid.remote())
    os.kill(pid, signal.SIGKILL)
    return k


def wait_for_restart(fleet: Fleet, monitor: Monitor, k: int, before: int) -> float | None:
    """Seconds until worker k reports one more env restart, or None past the deadline."""
    started = time.monotonic()
    while time.monotonic() - started < RESTART_DEADLINE_S:
        monitor.poll(fleet)
        if monitor.workers[k]["restarts"] > before:
            return time.monotonic() - started
        time.sleep(0.2)
    return None


def soak(args) -> dict:
    cfg = soak_config(args.workers)
    fleet = Fleet(cfg, tempfile.mkdtemp(prefix="soak-"))
    monitor = Monitor(cfg, tempfile.mkdtemp(prefix="soak-metrics-"), fleet.specs, fleet.res)
    rng, latencies = random.Random(0), []
    fleet.start_loops()
    end = time.monotonic() + args.minutes * 60
    next_kill = time.monotonic() + args.kill_every
    try:
        while time.monotonic() < end:
            time.sleep(1.0)
            fleet.check()
            monitor.poll(fleet)
            if time.monotonic() >= next_kill:
                k = kill_random_env(fleet, rng)
                latency = wait_for_restart(fleet, monitor, k, monitor.workers[k]["restarts"])
                latencies.append(latency)
                print(f"killed worker {k}'s env: restarted after "
                      f"{'NEVER' if latency is None else f'{latency:.1f} s'}", flush=True)
                next_kill += args.kill_every
        completed = True
    finally:
        fleet.stop_loops()
        monitor.poll(fleet)
        fleet.close()
        monitor.close()
    return result(monitor, latencies, completed)


def result(monitor: Monitor, latencies: list, completed: bool) -> dict:
    stepped = sum(w["env_steps"] for w in monitor.workers.values())
    inserted = sum(w["inserted"] for w in monitor.workers.values())
    ok = [x for x in latencies if x is not None]
    return {
        "completed": completed, "env_steps": monitor.env_steps,
        "learner_steps": monitor.learner["learner_steps"],
        "kills": len(latencies),
        "env_restarts": sum(w["restarts"] for w in monitor.workers.values()),
        "restart_latency_s": {"max": max(ok, default=None), "mean":
                              sum(ok) / len(ok) if ok else None},
        "all_restarted_within_15s": len(ok) == len(latencies),
        "transitions_lost": stepped - inserted,
        "workers": list(monitor.workers.values()),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--kill-every", type=float, default=30.0)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    ray.init(address="local", include_dashboard=False, logging_level="warning",
             _node_ip_address="127.0.0.1")
    try:
        out = soak(args)
    finally:
        ray.shutdown()
    out.update(minutes=args.minutes, kill_every_s=args.kill_every,
               date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    print(json.dumps({k: v for k, v in out.items() if k != "workers"}, indent=2))
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "soak.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
