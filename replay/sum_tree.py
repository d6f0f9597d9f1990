"""A sum tree over `capacity` non-negative priorities, updated and searched in batches.

Heap layout in one float64 array: node i has children 2i and 2i+1, the root is node 1, and
the leaves (one per slot, padded to a power of two with zeros) are nodes [size, 2 * size).
Every batch operation walks the tree level by level with array indexing, so its Python loop
runs log2(capacity) times whatever the batch size. Min and max trees of the same shape keep
the smallest positive and the largest priority at the root, for importance weights and for
the priority given to new data.
"""

from __future__ import annotations

import numpy as np


class SumTree:
    """Priorities of `capacity` slots: batched updates, totals and prefix-sum search."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._size = 1 << max(0, (capacity - 1).bit_length())  # leaves, a power of two
        self._depth = self._size.bit_length() - 1
        self._sum = np.zeros(2 * self._size)
        self._max = np.zeros(2 * self._size)
        # Zero priorities count as empty: inf keeps them out of the minimum.
        self._min = np.full(2 * self._size, np.inf)

    @property
    def total(self) -> float:
        """Sum of all priorities."""
        return float(self._sum[1])

    @property
    def max_priority(self) -> float:
        """Largest priority (0 when all are 0)."""
        return float(self._max[1])

    @property
    def min_priority(self) -> float:
        """Smallest positive priority (inf when all are 0)."""
        return float(self._min[1])

    def priorities(self, indices) -> np.ndarray:
        """The priorities of these slots (float64)."""
        return self._sum[self._size + self._check(indices)]

    def update(self, indices, priorities) -> None:
        """Set slots' priorities; of repeated indices the last one given wins."""
        idx = self._check(indices).reshape(-1)
        pri = np.broadcast_to(np.asarray(priorities, np.float64).reshape(-1), idx.shape)
        if not np.all(np.isfinite(pri) & (pri >= 0)):
            raise ValueError("priorities must be finite and >= 0")
        # np.unique on the reversed batch keeps each slot's first hit there: its last write.
        _, last = np.unique(idx[::-1], return_index=True)
        keep = len(idx) - 1 - last
        nodes, pri = idx[keep] + self._size, pri[keep]
        self._sum[nodes] = pri
        self._max[nodes] = pri
        self._min[nodes] = np.where(pri > 0, pri, np.inf)
        for _ in range(self._depth):
            # Parents are recomputed from both children, not patched with deltas: no float
            # drift builds up, and a parent shared by several updated leaves gets the same
            # value from each of its repeats, so no de-duplication is needed per level.
            nodes = nodes >> 1
            left, right = 2 * nodes, 2 * nodes + 1
            self._sum[nodes] = self._sum[left] + self._sum[right]
            self._max[nodes] = np.maximum(self._max[left], self._max[right])
            self._min[nodes] = np.minimum(self._min[left], self._min[right])

    def find(self, values) -> np.ndarray:
        """For each value in [0, total): the slot i with prefix(i) <= value < prefix(i + 1).

        prefix(i) is the sum of the priorities of slots before i. Values at or past the total
        (float rounding) land on the last slot with a positive priority, never on a zero one.
        """
        if self.total <= 0:
            raise ValueError("cannot search a sum tree whose priorities are all 0")
        # Below 0 would walk down the left edge, possibly onto a zero-priority slot.
        values = np.maximum(np.asarray(values, np.float64), 0.0)
        nodes = np.ones(values.shape, np.int64)
        for _ in range(self._depth):
            left = 2 * nodes
            left_sum = self._sum[left]
            # An empty right subtree is never entered, so rounding cannot reach a 0 leaf.
            right = (values >= left_sum) & (self._sum[left + 1] > 0)
            values -= np.where(right, left_sum, 0.0)
            nodes = left + right
        return nodes - self._size

    def _check(self, indices) -> np.ndarray:
        idx = np.asarray(indices, np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self.capacity):
            raise IndexError(f"sum tree slots must lie in [0, {self.capacity})")
        return idx
