"""PrioritizedReplayBuffer: sampling in proportion, weights, stale updates, beta, state."""

import numpy as np
import pytest

from replay.prioritized import PrioritizedReplayBuffer
from tests.replay.test_buffer import ACT, OBS, chunk


def make(capacity=10, **kw):
    return PrioritizedReplayBuffer(OBS, ACT, capacity, seed=0, **kw)


def with_priority(start, n, td):
    return {**chunk(start, n), "priority": np.asarray(td, np.float64)}


def frequencies(buf, draws, batch=1000):
    counts = np.zeros(buf.capacity)
    for _ in range(draws // batch):
        np.add.at(counts, buf.sample(batch)["indices"], 1)
    return counts / draws


def test_sampling_frequencies_match_priorities():
    buf = make(alpha=1.0, eps=1e-9)
    td = np.arange(1.0, 11.0)  # slot i drawn with probability (i + 1) / 55
    buf.add(with_priority(0, 10, td))
    freq = frequencies(buf, 200_000)
    # Stratified draws are at least as even as multinomial ones, whose relative standard
    # error on the rarest slot (p = 1/55) is ~1.6% here; 5% is over 3 of those.
    np.testing.assert_allclose(freq, td / td.sum(), rtol=0.05)


def test_alpha_flattens_priorities():
    buf = make(alpha=0.5, eps=1e-9)
    buf.add(with_priority(0, 2, [1.0, 16.0]))
    freq = frequencies(buf, 100_000)[:2]
    np.testing.assert_allclose(freq, [0.2, 0.8], rtol=0.05)  # sqrt: 1 : 4


def test_stratified_batch_covers_each_equal_priority_slot_once():
    buf = make(capacity=64)
    buf.add(chunk(0, 64))
    idx = buf.sample(64)["indices"]
    np.testing.assert_array_equal(np.sort(idx), np.arange(64))
    assert not np.all(np.diff(idx) > 0)  # shuffled: a batch cut in parts mixes all strata


def test_new_rows_get_the_max_priority_or_their_own():
    buf = make(alpha=1.0, eps=0.5)
    buf.add(chunk(0, 2))  # empty buffer: priority 1
    np.testing.assert_array_equal(buf.tree.priorities([0, 1]), [1.0, 1.0])
    buf.add(with_priority(2, 2, [3.0, -1.5]))  # |td| + eps
    np.testing.assert_array_equal(buf.tree.priorities([2, 3]), [3.5, 2.0])
    buf.add(chunk(4, 1))
    assert buf.tree.priorities([4])[0] == 3.5


def test_sample_returns_rows_aligned_with_indices():
    buf = make()
    buf.add(chunk(0, 7))
    batch = buf.sample(32)
    assert batch["indices"].dtype == np.int64 and batch["generations"].dtype == np.int64
    assert batch["weights"].dtype == np.float32 and batch["weights"].shape == (32,)
    np.testing.assert_array_equal(batch["obs"][:, 0], batch["indices"])  # row k sits in slot k


def test_priority_updates_land_on_their_slots_and_stale_ones_are_dropped():
    buf = make(capacity=8, alpha=1.0, eps=1e-9)
    buf.add(chunk(0, 6))
    batch = buf.sample(64)
    slots, gens = np.unique(batch["indices"], return_index=True)
    gens = batch["generations"][gens]
    assert set(slots) == set(range(6))
    buf.add(chunk(6, 4))  # wraps: slots 6, 7, 0, 1 now hold transitions 6..9
    applied = buf.update_priorities(slots, slots + 10.0, gens)
    assert applied == 4
    expected = [1, 1, 12, 13, 14, 15, 1, 1]  # 0 and 1 keep the new rows' max priority
    np.testing.assert_allclose(buf.tree.priorities(np.arange(8)), expected)
    # A fresh sample's generations are current, so its updates apply, even to slots 0 and 1.
    fresh = buf.sample(256)
    assert buf.update_priorities(fresh["indices"], np.full(256, 2.0), fresh["generations"]) == 256
    np.testing.assert_allclose(buf.tree.priorities(np.arange(8)), 2.0)


def test_repeated_slots_in_one_update_last_value_wins():
    buf = make(alpha=1.0, eps=1e-9)
    buf.add(chunk(0, 3))
    gens = buf.sample(3)["generations"][:1].repeat(3)
    buf.update_priorities([1, 1, 1], [5.0, 6.0, 7.0], gens)
    assert buf.tree.priorities([1])[0] == pytest.approx(7.0)


def test_importance_weights_are_normalised_by_the_buffer_max():
    beta = 0.4
    buf = make(capacity=16, alpha=0.6, beta=beta, beta_steps=10**9)
    td = np.linspace(0.1, 3.0, 16)
    buf.add(with_priority(0, 16, td))
    p = (td + buf.eps) ** 0.6
    prob = p / p.sum()
    w_all = (16 * prob) ** -beta
    w_all /= w_all.max()  # the max over the WHOLE buffer: that of the least likely slot
    batch = buf.sample(4096)
    w = batch["weights"]
    np.testing.assert_allclose(w, w_all[batch["indices"]], rtol=1e-5)
    assert np.all(w <= 1.0) and np.all(w > 0)
    # Slot 0 has the smallest priority: its weight is exactly 1, every other one below.
    assert 0 in batch["indices"]
    assert np.all(w[batch["indices"] == 0] == 1.0) and np.all(w[batch["indices"] != 0] < 1.0)


def test_beta_anneals_linearly_to_one():
    buf = make(beta=0.4, beta_steps=10)
    buf.add(chunk(0, 5))
    assert buf.beta == pytest.approx(0.4)
    for _ in range(5):
        buf.sample(2)
    assert buf.beta == pytest.approx(0.7)
    buf.sample(8, updates=4)  # a stacked draw for 4 learner updates counts 4
    assert buf.beta == pytest.approx(0.94)
    buf.sample(2, updates=100)
    assert buf.beta == 1.0


def test_a_resumed_run_continues_beta_and_still_reaches_one():
    """Resumed without its replay, beta went back to beta0 (the count restarted); given
    more --train-steps (a longer schedule), it dropped. Neither reached 1 at the end."""
    buf = make(beta=0.4, beta_steps=20)  # this session's schedule: 20 updates in all
    buf.add(chunk(0, 5))
    buf.continue_beta(updates=10, beta=0.7)  # where the checkpoint left it
    assert buf.beta == pytest.approx(0.7)
    buf.continue_beta(updates=10, beta=1.0)  # a finished run given more steps
    assert buf.beta == 1.0  # not 0.4 + 0.6 * 10 / 20 = 0.7
    buf = make(beta=0.4, beta_steps=20)
    buf.add(chunk(0, 5))
    buf.continue_beta(updates=5, beta=0.8)  # reached under a shorter schedule
    buf.sample(2, updates=5)
    assert buf.beta == pytest.approx(0.8)  # this schedule's 0.4 + 0.6 * 10 / 20 is below
    buf.sample(2, updates=4)
    assert buf.beta == pytest.approx(0.4 + 0.6 * 14 / 20)  # the schedule past the floor
    buf.sample(2, updates=6)
    assert buf.beta == 1.0  # at this session's end


def test_rejected_chunk_changes_nothing():
    buf = make()
    buf.add(chunk(0, 3))
    before = buf.state_dict()
    for bad in (with_priority(3, 2, [1.0]), with_priority(3, 2, [1.0, np.nan]),
                {**with_priority(3, 2, [1.0, 1.0]), "reward": np.full(2, np.nan)}):
        with pytest.raises(ValueError):
            buf.add(bad)
    after = buf.state_dict()
    for key in ("priorities", "generations", "obs"):
        np.testing.assert_array_equal(after[key], before[key])
    assert after["total_added"] == 3


def test_update_rejects_out_of_range_slots_and_mismatched_lengths():
    buf = make()
    buf.add(chunk(0, 3))
    with pytest.raises(ValueError):
        buf.update_priorities([3], [1.0], [1])  # slot 3 was never filled
    with pytest.raises(ValueError):
        buf.update_priorities([0, 1], [1.0], [1, 1])


def test_chunk_larger_than_capacity_keeps_newest_priorities():
    buf = make(capacity=4, alpha=1.0, eps=1e-9)
    buf.add(with_priority(0, 6, np.arange(6.0) + 1))  # rows 2..5 survive in slots 2, 3, 0, 1
    np.testing.assert_allclose(buf.tree.priorities(np.arange(4)), [5, 6, 3, 4])
    assert buf.tree.total == pytest.approx(18)


def test_state_dict_round_trip_continues_identically():
    buf = make(capacity=8, beta_steps=20)
    buf.add(with_priority(0, 11, np.arange(11.0)))
    buf.sample(4)
    restored = make(capacity=8, beta_steps=20)
    restored.load_state_dict(buf.state_dict())
    assert restored.beta == buf.beta and restored.tree.total == pytest.approx(buf.tree.total)
    a, b = buf.sample(16), restored.sample(16)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    # Generations survive too: an update from before the save is still recognised as stale.
    assert restored.update_priorities(a["indices"], a["weights"], a["generations"] - 1) == 0


def test_make_buffer_builds_what_the_config_asks_for():
    from replay.buffer import ReplayBuffer
    from replay.config import ReplayConfig
    from replay.prioritized import make_buffer

    plain = make_buffer(OBS, ACT, ReplayConfig(buffer_size=16))
    assert type(plain) is ReplayBuffer and "discount" not in plain.fields
    per = make_buffer(OBS, ACT, ReplayConfig(buffer_size=16, n_step=3, prioritized=True,
                                             per_alpha=0.5, per_beta=0.3, per_beta_steps=7))
    assert isinstance(per, PrioritizedReplayBuffer) and "discount" in per.fields
    assert (per.alpha, per.beta0, per.beta_steps) == (0.5, 0.3, 7)


def test_uniform_state_loads_into_a_prioritized_buffer_at_priority_one():
    from replay.buffer import ReplayBuffer

    plain = ReplayBuffer(OBS, ACT, capacity=10, seed=0)
    plain.add(chunk(0, 6))
    buf = make()
    buf.load_state_dict(plain.state_dict())  # a run resumed with --prioritized added
    np.testing.assert_array_equal(buf.tree.priorities(np.arange(6)), 1.0)
    out = buf.sample(4)
    assert buf.update_priorities(out["indices"], np.full(4, 3.0), out["generations"]) == 4
