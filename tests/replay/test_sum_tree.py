"""SumTree against brute-force cumulative sums: totals, search, duplicate updates."""

import sys

import numpy as np
import pytest

from replay.sum_tree import SumTree


@pytest.mark.parametrize("capacity", [1, 2, 5, 8, 13, 100])
def test_total_min_max_and_search_match_a_cumsum(capacity):
    rng = np.random.default_rng(capacity)
    tree, pri = SumTree(capacity), np.zeros(capacity)
    for _ in range(5):  # several partial rounds of updates, as the buffer sees them
        idx = rng.integers(0, capacity, rng.integers(1, capacity + 1))
        new = rng.uniform(0.1, 5.0, len(idx))
        new[rng.random(len(idx)) < 0.2] = 0.0  # some slots emptied again
        tree.update(idx, new)
        for i, p in zip(idx, new):  # reference: one write at a time, in order
            pri[i] = p
        if pri.sum() == 0:
            continue
        assert tree.total == pytest.approx(pri.sum(), rel=1e-12)
        assert tree.max_priority == pri.max()
        assert tree.min_priority == pri[pri > 0].min()
        np.testing.assert_array_equal(tree.priorities(np.arange(capacity)), pri)
        values = rng.uniform(0, pri.sum(), 500)
        # Brute force: the first slot whose inclusive prefix sum exceeds the value.
        expected = np.searchsorted(np.cumsum(pri), values, side="right")
        np.testing.assert_array_equal(tree.find(values), expected)


def test_interval_edges_and_zero_priority_slots():
    tree = SumTree(6)
    tree.update([0, 1, 2, 3, 4, 5], [0.0, 1.0, 0.0, 2.0, 0.0, 0.0])
    # Slot 1 owns [0, 1), slot 3 owns [1, 3); zero slots own nothing, even at the edges.
    np.testing.assert_array_equal(tree.find([0.0, 0.5, 1.0, 2.999, -1.0]), [1, 1, 3, 3, 1])
    # At or past the total (float rounding) the search stays on the last positive slot.
    np.testing.assert_array_equal(tree.find([3.0, 3.0 + 1e-9, 10.0]), [3, 3, 3])


def test_duplicate_indices_last_write_wins():
    tree = SumTree(8)
    tree.update([2, 5, 2, 2, 5], [1.0, 2.0, 3.0, 4.0, 7.0])
    np.testing.assert_array_equal(tree.priorities([2, 5]), [4.0, 7.0])
    assert tree.total == 11.0 and tree.max_priority == 7.0 and tree.min_priority == 4.0


def test_lowering_priorities_lowers_max_and_total():
    tree = SumTree(4)
    tree.update([0, 1, 2, 3], [1.0, 9.0, 2.0, 3.0])
    tree.update([1], [0.5])
    assert tree.total == 6.5 and tree.max_priority == 3.0 and tree.min_priority == 0.5
    tree.update([0, 1, 2, 3], 0.0)
    assert tree.total == 0.0 and tree.min_priority == np.inf
    with pytest.raises(ValueError):
        tree.find([0.0])


def test_rejects_bad_slots_and_priorities():
    tree = SumTree(4)
    with pytest.raises(IndexError):
        tree.update([4], [1.0])
    with pytest.raises(IndexError):
        tree.priorities([-1])
    for bad in (-1.0, np.nan, np.inf):
        with pytest.raises(ValueError):
            tree.update([0], [bad])


def lines_run_in_sum_tree(work) -> int:
    """Python lines executed inside replay/sum_tree.py while `work()` runs (numpy's own
    code, in C or elsewhere, is not counted)."""
    target, count = SumTree.find.__code__.co_filename, 0

    def local(frame, event, arg):
        nonlocal count
        count += event == "line"
        return local

    def calls(frame, event, arg):
        return local if frame.f_code.co_filename == target else None

    previous = sys.gettrace()
    sys.settrace(calls)
    try:
        work()
    finally:
        sys.settrace(previous)
    return count


def test_large_batches_are_vectorised():
    """4096 searches and updates on a 100k-slot tree: loops run over depth, not samples.
    Counted in Python lines run, not time (shared CI machines): a batch of 4096 runs as many
    as a batch of 4, which a per-sample loop could not."""
    rng = np.random.default_rng(0)
    tree = SumTree(100_000)
    tree.update(np.arange(100_000), rng.uniform(0.1, 1.0, 100_000))
    lines, found = {}, {}
    for n in (4, 4096):
        def work(n=n):
            found[n] = tree.find(rng.uniform(0, tree.total, n))
            tree.update(found[n], rng.uniform(0.1, 1.0, n))
        lines[n] = lines_run_in_sum_tree(work)
    idx = found[4096]
    assert idx.shape == (4096,) and idx.min() >= 0 and idx.max() < 100_000
    assert 0 < lines[4096] == lines[4] < 4096, lines
