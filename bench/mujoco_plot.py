"""Learning curves of bench/mujoco.py: training return against env steps, one panel per
task, one line per algorithm/implementation/variant (mean over seeds, band = min to max).

    .venv/bin/python -m bench.mujoco_plot bench/results/mujoco.json
"""

from __future__ import annotations

import json
import os
import warnings

import numpy as np


def curves(results: dict) -> dict[str, dict[str, np.ndarray]]:
    """task -> line name -> (seeds, bins) array of binned training returns (NaN: no data)."""
    out: dict = {}
    for run in results["runs"]:
        task, line = run["cell"].split("/", 1)
        values = [np.nan if v is None else v for v in run["curve"]]
        out.setdefault(task, {}).setdefault(line, []).append(values)
    return {task: {line: np.array(v, float) for line, v in lines.items()}
            for task, lines in out.items()}


def plot(path: str) -> str:
    """Write the PNG beside the JSON results; returns its path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import EngFormatter

    with open(path, encoding="utf-8") as f:
        results = json.load(f)
    by_task = curves(results)
    budget = results["budget"]
    fig = Figure(figsize=(5.5 * len(by_task), 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(1, len(by_task)))
    for ax, (task, lines) in zip(axes, by_task.items()):
        for line, values in lines.items():
            bins = values.shape[1]
            x = (np.arange(bins) + 0.5) * budget / bins
            with warnings.catch_warnings():  # a bin no episode ended in stays empty (NaN)
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(values, axis=0)
                low, high = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
            style = "--" if "/sb3/" in f"/{line}/" else "-"
            (drawn,) = ax.plot(x, mean, style, lw=1.6, label=f"{line} ({len(values)} seeds)")
            ax.fill_between(x, low, high, color=drawn.get_color(), alpha=0.15, lw=0)
        ax.set_title(task)
        ax.set_xlabel("env steps")
        ax.xaxis.set_major_formatter(EngFormatter())
        ax.legend(fontsize=7, loc="upper left")
    axes[0].set_ylabel("training episode return")
    # One line across several panels; two lines over a single one, so it fits.
    sep = " " if len(by_task) > 1 else "\n"
    fig.suptitle(f"ours (solid) and Stable-Baselines3 (dashed),{sep}{budget} env steps, "
                 "band = min-max over seeds")
    png = os.path.splitext(path)[0] + ".png"
    fig.savefig(png, dpi=100)
    return png


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.mujoco_plot", description=(
        "Plot a bench.mujoco results JSON's learning curves to a PNG beside it."))
    parser.add_argument("json", help="e.g. bench/results/mujoco.json")
    print(plot(parser.parse_args().json))
