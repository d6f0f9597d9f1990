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
Writes bench/results/env_throughput.json.
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import numpy as np

import envs  # noqa: F401  (protobuf fast path before mlagents_envs)
from envs import protobuf_compat
from envs.drone import DRONE_EXECUTABLE
from envs.drone.physics import ACTION_SIZE, DronePhysics
from envs.gymnasium import GYMNASIUM_EXECUTABLE

AREAS = (1, 16)
FAST_WORKER_IDS = {1: 60, 16: 61}
FALLBACK_WORKER_IDS = {1: 62, 16: 63}
BRIDGE_WORKER_IDS = {1: 64, 16: 65}
BRIDGE_ENV = "HalfCheetah-v5"
BRIDGE_ACTION_SIZE = 6
TARGET_BRIDGE_RATIO_16 = 1 / 1.4
PB3_PYTHON = os.path.join(ROOT, ".venv-pb3", "bin", "python")
RESULTS = os.path.join(ROOT, "bench", "results", "env_throughput.json")
TARGET_STEPS_1 = 800.0
TARGET_AGENT_STEPS_16 = 10_000.0
JSON_MARK = "ENV_THROUGHPUT_JSON "  # the worker's result line (mlagents logs to stdout)


def _suffix(n: int) -> str:
    return "1_area" if n == 1 else f"{n}_areas"


def action_pool(n: int, size: int = 64, seed: int = 0,
                width: int = ACTION_SIZE) -> list[np.ndarray]:
    """Pre-drawn uniform random actions, so drawing them is not timed."""
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, (n, width)).astype(np.float32) for _ in range(size)]


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


class StockClient:
    """The stock client driving an env executable with `n` areas and random actions."""

    def __init__(self, file_name: str, n: int, worker_id: int, log_folder: str,
                 args: tuple[str, ...] = (), width: int = ACTION_SIZE):
        from mlagents_envs.environment import UnityEnvironment

        self.env = UnityEnvironment(file_name=file_name, worker_id=worker_id, num_areas=n,
                                    no_graphics=True, log_folder=log_folder,
                                    additional_args=list(args))
        self.env.reset()
        self.name = next(iter(self.env.behavior_specs))
        self.pool, self.i = action_pool(n, width=width), 0
        self.pid = self.env._process.pid  # the launchers exec'd Python: the env process

    def run(self, count: int) -> None:
        from mlagents_envs.base_env import ActionTuple

        for _ in range(count):
            decisions, _ = self.env.get_steps(self.name)
            act = self.pool[self.i % len(self.pool)][: len(decisions)]
            self.i += 1
            self.env.set_actions(self.name, ActionTuple(continuous=act))
            self.env.step()

    def close(self) -> None:
        self.env.close()


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


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class DirectCopies:
    """`n` copies of BRIDGE_ENV stepped in a plain loop through Gymnasium: no protocol."""

    def __init__(self, n: int):
        import gymnasium

        from envs.gymnasium.check import mujoco_warnings_to_log

        with mujoco_warnings_to_log():
            self.envs = [gymnasium.make(BRIDGE_ENV) for _ in range(n)]
        for k, env in enumerate(self.envs):
            env.reset(seed=k)
        self.pool, self.i = action_pool(n, width=BRIDGE_ACTION_SIZE), 0

    def run(self, count: int) -> None:
        for _ in range(count):
            action = self.pool[self.i % len(self.pool)]
            self.i += 1
            for env, a in zip(self.envs, action):
                _, _, terminated, truncated, _ = env.step(a)
                if terminated or truncated:
                    env.reset()

    def close(self) -> None:
        for env in self.envs:
            env.close()


