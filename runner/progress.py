"""Training progress on the console: a live bar on a terminal, plain lines in logs.

A terminal gets a tqdm bar (env steps out of the budget, the rates and results in its
postfix). Anything else (CI, `tee`, a log file) gets one plain line every `interval_s`
seconds and a last one on close, since a redrawn bar turns a log into noise.

tqdm rather than rich.progress: tqdm is already in the venv, has no dependencies and
falls back cleanly on odd streams; rich is not installed (tyro no longer pulls it in).
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

# key -> (label, format); the order is the order on the line, the policy lag last (what a
# narrow terminal cuts off the end).
_FIELDS = (
    ("steps_per_s", "steps/s", "{:.0f}"),
    ("updates_per_s", "updates/s", "{:.0f}"),
    ("mean_return", "return", "{:+.2f}"),
    ("success_rate", "success", "{:.2f}"),
    ("env_restarts", "restarts", "{:.0f}"),
    ("policy_lag", "lag", "{:.1f}"),
)

# The rate and ETA tqdm would compute itself are left out: the postfix carries ours. No
# percentage (the bar and the counts say it); tqdm puts ", " before the postfix. Richest
# first: a narrow terminal loses the bar, then the times, and keeps the values (rates,
# return, success), which tqdm would cut off the end of the line. Each with the room it
# may grow by: the times ("00:00<?" becomes "01:02:03<00:10"), the count ("999/1000" ->
# "1000/1000").
_BAR_FORMATS = (
    ("{desc} |{bar:8}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]{postfix}", 10),
    ("{desc} {n_fmt}/{total_fmt} [{elapsed}<{remaining}]{postfix}", 10),
    ("{desc} {n_fmt}/{total_fmt}{postfix}", 2),
    ("{desc} {n_fmt}{postfix}", 1),
)


# Shown only when the runner reports them: no success rate for an env that defines none,
# no policy lag in local mode.
_OPTIONAL = ("success_rate", "policy_lag")


def format_values(values: dict, sep: str = "  ", hidden: tuple = ()) -> str:
    """'850 steps/s  812 updates/s  return +2.31 ...'; '-' for a None value (or a missing
    one, except the optional fields, which are left out when missing). Env restarts show
    only once there have been some; `hidden` fields never."""
    parts = []
    for key, label, fmt in _FIELDS:
        if key in hidden or (key in _OPTIONAL and key not in values):
            continue
        if key == "env_restarts" and not values.get(key):
            continue
        value = values.get(key)
        text = "-" if value is None else fmt.format(value)
        # Rates read best as "850 steps/s", results as "return +2.31".
        parts.append(f"{text} {label}" if label.endswith("/s") else f"{label} {text}")
    return sep.join(parts)


class Progress:
    """Progress of one phase (train or test) towards `total_steps` env steps."""

    def __init__(self, total_steps: int, phase: str, stream: TextIO | None = None,
                 interval_s: float = 10.0, live: bool | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.total = int(total_steps)
        self.phase = phase
        # sys.stdout as it is now, not at import: a caller may have redirected it since.
        self.stream = sys.stdout if stream is None else stream
        self.interval_s = interval_s
        self.clock = clock
        self.live = _isatty(self.stream) if live is None else live
        self.env_steps = 0
        self.values: dict = {}
        # The learner takes no updates in the test phase: no "- updates/s" column.
        self.hidden = ("updates_per_s",) if phase == "test" else ()
        self._last_line = clock()
        self._closed = False
        self._started = False
        self._bar = self._make_bar() if self.live else None

    def _make_bar(self):
        from tqdm import tqdm

        bar = tqdm(total=self.total, desc=f"[{self.phase}]", unit="step", file=self.stream,
                   dynamic_ncols=True, bar_format=_BAR_FORMATS[0][0])
        # What others print while the bar is live (Ray's lines from the actors, a library's
        # warning) goes above it: printed straight to the terminal it tore the bar's line.
        self._streams = {name: getattr(sys, name) for name in ("stdout", "stderr")}
        for name, real in self._streams.items():
            if _isatty(real):
                setattr(sys, name, AboveTheBar(real, bar))
        return bar

    def update(self, env_steps: int, values: dict) -> None:
        """Record the phase's env steps so far and the latest values; draw if due."""
        if self._closed:
            return
        self.env_steps = int(env_steps)
        self.values = dict(values)
        if self._bar is not None:
            self._update_bar()
        elif self.env_steps < self.total and self.clock() - self._last_line >= self.interval_s:
            # The budget reached: close() prints the last line, with the phase's results.
            self._last_line = self.clock()
            self._print_line()

    def _update_bar(self) -> None:
        bar = self._bar
        if not self._started:
            # A resumed run starts part-way: count from there, or tqdm's rate and ETA
            # would take the steps of earlier sessions as done in no time.
            bar.initial = bar.n = bar.last_print_n = self.env_steps
            self._started = True
        self._set_postfix()
        if self.env_steps > bar.total:
            # A run ends up to a chunk past its budget; tqdm would drop the total ("?")
            # and read 0% once the count passes it.
            bar.total = self.env_steps
        # tqdm throttles its own redraws, so every call can go through.
        bar.update(self.env_steps - bar.n)

    def _set_postfix(self) -> None:
        """The values on the bar, in the richest format the terminal's width holds."""
        bar, postfix = self._bar, self._postfix()
        if postfix == bar.postfix:
            return
        bar.set_postfix_str(postfix, refresh=False)
        width = bar.format_dict["ncols"]  # the terminal's, now (dynamic_ncols)
        for fmt, growth in _BAR_FORMATS:
            if not width or len(bar.format_meter(**{**bar.format_dict, "bar_format": fmt,
                                                     "ncols": None})) + growth <= width:
                break
        bar.bar_format = fmt

    def _postfix(self) -> str:
        return format_values(self.values, sep=" ", hidden=self.hidden)

    def write(self, text: str) -> None:
        """Print a message without tearing the live bar."""
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def line(self) -> str:
        """The plain progress line for the current state."""
        pct = 100.0 * self.env_steps / self.total if self.total > 0 else 100.0
        return (f"[{self.phase}] {self.env_steps}/{self.total} env steps ({pct:.0f}%)  "
                f"{format_values(self.values, hidden=self.hidden)}")

    def _print_line(self) -> None:
        line = self.line()
        if line != getattr(self, "_last_printed", None):  # no echo of a line just printed
            print(line, file=self.stream, flush=True)
            self._last_printed = line

    def close(self) -> None:
        """Finish the bar, or print the final plain line; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._set_postfix()
            self._bar.close()
            for name, real in self._streams.items():
                wrapped = getattr(sys, name)
                if isinstance(wrapped, AboveTheBar) and wrapped.real is real:
                    wrapped.flush_pending()
                    setattr(sys, name, real)
        else:
            self._print_line()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class AboveTheBar:
    """A terminal stream whose complete lines are written above the live bar: the bar is
    cleared first and redrawn after, under tqdm's lock (Ray prints from its own thread)."""

    def __init__(self, real: TextIO, bar):
        self.real, self.bar, self.pending = real, bar, ""

    def write(self, text: str) -> int:
        self.pending += text
        if "\n" in self.pending:
            lines, _, self.pending = self.pending.rpartition("\n")
            with self.bar.get_lock():
                self.bar.clear(nolock=True)
                self.real.write(lines + "\n")
                self.real.flush()
                self.bar.refresh(nolock=True)
        return len(text)

    def flush_pending(self) -> None:
        if self.pending:
            self.real.write(self.pending)
            self.pending = ""
        self.real.flush()

    def flush(self) -> None:
        self.real.flush()

    def __getattr__(self, name):  # isatty, fileno, encoding...: the terminal's
        return getattr(self.real, name)


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
