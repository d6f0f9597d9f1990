"""What an env stepping beside the learner costs its updates: in a thread, in a process.

Local mode's --overlap-envs steps the env while the learner updates. This measures why the
env worker runs in a child process (actors/process_worker.py) and not in a thread: the
main thread times TD3 updates (configs/mujoco.yaml's networks, HalfCheetah's sizes, one
torch thread) while another thread keeps the HalfCheetah bridge stepping with random
actions (continuously: a harder case than the training loop's one env step per update),
through

- alone: no env at all (the update's own time);
- thread: an `EnvWorker` in this process, the stock client's Python sharing the GIL;
- process: a `ProcessWorker`, the same worker in a child process.

The three alternate in short rounds (`--rounds`, best of each kept) so that load drift hits
all of them. Prints ms per update, env steps/s, and thread/alone and process/alone.
Run: `.venv/bin/python -m bench.overlap [--updates 300] [--rounds 3]`.
Writes bench/results/overlap.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import tempfile
import threading
import time

import numpy as np

from actors.config import EnvConfig, NoiseConfig
from actors.env_worker import EnvWorker
from actors.process_worker import ProcessWorker
from learner.files import write_atomic
from learner.learner import Learner
from runner.cli import parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results", "overlap.json")
CONFIG = os.path.join(ROOT, "configs", "mujoco.yaml")
TASK = "gymnasium:HalfCheetah-v5"
OBS, ACT, BATCH = 17, 6, 256
PORT = 5075  # ports 5075-5076: the thread's env and the process's env


def td3_learner() -> Learner:
    """The learner `launch.py configs/mujoco.yaml --preset td3` builds, on the CPU."""
    cfg = parse([CONFIG, "--preset", "td3", "--device", "cpu"]).learner
    return Learner(OBS, ACT, cfg)


def batches(n: int, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    rows = 4096
    data = {"obs": rng.standard_normal((rows, OBS)), "next_obs": rng.standard_normal((rows, OBS)),
            "action": rng.uniform(-1, 1, (rows, ACT)), "reward": rng.standard_normal(rows),
            "terminated": np.zeros(rows)}
    data = {k: v.astype(np.float32) for k, v in data.items()}
    return [{k: v[idx] for k, v in data.items()}
            for idx in (rng.integers(0, rows, BATCH) for _ in range(n))]


def timed_updates(learner: Learner, work: list, worker=None) -> tuple[float, float]:
    """(ms per update, env steps/s) while `worker` (if any) steps in a thread."""
    stop, steps = threading.Event(), [0]

    def drive():
        while not stop.is_set():
            steps[0] += worker.collect(1, "random").env_steps

    driver = threading.Thread(target=drive, daemon=True) if worker is not None else None
    if driver is not None:
        driver.start()
        time.sleep(1.0)  # the env is in its stride before the clock starts
    start, before = time.perf_counter(), steps[0]
    for batch in work:
        learner.update(batch)
    elapsed = time.perf_counter() - start
    rate = (steps[0] - before) / elapsed
    stop.set()
    if driver is not None:
        driver.join()
    return elapsed / len(work) * 1e3, rate


def measure(updates: int, rounds: int, logs: str) -> dict:
    learner, rng = td3_learner(), np.random.default_rng(0)
    work = batches(updates, rng)
    env = EnvConfig(env=TASK, base_port=PORT)
    workers = {"thread": EnvWorker(env, NoiseConfig(), 256, worker_id=0, log_folder=logs)}
    try:
        workers["process"] = ProcessWorker(env, NoiseConfig(), 256, worker_id=1,
                                           log_folder=logs)
        timed_updates(learner, work[:30])  # warm-up: allocator, Adam's state
        best: dict = {}
        for _ in range(rounds):
            for name in ("alone", "thread", "process"):
                ms, rate = timed_updates(learner, work, workers.get(name))
                if name not in best or ms < best[name]["ms_per_update"]:
                    best[name] = {"ms_per_update": round(ms, 3), "env_steps_per_s": round(rate)}
        return best
    finally:
        for worker in workers.values():
            worker.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--updates", type=int, default=300, help="updates per timed round")
    p.add_argument("--rounds", type=int, default=3, help="rounds of each; the best is kept")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as logs:  # the env processes' logs
        best = measure(args.updates, args.rounds, logs)
    alone = best["alone"]["ms_per_update"]
    print(f"{'env beside the learner':24} {'ms/update':>10} {'env steps/s':>12} {'/ alone':>8}")
    for name, r in best.items():
        print(f"{name:24} {r['ms_per_update']:10.2f} {r['env_steps_per_s']:12d} "
              f"{r['ms_per_update'] / alone:8.2f}")
    out = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "updates": args.updates, "rounds": args.rounds, "nproc": os.cpu_count(),
           "load": os.getloadavg()[0], **best,
           "ratio_thread_over_alone": round(best["thread"]["ms_per_update"] / alone, 3),
           "ratio_process_over_alone": round(best["process"]["ms_per_update"] / alone, 3)}
    write_atomic(RESULTS, json.dumps(out, indent=1))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
