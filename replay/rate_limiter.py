"""Holds learner updates to a fixed ratio of inserted transitions, as Reverb's SampleToInsertRatio.

The ratio is counted in updates per inserted row (samples-per-insert is that times batch_size).
Both sides get the same slack, `tolerance` updates: the learner may run that far ahead of the
target before it must wait for data, and the inserters are told to back off once the learner
is that far behind. The learner side is a hard limit (updates are only handed out when allowed);
the inserter side is advisory, since inserts are never refused: data is never dropped.
"""

from __future__ import annotations

import math

# Float products such as 0.7 * 10 come out as 6.999...; without this nudge floor() would hand
# out one update too few at exact multiples.
_EPS = 1e-9


class RateLimiter:
    """Keeps learner updates at `updates_per_step` per inserted transition past `min_size`
    (samples-per-insert = updates_per_step * batch_size), within `tolerance` updates."""

    def __init__(self, updates_per_step: float, min_size: int, tolerance: float):
        if updates_per_step < 0 or min_size < 0 or tolerance < 0:
            raise ValueError(
                f"rate limiter needs updates_per_step, min_size and tolerance >= 0; got "
                f"{updates_per_step}, {min_size}, {tolerance}"
            )
        self.updates_per_step = float(updates_per_step)
        self.min_size = int(min_size)
        self.tolerance = float(tolerance)
        self._inserted = 0
        self._updates_done = 0

    @property
    def inserted(self) -> int:
        """Transitions ever recorded as inserted (including those before min_size)."""
        return self._inserted

    @property
    def updates_done(self) -> int:
        """Learner updates recorded so far."""
        return self._updates_done

    def record_insert(self, n: int) -> None:
        """Count `n` newly inserted transitions."""
        if n < 0:
            raise ValueError(f"cannot record {n} inserts")
        self._inserted += int(n)

    def record_updates(self, n: int) -> None:
        """Count `n` learner updates handed out."""
        if n < 0:
            raise ValueError(f"cannot record {n} updates")
        self._updates_done += int(n)

    def target(self) -> float:
        """Updates the ratio calls for now; 0 until min_size transitions are in."""
        return self.updates_per_step * max(0, self._inserted - self.min_size)

    def updates_allowed(self) -> int:
        """How many more updates the learner may do now: 0 before min_size or when ahead."""
        if self.updates_per_step == 0 or self._inserted < self.min_size:
            return 0
        ceiling = math.floor(self.target() + self.tolerance + _EPS)
        return max(0, ceiling - self._updates_done)

    def owed(self) -> int:
        """Updates the ratio calls for exactly, without the slack: what is left to do once
        no more data will come (the end of training)."""
        if self.updates_per_step == 0 or self._inserted < self.min_size:
            return 0
        return max(0, math.floor(self.target() + _EPS) - self._updates_done)

    def lag(self) -> float:
        """Updates the learner is behind the target (negative when ahead)."""
        return self.target() - self._updates_done

    def inserts_should_wait(self) -> bool:
        """True once the learner is more than `tolerance` updates behind the target.

        Never before min_size: the fill must not be throttled, nothing can be sampled yet.
        """
        if self._inserted < self.min_size:
            return False
        return self.lag() > self.tolerance + _EPS

    def state_dict(self) -> dict:
        """The counters (the settings come from the config on resume)."""
        return {"inserted": self._inserted, "updates_done": self._updates_done}

    def load_state_dict(self, state: dict) -> None:
        """Restore the counters of a `state_dict()`."""
        inserted, updates = int(state["inserted"]), int(state["updates_done"])
        if inserted < 0 or updates < 0:
            raise ValueError(f"rate limiter state has negative counters: {state}")
        self._inserted, self._updates_done = inserted, updates
