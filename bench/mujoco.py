"""Ours against Stable-Baselines3 on MuJoCo tasks, side by side, one command.

Every cell is (task, algorithm, implementation, variant), run for each seed on the same
env-step budget with the same hyperparameters (the TD3 paper's and CleanRL's: 256-256
networks, Adam 3e-4, batch 256, gamma 0.99, tau 0.005, Gaussian exploration 0.1; TD3: policy
delay 2, target smoothing 0.2 clipped at 0.5; learning starts after 5% of the budget):

- ours: `launch.py configs/mujoco.yaml [--preset td3] --env gymnasium:<task>`, local mode
  unless the variant says otherwise, through the Gymnasium bridge and the stock client
  (the `inproc` variants: stepped inside the trainer, `--transport in-process`);
- sb3: `bench/sb3_run.py`, the task stepped directly (no protocol).

The result of a run is the mean return of 10 greedy episodes after training; its learning
curve is the return of the training episodes against env steps; its wall time covers
training only. Written to bench/results/<name>.json and <name>.png (curves, a band over
seeds). `--suite full` is the whole comparison (11 cells); `td3`
is its TD3 cells alone (for more seeds); `timing` measures wall time alone, one run at a
time; `normalize` is --normalize on and off; `lag` is ours without --overlap-envs. A
finished run is kept (bench/results/mujoco_rows/, with the commit that made it) and not run
again; a row kept from another commit says so; delete it to rerun:

    .venv/bin/python -m bench.mujoco --suite full --seeds 0 1 2 --budget 20000 --jobs 2
    .venv/bin/python -m bench.mujoco --suite normalize --seeds 0 1 2 --budget 20000 --jobs 2
    .venv/bin/python -m bench.mujoco --suite td3 --seeds 0 1 2 3 4 5 6 7 --budget 20000 \
        --jobs 2 --name mujoco_td3_8seeds
    .venv/bin/python -m bench.mujoco --suite td3 --tasks InvertedDoublePendulum-v5 \
        --seeds 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 --budget 20000 --jobs 2 \
        --name mujoco_idp_16seeds
    .venv/bin/python -m bench.mujoco --suite timing --seeds 0 1 2 --budget 12000 --jobs 1
    .venv/bin/python -m bench.mujoco --suite timing_inproc --seeds 0 1 2 3 4 5 \
        --budget 12000 --jobs 1 --name mujoco_timing_inproc
"""

from __future__ import annotations

import argparse
import csv
import datetime
import functools
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from bench.runs import launch_run
from learner.files import write_atomic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")
ROWS = os.path.join(RESULTS, "mujoco_rows")
CONFIG = os.path.join(ROOT, "configs", "mujoco.yaml")
EVAL_EPISODES = 10
TASKS = ("InvertedDoublePendulum-v5", "Hopper-v5", "HalfCheetah-v5")
CHEETAH = "HalfCheetah-v5"
ALGO_FLAGS = {"td3": ["--preset", "td3"], "ddpg": []}
# Local mode steps the env while the learner updates (--overlap-envs, the env worker in a
# process of its own): the bridge's protocol time is what ours pays and SB3 does not, and
# this hides it when a core is free.
LOCAL = ["--mode", "local", "--overlap-envs"]
VARIANT_FLAGS = {
    "local": LOCAL,
    "plain": ["--mode", "local"],
    "ray2": ["--mode", "ray", "--num-workers", "2"],
    "nstep3": [*LOCAL, "--n-step", "3"],
    "per": [*LOCAL, "--prioritized"],
    "normalize": [*LOCAL, "--normalize"],
    "threads2": [*LOCAL, "--torch-threads", "2"],
    "plain_threads2": ["--mode", "local", "--torch-threads", "2"],
    # The same simulation stepped inside the worker: no protocol, as SB3 steps it.
    "inproc": ["--mode", "local", "--transport", "in-process"],
    "inproc_threads2": ["--mode", "local", "--transport", "in-process", "--torch-threads", "2"],
}
SB3_VARIANT_FLAGS = {"local": [], "threads2": ["--torch-threads", "2"]}
# TD3, ours against SB3, on every task: the heart of the full suite, and a suite of its own
# for more seeds.
TD3_CELLS = [(t, "td3", impl, "local") for t in TASKS for impl in ("ours", "sb3")]
SUITES = {
    "full": [*TD3_CELLS,
             (CHEETAH, "ddpg", "ours", "local"), (CHEETAH, "ddpg", "sb3", "local"),
             (CHEETAH, "td3", "ours", "ray2"), (CHEETAH, "td3", "ours", "nstep3"),
             (CHEETAH, "td3", "ours", "per")],
    "td3": TD3_CELLS,
    "normalize": [(t, "td3", "ours", v) for t in ("Hopper-v5", CHEETAH)
                  for v in ("local", "normalize")],
    # Ours without --overlap-envs: does its one update of policy lag cost any return?
    "lag": [(t, "td3", "ours", "plain") for t in TASKS],
    # Wall time alone, one run at a time (--jobs 1) on a quiet machine.
    # SB3 with 2 torch threads too: with --overlap-envs ours uses the second core for the
    # env; SB3, one process, uses it only through torch's threads.
    "timing": [(CHEETAH, "td3", impl, v) for impl, v in [
        ("ours", "local"), ("ours", "plain"), ("ours", "threads2"), ("ours", "plain_threads2"),
        ("ours", "inproc"), ("ours", "inproc_threads2"), ("sb3", "local"), ("sb3", "threads2")]],
    # --transport in-process against SB3 alone, for more seeds of the timing suite's cells.
    "timing_inproc": [(CHEETAH, "td3", impl, v) for impl, v in [
        ("ours", "inproc"), ("ours", "inproc_threads2"), ("sb3", "local"), ("sb3", "threads2")]],
}


