"""The run folder `<results-dir>/<run-id>/`: config, checkpoints, TensorBoard, summary.

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

import os
import shutil
import tempfile
import time
from collections import deque

import numpy as np

from actors.agents import Episode


class RunError(Exception):
    """A problem with the run folder, stated in one line with its fix."""


class RunAborted(Exception):
    """A part of the run that cannot be replaced died; one line says what and what next."""


def prepare_run_dir(results_dir: str, run_id: str, resume: bool, force: bool,
                    inference: bool) -> str:
    """Create (or reuse, on --resume/--inference) the run folder; returns its path."""
    path = os.path.join(results_dir, run_id)
    exists = os.path.isdir(path) and bool(os.listdir(path))
    if (resume or inference) and not exists:
        raise RunError(f"no run {run_id!r} in {results_dir}: drop --resume/--inference to "
                       "start it, or check --run-id and --results-dir")
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


def write_atomic(path: str, text: str) -> None:
    """Write `text` to `path` through a temp file and a rename: never a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def export_policy(run_dir: str, behavior: str, obs_sizes, action_size: int,
                  hidden_size: int, actor_weights: dict, normalizer: dict | None = None) -> str:
    """Write the actor as <run_dir>/<Behavior>.onnx for Unity's inference; returns the path.
    With --normalize the normalizer goes in front of it, inside the graph: Unity feeds raw
    observations."""
    from learner.export import export_onnx, onnx_filename
    from learner.networks import Actor
    from learner.normalizer import NormalizedActor, ObsNormalizer

    actor = Actor(sum(obs_sizes), action_size, hidden_size)
    actor.load_state_dict(actor_weights)
    if normalizer is not None:
        norm = ObsNormalizer(sum(obs_sizes))
        norm.load_state_dict(normalizer)
        actor = NormalizedActor(norm, actor)
    return export_onnx(actor, list(obs_sizes), action_size,
                       os.path.join(run_dir, onnx_filename(behavior)))


def save_config(run_dir: str, cfg) -> None:
    from runner.config_file import as_yaml

    write_atomic(os.path.join(run_dir, "configuration.yaml"), as_yaml(cfg))


class EpisodeStats:
    """Rolling statistics over the last `window` episodes of a phase."""

    def __init__(self, window: int = 100):
        self.recent: deque[Episode] = deque(maxlen=window)
        self.count = 0

    def add(self, episodes: list[Episode]) -> None:
        self.recent.extend(episodes)
        self.count += len(episodes)

    def summary(self) -> dict:
        """episodes, mean_return, mean_length, success_rate (None before any episode, and
        always for an env that defines no success)."""
        if not self.recent:
            return {"episodes": self.count, "mean_return": None, "mean_length": None,
                    "success_rate": None}
        successes = [e.success for e in self.recent if e.success is not None]
        return {
            "episodes": self.count,
            "mean_return": float(np.mean([e.episode_return for e in self.recent])),
            "mean_length": float(np.mean([e.length for e in self.recent])),
            "success_rate": float(np.mean(successes)) if successes else None,
        }


EPISODE_COLUMNS = "phase,env_steps,wall_s,worker,agent,return,length,success,interrupted\n"


class Metrics:
    """TensorBoard scalars, episodes.csv and plain progress lines; logs only what exists."""

    def __init__(self, run_dir: str, log_interval: float):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(run_dir)
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

    def episodes(self, episodes: list[Episode], env_steps: int, worker: int, phase: str,
                 stats: EpisodeStats | None = None) -> None:
        """Log finished episodes; with the phase's `stats`, a success-rate point per batch
        of training episodes (a curve, not a few dots)."""
        rate = stats.summary()["success_rate"] if episodes and stats is not None else None
        if phase == "train" and rate is not None:  # no zeros for envs without a success
            self.writer.add_scalar("charts/success_rate", rate, env_steps)
        prefix = "charts" if phase == "train" else "test"
        wall = self.wall_s()
        for e in episodes:
            self.writer.add_scalar(f"{prefix}/episodic_return", e.episode_return, env_steps)
            self.writer.add_scalar(f"{prefix}/episodic_length", e.length, env_steps)
            if phase == "train":  # mlagents-learn's names, for existing dashboards
                self.writer.add_scalar("Environment/Cumulative Reward", e.episode_return,
                                       env_steps)
                self.writer.add_scalar("Environment/Episode Length", e.length, env_steps)
            success = "" if e.success is None else int(e.success)  # empty: not defined
            self.episode_log.write(f"{phase},{env_steps},{wall:.2f},{worker},{e.agent_id},"
                                   f"{e.episode_return:.4f},{e.length},{success},"
                                   f"{int(e.interrupted)}\n")

    def scalars(self, values: dict[str, float], step: int) -> None:
        for tag, value in values.items():
            if value is not None:
                self.writer.add_scalar(tag, float(value), step)

    def wall_s(self) -> float:
        """Wall time of the run, earlier sessions of a resumed run included."""
        return self.wall_before + time.monotonic() - self.started

    def line_due(self) -> bool:
        now = time.monotonic()
        if now - self._last_line >= self.log_interval:
            self._last_line = now
            return True
        return False

    def close(self) -> None:
        self.writer.close()
        self.episode_log.close()
