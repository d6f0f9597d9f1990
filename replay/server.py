"""The replay service: a ReplayBuffer behind a RateLimiter, as one plain object.

The Ray replay actor is a thin wrapper around `ReplayServer`. An actor serves one call at a time
and each call costs ~1 ms, so the interface is built for few, large calls: workers insert whole
chunks, and the learner gets many batches per `sample` call, stacked into one dict (one
serialised message), which `split_batches` cuts back into batches on the learner side.
"""

from __future__ import annotations

import numpy as np

from replay.config import ReplayConfig
from replay.prioritized import PrioritizedReplayBuffer, make_buffer
from replay.rate_limiter import RateLimiter

# Rows pushed while the learner works through earlier ones: two chunks of the default 32 env
# steps from one training area. Larger chunks only mean workers are told to back off sooner.
CHUNK_ROWS_HINT = 64
# Floor on the slack, in updates: the learner's two in-flight sample requests of 8 batches can
# both be filled at low ratios, where one chunk alone would grant only a few updates.
MIN_TOLERANCE_UPDATES = 16


def default_tolerance(updates_per_step: float) -> float:
    """Slack of the rate limiter, in updates: what a typical chunk grants, at least 16.

    The slack lets a worker push while the learner works off the previous chunks without being
    told to back off at once. It also bounds the drift: a greedy learner runs up to this far
    ahead of the ratio, so the measured ratio reads high by at most tolerance /
    (updates_per_step * rows past min_size): 64 updates at 1 update/step is 2.4% after 2,700
    rows, 0.1% after 64k. A larger slack buys nothing once the learner is data-bound.
    """
    return max(updates_per_step * CHUNK_ROWS_HINT, float(MIN_TOLERANCE_UPDATES))


