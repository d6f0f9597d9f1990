"""A replay shard resident on the learner's device, fed from the replay service in chunks.

Sampling must never be what bounds the learner: `DeviceReplay` keeps its rows in preallocated
device tensors and draws the indices on the device (its own seeded generator), so a batch
costs one `randint` and one gather per field, no host work and no transfer. It is fed from
the `ReplayServer` in large chunks of the rows inserted since the last fetch; on CUDA a chunk
goes through pinned host memory with non-blocking copies.

Feeding contract with the replay service (the Ray replay actor wraps `ReplayServer`):

    ReplayServer.fetch(cursor, max_rows, updates_done) -> (rows, new_cursor, inserted_total)

`cursor` counts rows ever inserted (start at 0). The learner owns the update count: its
`Feed` enforces the ratio with its own `RateLimiter`, counting as inserted only the rows it
holds; `updates_done` mirrors that count into the server's limiter, which is what tells the
workers to back off when the learner falls behind.
"""

from __future__ import annotations

import numpy as np
import torch

from replay.buffer import field_specs, ring_span
from replay.rate_limiter import RateLimiter


class DeviceReplay:
    """Ring buffer of transitions as device tensors, sampled uniformly with replacement."""

    def __init__(self, obs_size: int, action_size: int, capacity: int, device,
                 seed: int = 0, discount: bool = False):
        if obs_size < 1 or action_size < 1 or capacity < 1:
            raise ValueError(f"obs_size, action_size and capacity must be >= 1, "
                             f"got {obs_size}, {action_size}, {capacity}")
        self.device = torch.device(device)
        self.capacity = capacity
        # The same fields as ReplayBuffer's, as device tensors of the matching dtypes.
        specs = field_specs(obs_size, action_size, discount)
        self._np_dtypes = {key: dtype for key, (_, dtype) in specs.items()}
        self._data = {key: torch.zeros((capacity, *shape), device=self.device,
                                       dtype=torch.from_numpy(np.zeros(0, dtype)).dtype)
                      for key, (shape, dtype) in specs.items()}
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self._ptr = 0
        self._size = 0
        self.total_added = 0
        self._pin = self.device.type == "cuda"

    @property
    def size(self) -> int:
        """Rows currently held."""
        return self._size

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self._data)

    def extend(self, rows: dict[str, np.ndarray]) -> None:
        """Append N rows (a dict of numpy arrays, as `ReplayServer.fetch` returns); the ring
        wraps around.

        If N exceeds the capacity only the newest rows are kept. `policy_version` may be left
        out (stored as 0). On CUDA the copies are asynchronous (pinned staging).
        """
        n = self._check(rows)
        if n == 0:
            return
        cap = self.capacity
        keep, start, first = ring_span(self._ptr, n, cap)
        for key, dst in self._data.items():
            src = self._to_staging(rows, key, n, keep)
            dst[start : start + first].copy_(src[:first], non_blocking=self._pin)
            if keep > first:
                dst[: keep - first].copy_(src[first:], non_blocking=self._pin)
        self._ptr = (self._ptr + n) % cap
        self._size = min(self._size + n, cap)
        self.total_added += n

    def _check(self, rows: dict[str, np.ndarray]) -> int:
        """Row count of a chunk; ValueError on missing/unknown fields or disagreeing lengths."""
        required = set(self._data) - {"policy_version"}
        missing, unknown = required - set(rows), set(rows) - set(self._data)
        if missing or unknown:
            raise ValueError(f"device replay chunk: missing {sorted(missing)}, "
                             f"unknown {sorted(unknown)}")
        lengths = {len(v) for v in rows.values()}
        if len(lengths) != 1:
            raise ValueError(f"device replay chunk fields disagree on rows: {sorted(lengths)}")
        return lengths.pop()

    def _to_staging(self, rows: dict, key: str, n: int, keep: int) -> torch.Tensor:
        """The kept rows of one field as a host tensor of the stored dtype (pinned on CUDA)."""
        dtype = self._data[key].dtype
        if key not in rows:
            return torch.zeros(keep, dtype=dtype)
        array = np.ascontiguousarray(rows[key][n - keep :], dtype=self._np_dtypes[key])
        if not array.flags.writeable:  # arrays from ray.get are read-only; torch wants its own
            array = array.copy()
        host = torch.from_numpy(array)
        # pin_memory() copies into the caching host allocator, which keeps the block alive
        # until the non-blocking copy that reads it has finished.
        return host.pin_memory() if self._pin else host

    def sample(self, batch_size: int) -> dict[str, torch.Tensor]:
        """`batch_size` rows drawn uniformly (with replacement) from the filled ones; the
        indices come from `self.generator`, on the device."""
        if self._size == 0:
            raise ValueError("cannot sample from an empty device replay")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        idx = torch.randint(0, self._size, (batch_size,), device=self.device,
                            generator=self.generator)
        return {key: arr.index_select(0, idx) for key, arr in self._data.items()}


class Feed:
    """The learner side of the contract: a cursor, a `DeviceReplay` and the learner's own
    rate limiter, which owns the update count (the replay server only mirrors it).

    `ingest(server.fetch(...))` appends the new rows; `updates_allowed()` is then
    floor(ratio * (rows counted - min_size) + tolerance) - updates done, i.e. several
    updates per fetched chunk when samples-per-insert allows. Its state (rows counted,
    updates done) is saved with the learner's; a restored feed refills its shard from the
    restored replay without counting those rows again.
    """

    def __init__(self, replay: DeviceReplay, limiter: RateLimiter):
        self.replay = replay
        self.limiter = limiter
        self.cursor = 0  # rows ever inserted on the server, up to the last one fetched
        self.inserted_total = 0  # what the server has, fetched or not (lag = this - cursor)

    def ingest(self, fetched: tuple[dict[str, np.ndarray], int, int]) -> int:
        """Append one `fetch` answer; returns the rows it brought."""
        rows, new_cursor, self.inserted_total = fetched
        self.replay.extend(rows)
        # Only rows past those already counted grant updates: after a restore the shard is
        # refilled from cursor 0 with rows that were counted before the checkpoint.
        self.limiter.record_insert(max(0, new_cursor - self.limiter.inserted))
        self.cursor = new_cursor
        return len(rows["obs"])

    def updates_allowed(self) -> int:
        """Updates the ratio grants on the data held here (0 while it cannot be sampled)."""
        if self.replay.size < self.limiter.min_size:
            return 0
        return self.limiter.updates_allowed()

    def record_updates(self, n: int) -> None:
        self.limiter.record_updates(n)

    def state_dict(self) -> dict:
        return self.limiter.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Continue the count of a saved feed; the shard refills from the server's oldest row."""
        self.limiter.load_state_dict(state)
        self.cursor = 0
