"""The run folder `<results-dir>/<run-id>/`, made (or reused) before anything starts.

Layout:
    configuration.yaml       the effective configuration (reloaded on --resume)
    checkpoints/latest.pt    written atomically (learner/checkpoint.py)
    <Behavior>.onnx          the actor for Unity, rewritten with every checkpoint
    events.out.tfevents.*    TensorBoard: charts/, losses/, perf/
    episodes.csv             one row per finished episode (phase, env_steps, return, ...)
    env_logs/Player-<k>.log  each env process's log
    summary.json             counters and the train/test results, written atomically
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

from learner.files import write_atomic
from runner.errors import RunError


def prepare_run_dir(results_dir: str, run_id: str, resume: bool, force: bool,
                    inference: bool) -> str:
    """Create (or reuse, on --resume/--inference) the run folder; returns its path."""
    path = os.path.join(results_dir, run_id)
    if os.path.dirname(os.path.normpath(path)) != os.path.normpath(results_dir):
        # --force deletes this folder: it must be one folder inside the results folder.
        raise RunError(f"--run-id must be a plain folder name, got {run_id!r}")
    exists = os.path.isdir(path) and bool(os.listdir(path))
    if (resume or inference) and not exists:
        raise RunError(f"no run {run_id!r} in {results_dir}: drop --resume/--inference to "
                       "start it, or check --run-id and --results-dir")
    if (resume or inference) and not os.path.isfile(checkpoint_path(path)):
        raise RunError(f"run {run_id!r} has no checkpoint ({checkpoint_path(path)}): it "
                       "stopped before its first; start it over: --force instead of --resume")
    if exists and not (resume or inference):
        if not force:
            raise RunError(f"run {run_id!r} already exists in {results_dir}: pass --resume to "
                           "continue it, --force to overwrite it, or another --run-id")
        shutil.rmtree(path)
    try:
        os.makedirs(path, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path)
        probe.close()
    except OSError as err:
        raise RunError(f"cannot write to {path} ({err.strerror}): pass a writable "
                       "--results-dir") from None
    return path


def checkpoint_path(run_dir: str) -> str:
    """Where a run keeps its checkpoint."""
    return os.path.join(run_dir, "checkpoints", "latest.pt")


def write_summary(run_dir: str, summary: dict, inference: bool = False) -> dict:
    """summary.json, written atomically; returns what was written. --inference tests a
    trained run: the file keeps what training wrote (counters, rates, train results) and
    takes this session's test results."""
    path = os.path.join(run_dir, "summary.json")
    if inference:
        try:
            with open(path, encoding="utf-8") as f:
                summary = {**json.load(f), "test": summary["test"]}
        except (OSError, ValueError):  # training stopped before its summary: this one
            pass
    write_atomic(path, json.dumps(summary, indent=2))
    return summary
