"""A replay shard resident on the learner's device, fed from the replay service in chunks.

Sampling must never be what bounds the learner: `DeviceReplay` keeps its rows in preallocated
device tensors and draws the indices on the device (its own seeded generator), so a batch
costs one `randint` and one gather per field, no host work and no transfer. It is fed from
the `ReplayServer` in large chunks of the rows inserted since the last fetch (`fetch_since`);
on CUDA a chunk goes through pinned host memory with non-blocking copies.

Feeding contract with the replay service (the Ray replay actor wraps `ReplayServer`):

    ReplayServer.fetch(cursor, max_rows, updates_done) -> (rows, new_cursor, inserted_total)
        = server_fetch(self, cursor, max_rows, updates_done)

`cursor` counts rows ever inserted (start at 0). `updates_done` is the learner's own count:
the server records it in its rate limiter, which is what tells the workers to back off when
the learner falls behind (with `sample` the server counted the batches it handed out). The
learner enforces the ratio itself with a local `RateLimiter` (`Feed`), counting as inserted
the rows up to its cursor, i.e. only data it holds.
"""

from __future__ import annotations

import numpy as np
import torch

from replay.buffer import ReplayBuffer, field_specs, ring_span
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
        """Append N rows (a dict of numpy arrays, as `fetch_since` returns); ring wrap-around.

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

    def sample(self, batch_size: int, out: dict[str, torch.Tensor] | None = None
               ) -> dict[str, torch.Tensor]:
        """`batch_size` rows drawn uniformly (with replacement) from the filled ones.

        Indices come from `self.generator` on the device; `out` (e.g. a CUDA-graph step's
        `static_batch`) receives the rows in place instead of fresh tensors.
        """
        if self._size == 0:
            raise ValueError("cannot sample from an empty device replay")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        idx = torch.randint(0, self._size, (batch_size,), device=self.device,
                            generator=self.generator)
        if out is None:
            return {key: arr.index_select(0, idx) for key, arr in self._data.items()}
        for key, arr in self._data.items():
            torch.index_select(arr, 0, idx, out=out[key])
        return out


def fetch_since(buffer: ReplayBuffer, cursor: int, max_rows: int
                ) -> tuple[dict[str, np.ndarray], int, int]:
    """Rows inserted since `cursor`, oldest first, at most `max_rows` of them.

    Returns (rows, new_cursor, inserted_total). Row g (0-based over all rows ever added) sits
    in slot g % capacity while it is among the newest `size`; rows older than that were
    overwritten and are skipped, so `new_cursor - len(rows) - cursor` rows were lost.
    """
    total = buffer.total_added
    if cursor < 0 or cursor > total or max_rows < 0:
        raise ValueError(f"fetch_since: cursor {cursor} outside [0, {total}] "
                         f"or max_rows {max_rows} < 0")
    start = max(cursor, total - buffer.size)
    end = min(total, start + max_rows)
    slots = np.arange(start, end) % buffer.capacity
    # The buffer has no public row accessor; fancy indexing copies, so the rows stay valid.
    rows = {key: arr[slots] for key, arr in buffer._data.items()}
    return rows, end, total


def server_fetch(server, cursor: int, max_rows: int, updates_done: int
                 ) -> tuple[dict[str, np.ndarray], int, int]:
    """The body of the proposed `ReplayServer.fetch`: record the learner's updates in the
    server's limiter (worker back-off keeps working) and its sampled counters (stats'
    samples_per_insert), then hand out the new rows."""
    new_updates = updates_done - server.limiter.updates_done
    if new_updates < 0:
        raise ValueError(f"updates_done went back: {updates_done} < "
                         f"{server.limiter.updates_done}")
    server.limiter.record_updates(new_updates)
    server._sampled_batches += new_updates
    server._sampled_rows += new_updates * server.cfg.batch_size
    return fetch_since(server.buffer, cursor, max_rows)


class Feed:
    """The learner side of the contract: a cursor, a `DeviceReplay` and a local limiter.

    `ingest(server.fetch(...))` appends the new rows; `updates_allowed()` is then
    floor(ratio * (rows up to the cursor - min_size) + tolerance) - updates done, i.e.
    several updates per fetched chunk when samples-per-insert allows.
    """

    def __init__(self, replay: DeviceReplay, limiter: RateLimiter):
        self.replay = replay
        self.limiter = limiter
        self.cursor = 0
        self.inserted_total = 0  # what the server has, fetched or not (lag = this - cursor)

    def ingest(self, fetched: tuple[dict[str, np.ndarray], int, int]) -> int:
        """Append one `fetch` answer; returns the rows it brought."""
        rows, new_cursor, self.inserted_total = fetched
        self.replay.extend(rows)
        self.limiter.record_insert(new_cursor - self.cursor)
        self.cursor = new_cursor
        return len(rows["obs"])

    def updates_allowed(self) -> int:
        """Updates the ratio grants on the data held here (0 while it cannot be sampled)."""
        if self.replay.size < self.limiter.min_size:
            return 0
        return self.limiter.updates_allowed()

    def record_updates(self, n: int) -> None:
        self.limiter.record_updates(n)
