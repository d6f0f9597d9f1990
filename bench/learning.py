"""Does it learn the Drone? The project's defaults against the seed's setup, side by side.

For each preset (and seed), `launch.py --mode local` trains for the same env-step budget
(50,000 by default: the seed's), then tests without noise. Printed and written to
bench/results/learning.json, per preset:

* test success rate and mean return (greedy policy, after training);
* the env steps at which the training success rate first reached 0.8, over a rolling
  window of the last 50 training episodes (a full window is required);
* wall time of the whole run.

Wall times come from one machine in one sitting, so their ratio is meaningful even when
the machine is busy; absolute times are not. Run: `.venv/bin/python -m bench.learning
[--presets default seed] [--seeds 0] [--train-steps N]`. (Replay options on the Drone:
`python -m bench.replay_compare`.)
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os

from bench.runs import launch_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")
WINDOW = 50
THRESHOLD = 0.8


def steps_to_threshold(episodes_csv: str, window: int = WINDOW, threshold: float = THRESHOLD,
                       with_wall: bool = False):
    """First env step at which the last `window` training episodes hit `threshold` (None if
    never); with `with_wall`, (env step, run wall seconds) at that point."""
    recent: list[int] = []
    with open(episodes_csv, encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["phase"] != "train":
                continue
            recent = (recent + [int(row["success"])])[-window:]
            if len(recent) == window and sum(recent) / window >= threshold:
                steps = int(row["env_steps"])
                return (steps, float(row["wall_s"])) if with_wall else steps
    return (None, None) if with_wall else None


def run_one(preset: str, seed: int, train_steps: int, test_steps: int, port: int,
            extra: list[str] | None = None, run_id: str | None = None) -> dict:
    """One local-mode run of `preset` (plus `extra` flags); its results, episodes.csv path
    included."""
    run_id = run_id or f"learning-{preset}-seed{seed}"
    run_dir, summary = launch_run(run_id, [
        "--preset", preset, "--mode", "local", "--seed", str(seed),
        "--train-steps", str(train_steps), "--test-steps", str(test_steps),
        "--base-port", str(port), "--log-interval", "60", *(extra or [])])
    return {
        "preset": preset, "seed": seed,
        "test_success_rate": summary["test"]["success_rate"],
        "test_mean_return": summary["test"]["mean_return"],
        "test_episodes": summary["test"]["episodes"],
        "train_success_rate_last_100": summary["train"]["success_rate"],
        "env_steps_to_train_success_0.8": steps_to_threshold(
            os.path.join(run_dir, "episodes.csv")),
        "wall_s": summary["wall_s"],
        "env_steps": summary["env_steps"], "learner_steps": summary["learner_steps"],
        "episodes_csv": os.path.join(run_dir, "episodes.csv"),
    }


def fmt(value, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def print_table(rows: list[dict]) -> None:
    print(f"{'preset':10} {'seed':>4} {'test success':>12} {'test return':>11} "
          f"{'steps to 0.8':>12} {'wall s':>7}")
    for r in rows:
        print(f"{r['preset']:10} {r['seed']:>4} {fmt(r['test_success_rate'], '.2f'):>12} "
              f"{fmt(r['test_mean_return'], '+.2f'):>11} "
              f"{fmt(r['env_steps_to_train_success_0.8'], 'd', 'never'):>12} "
              f"{r['wall_s']:>7.0f}")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--presets", nargs="+", default=["default", "seed"],
                   help="presets to compare (default, seed, td3)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="a run per seed each")
    p.add_argument("--train-steps", type=int, default=50_000, help="env steps to train")
    p.add_argument("--test-steps", type=int, default=10_000, help="env steps to test")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    rows = []
    for seed in args.seeds:
        for i, preset in enumerate(args.presets):
            rows.append(run_one(preset, seed, args.train_steps, args.test_steps, 5400 + 10 * i))
            del rows[-1]["episodes_csv"]
            print(f"finished {preset} seed {seed} in {rows[-1]['wall_s']:.0f} s", flush=True)
    print(f"\n{args.train_steps} train env steps, {args.test_steps} test env steps each\n")
    print_table(rows)
    by_preset = {r["preset"]: r for r in rows if r["seed"] == args.seeds[0]}
    if {"default", "seed"} <= set(by_preset):
        ratio = by_preset["seed"]["wall_s"] / by_preset["default"]["wall_s"]
        print(f"wall time seed/default: {ratio:.2f}")
    os.makedirs(RESULTS, exist_ok=True)
    out = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "train_steps": args.train_steps, "test_steps": args.test_steps,
           "window": WINDOW, "threshold": THRESHOLD, "nproc": os.cpu_count(), "runs": rows}
    with open(os.path.join(RESULTS, "learning.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2)
    print(f"wrote {os.path.join(RESULTS, 'learning.json')}")


if __name__ == "__main__":
    main()