def learning_starts(budget: int) -> int:
    """Random actions for the first 5% of the budget, at least 1,000 steps (CleanRL: 25k of
    1M, i.e. 2.5%; short budgets need a larger share to fill the replay with variety)."""
    return max(1000, budget // 20)


def cell_name(cell: tuple) -> str:
    task, algo, impl, variant = cell
    return f"{task}/{algo}/{impl}/{variant}"


def run_cell(cell: tuple, seed: int, budget: int, port: int) -> dict:
    """One run, or its row from an earlier invocation: each finished run is kept in
    bench/results/mujoco_rows/, so an interrupted suite resumes and suites share cells."""
    task, algo, impl, variant = cell
    kept = os.path.join(ROWS, f"{task}-{algo}-{impl}-{variant}-seed{seed}-budget{budget}.json")
    if os.path.exists(kept):
        with open(kept, encoding="utf-8") as f:
            row = json.load(f)
    else:
        run = run_sb3 if impl == "sb3" else run_ours
        row = {"cell": cell_name(cell), "seed": seed, "budget": budget, "code": code_version(),
               **run(task, algo, variant, seed, budget, port)}
        os.makedirs(ROWS, exist_ok=True)
        write_atomic(kept, json.dumps(row))
    kept_from = row.get("code", "unknown")
    stale = "" if kept_from == code_version() else f" (kept from code {kept_from})"
    print(f"{cell_name(cell)} seed {seed}: return {row['final_return']:.1f}, "
          f"train {row['train_wall_s']:.0f} s{stale}", flush=True)
    return row


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """The commit the runs are made with, marked `-dirty` when the tree has changes: a row
    kept from other code is reported as such, since it may no longer be what the code does."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def run_ours(task: str, algo: str, variant: str, seed: int, budget: int, port: int) -> dict:
    """One run of launch.py; its final greedy return, training curve and wall time."""
    run_dir, summary = launch_run(f"mujoco-{task}-{algo}-{variant}-seed{seed}-budget{budget}", [
        CONFIG, *ALGO_FLAGS[algo], "--env", f"gymnasium:{task}", "--seed", str(seed),
        "--train-steps", str(budget), "--learning-starts", str(learning_starts(budget)),
        "--buffer-size", str(budget), "--test-steps", str(EVAL_EPISODES * 1000),
        "--base-port", str(port), "--log-interval", "120", *VARIANT_FLAGS[variant]])
    test = [ret for _, ret in episodes(run_dir, "test")][:EVAL_EPISODES]
    if len(test) < EVAL_EPISODES:
        raise SystemExit(f"{run_dir}: {len(test)} test episodes, not {EVAL_EPISODES}")
    return {"final_return": float(np.mean(test)), "eval_returns": test,
            "train_wall_s": summary["train_wall_s"], "env_steps": summary["env_steps"],
            "curve": episodes(run_dir, "train")}


def episodes(run_dir: str, phase: str) -> list[tuple[int, float]]:
    """(env_steps, return) of every episode of a phase, in order."""
    with open(os.path.join(run_dir, "episodes.csv"), encoding="utf-8") as f:
        return [(int(r["env_steps"]), float(r["return"])) for r in csv.DictReader(f)
                if r["phase"] == phase]


def run_sb3(task: str, algo: str, variant: str, seed: int, budget: int, port: int) -> dict:
    """One bench/sb3_run.py process (the trainer never imports SB3)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run.json")
        # -m from the repo root: as a script, bench/ would come first on sys.path and
        # bench/mujoco.py would shadow the real `mujoco` package that gymnasium imports.
        cmd = [sys.executable, "-m", "bench.sb3_run", "--algo", algo,
               "--task", task, "--seed", str(seed), "--budget", str(budget),
               "--learning-starts", str(learning_starts(budget)), "--out", out,
               *SB3_VARIANT_FLAGS[variant]]
        # In the temporary folder: MuJoCo writes MUJOCO_LOG.TXT into the working directory.
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
        done = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"sb3 {task} {algo} seed {seed} failed: {done.stderr[-800:]}")
        with open(out, encoding="utf-8") as f:
            return json.load(f)


