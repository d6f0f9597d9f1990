"""The replay's configuration (light: numpy-free), its --help text and range checks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ReplayConfig:
    """Replay buffer."""

    buffer_size: int = 200_000
    """transitions the replay holds; the oldest are overwritten"""
    batch_size: int = 256
    """transitions per learner update"""
    learning_starts: int = 5_000
    """env steps before the first update (random actions until then if --warmup-actions random)"""
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
