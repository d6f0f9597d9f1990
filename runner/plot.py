"""The learning curve of a run: `<run_dir>/learning_curve.png` from its TensorBoard events.

Two stacked panels against env steps: the episodic return (raw points, smoothed line)
and the rolling success rate. The train phase is the curve; the test phase comes after
it, and since every test episode is logged at the final env step, it is drawn as a
shaded band at the end with the test returns and their mean.

    python -m runner.plot --run-id X [--results-dir results]
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import sys

import numpy as np

from learner.files import write_atomic

TRAIN_RETURN = "charts/episodic_return"
TRAIN_SUCCESS = "charts/success_rate"
TEST_RETURN = "charts/test_episodic_return"
PNG_NAME = "learning_curve.png"

_TRAIN_COLOR, _TEST_COLOR = "tab:blue", "tab:orange"


class PlotError(Exception):
    """A run that cannot be plotted, stated in one line with its fix."""


def read_scalars(run_dir: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """tag -> (steps, values) for every scalar in the run's event files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not os.path.isdir(run_dir):
        raise PlotError(f"no run folder {run_dir}: check --run-id and --results-dir")
    if not glob.glob(os.path.join(run_dir, "events.out.tfevents.*")):
        raise PlotError(f"no TensorBoard events in {run_dir}: train the run first "
                        "(or point --results-dir at the folder that holds it)")
    # size_guidance 0 keeps every point; the default samples returns down to 1000.
    acc = EventAccumulator(run_dir, size_guidance={"scalars": 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags()["scalars"]:
        events = acc.Scalars(tag)
        out[tag] = (np.array([e.step for e in events], dtype=np.int64),
                    np.array([e.value for e in events], dtype=np.float64))
    if TRAIN_RETURN not in out:
        raise PlotError(f"{run_dir} has no {TRAIN_RETURN} yet: plot once the run has "
                        "finished at least one training episode")
    return out


def smooth(values: np.ndarray, weight: float = 0.9) -> np.ndarray:
    """TensorBoard's debiased exponential moving average, so the plot matches its UI."""
    out = np.empty_like(values, dtype=np.float64)
    avg, norm = 0.0, 0.0
    for i, v in enumerate(values):
        avg = weight * avg + (1 - weight) * v
        norm = weight * norm + (1 - weight)
        out[i] = avg / norm
    return out


def _load_summary(run_dir: str) -> dict:
    path = os.path.join(run_dir, "summary.json")
    try:
        with open(path, encoding="utf-8") as f:
            summary = json.load(f)
    except (OSError, ValueError):  # absent while the run is going: plot without it
        return {}
    return summary if _well_formed(summary) else {}  # an edited one: plot without it


def _well_formed(summary) -> bool:
    """A summary.json whose fields the plot reads have the types drone-ddpg writes."""
    def number(value, kind=(int, float)) -> bool:  # finite: the axis limits come from it
        return value is None or (isinstance(value, kind) and not isinstance(value, bool)
                                 and math.isfinite(value))

    if not isinstance(summary, dict):
        return False
    test = summary.get("test")
    if test is not None and not (isinstance(test, dict) and number(test.get("episodes"), int)
                                 and number(test.get("success_rate"))):
        return False
    return number(summary.get("env_steps")) and number(summary.get("wall_s"))


def _phases(scalars: dict, summary: dict) -> tuple[float, float]:
    """(end of train, width of the test band) in env steps."""
    train_end = float(max(scalars[TRAIN_RETURN][0].max(), summary.get("env_steps") or 0))
    # A band wide enough to read but small next to the curve.
    return train_end, max(train_end * 0.08, 1.0)


def _shade(ax, train_end: float, band: float) -> None:
    ax.axvspan(0, train_end, color=_TRAIN_COLOR, alpha=0.04, lw=0)
    ax.axvspan(train_end, train_end + band, color=_TEST_COLOR, alpha=0.12, lw=0)
    ax.axvline(train_end, color="grey", lw=0.8, ls="--")
    ax.set_xlim(0, train_end + band)
    ax.grid(alpha=0.3)


def last_test(scalars: dict, summary: dict) -> np.ndarray | None:
    """The returns of the run's last test phase, the one summary.json reports: a resumed
    or --inference session logs its test episodes beside the earlier sessions' (the event
    files are read in the order they were written). Without a summary: those logged at
    the last env step."""
    if TEST_RETURN not in scalars:
        return None
    steps, values = scalars[TEST_RETURN]
    count = (summary.get("test") or {}).get("episodes") or 0
    if 0 < count <= values.size:
        return values[-count:]
    return values[steps == steps.max()]


def _return_panel(ax, scalars: dict, test: np.ndarray | None, train_end: float,
                  band: float) -> None:
    steps, values = scalars[TRAIN_RETURN]
    ax.scatter(steps, values, s=4, color=_TRAIN_COLOR, alpha=0.25, lw=0,
               label="train episodes")
    ax.plot(steps, smooth(values), color=_TRAIN_COLOR, lw=1.8, label="train (smoothed)")
    if test is not None:
        # Spread the points across the band: they all share one env step.
        rng = np.random.default_rng(0)
        xs = train_end + band * rng.uniform(0.25, 0.75, size=test.size)
        ax.scatter(xs, test, s=6, color=_TEST_COLOR, alpha=0.4, lw=0)
        ax.errorbar(train_end + band / 2, test.mean(), yerr=test.std(), fmt="D",
                    color=_TEST_COLOR, ms=7, capsize=4, mec="black", mew=0.6,
                    label=f"test: mean {test.mean():+.2f} ± {test.std():.2f} sd "
                          f"({test.size} episodes)")
    ax.set_ylabel("episodic return")
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)


def _success_panel(ax, scalars: dict, summary: dict, train_end: float, band: float) -> None:
    if TRAIN_SUCCESS in scalars:
        steps, values = scalars[TRAIN_SUCCESS]
        # Already a rolling rate over the last episodes: no further smoothing.
        ax.plot(steps, values, "o-", color=_TRAIN_COLOR, ms=4, lw=1.5,
                label="train (rolling success rate)")
    test = summary.get("test") or {}
    if test.get("success_rate") is not None:
        ax.plot(train_end + band / 2, test["success_rate"], "D", color=_TEST_COLOR, ms=8,
                mec="black", mew=0.6, label=f"test: {test['success_rate']:.2f} "
                                            f"({test.get('episodes', '?')} episodes)")
    ax.set_ylim(-0.05, 1.05)
    ax.set_ylabel("success rate")
    ax.set_xlabel("env steps")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=8, framealpha=0.9)


