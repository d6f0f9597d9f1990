"""MuJoCo tasks through the Gymnasium bridge: variants of our trainer side by side.

Every run is `launch.py configs/mujoco.yaml --env gymnasium:<task>` in local mode (the TD3
paper's and CleanRL's hyperparameters: 256-256 networks, Adam 3e-4, batch 256, gamma 0.99,
tau 0.005, Gaussian exploration 0.1) on the same env-step budget, learning starting after
5% of it. At the end, the mean return of the first 10 greedy test episodes is the run's
result; the training episodes give the learning curve. Printed as a table (mean and
standard deviation over seeds, per task and variant) and written to
bench/results/mujoco_<name>.json.

    .venv/bin/python bench/mujoco.py --name normalize --tasks HalfCheetah-v5 Hopper-v5 \\
        --variants ddpg ddpg+normalize --seeds 0 1 --budget 30000 --jobs 2
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")
CONFIG = os.path.join(ROOT, "configs", "mujoco.yaml")
EVAL_EPISODES = 10
# Our flags per variant, on top of configs/mujoco.yaml.
VARIANTS = {
    "ddpg": [],
    "ddpg+normalize": ["--normalize"],
}


def learning_starts(budget: int) -> int:
    """Random actions for the first 5% of the budget, at least 1,000 steps (CleanRL: 25k of
    1M, i.e. 2.5%; short budgets need a larger share to fill the replay with variety)."""
    return max(1000, budget // 20)


def episodes(run_dir: str, phase: str) -> list[tuple[int, float]]:
    """(env_steps, return) of every episode of a phase, in order."""
    with open(os.path.join(run_dir, "episodes.csv"), encoding="utf-8") as f:
        return [(int(r["env_steps"]), float(r["return"])) for r in csv.DictReader(f)
                if r["phase"] == phase]


def run_ours(task: str, variant: str, seed: int, budget: int, port: int) -> dict:
    """One local-mode run; its final greedy return, learning curve and wall time."""
    run_id = f"mujoco-{task}-{variant}-seed{seed}"
    runs = os.path.join(RESULTS, "runs")
    cmd = [sys.executable, os.path.join(ROOT, "launch.py"), CONFIG,
           "--env", f"gymnasium:{task}", "--run-id", run_id, "--results-dir", runs, "--force",
           "--seed", str(seed), "--train-steps", str(budget),
           "--learning-starts", str(learning_starts(budget)),
           "--test-steps", str(EVAL_EPISODES * 1000), "--base-port", str(port),
           "--log-interval", "120", *VARIANTS[variant]]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{task} {variant} seed {seed} failed: {done.stderr.strip()[-800:]}")
    run_dir = os.path.join(runs, run_id)
    with open(os.path.join(run_dir, "summary.json"), encoding="utf-8") as f:
        summary = json.load(f)
    test = [ret for _, ret in episodes(run_dir, "test")][:EVAL_EPISODES]
    return {"task": task, "variant": variant, "seed": seed, "budget": budget,
            "final_return": float(np.mean(test)), "eval_episodes": len(test),
            "wall_s": summary["wall_s"], "env_steps": summary["env_steps"],
            "curve": episodes(run_dir, "train")}


def spread(values: list[float]) -> dict:
    return {"mean": float(np.mean(values)), "std": float(np.std(values)),
            "values": [round(v, 2) for v in values]}


def summarize(rows: list[dict]) -> dict:
    """Per task and variant: final return and wall time over seeds."""
    out: dict = {}
    for r in rows:
        cell = out.setdefault(r["task"], {}).setdefault(r["variant"], [])
        cell.append(r)
    return {task: {variant: {"final_return": spread([r["final_return"] for r in runs]),
                             "wall_s": spread([r["wall_s"] for r in runs])}
                   for variant, runs in variants.items()}
            for task, variants in out.items()}


def print_table(summary: dict, budget: int) -> None:
    print(f"\nfinal return: mean of {EVAL_EPISODES} greedy episodes after {budget} env steps")
    print(f"{'task':24} {'variant':18} {'return (mean +- sd)':>22} {'wall s':>8}  per seed")
    for task, variants in summary.items():
        for variant, cell in variants.items():
            ret, wall = cell["final_return"], cell["wall_s"]
            print(f"{task:24} {variant:18} {ret['mean']:>11.1f} +- {ret['std']:>7.1f} "
                  f"{wall['mean']:>8.0f}  {ret['values']}")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--name", default="mujoco", help="results file: bench/results/<name>.json")
    p.add_argument("--tasks", nargs="+", default=["HalfCheetah-v5", "Hopper-v5"])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--budget", type=int, default=30_000, help="env steps per run")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    plan = [(t, v, s) for t in args.tasks for s in args.seeds for v in args.variants]
    with ThreadPoolExecutor(args.jobs) as pool:  # each run is its own process
        rows = list(pool.map(lambda job: run_ours(*job[1], args.budget, 7100 + 10 * job[0]),
                             enumerate(plan)))
    summary = summarize(rows)
    print_table(summary, args.budget)
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, f"{args.name}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"date": datetime.datetime.now(datetime.timezone.utc).isoformat(
                   timespec="seconds"), "budget": args.budget, "jobs": args.jobs,
                   "learning_starts": learning_starts(args.budget), "nproc": os.cpu_count(),
                   "summary": summary, "runs": rows}, f)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