def binned(curve: list, budget: int, bins: int = 20) -> list:
    """Mean training return of the episodes that ended in each of `bins` equal intervals."""
    edges = np.linspace(0, budget, bins + 1)
    steps = np.array([s for s, _ in curve], float)
    rets = np.array([r for _, r in curve], float)
    means = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (steps > lo) & (steps <= hi)
        means.append(float(rets[inside].mean()) if inside.any() else None)
    return means


def summarize(rows: list[dict]) -> dict:
    """Per cell: final returns and training wall times over seeds, mean and sd."""
    cells: dict = {}
    for r in rows:
        cells.setdefault(r["cell"], []).append(r)
    return {name: {"final_return": spread([r["final_return"] for r in runs]),
                   "train_wall_s": spread([r["train_wall_s"] for r in runs]),
                   "seeds": [r["seed"] for r in runs]}
            for name, runs in cells.items()}


def spread(values: list[float]) -> dict:
    """Mean and sd over seeds. The sd is the population one (numpy's default, ddof=0): with
    3 seeds it is 0.82x the sample sd, so 'SB3 - 1 sd' is the stricter bar for ours."""
    return {"mean": float(np.mean(values)), "sd": float(np.std(values)),
            "values": [round(float(v), 2) for v in values]}


def print_table(summary: dict, budget: int) -> None:
    print(f"\nfinal return: mean of {EVAL_EPISODES} greedy episodes after {budget} env steps")
    print(f"{'task/algorithm/implementation/variant':48} {'return mean +- sd':>20} "
          f"{'train s':>8}  per seed")
    for name, cell in summary.items():
        ret, wall = cell["final_return"], cell["train_wall_s"]
        print(f"{name:48} {ret['mean']:>9.1f} +- {ret['sd']:>7.1f} {wall['mean']:>8.0f}  "
              f"{ret['values']}")
    for name, cell in summary.items():  # wall time against SB3's, same run
        # Like for like: ours with 2 torch threads against SB3 with 2 (SB3's own 2 threads
        # against its 1).
        two = name.endswith("threads2") and "/sb3/" not in name
        base = summary.get("/".join(name.split("/")[:2] + ["sb3", "threads2" if two else "local"]))
        if base is not None and cell is not base:
            ratio = cell["train_wall_s"]["mean"] / base["train_wall_s"]["mean"]
            print(f"train wall time {name}: {ratio:.2f}x SB3's with {1 + two} torch thread(s)")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--suite", choices=list(SUITES), default="full")
    p.add_argument("--name", help="results files: bench/results/<name>.{json,png}; "
                   "default mujoco for the full suite, mujoco_<suite> otherwise")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--budget", type=int, default=25_000, help="env steps per run")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time")
    p.add_argument("--tasks", nargs="+", choices=TASKS, help="only the suite's cells on "
                   "these tasks (e.g. more seeds for one task, with --name)")
    args = p.parse_args()
    args.name = args.name or ("mujoco" if args.suite == "full" else f"mujoco_{args.suite}")
    return args


def main() -> None:
    args = parse_args()
    plan = [(cell, seed) for seed in args.seeds for cell in SUITES[args.suite]
            if cell[0] in (args.tasks or TASKS)]
    with ThreadPoolExecutor(args.jobs) as pool:  # each run is its own process
        rows = list(pool.map(lambda job: run_cell(*job[1], args.budget, 7100 + 10 * job[0]),
                             enumerate(plan)))
    for row in rows:
        row["curve"] = binned(row["curve"], args.budget)
    summary = summarize(rows)
    print_table(summary, args.budget)
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, f"{args.name}.json")
    write_atomic(path, json.dumps({
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "suite": args.suite, "budget": args.budget, "jobs": args.jobs,
        "code": code_version(),
        "learning_starts": learning_starts(args.budget), "nproc": os.cpu_count(),
        "summary": summary, "runs": rows}, indent=1))
    from bench.mujoco_plot import plot

    print(f"wrote {path} and {plot(path)}")


if __name__ == "__main__":
    main()
