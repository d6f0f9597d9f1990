"""Env throughput: the headless Drone and the Gymnasium bridge, with and without protocol.

Measured, in one run and side by side, at 1 and 16 training areas:

* raw: `DronePhysics.step` + `observe` in this process, no protocol at all (best of 3
  runs: each is short). This is the ceiling the env could reach if messaging cost nothing.
* fast route: `mlagents_envs.UnityEnvironment` driving `envs/drone/Drone.x86_64` over gRPC,
  both processes on the project's .venv (protobuf upb + envs/protobuf_compat.py's hook).
* fallback route: the same client loop, run by this script in `--worker` mode on
  .venv-pb3's interpreter (pure-Python protobuf 3.20.3), with DRONE_PYTHON pointing the
  launcher at that interpreter too, so both ends of the wire use the fallback.

The Gymnasium bridge on HalfCheetah-v5 at 1 and 16 areas: the stock client through
`envs/gymnasium/Gymnasium.x86_64` against the same copies stepped directly through
Gymnasium (no protocol), runs alternating, best of 3 each; ratio bridge / direct =
direct time per agent-step / bridge time per agent-step, target >= 1/1.4 at 16 areas
(bench/README.md says more).

Each client measurement resets, warms up, then times `set_actions` + `step` + `get_steps`
with uniform random actions for `--steps` steps. steps/s counts env steps (one decision per
area); agent-steps/s = steps/s x areas.

The machine is shared (2 cores, other jobs) and absolute rates move by tens of percent
from run to run. Ratios taken within one run (fast/fallback, client/raw) are far more
stable, so they are reported next to the rates. Targets (fast route, stock client):
>= 800 steps/s at 1 area, >= 10,000 agent-steps/s at 16 areas.

Run: `.venv/bin/python -m bench.env_throughput [--steps N] [--quick]`.
Writes bench/results/env_throughput.json (not with --quick, a smoke run).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import envs  # noqa: F401  (protobuf fast path before mlagents_envs)
from bench.bridge_throughput import (
    BRIDGE_ENV,
    TARGET_BRIDGE_RATIO_16,
    bridge_vs_direct,
    print_bridge,
)
from bench.env_clients import StockClient, action_pool, suffix
from envs import protobuf_compat
from envs.drone import DRONE_EXECUTABLE
from envs.drone.physics import DronePhysics
from learner.files import write_atomic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

AREAS = (1, 16)
FAST_WORKER_IDS = {1: 60, 16: 61}
FALLBACK_WORKER_IDS = {1: 62, 16: 63}
PB3_PYTHON = os.path.join(ROOT, ".venv-pb3", "bin", "python")
RESULTS = os.path.join(ROOT, "bench", "results", "env_throughput.json")
TARGET_STEPS_1 = 800.0
TARGET_AGENT_STEPS_16 = 10_000.0
JSON_MARK = "ENV_THROUGHPUT_JSON "  # the worker's result line (mlagents logs to stdout)


def raw_rate(n: int, steps: int, warmup: int, repeats: int = 3) -> float:
    """Physics steps/s with `n` areas: step + observe + reset of finished areas.

    A run takes well under a second, so one scheduler hiccup skews it: best of `repeats`.
    """
    physics = DronePhysics(n, seed=0)
    pool = action_pool(n)

    def run(count: int) -> None:
        for i in range(count):
            result = physics.step(pool[i % len(pool)])
            done = result.terminated | result.truncated
            if done.any():
                physics.reset(done)
            physics.observe()

    run(max(warmup, 1000))
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        run(steps)
        best = max(best, steps / (time.perf_counter() - start))
    return best


def client_rate(n: int, steps: int, warmup: int, worker_id: int) -> float:
    """Env steps/s through the stock client against the headless Drone with `n` areas."""
    with tempfile.TemporaryDirectory(prefix="drone-bench-") as logs:
        client = StockClient(DRONE_EXECUTABLE, n, worker_id, logs)
        try:
            client.run(warmup)
            start = time.perf_counter()
            client.run(steps)
            return steps / (time.perf_counter() - start)
        finally:
            client.close()


def measure_clients(steps: int, warmup: int, worker_ids: dict[int, int]) -> dict:
    """Client rates at 1 and 16 areas in this process, plus its protobuf route."""
    out = {"protobuf_route": protobuf_compat.route(), "python": platform.python_version()}
    for n in AREAS:
        rate = client_rate(n, steps, warmup, worker_ids[n])
        out[f"client_steps_per_s_{suffix(n)}"] = rate
        out[f"client_agent_steps_per_s_{suffix(n)}"] = rate * n
    return out


def run_fallback(steps: int, warmup: int) -> dict:
    """The fallback route: this module in --worker mode on .venv-pb3 (run from the repo
    root, where `bench` is importable), env on it too."""
    env = dict(os.environ, DRONE_PYTHON=PB3_PYTHON)
    cmd = [PB3_PYTHON, "-m", "bench.env_throughput", "--worker",
           "--steps", str(steps), "--warmup", str(warmup)]
    proc = subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(JSON_MARK)]
    if proc.returncode != 0 or not lines:
        sys.stdout.write(proc.stdout)
        raise RuntimeError(f"fallback worker failed (exit {proc.returncode}): {cmd}")
    return json.loads(lines[-1][len(JSON_MARK):])


def collect(steps: int, warmup: int) -> dict:
    """Every measurement, ratios and metadata, as the JSON file holds them."""
    res: dict = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                 "steps": steps, "warmup": warmup, "nproc": os.cpu_count(),
                 "loadavg_at_start": list(os.getloadavg()), "platform": platform.platform()}
    for n in AREAS:
        rate = raw_rate(n, steps, warmup)
        res[f"raw_steps_per_s_{suffix(n)}"] = rate
        res[f"raw_agent_steps_per_s_{suffix(n)}"] = rate * n
    fast = measure_clients(steps, warmup, FAST_WORKER_IDS)
    fallback = run_fallback(steps, warmup)
    res.update({k: v for k, v in fast.items() if k.startswith("client_")})
    res.update({f"fallback_{k}": v for k, v in fallback.items() if k.startswith("client_")})
    res["protobuf_route_fast"] = fast["protobuf_route"]
    res["protobuf_route_fallback"] = fallback["protobuf_route"]
    res["python_fast"], res["python_fallback"] = fast["python"], fallback["python"]
    for n in AREAS:
        s = suffix(n)
        res[f"ratio_fast_over_fallback_{s}"] = (
            res[f"client_steps_per_s_{s}"] / res[f"fallback_client_steps_per_s_{s}"])
        res[f"ratio_client_over_raw_{s}"] = (
            res[f"client_steps_per_s_{s}"] / res[f"raw_steps_per_s_{s}"])
    res["target_client_steps_per_s_1_area"] = TARGET_STEPS_1
    res["target_client_agent_steps_per_s_16_areas"] = TARGET_AGENT_STEPS_16
    res["pass_1_area"] = res["client_steps_per_s_1_area"] >= TARGET_STEPS_1
    res["pass_16_areas"] = res["client_agent_steps_per_s_16_areas"] >= TARGET_AGENT_STEPS_16
    res["bridge_env_id"] = BRIDGE_ENV
    for n in AREAS:
        res.update(bridge_vs_direct(n, steps, warmup))
    # The best ratio an env side costing nothing beyond the simulation could reach: direct
    # time plus the Drone's protocol time per exchange (client - raw) at 16 areas.
    direct_ms = 1e3 / res["direct_steps_per_s_16_areas"]
    protocol_ms = 1e3 / res["client_steps_per_s_16_areas"] - 1e3 / res["raw_steps_per_s_16_areas"]
    res["drone_protocol_ms_per_step_16_areas"] = protocol_ms
    res["ratio_bridge_over_direct_bound_16_areas"] = direct_ms / (direct_ms + protocol_ms)
    res["target_ratio_bridge_over_direct_16_areas"] = TARGET_BRIDGE_RATIO_16
    res["pass_bridge_16_areas"] = (
        res["ratio_bridge_over_direct_16_areas"] >= TARGET_BRIDGE_RATIO_16)
    return res


def print_table(r: dict) -> None:
    """The side-by-side table, ratios and PASS/MISS lines."""
    head = f"{'':34s}{'1 area':>10s}{'':>14s}{'16 areas':>10s}{'':>14s}"
    sub = f"{'':34s}" + f"{'steps/s':>10s}{'agent-st/s':>14s}" * 2
    print(head.rstrip(), sub, "-" * len(sub), sep="\n")
    rows = [("raw physics (no protocol)", "raw_"),
            (f"client fast ({r['protobuf_route_fast']})", "client_"),
            (f"client fallback ({r['protobuf_route_fallback']})", "fallback_client_")]
    for label, prefix in rows:
        cells = "".join(f"{r[f'{prefix}steps_per_s_{suffix(n)}']:>10,.0f}"
                        f"{r[f'{prefix}agent_steps_per_s_{suffix(n)}']:>14,.0f}" for n in AREAS)
        print(f"{label:34s}{cells}")
    for label, key in [("ratio fast / fallback", "ratio_fast_over_fallback_"),
                       ("ratio client (fast) / raw", "ratio_client_over_raw_")]:
        print(f"{label:34s}" + "".join(f"{r[key + suffix(n)]:>10.2f}{'':>14s}" for n in AREAS))
    verdict = {True: "PASS", False: "MISS"}
    print(f"\n{verdict[r['pass_1_area']]}: {r['client_steps_per_s_1_area']:,.0f} steps/s at "
          f"1 area (target >= {TARGET_STEPS_1:,.0f})")
    print(f"{verdict[r['pass_16_areas']]}: {r['client_agent_steps_per_s_16_areas']:,.0f} "
          f"agent-steps/s at 16 areas (target >= {TARGET_AGENT_STEPS_16:,.0f})")
    print_bridge(r)
    print(f"{r['steps']} steps after {r['warmup']} warm-up, nproc={r['nproc']}, "
          f"python {r['python_fast']}, load at start {r['loadavg_at_start'][0]:.2f}, {r['date']}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=3000, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default "
                   "steps/10, at least 100)")
    p.add_argument("--quick", action="store_true", help="500 steps: a smoke run, not numbers")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.steps = 500
    if args.warmup is None:
        args.warmup = max(100, args.steps // 10)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        out = measure_clients(args.steps, args.warmup, FALLBACK_WORKER_IDS)
        print(JSON_MARK + json.dumps(out), flush=True)
        return 0
    if not os.access(PB3_PYTHON, os.X_OK):
        print(f"env_throughput: fallback venv missing ({PB3_PYTHON}); run `make install-pb3` "
              "in the repository root first", file=sys.stderr)
        return 2
    results = collect(args.steps, args.warmup)
    print()
    print_table(results)
    if args.quick:  # a smoke run's numbers would replace the measured ones
        print("\n--quick: a smoke run, bench/results/env_throughput.json left as it was")
        return 0
    write_atomic(RESULTS, json.dumps(results, indent=2))
    print(f"\nwrote {os.path.relpath(RESULTS, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
