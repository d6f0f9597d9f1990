"""Observation normalization (`--normalize`), as mlagents-learn's `network_settings.normalize`.

Env workers count running statistics of the observations they receive (`ObsStats`: count,
mean and the sum of squared deviations, mergeable exactly, Chan et al.'s parallel update)
and send what they saw since their last report; the learner merges every report into its
`ObsNormalizer`, whose buffers ship with the actor's weights, are checkpointed with the
learner, and sit in front of the actor inside the exported ONNX graph, so workers, learner
and Unity apply the same (obs - mean) / sqrt(var + eps), clipped to +-CLIP.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

EPS = 1e-8  # keeps a constant observation (var 0) finite
CLIP = 5.0  # normalized values beyond +-5 standard deviations are clipped, as mlagents-learn


class ObsStats:
    """Running count, mean and sum of squared deviations of observation rows (float64)."""

    def __init__(self, size: int):
        self.count = 0
        self.mean = np.zeros(size)
        self.m2 = np.zeros(size)

    def add(self, obs: np.ndarray) -> None:
        """Fold in a (rows, size) batch of observations."""
        obs = np.asarray(obs, np.float64)
        if len(obs):
            self.merge(len(obs), obs.mean(axis=0), ((obs - obs.mean(axis=0)) ** 2).sum(axis=0))

    def merge(self, count: int, mean: np.ndarray, m2: np.ndarray) -> None:
        """Fold in another set's statistics: the result equals those of both sets' rows."""
        if count == 0:
            return
        total = self.count + count
        delta = np.asarray(mean, np.float64) - self.mean
        self.mean = self.mean + delta * (count / total)
        self.m2 = self.m2 + np.asarray(m2, np.float64) + delta**2 * (self.count * count / total)
        self.count = total

    def take(self) -> dict | None:
        """What was counted since the last call, as a dict for `merge(**d)`; then reset."""
        if self.count == 0:
            return None
        report = {"count": self.count, "mean": self.mean, "m2": self.m2}
        self.__init__(len(self.mean))
        return report

    @property
    def var(self) -> np.ndarray:
        return self.m2 / self.count if self.count else np.ones_like(self.mean)


class ObsNormalizer(nn.Module):
    """(obs - mean) / sqrt(var + EPS), clipped to +-CLIP. Before any data (mean 0, variance
    1) it only clips to +-CLIP: a fixed bound keeps the ONNX graph (opset 9 Clip) static.

    Its statistics are buffers, not parameters: no gradient, not touched by the optimizers
    or the soft target update, part of `state_dict()` (weights, checkpoints, ONNX)."""

    def __init__(self, size: int):
        super().__init__()
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("var", torch.ones(size))
        self._stats = ObsStats(size)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.clamp((obs - self.mean) / torch.sqrt(self.var + EPS), -CLIP, CLIP)

    def merge(self, report: dict) -> None:
        """Fold in a worker's report (`ObsStats.take()`); the buffers change in place, so a
        captured CUDA graph that reads them sees the new values."""
        self._stats.merge(report["count"], report["mean"], report["m2"])
        with torch.no_grad():
            self.count.fill_(float(self._stats.count))
            self.mean.copy_(torch.from_numpy(self._stats.mean))
            self.var.copy_(torch.from_numpy(self._stats.var))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        # Continue the running statistics from the loaded buffers.
        self._stats.count = int(self.count.item())
        self._stats.mean = self.mean.detach().cpu().double().numpy().copy()
        self._stats.m2 = self.var.detach().cpu().double().numpy() * self._stats.count


class NormalizedActor(nn.Module):
    """normalizer -> actor: the policy on raw observations (workers, ONNX export)."""

    def __init__(self, normalizer: nn.Module, actor: nn.Module):
        super().__init__()
        self.normalizer = normalizer
        self.actor = actor

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(self.normalizer(obs))
