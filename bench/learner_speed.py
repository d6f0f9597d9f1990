"""Learner updates/s per mode and batch size: bare update against the system learner's path.

For each mode (eager, compile, compile+cudagraphs) and batch size (128, 256, 1024):

- bare: the same update function on pre-sampled device tensors (32 batches, cycled), no
  sampling at all: the ceiling of the update itself.
- system: the learner's realistic path, in this process: a `ReplayServer` being filled with
  64-row chunks (as env workers insert them; the insert time is excluded, it runs in the
  replay actor's process), a `DeviceReplay` fed by `ReplayServer.fetch` in
  chunks, the ratio enforced locally (`Feed`, updates_per_step 1), a device-sampled batch per
  update (straight into the CUDA graph's static inputs with cudagraphs), and the update.
  The Ray hop (the fetch as an actor call) is measured in bench/scaling.py, not here.
- host_fed (eager only, for reference): today's feed, in-process: `ReplayServer.sample` of 8
  batches per call on the host, `split_batches`, one host->device tensor per key and update.

Bare and system alternate in short rounds so that load drift on the shared machine hits
both. One torch thread (LearnerConfig.torch_threads default). compile+cudagraphs runs only
on CUDA; on CPU it is reported as not measured, and so are the H100 targets.
Run: `.venv/bin/python -m bench.learner_speed [--seconds 2] [--batches 128 256 1024]`.
Writes bench/results/learner_speed_<cpu|cuda>.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import numpy as np
import torch

from learner import ddpg
from learner.device_replay import DeviceReplay, Feed
from learner.fast import MODES, make_update_fn
from learner.config import LearnerConfig
from replay.config import ReplayConfig
from replay.rate_limiter import RateLimiter
from replay.server import (
    CHUNK_ROWS_HINT,
    ReplayServer,
    default_tolerance,
    split_batches,
)

RESULTS = os.path.join(ROOT, "bench", "results")
OBS, ACT = 9, 3  # the Drone's sizes
BENCH_MODES = ("eager", "compile", "compile+cudagraphs")
NO_CUDA = "not measured: no CUDA device"
UPDATES_PER_STEP = 1.0
FETCH_ROWS = 4096  # most rows per fetch; a fetch happens once the ratio grants nothing more
WARMUP = 20
ROUNDS = 2


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def synthetic_rows(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {
        "obs": rng.normal(size=(n, OBS)).astype(np.float32),
        "action": rng.uniform(-1, 1, size=(n, ACT)).astype(np.float32),
        "reward": rng.normal(size=n).astype(np.float32),
        "next_obs": rng.normal(size=(n, OBS)).astype(np.float32),
        "terminated": (rng.random(n) < 0.01).astype(np.float32),
        "policy_version": np.zeros(n, dtype=np.int64),
    }


class Bare:
    """The update on pre-sampled device tensors."""

    def __init__(self, update, batch_size: int, device: torch.device):
        replay = DeviceReplay(OBS, ACT, 20_000, device, seed=1)
        replay.extend(synthetic_rows(np.random.default_rng(1), 20_000))
        self.batches = [replay.sample(batch_size) for _ in range(32)]
        self.update, self.i, self.insert_s = update, 0, 0.0

    def run(self, n: int) -> int:
        for _ in range(n):
            self.update(self.batches[self.i % 32])
            self.i += 1
        return n


class Filled:
    """A ReplayServer at min_size, then one 64-row chunk per learner turn (`insert`)."""

    def __init__(self, update, batch_size: int, device: torch.device):
        cfg = ReplayConfig(buffer_size=100_000, batch_size=batch_size, learning_starts=1000)
        self.tolerance = default_tolerance(UPDATES_PER_STEP)
        self.server = ReplayServer(OBS, ACT, cfg, UPDATES_PER_STEP, tolerance=self.tolerance)
        self.min_size = cfg.min_size
        rng = np.random.default_rng(2)
        self.chunks = [synthetic_rows(rng, CHUNK_ROWS_HINT) for _ in range(64)]
        self.server.insert(synthetic_rows(rng, self.min_size), worker_id=0)
        self.update, self.batch_size, self.device, self.i = update, batch_size, device, 0
        self.insert_s = 0.0

    def insert(self) -> None:
        t = time.perf_counter()  # the replay actor's work: not the learner's time
        self.server.insert(self.chunks[self.i % 64], worker_id=0)
        self.insert_s += time.perf_counter() - t
        self.i += 1


class System(Filled):
    """ReplayServer filled in chunks -> fetch -> DeviceReplay -> device sample -> update."""

    def __init__(self, update, batch_size: int, device: torch.device):
        super().__init__(update, batch_size, device)
        replay = DeviceReplay(OBS, ACT, self.server.cfg.buffer_size, device, seed=2)
        self.feed = Feed(replay, RateLimiter(UPDATES_PER_STEP, self.min_size, self.tolerance))

    def run(self, n: int) -> int:
        """At least `n` updates, inserting a chunk into the server after each learner turn."""
        done, feed = 0, self.feed
        while done < n:
            if feed.updates_allowed() == 0:
                feed.ingest(self.server.fetch(feed.cursor, FETCH_ROWS,
                                              feed.limiter.updates_done))
            k = feed.updates_allowed()
            for _ in range(k):
                self.update(feed.replay.sample(self.batch_size))
            feed.record_updates(k)
            done += k
            self.insert()
        return done


class HostFed(Filled):
    """Today's feed, for reference: ReplayServer.sample of 8 batches per call (numpy, on the
    host; in Ray this runs in the replay actor), split, then a host->device tensor per key."""

    def run(self, n: int) -> int:
        done = 0
        while done < n:
            stacked = self.server.sample(8, self.batch_size)
            if stacked is None:
                self.insert()
                continue
            for batch in split_batches(stacked, self.batch_size):
                self.update({k: torch.tensor(batch[k], dtype=torch.float32, device=self.device)
                             for k in ddpg.BATCH_KEYS if k in batch})
                done += 1
        return done


def timed(loop, seconds: float, device: torch.device, step: int = 32) -> tuple[int, float]:
    """(updates, seconds) of `loop.run(step)` repeated for about `seconds`."""
    sync(device)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        n += loop.run(step)
    sync(device)
    return n, time.perf_counter() - t0


def measure(mode: str, batch_size: int, seconds: float, device: torch.device) -> dict:
    """Updates/s of each loop for one mode and batch size, alternating in rounds. Today's
    host feed runs in eager mode only (its batches lack policy_version: a new signature)."""
    torch.manual_seed(0)
    torch._dynamo.reset()  # a fresh state per run: no stale guards, no recompile limit
    state = ddpg.make_state(OBS, ACT, LearnerConfig(), device)
    compile_, cudagraphs = MODES[mode]
    update = make_update_fn(state, compile=compile_, cudagraphs=cudagraphs)
    loops = {"bare": Bare(update, batch_size, device),
             "system": System(update, batch_size, device)}
    if mode == "eager":
        loops["host_fed"] = HostFed(update, batch_size, device)
    t0 = time.perf_counter()
    for loop in loops.values():
        loop.run(WARMUP)  # the first compiles/captures
    sync(device)
    warmup_s = time.perf_counter() - t0
    totals = {name: [0, 0.0] for name in loops}
    for _ in range(ROUNDS):
        for name, loop in loops.items():
            loop.insert_s = 0.0
            n, s = timed(loop, seconds / ROUNDS, device)
            totals[name][0] += n
            totals[name][1] += s - loop.insert_s
    rates = {name: n / s for name, (n, s) in totals.items()}
    return {**rates, "system_over_bare": rates["system"] / rates["bare"], "warmup_s": warmup_s}


def run_all(args, device: torch.device) -> dict:
    results: dict = {}
    for mode in args.modes:
        results[mode] = {}
        for batch_size in args.batches:
            if MODES[mode][1] and device.type != "cuda":
                results[mode][str(batch_size)] = NO_CUDA
                continue
            r = measure(mode, batch_size, args.seconds, device)
            results[mode][str(batch_size)] = r
            host = f"  today's host feed {r['host_fed']:6.0f}/s" if "host_fed" in r else ""
            print(f"{mode:>18} B={batch_size:<5} bare {r['bare']:6.0f}/s  system "
                  f"{r['system']:6.0f}/s  system/bare {r['system_over_bare']:.3f}{host}  "
                  f"(warm-up {r['warmup_s']:.1f}s)", flush=True)
    return results


def summary(results: dict, device: torch.device, args) -> dict:
    def pick(key):
        return {m: {b: (r[key] if isinstance(r, dict) else r) for b, r in per.items()}
                for m, per in results.items()}

    eager_128 = results.get("eager", {}).get("128")
    ratio = eager_128["system_over_bare"] if isinstance(eager_128, dict) else None
    out = {
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "system_over_bare": ratio,
        "updates_per_s": pick("bare"),
        "system_updates_per_s": pick("system"),
        "system_over_bare_all": pick("system_over_bare"),
        "host_fed_updates_per_s": {b: r["host_fed"] for b, r in results.get("eager", {}).items()
                                   if isinstance(r, dict)},
        "warmup_s": pick("warmup_s"),
        "targets": {"cpu_system_over_bare_ge_0.9": None if ratio is None else
                    ("PASS" if ratio >= 0.9 else "MISS")} if device.type == "cpu" else {},
        "seconds_per_run": args.seconds, "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "nproc": os.cpu_count(), "load": os.getloadavg(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if device.type == "cpu":
        out["gpu"] = "not measured"
        out["targets"]["h100"] = NO_CUDA
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds per loop")
    parser.add_argument("--batches", type=int, nargs="+", default=[128, 256, 1024])
    parser.add_argument("--modes", nargs="+", default=list(BENCH_MODES), choices=list(MODES))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--out", default=None, help="results JSON (default: bench/results/"
                        "learner_speed_<device>.json, written only by a full run)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    out = summary(run_all(args, device), device, args)
    print(json.dumps({k: out[k] for k in ("system_over_bare", "targets")}, indent=2))
    full = (args.batches == parser.get_default("batches")
            and args.modes == parser.get_default("modes"))
    if args.out is None and not full:  # the committed results hold every cell
        print("a partial run (--batches/--modes): nothing written (pass --out PATH to keep it)")
        return
    os.makedirs(RESULTS, exist_ok=True)
    path = args.out or os.path.join(RESULTS, f"learner_speed_{device.type}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
