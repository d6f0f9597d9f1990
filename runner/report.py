"""The table printed at the end of a run: what it did, how fast, and where its files are."""

from __future__ import annotations

import os


def _num(value, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def _rate(summary: dict, key: str, count_key: str) -> str:
    """A rate from summary['perf'] when the runner measured it, else the run's average."""
    perf = summary.get("perf") or {}
    if perf.get(key) is not None:
        return f"{perf[key]:.0f}"
    count, wall = summary.get(count_key), summary.get("wall_s")
    if count is None or not wall:
        return "-"
    # The average spans the whole wall time, test phase and startup included.
    return f"{count / wall:.0f} (run average)"


def _phase(stats: dict | None) -> str:
    stats = stats or {}
    if not stats.get("episodes"):
        return "- (no episodes)"
    # EpisodeStats rates cover its rolling window, not every episode of the phase.
    rate = _num(stats.get("success_rate"), "{:.2f}")
    return f"{rate} (recent episodes; {stats['episodes']} in all)"


def end_of_run_table(summary: dict, run_dir: str, onnx_path: str | None) -> str:
    """A plain-text table of the run's results and file paths (no trailing newline)."""
    test = summary.get("test") or {}
    # TensorBoard is pointed at the results folder so runs can be compared side by side.
    results_dir = os.path.dirname(os.path.normpath(run_dir)) or "."
    rows = [
        ("env steps", _num(summary.get("env_steps"), "{:d}")),
        ("wall time", _num(summary.get("wall_s"), "{:.1f} s")),
        ("steps/s", _rate(summary, "env_steps_per_s", "env_steps")),
        ("updates/s", _rate(summary, "updates_per_s", "learner_steps")),
        ("train success", _phase(summary.get("train"))),
        ("test success", _phase(test)),
        ("test mean return", _num(test.get("mean_return"), "{:+.2f}")),
        ("checkpoint", os.path.join(run_dir, "checkpoints", "latest.pt")),
        ("policy (ONNX)", onnx_path or "- (not exported)"),
        ("TensorBoard", f"tensorboard --logdir {results_dir}"),
    ]
    width = max(len(label) for label, _ in rows)
    rule = "-" * (width + 2 + max(len(value) for _, value in rows))
    lines = [rule] + [f"{label:<{width}}  {value}" for label, value in rows] + [rule]
    return "\n".join(lines)
