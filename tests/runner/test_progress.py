"""Progress: plain lines at the interval off a terminal, a live bar on one."""

import io
import re

from runner.progress import Progress


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


FULL = {"steps_per_s": 850, "updates_per_s": 812.4, "mean_return": 2.314,
        "success_rate": 0.85, "policy_lag": 3.21, "env_restarts": 0}


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_plain_lines_only_at_the_interval():
    out, clock = io.StringIO(), FakeClock()
    progress = Progress(50000, "train", stream=out, interval_s=10.0, clock=clock)
    assert not progress.live  # a StringIO is no terminal
    progress.update(1000, FULL)
    clock.now += 9.9
    progress.update(5000, FULL)
    assert lines(out) == []
    clock.now += 0.2
    progress.update(12000, FULL)
    assert lines(out) == ["[train] 12000/50000 env steps (24%)  850 steps/s  812 updates/s  "
                          "return +2.31  success 0.85  lag 3.2"]  # no restarts: not shown
    clock.now += 1.0
    progress.update(13000, FULL)  # the interval restarts from the last line
    assert len(lines(out)) == 1


def test_close_prints_a_final_line_once():
    out, clock = io.StringIO(), FakeClock()
    progress = Progress(2000, "test", stream=out, clock=clock)
    progress.update(2000, {"mean_return": -1.5})
    progress.close()
    progress.close()
    assert len(lines(out)) == 1
    assert lines(out)[0].startswith("[test] 2000/2000 env steps (100%)")
    assert "return -1.50" in lines(out)[0]


def test_the_budget_reached_leaves_the_last_line_to_close():
    """A due line at the budget, then close()'s with the phase's results: the log showed
    two 101% lines with different rates."""
    out, clock = io.StringIO(), FakeClock()
    progress = Progress(2000, "train", stream=out, interval_s=10.0, clock=clock)
    clock.now += 11.0
    progress.update(2048, {**FULL, "steps_per_s": 161.0})
    progress.update(2048, {**FULL, "steps_per_s": 547.0})
    progress.close()
    assert len(lines(out)) == 1 and "547 steps/s" in lines(out)[0]


def test_what_others_print_during_a_live_bar_goes_above_it(monkeypatch):
    """Ray prints the actors' lines to sys.stdout/sys.stderr from its own thread: written
    straight to the terminal, they landed on the bar's line and tore it."""
    import sys

    terminal = FakeTTY()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(sys, "stdout", terminal)
    progress = Progress(1000, "train", interval_s=1.0)
    assert progress.live
    progress.update(100, FULL)
    print("(EnvWorkerActor pid=7) worker 0: env ", end="", file=sys.stderr)  # in two writes
    print("failed; restarting it", file=sys.stderr, flush=True)
    progress.update(200, FULL)
    progress.close()
    assert sys.stderr is terminal and sys.stdout is terminal  # the streams given back
    before, message, after = terminal.getvalue().partition(
        "(EnvWorkerActor pid=7) worker 0: env failed; restarting it\n")
    assert message and before.endswith("\r")  # the bar was cleared first...
    assert "[train]" in after  # ... and drawn again below the line


def test_unknown_values_show_a_dash():
    out, clock = io.StringIO(), FakeClock()
    progress = Progress(100, "train", stream=out, interval_s=1.0, clock=clock)
    clock.now += 1.0
    progress.update(10, {"steps_per_s": None, "success_rate": None, "policy_lag": None,
                         "env_restarts": 2})
    line = lines(out)[0]
    for token in ("- steps/s", "- updates/s", "return -", "success -", "lag -", "restarts 2"):
        assert token in line


def test_a_success_rate_the_runner_does_not_report_is_left_out():
    """An env without a success notion: no 'success' column at all, not a column of '-'."""
    out, clock = io.StringIO(), FakeClock()
    progress = Progress(100, "train", stream=out, interval_s=1.0, clock=clock)
    clock.now += 1.0
    progress.update(10, {"steps_per_s": 50.0, "mean_return": -120.0})
    line = lines(out)[0]
    assert "success" not in line and "lag" not in line and "return -120.00" in line


def test_live_bar_on_a_terminal_does_not_crash():
    out = FakeTTY()
    progress = Progress(1000, "train", stream=out)
    assert progress.live
    for steps in (0, 100, 500, 1000):
        progress.update(steps, FULL)
    progress.write("worker 0: restarted")
    progress.update(1000, {})
    progress.close()
    text = out.getvalue()
    assert "[train]" in text and "worker 0: restarted" in text
    assert "steps/s" in text


def test_zero_budget_does_not_divide_by_zero():
    out = io.StringIO()
    with Progress(0, "test", stream=out, clock=FakeClock()) as progress:
        progress.update(0, {})
    assert "(100%)" in out.getvalue()


def test_live_bar_of_a_resumed_run_counts_from_its_first_update():
    out = FakeTTY()
    progress = Progress(50000, "train", stream=out)
    progress.update(30000, FULL)
    progress.update(31000, FULL)
    assert progress._bar.n == 31000 and progress._bar.initial == 30000
    progress.close()
    assert "31000/50000" in out.getvalue()


def test_the_bar_keeps_its_total_when_a_run_ends_past_its_budget():
    """A run overshoots by up to a chunk: the last frame reads a full bar and the real
    count, not tqdm's '0%| | 6.05k/?'."""
    out = FakeTTY()
    progress = Progress(6000, "train", stream=out)
    progress.update(3000, FULL)
    progress.update(6050, FULL)
    progress.close()
    last = out.getvalue().replace("\r", "\n").strip().splitlines()[-1]
    assert re.search(r"\|(#|█){8}\|", last) and "6050/6050" in last and "?" not in last


def test_the_test_phase_shows_no_updates_column():
    """The learner is idle while the greedy policy is tested: '- updates/s' would be noise."""
    out, clock = io.StringIO(), FakeClock()
    progress = Progress(100, "test", stream=out, interval_s=1.0, clock=clock)
    clock.now += 1.0
    progress.update(10, {"steps_per_s": 50.0, "updates_per_s": None, "mean_return": -1.0})
    line = lines(out)[0]
    assert "50 steps/s" in line and "return -1.00" in line
    assert "updates/s" not in line


def test_it_writes_to_stdout_as_it_is_when_made_not_as_it_was_at_import():
    """The default stream was bound at import: a run after sys.stdout had been replaced
    (a second run in one process, redirect_stdout) wrote into the old, closed one."""
    import contextlib

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        with Progress(10, "test", clock=FakeClock()) as progress:
            progress.update(10, {})
    assert "(100%)" in out.getvalue()


def test_a_narrow_terminal_keeps_the_values_and_drops_the_bar_first():
    """In 80 columns tqdm cut the end of the line: '... return' with no value after it,
    and no success rate or lag at all."""
    out = FakeTTY()
    progress = Progress(50000, "train", stream=out)
    progress._bar.dynamic_ncols = lambda fp: (80, 30)  # what an 80x30 terminal answers
    progress.update(12100, FULL)
    progress.close()
    last = out.getvalue().split("\r")[-1].strip()
    assert len(last) <= 80 and last.startswith("[train] 12100")
    assert last.endswith("return +2.31 success 0.85 lag 3.2"), last
    wide = FakeTTY()
    progress = Progress(50000, "train", stream=wide)
    progress._bar.dynamic_ncols = lambda fp: (160, 30)
    progress.update(12100, FULL)
    progress.close()
    assert re.search(r"\[train\] \|.{8}\| 12100/50000 \[", wide.getvalue().split("\r")[-1])