def bridge_vs_direct(n: int, steps: int, warmup: int, repeats: int = 3) -> dict:
    """Alternating direct and bridge runs at `n` areas; the best of each, with the CPU
    seconds per env step of the client (this process) and of the env process."""
    count = max(100, steps // repeats)
    direct = DirectCopies(n)
    with tempfile.TemporaryDirectory(prefix="bridge-bench-") as logs:
        bridge = StockClient(GYMNASIUM_EXECUTABLE, n, BRIDGE_WORKER_IDS[n], logs,
                             ("--env-id", BRIDGE_ENV), BRIDGE_ACTION_SIZE)
        try:
            direct.run(warmup)
            bridge.run(warmup)
            best_direct, best_bridge = 0.0, (0.0, 0.0, 0.0)
            for _ in range(repeats):
                start = time.perf_counter()
                direct.run(count)
                best_direct = max(best_direct, count / (time.perf_counter() - start))
                cpu, env_cpu = time.process_time(), _cpu_seconds(bridge.pid)
                start = time.perf_counter()
                bridge.run(count)
                rate = count / (time.perf_counter() - start)
                if rate > best_bridge[0]:
                    best_bridge = (rate, (time.process_time() - cpu) / count,
                                   (_cpu_seconds(bridge.pid) - env_cpu) / count)
        finally:
            bridge.close()
            direct.close()
    s = _suffix(n)
    rate, client_cpu, env_cpu = best_bridge
    return {f"direct_steps_per_s_{s}": best_direct,
            f"direct_agent_steps_per_s_{s}": best_direct * n,
            f"bridge_steps_per_s_{s}": rate, f"bridge_agent_steps_per_s_{s}": rate * n,
            f"bridge_client_cpu_ms_per_step_{s}": client_cpu * 1e3,
            f"bridge_env_cpu_ms_per_step_{s}": env_cpu * 1e3,
            f"ratio_bridge_over_direct_{s}": rate / best_direct}


def measure_clients(steps: int, warmup: int, worker_ids: dict[int, int]) -> dict:
    """Client rates at 1 and 16 areas in this process, plus its protobuf route."""
    out = {"protobuf_route": protobuf_compat.route(), "python": platform.python_version()}
    for n in AREAS:
        rate = client_rate(n, steps, warmup, worker_ids[n])
        out[f"client_steps_per_s_{_suffix(n)}"] = rate
        out[f"client_agent_steps_per_s_{_suffix(n)}"] = rate * n
    return out


def run_fallback(steps: int, warmup: int) -> dict:
    """The fallback route: this script in --worker mode on .venv-pb3, env on it too."""
    env = dict(os.environ, DRONE_PYTHON=PB3_PYTHON)
    cmd = [PB3_PYTHON, os.path.abspath(__file__), "--worker",
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
        res[f"raw_steps_per_s_{_suffix(n)}"] = rate
        res[f"raw_agent_steps_per_s_{_suffix(n)}"] = rate * n
    fast = measure_clients(steps, warmup, FAST_WORKER_IDS)
    fallback = run_fallback(steps, warmup)
    res.update({k: v for k, v in fast.items() if k.startswith("client_")})
    res.update({f"fallback_{k}": v for k, v in fallback.items() if k.startswith("client_")})
    res["protobuf_route_fast"] = fast["protobuf_route"]
    res["protobuf_route_fallback"] = fallback["protobuf_route"]
    res["python_fast"], res["python_fallback"] = fast["python"], fallback["python"]
    for n in AREAS:
        s = _suffix(n)
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
        cells = "".join(f"{r[f'{prefix}steps_per_s_{_suffix(n)}']:>10,.0f}"
                        f"{r[f'{prefix}agent_steps_per_s_{_suffix(n)}']:>14,.0f}" for n in AREAS)
        print(f"{label:34s}{cells}")
    for label, key in [("ratio fast / fallback", "ratio_fast_over_fallback_"),
                       ("ratio client (fast) / raw", "ratio_client_over_raw_")]:
        print(f"{label:34s}" + "".join(f"{r[key + _suffix(n)]:>10.2f}{'':>14s}" for n in AREAS))
    verdict = {True: "PASS", False: "MISS"}
    print(f"\n{verdict[r['pass_1_area']]}: {r['client_steps_per_s_1_area']:,.0f} steps/s at "
          f"1 area (target >= {TARGET_STEPS_1:,.0f})")
    print(f"{verdict[r['pass_16_areas']]}: {r['client_agent_steps_per_s_16_areas']:,.0f} "
          f"agent-steps/s at 16 areas (target >= {TARGET_AGENT_STEPS_16:,.0f})")
    print_bridge(r)
    print(f"{r['steps']} steps after {r['warmup']} warm-up, nproc={r['nproc']}, "
          f"python {r['python_fast']}, load at start {r['loadavg_at_start'][0]:.2f}, {r['date']}")


def print_bridge(r: dict) -> None:
    """The Gymnasium bridge against direct stepping, and its PASS/MISS line."""
    print(f"\nGymnasium bridge, {r['bridge_env_id']} (best of 3 alternating runs each)")
    rows = [("direct (gymnasium, no protocol)", "direct_"), ("bridge (stock client)", "bridge_")]
    for label, prefix in rows:
        cells = "".join(f"{r[f'{prefix}steps_per_s_{_suffix(n)}']:>10,.0f}"
                        f"{r[f'{prefix}agent_steps_per_s_{_suffix(n)}']:>14,.0f}" for n in AREAS)
        print(f"{label:34s}{cells}")
    print(f"{'ratio bridge / direct':34s}" + "".join(
        f"{r['ratio_bridge_over_direct_' + _suffix(n)]:>10.2f}{'':>14s}" for n in AREAS))
    print(f"{'bridge CPU ms/step: client, env':34s}" + "".join(
        f"{r['bridge_client_cpu_ms_per_step_' + _suffix(n)]:>10.2f}"
        f"{r['bridge_env_cpu_ms_per_step_' + _suffix(n)]:>14.2f}" for n in AREAS))
    print(f"bound at 16 areas with the Drone's protocol time "
          f"({r['drone_protocol_ms_per_step_16_areas']:.2f} ms/exchange) and a free env side: "
          f"{r['ratio_bridge_over_direct_bound_16_areas']:.2f}")
    verdict = "PASS" if r["pass_bridge_16_areas"] else "MISS"
    print(f"{verdict}: bridge / direct = {r['ratio_bridge_over_direct_16_areas']:.2f} at 16 "
          f"areas (target >= 1/1.4 = {TARGET_BRIDGE_RATIO_16:.3f}: the protocol adds <= 40%)")


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
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    print()
    print_table(results)
    print(f"\nwrote {os.path.relpath(RESULTS, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
