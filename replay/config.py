"""The replay's configuration (light: numpy-free), its --help text and range checks."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass
class ReplayConfig:
    """Replay buffer."""

    buffer_size: int = 200_000
    """transitions the replay holds; the oldest are overwritten"""
    batch_size: int = 256
    """transitions per learner update"""
    learning_starts: int = 5_000
    """replay rows before the first update, and of --warmup-actions (Ray: till trained weights)"""
    n_step: int = 1
    """n-step returns, computed on the env workers; 1 = plain 1-step TD targets"""
    prioritized: bool = False
    """proportional prioritized replay (sum tree) with worker-computed initial priorities"""
    per_alpha: float = 0.6
    """prioritized replay: priority exponent (0 = uniform)"""
    per_beta: float = 0.4
    """prioritized replay: importance-weight exponent at the start, annealed to 1"""
    per_beta_steps: int = 0
    """prioritized replay: learner updates over which beta reaches 1; 0 = the whole run"""

    def __post_init__(self) -> None:
        checks = [
            (self.buffer_size >= 1, "--buffer-size must be >= 1"),
            (self.batch_size >= 1, "--batch-size must be >= 1"),
            (self.learning_starts >= 0, "--learning-starts must be >= 0"),
            (self.n_step >= 1, f"--n-step must be >= 1, got {self.n_step}"),
            (self.per_alpha >= 0, f"--per-alpha must be >= 0, got {self.per_alpha}"),
            (0 <= self.per_beta <= 1, f"--per-beta must be in [0, 1], got {self.per_beta}"),
            (self.per_beta_steps >= 0, "--per-beta-steps must be >= 0 (0 = the whole run)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def min_size(self) -> int:
        """Rows the replay must hold before it is sampled: a full batch, and learning_starts.
        The update-to-data ratio counts inserts from here on."""
        return max(self.batch_size, self.learning_starts)

    def memory_problem(self, obs_size: int, action_size: int, copies: int = 1) -> str | None:
        """A one-line complaint when `copies` replays of this size cannot fit in this
        machine's memory (numpy would fail mid-start with a traceback), else None."""
        # float32 obs, next_obs, action, reward, terminated, discount, priority; int64 version.
        row_bytes = 4 * (2 * obs_size + action_size + 4) + 8
        need = self.buffer_size * row_bytes * copies
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError):  # not a POSIX system: numpy's own error then
            return None
        if need <= total:
            return None
        return (f"--buffer-size {self.buffer_size} needs ~{need / 2**30:.1f} GiB ({copies} "
                f"replay cop{'ies' if copies > 1 else 'y'} of {row_bytes}-byte rows), more than "
                f"this machine's {total / 2**30:.1f} GiB; lower --buffer-size")