def split_batches(stacked: dict[str, np.ndarray], batch_size: int) -> list[dict[str, np.ndarray]]:
    """Cut a `ReplayServer.sample` result of n * batch_size rows into n batches (views, no copies).

    Arrays coming back from Ray are read-only, and so are these views: copy before
    `torch.from_numpy` (or use `torch.tensor`, which copies).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    rows = {len(arr) for arr in stacked.values()}
    if len(rows) != 1:
        raise ValueError(f"stacked fields disagree on their row count: {sorted(rows)}")
    total = rows.pop()
    if total % batch_size:
        raise ValueError(f"{total} stacked rows is not a multiple of batch_size {batch_size}")
    return [
        {key: arr[i : i + batch_size] for key, arr in stacked.items()}
        for i in range(0, total, batch_size)
    ]


class ReplayServer:
    """A ReplayBuffer behind the rate limiter, with the counters the driver logs."""

    def __init__(
        self,
        obs_size: int,
        action_size: int,
        cfg: ReplayConfig,
        updates_per_step: float,
        seed: int = 0,
        tolerance: float | None = None,
    ):
        # Counting starts where sampling becomes possible, so the fill is never throttled and
        # no updates pile up while the buffer is still too small to sample.
        min_size = cfg.min_size
        if cfg.buffer_size < min_size:
            raise ValueError(
                f"buffer_size ({cfg.buffer_size}) is below max(batch_size, learning_starts) "
                f"({min_size}): the buffer could never be sampled"
            )
        problem = cfg.memory_problem(obs_size, action_size)
        if problem:
            raise ValueError(problem)
        self.cfg = cfg
        self.buffer = make_buffer(obs_size, action_size, cfg, seed=seed)
        if tolerance is None:
            tolerance = default_tolerance(updates_per_step)
        self.limiter = RateLimiter(updates_per_step, min_size, tolerance)
        self.budget: int | None = None
        self._backoffs = 0  # inserts answered with backoff=True
        self._worker_rows: dict[int, int] = {}
        self._priority_updates = [0, 0]  # [applied, dropped as stale]

    def insert(self, chunk: dict[str, np.ndarray], worker_id: int) -> dict:
        """Store a chunk (always: data is never dropped); say whether the worker should pause.

        Raises ValueError on a malformed chunk, leaving everything unchanged.
        """
        before = self.buffer.total_added
        self.buffer.add(chunk)
        n = self.buffer.total_added - before
        self.limiter.record_insert(n)
        self._worker_rows[worker_id] = self._worker_rows.get(worker_id, 0) + n
        backoff = self.limiter.inserts_should_wait()
        self._backoffs += backoff
        return {"backoff": backoff, "full": self.budget is not None
                and self.limiter.inserted >= self.budget}

    def set_budget(self, rows: int | None) -> None:
        """Once `rows` transitions are in, `insert` answers full=True: workers then stop, so a
        run ends within a chunk or two of its env-step budget, not a driver poll later."""
        self.budget = rows

    def insert_should_wait(self) -> dict:
        """The backoff answer `insert` gives, without inserting: for a worker that waits."""
        return {"backoff": self.limiter.inserts_should_wait()}

    def sample(self, max_batches: int, batch_size: int, exact: bool = False
               ) -> dict[str, np.ndarray] | None:
        """Up to `max_batches` batches stacked into one dict of n * batch_size rows, or None.

        None when the learner is ahead of the ratio or the buffer cannot be sampled yet. The
        n batches are recorded as n updates: whatever is handed out counts as consumed.
        exact: grant only what the ratio calls for, without the slack (the end of training).
        Includes `policy_version` so the learner can measure policy lag; prioritized replay
        adds `weights`, `indices` and `generations` (send the latter back with the new |TD|s
        to `update_priorities`).
        """
        if max_batches < 1 or batch_size < 1:
            raise ValueError(
                f"max_batches and batch_size must be >= 1, got {max_batches}, {batch_size}"
            )
        if not self.buffer.can_sample(max(self.limiter.min_size, batch_size)):
            return None
        grant = self.limiter.owed() if exact else self.limiter.updates_allowed()
        n = min(max_batches, grant)
        if n == 0:
            return None
        # Uniform with replacement, so one draw of n * batch_size rows is n independent batches.
        stacked = self.buffer.sample(n * batch_size, updates=n)
        self.limiter.record_updates(n)
        return stacked

    def update_priorities(self, indices, td_abs, generations) -> int:
        """New |TD| errors of sampled rows (prioritized replay); returns how many applied.

        Rows overwritten since they were sampled keep their newer priority (generations)."""
        if not isinstance(self.buffer, PrioritizedReplayBuffer):
            raise ValueError("update_priorities needs a prioritized replay (--prioritized)")
        applied = self.buffer.update_priorities(indices, td_abs, generations)
        self._priority_updates[0] += applied
        self._priority_updates[1] += len(indices) - applied
        return applied

    def samples_per_insert(self) -> float | None:
        """Sampled rows per row inserted past min_size; None until some are."""
        past = self.limiter.inserted - self.limiter.min_size
        return self.limiter.updates_done * self.cfg.batch_size / past if past > 0 else None

    def fetch(self, cursor: int, max_rows: int, updates_done: int):
        """Rows inserted since `cursor`, for a learner that keeps its own replay shard on its
        device (learner/device_replay.py): (rows, new cursor, rows ever inserted).

        That learner owns the update count; `updates_done` mirrors it into this limiter, which
        is what tells the workers to back off when the learner falls behind."""
        new_updates = updates_done - self.limiter.updates_done
        if new_updates < 0:
            raise ValueError(f"updates_done went back: {updates_done} < "
                             f"{self.limiter.updates_done}")
        self.limiter.record_updates(new_updates)
        return self.buffer.rows_since(cursor, max_rows)

    def _caught_up(self, inserted: int) -> dict:
        """Limiter counters for `inserted` rows with every update they call for done."""
        past = max(0, inserted - self.limiter.min_size)
        return {"inserted": inserted, "updates_done": int(self.limiter.updates_per_step * past)}

    def stats(self) -> dict:
        """Counters for the driver's logs."""
        return {
            "size": self.buffer.size,
            "inserted": self.limiter.inserted,
            "sampled_batches": self.limiter.updates_done,
            "updates_allowed": self.limiter.updates_allowed(),
            "samples_per_insert": self.samples_per_insert(),
            "backoffs": self._backoffs,
            "worker_inserted": dict(self._worker_rows),
            "priority_updates": self._priority_updates[0],
            "stale_priority_updates": self._priority_updates[1],
            "per_beta": getattr(self.buffer, "beta", None),
        }

    def continue_beta(self, updates: int, beta: float | None) -> None:
        """Prioritized replay: beta goes on from a resumed run's (nothing otherwise)."""
        if beta is not None and hasattr(self.buffer, "continue_beta"):
            self.buffer.continue_beta(updates, beta)

    def state_dict(self) -> dict:
        """Buffer, limiter counters and service counters, for resume."""
        return {
            "buffer": self.buffer.state_dict(),
            "limiter": self.limiter.state_dict(),
            "backoffs": self._backoffs,
            "worker_inserted": dict(self._worker_rows),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a `state_dict()`; inserting and sampling then continue exactly as before.

        A bare buffer's state (local mode's replay file before it held the counters) loads
        as caught up: the ratio counts from its rows on."""
        if "buffer" not in state:
            state = {"buffer": state, "limiter": self._caught_up(int(state["total_added"])),
                     "backoffs": 0, "worker_inserted": {}}
        self.buffer.load_state_dict(state["buffer"])
        self.limiter.load_state_dict(state["limiter"])
        self._backoffs = int(state["backoffs"])
        # int() because a state that went through JSON has string keys.
        self._worker_rows = {int(k): int(v) for k, v in state["worker_inserted"].items()}
