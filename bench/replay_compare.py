"""Uniform vs prioritized replay, 1-step vs 3-step returns, on the Drone with one budget.

`python -m bench.replay_compare --seeds 0 1 2 3 4 --jobs 2` runs, for each variant and seed,
`launch.py --mode local` with the project's defaults plus the variant's flags, for the same
env-step budget, then reads each run's episodes.csv:

* the training success-rate curve: the success rate of the training episodes that ended
  in each interval of `--grid` env steps (mean, min and max over the seeds);
* the env steps at which that rate first reached 0.8 (a full window of 50 is required);
* the greedy test success after training, and the run's wall time.

Writes bench/results/replay_compare.json and bench/results/replay_compare.png.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import queue
import statistics
from concurrent.futures import ThreadPoolExecutor

from bench.learning import RESULTS, THRESHOLD, WINDOW, fmt, run_one

VARIANTS = {
    "uniform/1-step": [],
    "uniform/3-step": ["--n-step", "3"],
    "PER/1-step": ["--prioritized"],
    "PER/3-step": ["--prioritized", "--n-step", "3"],
}


def success_curve(episodes_csv: str, grid: list[int]) -> list:
    """Success rate of the training episodes that ended in each grid interval (the env
    steps since the previous grid point); None for an interval where none ended.

    By env steps, not by a window of episodes: early episodes run to the step limit, so a
    50-episode window would fill at different steps on different seeds and the mean over
    seeds would mix counts."""
    ends = []
    with open(episodes_csv, encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["phase"] == "train":
                ends.append((int(row["env_steps"]), int(row["success"])))
    curve, lo = [], 0
    for hi in grid:
        done = [s for t, s in ends if lo < t <= hi]
        curve.append(sum(done) / len(done) if done else None)
        lo = hi
    return curve


def spread(values: list) -> dict:
    """mean, min, max and count of the values that are not None."""
    got = [v for v in values if v is not None]
    if not got:
        return {"mean": None, "min": None, "max": None, "n": 0}
    return {"mean": statistics.fmean(got), "min": min(got), "max": max(got), "n": len(got)}


def run_variant(name: str, seed: int, args, slots: queue.Queue) -> dict:
    tag = name.replace("/", "-")
    slot = slots.get()  # base ports of the runs in flight must differ
    try:
        row = run_one("default", seed, args.train_steps, args.test_steps, 5700 + 20 * slot,
                      extra=VARIANTS[name], run_id=f"replay-{tag}-seed{seed}")
    finally:
        slots.put(slot)
    grid = list(range(args.grid, args.train_steps + 1, args.grid))
    row.update(variant=name, grid=grid, curve=success_curve(row.pop("episodes_csv"), grid))
    print(f"finished {name} seed {seed}: steps to {THRESHOLD} = "
          f"{row['env_steps_to_train_success_0.8']}, test success "
          f"{fmt(row['test_success_rate'], '.2f')}, {row['wall_s']:.0f} s", flush=True)
    return row


def summarise(rows: list[dict]) -> dict:
    out = {}
    for name in VARIANTS:
        runs = [r for r in rows if r["variant"] == name]
        if not runs:
            continue
        steps = [r["env_steps_to_train_success_0.8"] for r in runs]
        curves = list(zip(*[r["curve"] for r in runs]))
        out[name] = {
            "steps_to_0.8": spread(steps), "never_reached": steps.count(None),
            "test_success": spread([r["test_success_rate"] for r in runs]),
            "wall_s": spread([r["wall_s"] for r in runs]),
            "curve": [spread(list(c)) for c in curves],
        }
    return out


def print_summary(summary: dict, base: str = "uniform/1-step") -> None:
    print(f"\n{'variant':16} {'steps to 0.8 mean [min, max]':>30} {'never':>5} "
          f"{'test success':>12} {'wall s':>7} {'steps vs ' + base:>24}")
    ref = summary.get(base, {}).get("steps_to_0.8", {}).get("mean")
    for name, s in summary.items():
        st = s["steps_to_0.8"]
        span = "never" if st["mean"] is None else \
            f"{st['mean']:8.0f} [{st['min']:.0f}, {st['max']:.0f}]"
        ratio = f"{st['mean'] / ref:.2f}" if ref and st["mean"] else "-"
        test = s["test_success"]["mean"]
        test = "-" if test is None else f"{test:.2f}"
        print(f"{name:16} {span:>30} {s['never_reached']:>5} {test:>12} "
              f"{s['wall_s']['mean']:>7.0f} {ratio:>24}")


def plot(summary: dict, grid: list[int], path: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, s in summary.items():
        pts = [(g, c) for g, c in zip(grid, s["curve"]) if c["mean"] is not None]
        x = [g for g, _ in pts]
        seeds = max(c["n"] for c in s["curve"])
        line, = ax.plot(x, [c["mean"] for _, c in pts], label=f"{name} ({seeds} seeds)")
        ax.fill_between(x, [c["min"] for _, c in pts], [c["max"] for _, c in pts],
                        color=line.get_color(), alpha=0.15)
    ax.axhline(THRESHOLD, color="grey", lw=0.8, ls="--")
    ax.set(xlabel="env steps", ylabel="training success (episodes ended in the interval)",
           title="Drone: replay variants, mean over seeds (band: min-max)", ylim=(0, 1.02))
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def replay_cost(capacity: int = 200_000, batch: int = 256, chunk: int = 64,
                reps: int = 300) -> dict:
    """Microseconds per learner batch (sample, plus the priority update for PER) and per
    worker chunk insert, uniform against PER on full 200k-row buffers, side by side."""
    import time

    import numpy as np

    from replay.config import ReplayConfig
    from replay.prioritized import make_buffer

    from bench.learner_speed import ACT, OBS, synthetic_rows

    rng = np.random.default_rng(0)

    def rows(n):
        return {**synthetic_rows(rng, n), "discount": np.full(n, 0.9, np.float32)}

    out = {}
    for name, per in (("uniform", False), ("PER", True)):
        buf = make_buffer(OBS, ACT, ReplayConfig(buffer_size=capacity, n_step=3, prioritized=per,
                                             per_beta_steps=10_000))
        buf.add({**rows(capacity), **({"priority": rng.random(capacity)} if per else {})})
        new, td = rows(chunk), rng.random(batch)
        t0 = time.perf_counter()
        for _ in range(reps):
            b = buf.sample(batch)
            if per:
                buf.update_priorities(b["indices"], td, b["generations"])
        t1 = time.perf_counter()
        for _ in range(reps):
            buf.add({**new, **({"priority": td[:chunk]} if per else {})})
        t2 = time.perf_counter()
        out[name] = {"batch_us": 1e6 * (t1 - t0) / reps, "insert_us": 1e6 * (t2 - t1) / reps}
    out["ratio_batch"] = out["PER"]["batch_us"] / out["uniform"]["batch_us"]
    out["ratio_insert"] = out["PER"]["insert_us"] / out["uniform"]["insert_us"]
    return out


def compare_replay(args) -> None:
    jobs = [(name, seed) for seed in args.seeds for name in VARIANTS]
    slots: queue.Queue = queue.Queue()
    for k in range(args.jobs):
        slots.put(k)
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda job: run_variant(*job, args, slots), jobs))
    report(rows, args)


def report(rows: list[dict], args) -> None:
    """Summarise the runs, measure the replay cost, print, plot and write the JSON."""
    summary = summarise(rows)
    cost = replay_cost()
    print(f"\nreplay cost, 200k rows: batch of 256 (sample + priority update) "
          f"{cost['uniform']['batch_us']:.0f} us uniform, {cost['PER']['batch_us']:.0f} us PER "
          f"({cost['ratio_batch']:.2f}x); chunk insert of 64 {cost['uniform']['insert_us']:.0f}"
          f" us vs {cost['PER']['insert_us']:.0f} us ({cost['ratio_insert']:.2f}x)")
    print(f"\n{args.train_steps} train env steps, {args.test_steps} test env steps, "
          f"seeds {args.seeds}")
    print_summary(summary)
    grid = rows[0]["grid"]
    os.makedirs(RESULTS, exist_ok=True)
    png = os.path.join(RESULTS, "replay_compare.png")
    plot(summary, grid, png)
    out = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "train_steps": args.train_steps, "test_steps": args.test_steps, "seeds": args.seeds,
           "window": WINDOW, "threshold": THRESHOLD, "jobs": args.jobs,
           "nproc": os.cpu_count(), "grid": grid, "replay_cost": cost, "variants": summary,
           "runs": rows}
    path = os.path.join(RESULTS, "replay_compare.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2)
    print(f"wrote {path} and {png}")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--train-steps", type=int, default=20_000)
    p.add_argument("--test-steps", type=int, default=2_000)
    p.add_argument("--jobs", type=int, default=1, help="runs at a time")
    p.add_argument("--grid", type=int, default=1000,
                   help="env steps between points of the success curves")
    return p.parse_args()


if __name__ == "__main__":
    compare_replay(parse_args())
