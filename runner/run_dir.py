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

import errno
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
    if os.path.dirname(os.path.abspath(path)) != os.path.abspath(results_dir):
        # --force deletes this folder: it must be one folder inside the results folder.
        raise RunError(f"--run-id must be a plain folder name, got {run_id!r}")
    if not (resume or inference) and os.path.isdir(path) and only_debris(path):
        shutil.rmtree(path)  # what a start that failed left (logs): not a run to keep
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
        # Deleted only once the new run has started (settle_replaced): a new run that
        # fails to start (a bad env, too large a replay) must not cost the old one.
        replaced = replaced_path(path)
        if os.path.isdir(replaced):
            shutil.rmtree(replaced)  # left by a forced start that was killed outright
        os.rename(path, replaced)
    try:
        os.makedirs(path, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path)
        probe.close()
    except OSError as err:
        fix = ("a shorter --run-id" if err.errno == errno.ENAMETOOLONG
               else "a writable --results-dir")
        raise RunError(f"cannot write to {path} ({err.strerror}): pass {fix}") from None
    return path


def only_debris(path: str) -> bool:
    """The folder holds only what a start that failed before training leaves (env logs,
    an empty TensorBoard file), so a corrected rerun need not --force."""
    names = os.listdir(path)
    return bool(names) and all(n == "env_logs" or n.startswith("events.out.tfevents.")
                               for n in names)


def replaced_path(run_dir: str) -> str:
    """Where --force keeps the run it replaces until the new one has started."""
    head, name = os.path.split(os.path.normpath(run_dir))
    return os.path.join(head, f".{name}.replaced")


def settle_replaced(run_dir: str) -> str | None:
    """After a --force session: the replaced run goes if the new one started (it saved its
    configuration.yaml); otherwise the new folder goes and the replaced run comes back.
    Returns a note for the user in the second case."""
    replaced = replaced_path(run_dir)
    if not os.path.isdir(replaced):
        return None
    if os.path.isfile(os.path.join(run_dir, "configuration.yaml")):
        shutil.rmtree(replaced)
        return None
    shutil.rmtree(run_dir, ignore_errors=True)
    os.rename(replaced, run_dir)
    return f"the new run did not start: the previous run is kept as it was in {run_dir}"


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
