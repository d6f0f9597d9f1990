"""A uniform replay buffer: preallocated numpy ring arrays, written in vectorised chunks.

Transitions arrive in chunks (one per env-worker message), so `add` takes N rows at once and
writes them with at most two slice copies. `terminated` is stored rather than `done`: an
ML-Agents truncation (`interrupted`) is 0 here so the learner bootstraps through it.
"""

from __future__ import annotations

import numpy as np


# Fields whose values must be finite: one NaN here poisons every later critic update.
_FINITE_FIELDS = ("obs", "action", "reward", "next_obs", "discount")


class ReplayBuffer:
    """Fixed-capacity ring buffer of transitions, sampled uniformly with replacement."""

    FIELDS = ("obs", "action", "reward", "next_obs", "terminated", "policy_version")

    def __init__(self, obs_size: int, action_size: int, capacity: int, seed: int = 0,
                 discount: bool = False):
        """discount: also store each transition's bootstrap discount (n-step returns)."""
        if obs_size < 1 or action_size < 1 or capacity < 1:
            raise ValueError(
                f"obs_size, action_size and capacity must be >= 1, "
                f"got {obs_size}, {action_size}, {capacity}"
            )
        self.obs_size = obs_size
        self.action_size = action_size
        self._capacity = capacity
        self._specs = field_specs(obs_size, action_size, discount)
        self.fields = tuple(self._specs)
        self._data = {k: np.zeros((capacity, *s), dtype=t) for k, (s, t) in self._specs.items()}
        self._ptr = 0  # next slot to write
        self._size = 0
        self._total_added = 0
        self.rng = np.random.default_rng(seed)

    @property
    def size(self) -> int:
        """Transitions currently held."""
        return self._size

    @property
    def capacity(self) -> int:
        """Most transitions the buffer holds."""
        return self._capacity

    @property
    def total_added(self) -> int:
        """Transitions ever added, including those since overwritten."""
        return self._total_added

    def add(self, batch: dict[str, np.ndarray]) -> None:
        """Append a chunk of N transitions; if N exceeds capacity only the newest are kept.

        `policy_version` may be left out (stored as 0). The chunk is validated as a whole
        before anything is written, so a rejected chunk leaves the buffer unchanged.
        """
        rows = self._validate(batch)
        n = len(rows["obs"])
        if n == 0:
            return
        cap = self._capacity
        keep, start, first = ring_span(self._ptr, n, cap)
        for key, arr in self._data.items():
            src = rows[key][n - keep :]
            arr[start : start + first] = src[:first]
            arr[: keep - first] = src[first:]
        self._ptr = (self._ptr + n) % cap
        self._size = min(self._size + n, cap)
        self._total_added += n

    def _validate(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Check keys, shapes and values; return the fields as arrays of the stored dtypes."""
        unknown = sorted(set(batch) - set(self.fields))
        if unknown:
            raise ValueError(f"unknown replay field(s) {unknown}; expected {list(self.fields)}")
        for key in self.fields:
            if key != "policy_version" and key not in batch:
                raise ValueError(f"replay batch is missing field {key!r}")
        # N comes from obs; every other field must then agree with it.
        n = np.shape(batch["obs"])[0] if np.ndim(batch["obs"]) == 2 else None
        rows = {}
        for key, (row_shape, dtype) in self._specs.items():
            if key == "policy_version" and key not in batch:
                value = np.zeros(n or 0, dtype=np.int64)
            else:
                value = np.asarray(batch[key])
            if n is None or value.shape != (n, *row_shape):
                dims = [str(d) for d in ("N" if n is None else n, *row_shape)]
                expected = ", ".join(dims) + ("," if len(dims) == 1 else "")
                raise ValueError(
                    f"replay field {key!r}: expected shape ({expected}), got {value.shape}"
                )
            rows[key] = value.astype(dtype, copy=False)
        for key in _FINITE_FIELDS:
            if key in rows and not np.all(np.isfinite(rows[key])):
                raise ValueError(f"replay field {key!r} contains NaN or Inf")
        if not np.all((rows["terminated"] == 0) | (rows["terminated"] == 1)):
            raise ValueError("replay field 'terminated' must be 0 or 1")
        return rows

    def sample(self, batch_size: int, updates: int = 1) -> dict[str, np.ndarray]:
        """`batch_size` transitions drawn uniformly with replacement from the filled slots.

        updates: learner updates the draw feeds; unused here (the prioritized buffer anneals
        its importance weights by it)."""
        if self._size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        idx = self.rng.integers(0, self._size, size=batch_size)
        # Fancy indexing copies, so a learner may modify the batch freely.
        return {key: arr[idx] for key, arr in self._data.items()}

    def can_sample(self, min_size: int) -> bool:
        """True once the buffer holds at least `min_size` rows (ReplayConfig.min_size)."""
        return self._size >= max(min_size, 1)

    def rows_since(self, cursor: int, max_rows: int) -> tuple[dict[str, np.ndarray], int, int]:
        """Rows added since `cursor` (a count of rows ever added), oldest first, at most
        `max_rows`: (rows, new cursor, rows ever added).

        Row g sits in slot g % capacity while it is among the newest `size`; older rows were
        overwritten and are skipped, so `new_cursor - len(rows) - cursor` rows were lost.
        """
        total = self._total_added
        if cursor < 0 or cursor > total or max_rows < 0:
            raise ValueError(f"rows_since: cursor {cursor} outside [0, {total}] "
                             f"or max_rows {max_rows} < 0")
        start = max(cursor, total - self._size)
        end = min(total, start + max_rows)
        slots = np.arange(start, end) % self._capacity
        # Fancy indexing copies, so the rows stay valid while the ring moves on.
        return {key: arr[slots] for key, arr in self._data.items()}, end, total

    def state_dict(self) -> dict:
        """A copy of the buffer: the filled ring slots, write pointer, counters and rng state.

        The ring fills from slot 0, so slots [0, size) are exactly the filled ones.
        """
        state = {key: arr[: self._size].copy() for key, arr in self._data.items()}
        state.update(
            capacity=self._capacity,
            ptr=self._ptr,
            size=self._size,
            total_added=self._total_added,
            rng_state=self.rng.bit_generator.state,
        )
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore a `state_dict()`; sampling then continues exactly as it would have.

        A state that does not fit (another --buffer-size, --n-step or env) raises a one-line
        ValueError naming the fix before anything is written: the buffer stays as it was."""
        if state["capacity"] != self._capacity:
            raise ValueError(
                f"the saved replay was made with --buffer-size {state['capacity']}, this run "
                f"has {self._capacity}; resume with --buffer-size {state['capacity']}, "
                f"or without --save-replay to start the replay empty"
            )
        size = int(state["size"])
        if ("discount" in state) != ("discount" in self._data):
            # n-step rewards with a 1-step discount (or the reverse) would be wrong targets.
            raise ValueError("the saved replay was made with another --n-step (n > 1 stores a "
                             "'discount' field); resume with the run's --n-step, or without "
                             "--save-replay")
        values = {key: np.asarray(state[key]) for key in self._data}
        for key, arr in self._data.items():
            if values[key].shape != (size, *arr.shape[1:]):
                raise ValueError(
                    f"the saved replay's field {key!r} has shape {values[key].shape}, this "
                    f"run's {(size, *arr.shape[1:])} (another env or sizes); resume with the "
                    "run's env, or without --save-replay to start the replay empty"
                )
        for key, arr in self._data.items():
            arr[:size] = values[key]  # slots past size are never read, so left as they are
        self._ptr = int(state["ptr"])
        self._size = size
        self._total_added = int(state["total_added"])
        self.rng.bit_generator.state = state["rng_state"]


def field_specs(obs_size: int, action_size: int, discount: bool = False) -> dict[str, tuple]:
    """Field -> (per-row shape, numpy dtype) of a stored transition; the leading (capacity,)
    axis is the buffer's. `discount` (the n-step bootstrap discount) only when asked for."""
    specs = {
        "obs": ((obs_size,), np.float32),
        "action": ((action_size,), np.float32),
        "reward": ((), np.float32),
        "next_obs": ((obs_size,), np.float32),
        "terminated": ((), np.float32),
        "policy_version": ((), np.int64),
    }
    if discount:
        specs["discount"] = ((), np.float32)
    return specs


def ring_span(ptr: int, n: int, capacity: int) -> tuple[int, int, int]:
    """Where a chunk of `n` rows goes in a ring at write pointer `ptr`: (rows kept, first
    slot, rows before the wrap). Rows that would be overwritten within the same chunk are
    never written; the kept ones land where writing every row in turn would put them."""
    keep = min(n, capacity)
    start = (ptr + n - keep) % capacity
    return keep, start, min(keep, capacity - start)
