"""Proportional prioritized replay (Schaul et al. 2016) on top of the uniform ring buffer.

Slot i is drawn with probability P(i) = p_i / sum_j p_j, where p_i = (|delta_i| + eps)^alpha and
delta_i is the transition's latest TD error. The bias this adds is undone by importance weights
w_i = (N * P(i))^-beta, with beta annealed to 1 as training goes on.

A priority update arrives after the learner's step, possibly after the ring has wrapped and the
slot holds a newer transition. Each slot therefore carries a generation (how often it has been
written); `sample` hands it out and `update_priorities` drops updates whose generation is stale.
"""

from __future__ import annotations

import numpy as np

from replay.buffer import ReplayBuffer
from replay.config import ReplayConfig
from replay.sum_tree import SumTree


class PrioritizedReplayBuffer(ReplayBuffer):
    """ReplayBuffer sampled in proportion to priority, with importance weights."""

    def __init__(self, obs_size: int, action_size: int, capacity: int, seed: int = 0,
                 alpha: float = 0.6, beta: float = 0.4, beta_steps: int = 100_000,
                 eps: float = 1e-6, discount: bool = False):
        super().__init__(obs_size, action_size, capacity, seed, discount)
        if alpha < 0 or not 0 <= beta <= 1 or beta_steps < 1 or eps <= 0:
            raise ValueError(f"need alpha >= 0, 0 <= beta <= 1, beta_steps >= 1, eps > 0; got "
                             f"{alpha}, {beta}, {beta_steps}, {eps}")
        self.alpha, self.beta0, self.beta_steps, self.eps = alpha, beta, beta_steps, eps
        self.tree = SumTree(capacity)
        self._generation = np.zeros(capacity, np.int64)
        self._updates = 0  # learner updates sampled for so far: drives beta
        self.beta_floor = beta  # a resumed run's beta never drops below where it was

    @property
    def beta(self) -> float:
        """Importance-sampling exponent now: beta0 at first, 1 after beta_steps updates."""
        linear = self.beta0 + (1.0 - self.beta0) * min(1.0, self._updates / self.beta_steps)
        return max(self.beta_floor, linear)

    def continue_beta(self, updates: int, beta: float) -> None:
        """A resumed run: `updates` learner updates done, beta `beta` reached. Beta goes on
        from there (the replay's own count restarts with an empty replay, and a run given
        more --train-steps has a longer schedule) and still reaches 1 at the run's end."""
        self._updates = int(updates)
        self.beta_floor = min(1.0, max(self.beta0, float(beta)))

    def priority(self, td_abs) -> np.ndarray:
        """Tree priority (|td| + eps)^alpha of TD-error magnitudes."""
        return (np.abs(np.asarray(td_abs, np.float64)) + self.eps) ** self.alpha

    def add(self, batch: dict[str, np.ndarray]) -> None:
        """Append a chunk; an optional `priority` field (N,) holds initial |TD| errors.

        Without it, new rows get the largest priority in the buffer (1.0 when empty), so each
        is likely to be replayed at least once before its TD error is known.
        """
        rows = dict(batch)
        given = rows.pop("priority", None)
        # Validated here as well as in ReplayBuffer.add: the row count must be trusted before
        # the priorities are checked against it (the second pass costs microseconds a chunk).
        n = len(self._validate(rows)["obs"])
        if given is not None:
            given = np.asarray(given, np.float64)
            if given.shape != (n,) or not np.all(np.isfinite(given)):
                raise ValueError(f"priority must be {n} finite values, got shape {given.shape}")
        keep = min(n, self.capacity)
        # The slots ReplayBuffer.add writes the kept (newest) rows to, from the old pointer.
        slots = (self._ptr + n - keep + np.arange(keep)) % self.capacity
        super().add(rows)
        if keep == 0:
            return
        if given is None:
            pri = np.full(keep, self.tree.max_priority or 1.0)
        else:
            pri = self.priority(given[n - keep:])
        self.tree.update(slots, pri)
        self._generation[slots] += 1

    def sample(self, batch_size: int, updates: int = 1) -> dict[str, np.ndarray]:
        """`batch_size` rows drawn by priority, plus `indices`, `generations` and `weights`.

        updates: learner updates this draw feeds (one draw split into n batches counts n),
        which is what beta is annealed over.
        """
        if self._size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        if batch_size < 1 or updates < 1:
            raise ValueError(f"batch_size and updates must be >= 1, got {batch_size}, {updates}")
        # Stratified: one draw in each of batch_size equal segments of the total priority.
        segment = self.tree.total / batch_size
        values = (np.arange(batch_size) + self.rng.random(batch_size)) * segment
        # Shuffled: the strata come out ordered by slot, and a draw cut into several batches
        # (ReplayServer's stacked samples) would otherwise give each batch one region.
        idx = self.tree.find(self.rng.permutation(values))
        batch = {key: arr[idx] for key, arr in self._data.items()}
        batch["indices"] = idx
        batch["generations"] = self._generation[idx]
        batch["weights"] = self._weights(idx)
        self._updates += updates
        return batch

    def _weights(self, idx: np.ndarray) -> np.ndarray:
        """w_i = (N P(i))^-beta / max_j w_j, the max over the whole buffer, not the batch.

        The buffer-wide max (from the smallest priority) gives a row the same weight in any
        batch; a batch max would rescale every batch by its own rarest row, and differ between
        the batches cut from one stacked draw. (N P(i))^-beta / (N P_min)^-beta simplifies to
        (p_min / p_i)^beta.
        """
        ratio = self.tree.min_priority / self.tree.priorities(idx)
        return (ratio**self.beta).astype(np.float32)

    def update_priorities(self, indices, td_abs, generations) -> int:
        """Set priorities (|td| + eps)^alpha of sampled slots; returns how many were applied.

        Updates for slots written again since `sample` (generation changed) are dropped, so a
        late update never lands on newer data. Of repeated slots the last value wins.
        """
        idx = np.asarray(indices, np.int64).reshape(-1)
        gen = np.asarray(generations, np.int64).reshape(-1)
        td = np.asarray(td_abs, np.float64).reshape(-1)
        if not len(idx) == len(gen) == len(td):
            raise ValueError(f"indices, td_abs, generations differ in length: "
                             f"{len(idx)}, {len(td)}, {len(gen)}")
        if np.any((idx < 0) | (idx >= self._size)) or not np.all(np.isfinite(td)):
            raise ValueError("priority update has slots outside the filled buffer or non-finite td")
        fresh = self._generation[idx] == gen
        self.tree.update(idx[fresh], self.priority(td[fresh]))
        return int(fresh.sum())

    def state_dict(self) -> dict:
        """The uniform buffer's state plus the filled slots' priorities and generations."""
        state = super().state_dict()
        filled = np.arange(self._size)
        state.update(priorities=self.tree.priorities(filled).copy(),
                     generations=self._generation[: self._size].copy(), per_updates=self._updates)
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore a `state_dict()`, rebuilding the sum tree from the saved priorities.

        A uniform buffer's state (a run resumed with --prioritized added) loads too: every
        row then starts at priority 1, as new rows do in an empty buffer.
        """
        super().load_state_dict(state)
        size = self._size
        self.tree = SumTree(self.capacity)
        self._generation[:] = 0
        if "priorities" not in state:
            self.tree.update(np.arange(size), np.ones(size))
            self._generation[:size] = 1
            self._updates = 0
            return
        self.tree.update(np.arange(size), np.asarray(state["priorities"], np.float64))
        self._generation[:size] = state["generations"]
        self._updates = int(state["per_updates"])


def make_buffer(obs_size: int, action_size: int, cfg: ReplayConfig, seed: int = 0
                ) -> ReplayBuffer:
    """The buffer `cfg` asks for: prioritized or uniform, with a discount field for n > 1.

    cfg.per_beta_steps must be resolved (> 0) by then: 0 means "the run's updates", which
    only the run knows (runner.config.resolve_replay)."""
    discount = cfg.n_step > 1
    if not cfg.prioritized:
        return ReplayBuffer(obs_size, action_size, cfg.buffer_size, seed, discount)
    return PrioritizedReplayBuffer(obs_size, action_size, cfg.buffer_size, seed,
                                   alpha=cfg.per_alpha, beta=cfg.per_beta,
                                   beta_steps=max(cfg.per_beta_steps, 1), discount=discount)
