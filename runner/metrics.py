"""What a run logs as it goes: TensorBoard scalars, episodes.csv, and rolling episode stats."""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque

import numpy as np

from actors.agents import Episode


class EpisodeStats:
    """Statistics over the last `window` episodes of a phase (None: over all of them)."""

    def __init__(self, window: int | None = 100):
        self.recent: deque[Episode] = deque(maxlen=window)
        self.count = 0

    def add(self, episodes: list[Episode]) -> None:
        self.recent.extend(episodes)
        self.count += len(episodes)

    def saved(self) -> list[list]:
        """The window's episodes as a checkpoint keeps them: [return, length, success]."""
        return [[e.episode_return, e.length, e.success] for e in self.recent]

    def restore(self, count: int, saved: list[list]) -> None:
        """A checkpoint's count and window: a resumed run's means cover the earlier
        session's episodes too (they read '- (last 0 of N episodes)' until new ones came)."""
        self.recent.clear()
        self.recent.extend(Episode(-1, float(r), int(n), s, False) for r, n, s in saved)
        self.count = count

    def summary(self) -> dict:
        """episodes, mean_over (the episodes the means cover), mean_return, mean_length,
        success_rate (None before any episode, and always for an env without a success)."""
        if not self.recent:
            return {"episodes": self.count, "mean_over": 0, "mean_return": None,
                    "mean_length": None, "success_rate": None}
        successes = [e.success for e in self.recent if e.success is not None]
        return {
            "episodes": self.count,
            "mean_over": len(self.recent),
            "mean_return": float(np.mean([e.episode_return for e in self.recent])),
            "mean_length": float(np.mean([e.length for e in self.recent])),
            "success_rate": float(np.mean(successes)) if successes else None,
        }


EPISODE_COLUMNS = "phase,env_steps,wall_s,worker,agent,return,length,success,interrupted\n"


class Metrics:
    """TensorBoard scalars, episodes.csv and plain progress lines; logs only what exists."""

    def __init__(self, run_dir: str, log_interval: float):
        self.run_dir = run_dir
        self._writer = None  # made by the first scalar: a session that fails before it (a
        # refused --resume, an env that never starts) leaves no empty events file behind
        path = os.path.join(run_dir, "episodes.csv")
        new = not os.path.exists(path)
        # Appends on --resume; line-buffered so `tail -f` and a crash see every episode.
        self.episode_log = open(path, "a", encoding="utf-8", buffering=1)
        if new:
            self.episode_log.write(EPISODE_COLUMNS)
        self.log_interval = log_interval
        self._last_line = time.monotonic()
        self.started = time.monotonic()
        self.wall_before = 0.0  # wall time of earlier sessions, set on --resume
        # Of the run's wall time, that of its test phases (earlier sessions' too): the
        # training average leaves them out (a resumed run's counted its earlier test).
        self.test_wall_s = 0.0

    def episodes(self, episodes: list[Episode], env_steps: int, worker: int, phase: str,
                 stats: EpisodeStats | None = None) -> None:
        """Log finished episodes; with the phase's `stats`, a success-rate point per batch
        of training episodes (a curve, not a few dots)."""
        rate = stats.summary()["success_rate"] if episodes and stats is not None else None
        if phase == "train" and rate is not None:  # no zeros for envs without a success
            self.writer.add_scalar("charts/success_rate", rate, env_steps)
        prefix = "charts/" if phase == "train" else "charts/test_"
        wall = self.wall_s()
        for e in episodes:
            self.writer.add_scalar(f"{prefix}episodic_return", e.episode_return, env_steps)
            self.writer.add_scalar(f"{prefix}episodic_length", e.length, env_steps)
            if phase == "train":  # mlagents-learn's names, for existing dashboards
                self.writer.add_scalar("Environment/Cumulative Reward", e.episode_return,
                                       env_steps)
                self.writer.add_scalar("Environment/Episode Length", e.length, env_steps)
            success = "" if e.success is None else int(e.success)  # empty: not defined
            self.episode_log.write(f"{phase},{env_steps},{wall:.2f},{worker},{e.agent_id},"
                                   f"{e.episode_return:.4f},{e.length},{success},"
                                   f"{int(e.interrupted)}\n")

    @property
    def writer(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(self.run_dir)
        return self._writer

    def scalars(self, values: dict[str, float], step: int) -> None:
        for tag, value in values.items():
            if value is not None:
                self.writer.add_scalar(tag, float(value), step)

    def wall_s(self) -> float:
        """Wall time of the run, earlier sessions of a resumed run included."""
        return self.wall_before + time.monotonic() - self.started

    def train_wall_s(self) -> float:
        """The run's wall time less its test phases (start-ups count as training)."""
        return self.wall_s() - self.test_wall_s

    @contextlib.contextmanager
    def testing(self):
        """Times a test phase (an interrupted one too: its checkpoint keeps the count)."""
        started = time.monotonic()
        try:
            yield
        finally:
            self.test_wall_s += time.monotonic() - started

    def restore_walls(self, payload: dict) -> None:
        """A checkpoint's wall times (one from before test_wall_s was kept: none)."""
        self.wall_before = payload["wall_s"]
        self.test_wall_s = payload.get("test_wall_s", 0.0)

    def line_due(self) -> bool:
        now = time.monotonic()
        if now - self._last_line >= self.log_interval:
            self._last_line = now
            return True
        return False

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.episode_log.close()


def bar_values(stats: dict, tracks_success: bool, sps: float, ups: float | None = None) -> dict:
    """What a phase's progress bar shows: its rates, and its results from
    `EpisodeStats.summary()` (a success rate only for an env that defines one)."""
    values = {"steps_per_s": sps, "updates_per_s": ups, "mean_return": stats["mean_return"]}
    if tracks_success:
        values["success_rate"] = stats["success_rate"]
    return values


def training_average(env_steps: int, learner_steps: int, wall_s: float) -> tuple[float, float]:
    """Env steps/s and updates/s over the training wall time: the end-of-run table's
    "training average", which the bar's last frame shows too."""
    wall = max(wall_s, 1e-9)
    return env_steps / wall, learner_steps / wall


class RateMeter:
    """Env steps/s and updates/s since the last reading."""

    def __init__(self, env_steps: int, learner_steps: int):
        self.first = self.last = (time.monotonic(), env_steps, learner_steps)

    def read(self, env_steps: int, learner_steps: int) -> tuple[float, float]:
        rates = self.since(self.last, env_steps, learner_steps)
        self.last = (time.monotonic(), env_steps, learner_steps)
        return rates

    def average(self, env_steps: int, learner_steps: int) -> tuple[float, float]:
        """Since the meter was made (the start of the phase)."""
        return self.since(self.first, env_steps, learner_steps)

    @staticmethod
    def since(reading: tuple, env_steps: int, learner_steps: int) -> tuple[float, float]:
        t0, e0, l0 = reading
        dt = max(time.monotonic() - t0, 1e-9)
        return (env_steps - e0) / dt, (learner_steps - l0) / dt
