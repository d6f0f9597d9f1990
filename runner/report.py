"""The table printed at the end of a run: what it did, how fast, and where its files are."""

from __future__ import annotations

import os

from runner.errors import venv_command
from runner.run_dir import checkpoint_path


def _num(value, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def _rate(summary: dict, key: str, count_key: str) -> str:
    """A rate from summary['perf'] when the runner measured it, else the training average
    (the test phase and start-up left out when the run knows its training time)."""
    perf = summary.get("perf") or {}
    if perf.get(key) is not None:
        return f"{perf[key]:.0f}"
    count = summary.get(count_key)
    wall, what = summary.get("train_wall_s"), "training average"
    if not wall:
        wall, what = summary.get("wall_s"), "run average"
    if count is None or not wall:
        return "-"
    return f"{count / wall:.0f} ({what})"


def _phase(stats: dict | None, key: str, fmt: str) -> str:
    """A phase's mean (return or success rate) and the episodes it covers."""
    stats = stats or {}
    count = stats.get("episodes")
    if not count:
        return "- (no episodes)"
    covered = stats.get("mean_over", count)
    if covered == count:
        episodes = "1 episode" if count == 1 else f"all {count} episodes"
        return f"{_num(stats.get(key), fmt)} ({episodes})"
    return f"{_num(stats.get(key), fmt)} (last {covered} of {count} episodes)"


def tensorboard_command() -> str:
    """`tensorboard` when it is on PATH, else the venv's."""
    return venv_command("tensorboard")


def end_of_run_table(summary: dict, run_dir: str, onnx_path: str | None,
                     test_steps: int = 0) -> str:
    """A plain-text table of the run's results and file paths (no trailing newline).

    Success rows only for an env that defines a success (EnvConfig.success). A test phase
    of `test_steps` that ended no episode says how to get one."""
    train, test = summary.get("train") or {}, summary.get("test") or {}
    # TensorBoard is pointed at the results folder so runs can be compared side by side.
    results_dir = os.path.dirname(os.path.normpath(run_dir)) or "."
    success = any(p.get("success_rate") is not None for p in (train, test))
    rows = [
        ("env steps", _num(summary.get("env_steps"), "{:d}")),
        ("wall time", _num(summary.get("wall_s"), "{:.1f} s")),
        ("steps/s", _rate(summary, "env_steps_per_s", "env_steps")),
        ("updates/s", _rate(summary, "updates_per_s", "learner_steps")),
        ("train return", _phase(train, "mean_return", "{:+.2f}")),
        *([("train success", _phase(train, "success_rate", "{:.2f}"))] if success else []),
        ("test return", _phase(test, "mean_return", "{:+.2f}") if test.get("episodes")
         or not test_steps else f"- (no episode ended within --test-steps {test_steps}: "
         "raise it)"),
        *([("test success", _phase(test, "success_rate", "{:.2f}"))] if success else []),
        ("checkpoint", checkpoint_path(run_dir)),
        ("policy (ONNX)", onnx_path or "- (not exported)"),
        ("TensorBoard", f"{tensorboard_command()} --logdir {results_dir}"),
    ]
    width = max(len(label) for label, _ in rows)
    rule = "-" * (width + 2 + max(len(value) for _, value in rows))
    lines = [rule] + [f"{label:<{width}}  {value}" for label, value in rows] + [rule]
    return "\n".join(lines)