def _title(run_dir: str, summary: dict) -> str:
    title = f"run {os.path.basename(os.path.normpath(run_dir))}"
    if summary.get("env_steps") is not None and summary.get("wall_s") is not None:
        title += f"  ({summary['env_steps']} env steps, {summary['wall_s']:.0f} s)"
    return title


def plot_run(run_dir: str) -> str:
    """Write `<run_dir>/learning_curve.png`; returns its path. Raises PlotError."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import EngFormatter

    scalars = read_scalars(run_dir)
    summary = _load_summary(run_dir)
    train_end, band = _phases(scalars, summary)
    # A bare Figure on the Agg canvas: no pyplot state, no display needed.
    # A success panel only for an env that defines a success: a row of zeros would mislead.
    success = TRAIN_SUCCESS in scalars or (summary.get("test") or {}).get("success_rate") \
        is not None
    fig = Figure(figsize=(9, 6.5 if success else 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2]) if success \
        else [fig.subplots(1, 1)]
    top = axes[0]
    for ax in axes:
        _shade(ax, train_end, band)
    top.xaxis.set_major_formatter(EngFormatter())
    _return_panel(top, scalars, last_test(scalars, summary), train_end, band)
    if success:
        _success_panel(axes[1], scalars, summary, train_end, band)
    else:
        top.set_xlabel("env steps")
    for x, text in ((train_end / 2, "train"), (train_end + band / 2, "test")):
        top.annotate(text, (x, 1.0), xycoords=("data", "axes fraction"), ha="center",
                     va="bottom", fontsize=9, color="dimgrey")
    fig.suptitle(_title(run_dir, summary))
    path = os.path.join(run_dir, PNG_NAME)
    # a viewer never sees a half-written file, and a failed write leaves no .tmp behind
    write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=110))
    return path


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):
        """One line, as every other bad input (argparse adds its usage first)."""
        self.exit(2, f"error: {message}; see launch.py plot --help\n")


def main(argv: list[str] | None = None) -> int:
    parser = _OneLineParser(
        prog="launch.py plot", description="Plot a run's learning curve (training and test "
        "returns against env steps) to <results-dir>/<run-id>/learning_curve.png.")
    parser.add_argument("--run-id", required=True, help="the run to plot")
    parser.add_argument("--results-dir", default="results",
                        help="folder that holds the run (default: results)")
    args = parser.parse_args(argv)
    try:
        print(plot_run(os.path.join(args.results_dir, args.run_id)))
    except PlotError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2  # as every other bad input (and argparse's own usage errors)
    except OSError as err:  # the PNG's write: a full disk, a read-only folder, a directory
        where = err.filename or os.path.join(args.results_dir, args.run_id)
        print(f"error: cannot write {where} ({err.strerror or type(err).__name__}); free "
              "space or make it writable, then plot again", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
