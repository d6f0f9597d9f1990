"""How Ray mode scales, measured side by side in one run.

1. Env throughput: total env steps/s (transitions inserted into the replay per second)
   with 1, 2, ... env worker actors, with the learner paused (updates_per_step 0: nothing
   holds the workers back) and running (updates_per_step 1: the samples-per-insert limiter
   ties the workers to the learner). speedup_N_workers = rate(N) / rate(1), paused.
2. Learner efficiency: updates/s of the learner actor fed by the replay actor (workers
   stopped once the replay holds data, so they take no CPU from it) against a bare loop of
   the same `update` on pre-sampled tensors in this process: what Ray costs the learner.
3. Replay actor capacity: insert calls/s (chunks of 32 transitions, 4 calls in flight
   from this driver) and fetch calls/s (the learner's device-replay feed), to model where
   one replay actor saturates (docs/scaling.md).
4. End to end: wall-clock seconds until the rolling training success rate (last 50
   episodes) reaches 0.8, for `--mode ray --num-workers 2` (defaults) against the seed
   preset in local mode (the seed script's setup, single process).

The machine is shared: compare the ratios, which are taken minutes apart in one run.
Run: `.venv/bin/python -m bench.scaling [--workers 1 2] [--seconds 10] [--skip-e2e]`.
Writes bench/results/scaling.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import numpy as np
import ray
import torch

import envs  # noqa: F401
from bench.learning import steps_to_threshold
from learner import ddpg
from learner.learner import Learner
from replay.buffer import ReplayBuffer
from runner.config import Config
from runner.ray_fleet import Fleet

RESULTS = os.path.join(ROOT, "bench", "results")


def config(workers: int, updates_per_step: float, port: int) -> Config:
    cfg = Config()
    cfg.run = dataclasses.replace(cfg.run, num_workers=workers, updates_per_step=updates_per_step,
                                  warmup_actions="policy")
    cfg.env = dataclasses.replace(cfg.env, base_port=port)
    cfg.replay = dataclasses.replace(cfg.replay, learning_starts=1000)
    return cfg


def running(cfg: Config) -> Fleet:
    """Every actor started, with its loop running."""
    fleet = Fleet(cfg, tempfile.mkdtemp(prefix="scaling-"))
    fleet.start_loops()
    return fleet


def inserted(fleet: Fleet) -> int:
    return ray.get(fleet.replay.stats.remote())["inserted"]


def env_rate(workers: int, learner_on: bool, seconds: float, port: int) -> float:
    """Transitions inserted per second, after a warm-up that passes learning_starts."""
    fleet = running(config(workers, 1.0 if learner_on else 0.0, port))
    try:
        wait_for(lambda: inserted(fleet) > 2000, 60)
        t0, n0 = time.monotonic(), inserted(fleet)
        time.sleep(seconds)
        return (inserted(fleet) - n0) / (time.monotonic() - t0)
    finally:
        fleet.stop_loops()
        fleet.close()


def wait_for(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for the actors")
        time.sleep(0.2)


def bare_updates_per_s(seconds: float) -> float:
    """The same update on pre-sampled CPU tensors, in this process: the physical limit."""
    cfg = Config()
    learner = Learner(9, 3, cfg.learner, seed=0)
    buffer = ReplayBuffer(9, 3, 10_000, seed=0)
    rng = torch.Generator().manual_seed(0)
    buffer.add({"obs": torch.randn(10_000, 9, generator=rng).numpy(),
                "action": (torch.rand(10_000, 3, generator=rng) * 2 - 1).numpy(),
                "reward": torch.randn(10_000, generator=rng).numpy(),
                "next_obs": torch.randn(10_000, 9, generator=rng).numpy(),
                "terminated": torch.zeros(10_000).numpy()})
    batches = [{k: torch.tensor(v, dtype=torch.float32) for k, v in
                buffer.sample(cfg.replay.batch_size).items() if k in ddpg.BATCH_KEYS}
               for _ in range(32)]
    for i in range(200):
        learner.state, _ = ddpg.update(learner.state, batches[i % 32])
    n, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < seconds:
        learner.state, _ = ddpg.update(learner.state, batches[n % 32])
        n += 1
    return n / (time.monotonic() - t0)


def system_updates_per_s(seconds: float, port: int) -> float:
    """The learner actor fed through the replay actor, with the env workers stopped."""
    fleet = running(config(1, 1000.0, port))  # a huge ratio: the limiter never holds it back
    try:
        wait_for(lambda: inserted(fleet) > 3000, 90)
        ray.get([w.stop.remote() for w in fleet.workers])
        ray.get(list(fleet.worker_runs.values()))
        time.sleep(2.0)  # warm-up with the CPU to itself
        t0, u0 = time.monotonic(), ray.get(fleet.learner.progress.remote())["learner_steps"]
        time.sleep(seconds)
        u1 = ray.get(fleet.learner.progress.remote())["learner_steps"]
        return (u1 - u0) / (time.monotonic() - t0)
    finally:
        fleet.stop_loops()
        fleet.close()


def replay_capacity(seconds: float) -> dict:
    """Calls/s one replay actor serves: chunked inserts, and learner fetches."""
    from replay.ray_replay import ReplayActor

    cfg = Config()
    replay = ReplayActor.remote(9, 3, cfg.replay, 1.0, seed=0)
    rows = 32
    chunk = {"obs": np.zeros((rows, 9), np.float32), "action": np.zeros((rows, 3), np.float32),
             "reward": np.zeros(rows, np.float32), "next_obs": np.zeros((rows, 9), np.float32),
             "terminated": np.zeros(rows, np.float32)}
    inserts = calls_per_s(lambda: replay.insert.remote(chunk, 0), seconds)
    cursor = [0]

    def fetch():
        return replay.fetch.remote(cursor[0], 4096, 0)

    fetches = calls_per_s(fetch, seconds)
    ray.kill(replay)
    return {"insert_calls_per_s": inserts, "insert_rows_per_s": inserts * rows,
            "fetch_calls_per_s": fetches}


def calls_per_s(call, seconds: float, in_flight: int = 4) -> float:
    pending = [call() for _ in range(in_flight)]
    n, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < seconds:
        ready, pending = ray.wait(pending, num_returns=1)
        ray.get(ready)
        pending.append(call())
        n += 1
    ray.get(pending)
    return n / (time.monotonic() - t0)


def time_to_success(args: list[str], run_id: str, train_steps: int) -> dict:
    """Wall seconds from launch until the rolling training success rate reaches 0.8."""
    results = os.path.join(RESULTS, "runs")
    cmd = [sys.executable, os.path.join(ROOT, "launch.py"), *args, "--run-id", run_id,
           "--results-dir", results, "--force", "--train-steps", str(train_steps),
           "--test-steps", "0", "--log-interval", "60"]
    started = time.monotonic()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"{run_id} failed: {done.stderr.strip()[-500:]}")
    run_dir = os.path.join(results, run_id)
    summary = json.load(open(os.path.join(run_dir, "summary.json"), encoding="utf-8"))
    steps, wall = steps_to_threshold(os.path.join(run_dir, "episodes.csv"), with_wall=True)
    startup = max(elapsed - summary["wall_s"], 0.0)  # process, Ray and env start (and exit)
    return {"env_steps_to_0.8": steps, "train_wall_s_to_0.8": wall,
            "startup_and_exit_s": round(startup, 1),
            "wall_s_to_0.8": None if wall is None else round(wall + startup, 1)}


def measure(args) -> dict:
    out: dict = {"workers": args.workers, "env_steps_per_s": {}}
    ray.init(address="local", include_dashboard=False, logging_level="warning")
    try:
        for i, n in enumerate(args.workers):
            for on in (False, True):
                rate = env_rate(n, on, args.seconds, 5600 + 20 * i + 10 * on)
                out["env_steps_per_s"][f"{n}_workers_learner_{'running' if on else 'paused'}"] = rate
                print(f"{n} workers, learner {'running' if on else 'paused'}: "
                      f"{rate:.0f} env steps/s", flush=True)
        out["system_updates_per_s"] = system_updates_per_s(args.seconds, 5690)
        out["replay_actor"] = replay_capacity(min(args.seconds, 5.0))
    finally:
        ray.shutdown()
    out["bare_updates_per_s"] = bare_updates_per_s(args.seconds)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--train-steps", type=int, default=30_000)
    p.add_argument("--skip-e2e", action="store_true")
    args = p.parse_args()
    out = measure(args)
    rates = out["env_steps_per_s"]
    base = rates[f"{args.workers[0]}_workers_learner_paused"]
    for n in args.workers[1:]:
        out[f"speedup_{n}_workers"] = rates[f"{n}_workers_learner_paused"] / base
        out[f"scaling_efficiency_{n}_workers"] = out[f"speedup_{n}_workers"] / n * args.workers[0]
    out["learner_efficiency"] = out["system_updates_per_s"] / out["bare_updates_per_s"]
    if not args.skip_e2e:
        out["ray_2_workers"] = time_to_success(["--mode", "ray", "--num-workers", "2",
                                                "--base-port", "5700"], "scaling-ray2",
                                               args.train_steps)
        out["seed_local"] = time_to_success(["--preset", "seed", "--base-port", "5710"],
                                            "scaling-seed", args.train_steps)
        ray_t, seed_t = out["ray_2_workers"]["wall_s_to_0.8"], out["seed_local"]["wall_s_to_0.8"]
        out["time_to_0.8_speedup"] = seed_t / ray_t if ray_t and seed_t else None
    report(out)


def report(out: dict) -> None:
    print(json.dumps({k: v for k, v in out.items() if k != "env_steps_per_s"}, indent=2))
    out["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    out["nproc"] = os.cpu_count()
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "scaling.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2)
    print(f"wrote {os.path.join(RESULTS, 'scaling.json')}")


if __name__ == "__main__":
    main()
