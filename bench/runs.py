"""One training run of launch.py for a benchmark, as a subprocess, like a user starts it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = os.path.join(ROOT, "bench", "results", "runs")


def launch_run(run_id: str, flags: list[str]) -> tuple[str, dict]:
    """Train `run_id` (overwriting an earlier run of that id) with `flags`; returns its run
    folder and summary.json. A failed run ends the benchmark with its last error lines."""
    cmd = [sys.executable, os.path.join(ROOT, "launch.py"), *flags, "--run-id", run_id,
           "--results-dir", RUNS, "--force"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{run_id} failed: {done.stderr.strip()[-800:]}")
    run_dir = os.path.join(RUNS, run_id)
    with open(os.path.join(run_dir, "summary.json"), encoding="utf-8") as f:
        return run_dir, json.load(f)
