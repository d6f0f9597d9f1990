"""One TD3 training step, ours against Stable-Baselines3's, side by side in one process.

What bench/mujoco.py's timing suite cannot separate: how much of a run's wall time is the
update itself. Ours: `Learner.update` on a sampled batch (the batch's conversion to
tensors included; sampling from our replay is about 0.04 ms more). SB3:
`TD3.train(gradient_steps=1)` as its runs call it, which samples its own replay buffer.
Both with configs/mujoco.yaml's networks and HalfCheetah's sizes (17 observations, 6
actions, batch 256, delay 2), on the CPU, with 1 and then 2 torch threads. The two
alternate in short rounds (`--rounds`, best of each kept) so that load drift hits both.

Run: `.venv/bin/python -m bench.sb3_update [--updates 400] [--rounds 4]` (needs
`make install-bench`). Prints ms per step and ours/SB3; writes bench/results/sb3_update.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import time

import numpy as np
import torch

from bench.overlap import batches, td3_learner
from bench.sb3_run import make_model
from learner.files import write_atomic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results", "sb3_update.json")
TASK = "HalfCheetah-v5"


def sb3_model():
    """SB3's TD3 as bench/sb3_run.py builds it, its replay filled by 1,500 random steps."""
    import gymnasium

    model = make_model("td3", gymnasium.make(TASK), seed=0, learning_starts=1500)
    model.learn(total_timesteps=1500)  # random actions only: fills the buffer, no update
    return model


def best_ms(steps: int, rounds: int, threads: int) -> dict[str, float]:
    """Best ms per training step of each implementation over `rounds` alternating rounds."""
    learner, model = td3_learner(), sb3_model()
    torch.set_num_threads(threads)  # after the learner, which sets its own (one)
    work = batches(steps, np.random.default_rng(0))
    timed = {"ours": lambda: [learner.update(b) for b in work],
             # One gradient step per call, as SB3 trains in a run (train_freq=1).
             "sb3": lambda: [model.train(gradient_steps=1, batch_size=256)
                             for _ in range(steps)]}
    for run in timed.values():
        run()  # warm-up: allocator, Adam's state
    best = {name: float("inf") for name in timed}
    for _ in range(rounds):
        for name, run in timed.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], (time.perf_counter() - start) / steps * 1e3)
    return {name: round(ms, 3) for name, ms in best.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--updates", type=int, default=400, help="training steps per timed round")
    p.add_argument("--rounds", type=int, default=4, help="rounds of each; the best is kept")
    args = p.parse_args()
    out = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "updates": args.updates, "rounds": args.rounds, "nproc": os.cpu_count(),
           "load": os.getloadavg()[0]}
    print(f"{'torch threads':14} {'ours ms':>8} {'SB3 ms':>8} {'ours/SB3':>9}")
    for threads in (1, 2):
        ms = best_ms(args.updates, args.rounds, threads)
        ratio = round(ms["ours"] / ms["sb3"], 3)
        out[f"threads{threads}"] = {**ms, "ratio_ours_over_sb3": ratio}
        print(f"{threads:<14} {ms['ours']:8.2f} {ms['sb3']:8.2f} {ratio:9.2f}")
    write_atomic(RESULTS, json.dumps(out, indent=1))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
