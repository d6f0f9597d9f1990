"""ReplayBuffer: ring wrap-around, sampling bounds, validation and state round trips."""

import numpy as np
import pytest
import torch

from replay.buffer import ReplayBuffer
from replay.config import ReplayConfig

OBS, ACT = 4, 2


def chunk(start: int, n: int, terminated=None) -> dict[str, np.ndarray]:
    """n transitions numbered start..start+n-1; every field encodes the number so rows can
    be traced to their slot and checked for staying aligned across fields."""
    k = np.arange(start, start + n, dtype=np.float32)
    return {
        "obs": np.repeat(k[:, None], OBS, axis=1),
        "action": np.repeat(-k[:, None], ACT, axis=1) / 1000.0,
        "reward": k + 0.5,
        "next_obs": np.repeat(k[:, None] + 1000.0, OBS, axis=1),
        "terminated": (k % 2 if terminated is None else terminated).astype(np.float32),
        "policy_version": np.arange(start, start + n, dtype=np.int64) * 10,
    }


def assert_rows_aligned(data: dict[str, np.ndarray]) -> np.ndarray:
    """Every field of every row describes the same transition; return the numbers."""
    k = data["obs"][:, 0]
    np.testing.assert_array_equal(data["obs"], np.repeat(k[:, None], OBS, axis=1))
    np.testing.assert_array_equal(data["action"], np.repeat(-k[:, None], ACT, axis=1) / 1000.0)
    np.testing.assert_array_equal(data["reward"], k + 0.5)
    np.testing.assert_array_equal(data["next_obs"], np.repeat(k[:, None] + 1000.0, OBS, axis=1))
    np.testing.assert_array_equal(data["terminated"], k % 2)
    np.testing.assert_array_equal(data["policy_version"], k.astype(np.int64) * 10)
    return k.astype(np.int64)


def slots(buf: ReplayBuffer) -> np.ndarray:
    """Transition number held in each filled slot (the raw ring, from state_dict)."""
    return assert_rows_aligned(buf.state_dict())


def test_wrap_around_uneven_chunks_keeps_newest_in_ring_slots():
    buf = ReplayBuffer(OBS, ACT, capacity=10)
    start = 0
    for n in (4, 5, 7):  # 16 rows: the second and third chunks each cross the end
        buf.add(chunk(start, n))
        start += n
    assert buf.size == 10 and buf.total_added == 16 and buf.capacity == 10
    # Transition t sits in slot t % 10; the newest 10 (6..15) survive.
    np.testing.assert_array_equal(slots(buf), [10, 11, 12, 13, 14, 15, 6, 7, 8, 9])


def test_partial_fill_has_no_wrap():
    buf = ReplayBuffer(OBS, ACT, capacity=10)
    buf.add(chunk(0, 3))
    buf.add(chunk(3, 4))
    assert buf.size == 7 and buf.total_added == 7
    np.testing.assert_array_equal(slots(buf), np.arange(7))


@pytest.mark.parametrize("first", [0, 3, 10])
def test_chunk_larger_than_capacity_keeps_newest(first):
    buf = ReplayBuffer(OBS, ACT, capacity=10)
    if first:
        buf.add(chunk(0, first))
    buf.add(chunk(first, 25))
    total = first + 25
    assert buf.size == 10 and buf.total_added == total
    newest = np.arange(total - 10, total)
    expected = np.empty(10, dtype=np.int64)
    expected[newest % 10] = newest  # same slots as if every row had been written in turn
    np.testing.assert_array_equal(slots(buf), expected)
    # The write pointer lands where sequential writes would have left it.
    buf.add(chunk(total, 1))
    assert slots(buf)[total % 10] == total


def test_chunk_of_exactly_capacity_and_empty_chunk():
    buf = ReplayBuffer(OBS, ACT, capacity=8)
    buf.add(chunk(0, 5))
    buf.add(chunk(5, 8))
    expected = np.empty(8, dtype=np.int64)
    expected[np.arange(5, 13) % 8] = np.arange(5, 13)
    np.testing.assert_array_equal(slots(buf), expected)
    buf.add(chunk(13, 0))
    assert buf.total_added == 13
    np.testing.assert_array_equal(slots(buf), expected)


def test_sampling_never_returns_unfilled_slots_and_covers_filled_ones():
    buf = ReplayBuffer(OBS, ACT, capacity=100)
    buf.add(chunk(1, 30))  # numbers 1..30; unfilled slots hold 0
    counts = np.zeros(31, dtype=np.int64)
    for _ in range(1000):
        batch = buf.sample(64)
        assert batch["obs"].shape == (64, OBS) and batch["action"].shape == (64, ACT)
        assert batch["reward"].shape == (64,) and batch["policy_version"].dtype == np.int64
        k = assert_rows_aligned(batch)
        assert k.min() >= 1 and k.max() <= 30
        counts += np.bincount(k, minlength=31)
    # Uniform: 64000 draws over 30 rows -> 2133 each, std ~45; allow +-10% (~4.7 std).
    expected = 64000 / 30
    assert np.all(np.abs(counts[1:] - expected) < 0.1 * expected), counts


def test_sample_after_wrap_covers_whole_ring():
    buf = ReplayBuffer(OBS, ACT, capacity=20)
    buf.add(chunk(0, 47))
    seen = set(buf.sample(5000)["obs"][:, 0].astype(int))
    assert seen == set(range(27, 47))


def test_sample_returns_copies():
    """A learner may write into every field of a batch; the stored rows stay as they were."""
    buf = ReplayBuffer(OBS, ACT, capacity=5)
    buf.add(chunk(0, 5))
    before = buf.state_dict()
    batch = buf.sample(10)
    assert set(batch) == set(ReplayBuffer.FIELDS)
    for key in ReplayBuffer.FIELDS:
        batch[key][...] = -7
    after = buf.state_dict()
    for key in ReplayBuffer.FIELDS:
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)
    assert (slots(buf) >= 0).all()


def test_sample_on_empty_raises():
    buf = ReplayBuffer(OBS, ACT, capacity=10)
    with pytest.raises(ValueError, match="empty"):
        buf.sample(1)


def test_can_sample_waits_for_learning_starts_and_batch_size():
    def min_size(batch_size, learning_starts):
        return ReplayConfig(batch_size=batch_size, learning_starts=learning_starts).min_size

    buf = ReplayBuffer(OBS, ACT, capacity=100)
    assert not buf.can_sample(min_size(32, 50))
    buf.add(chunk(0, 40))
    assert not buf.can_sample(min_size(32, 50))  # past batch, not starts
    assert buf.can_sample(min_size(32, 40))
    buf.add(chunk(40, 10))
    assert buf.can_sample(min_size(32, 50))
    small = ReplayBuffer(OBS, ACT, capacity=100)
    small.add(chunk(0, 31))
    assert not small.can_sample(min_size(32, 0))  # past starts, not batch
    small.add(chunk(31, 1))
    assert small.can_sample(min_size(32, 0))


@pytest.mark.parametrize(
    "field, bad_shape, expected",
    [
        ("obs", (5, OBS + 1), f"(5, {OBS})"),
        ("next_obs", (5, OBS + 1), f"(5, {OBS})"),
        ("action", (5, ACT + 1), f"(5, {ACT})"),
        ("reward", (5, 1), "(5,)"),
        ("reward", (4,), "(5,)"),
        ("terminated", (6,), "(5,)"),
        ("policy_version", (5, 2), "(5,)"),
    ],
)
def test_shape_errors_name_field_expected_and_got(field, bad_shape, expected):
    buf = ReplayBuffer(OBS, ACT, capacity=10)
    batch = chunk(0, 5)
    batch[field] = np.zeros(bad_shape, dtype=np.float32)
    with pytest.raises(ValueError) as err:
        buf.add(batch)
    msg = str(err.value)
    assert field in msg and expected in msg and str(bad_shape) in msg
    assert "\n" not in msg
    assert buf.size == 0 and buf.total_added == 0  # nothing written


def test_obs_must_be_two_dimensional():
    batch = chunk(0, 1)
    batch["obs"] = batch["obs"][0]
    with pytest.raises(ValueError, match=r"'obs'.*\(N, 4\).*\(4,\)"):
        ReplayBuffer(OBS, ACT, capacity=10).add(batch)


def test_missing_and_unknown_keys_rejected():
    buf = ReplayBuffer(OBS, ACT, capacity=10)
    batch = chunk(0, 3)
    del batch["next_obs"]
    with pytest.raises(ValueError, match="next_obs"):
        buf.add(batch)
    batch = chunk(0, 3)
    batch["done"] = batch.pop("terminated")  # the seed's field: must not be accepted
    with pytest.raises(ValueError, match="done"):
        buf.add(batch)
    assert buf.size == 0


@pytest.mark.parametrize("field", ["obs", "next_obs", "reward", "action"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_values_rejected(field, value):
    buf = ReplayBuffer(OBS, ACT, capacity=10)
    buf.add(chunk(0, 2))
    batch = chunk(2, 3)
    batch[field] = batch[field].copy()
    batch[field].flat[-1] = value
    with pytest.raises(ValueError, match=field):
        buf.add(batch)
    assert buf.size == 2 and buf.total_added == 2  # the bad chunk left no trace
    np.testing.assert_array_equal(slots(buf), [0, 1])


def test_terminated_stored_as_given_and_truncation_stays_zero():
    buf = ReplayBuffer(OBS, ACT, capacity=10)
    # Rows 0..3: running, terminated, truncated (stored 0 so it bootstraps), terminated.
    term = np.array([False, True, False, True])
    batch = chunk(0, 4)
    batch["terminated"] = term
    buf.add(batch)
    state = buf.state_dict()
    assert state["terminated"].dtype == np.float32
    np.testing.assert_array_equal(state["terminated"], [0.0, 1.0, 0.0, 1.0])
    sample = buf.sample(200)
    np.testing.assert_array_equal(sample["terminated"], term[sample["obs"][:, 0].astype(int)])
    bad = chunk(4, 1)
    bad["terminated"] = np.array([0.5])
    with pytest.raises(ValueError, match="terminated"):
        buf.add(bad)


def test_policy_version_defaults_to_zero():
    buf = ReplayBuffer(OBS, ACT, capacity=10)
    batch = chunk(0, 3)
    del batch["policy_version"]
    buf.add(batch)
    state = buf.state_dict()
    assert state["policy_version"].dtype == np.int64
    np.testing.assert_array_equal(state["policy_version"], [0, 0, 0])


def test_state_dict_round_trip_continues_identically():
    a = ReplayBuffer(OBS, ACT, capacity=16, seed=3)
    a.add(chunk(0, 11))
    a.add(chunk(11, 9))  # wrapped, pointer mid-ring
    a.sample(7)  # advance the rng so its state matters
    state = a.state_dict()
    b = ReplayBuffer(OBS, ACT, capacity=16, seed=99)
    b.load_state_dict(state)
    assert (b.size, b.total_added) == (a.size, a.total_added)
    for step in range(5):
        sa, sb = a.sample(32), b.sample(32)
        for key in ReplayBuffer.FIELDS:
            np.testing.assert_array_equal(sa[key], sb[key])
        a.add(chunk(100 + 3 * step, 3))  # later writes land in the same slots too
        b.add(chunk(100 + 3 * step, 3))
    np.testing.assert_array_equal(slots(a), slots(b))


def test_state_dict_is_a_snapshot_and_partial_fill_round_trips():
    a = ReplayBuffer(OBS, ACT, capacity=16)
    a.add(chunk(0, 5))
    state = a.state_dict()
    a.add(chunk(5, 20))
    np.testing.assert_array_equal(state["obs"][:, 0], np.arange(5))  # unaffected by later adds
    b = ReplayBuffer(OBS, ACT, capacity=16)
    b.add(chunk(50, 16))  # stale contents must not survive the load
    b.load_state_dict(state)
    assert b.size == 5
    assert set(b.sample(500)["obs"][:, 0].astype(int)) == set(range(5))


def test_load_rejects_other_capacity_naming_the_fix():
    a = ReplayBuffer(OBS, ACT, capacity=16)
    a.add(chunk(0, 5))
    with pytest.raises(ValueError) as err:
        ReplayBuffer(OBS, ACT, capacity=8).load_state_dict(a.state_dict())
    message = str(err.value)
    assert "\n" not in message and "16" in message and "8" in message
    assert "--buffer-size 16" in message and "without --save-replay" in message


def test_load_rejects_other_sizes_naming_the_fix_and_keeps_the_buffer():
    """A saved replay from another env (other obs or action sizes) is refused whole: no
    field is half-loaded before the one that does not fit."""
    saved = ReplayBuffer(OBS, ACT + 1, capacity=16)
    saved.add({**chunk(0, 5), "action": np.zeros((5, ACT + 1), np.float32)})
    b = ReplayBuffer(OBS, ACT, capacity=16)
    b.add(chunk(50, 3))
    state = saved.state_dict()
    state["obs"] = state["obs"] + 7.0  # a first field that fits, and differs
    with pytest.raises(ValueError) as err:
        b.load_state_dict(state)
    message = str(err.value)
    assert "\n" not in message and "'action'" in message
    assert "without --save-replay" in message
    assert b.size == 3 and list(slots(b)) == [50, 51, 52]


def test_config_and_constructor_validate():
    cfg = ReplayConfig()
    assert (cfg.buffer_size, cfg.batch_size, cfg.learning_starts) == (200_000, 256, 5_000)
    with pytest.raises(ValueError):
        ReplayConfig(batch_size=0)
    with pytest.raises(ValueError):
        ReplayBuffer(OBS, ACT, capacity=0)


def test_state_survives_weights_only_torch_checkpoint(tmp_path):
    # Checkpoints are read with torch.load(weights_only=True), which refuses numpy arrays:
    # the saver converts them to tensors, and load_state_dict must accept those back.
    a = ReplayBuffer(OBS, ACT, capacity=16, seed=1)
    a.add(chunk(0, 21))
    state = a.state_dict()
    state = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in state.items()}
    torch.save(state, tmp_path / "replay.pt")
    b = ReplayBuffer(OBS, ACT, capacity=16, seed=2)
    b.load_state_dict(torch.load(tmp_path / "replay.pt", weights_only=True))
    sa, sb = a.sample(64), b.sample(64)
    for key in ReplayBuffer.FIELDS:
        np.testing.assert_array_equal(sa[key], sb[key])
        assert sa[key].dtype == sb[key].dtype


# --- the n-step discount field ----------------------------------------------------------------


def test_discount_field_is_stored_sampled_and_required_when_asked_for():
    buf = ReplayBuffer(OBS, ACT, capacity=8, seed=0, discount=True)
    assert buf.fields == (*ReplayBuffer.FIELDS, "discount")
    with pytest.raises(ValueError, match="missing field 'discount'"):
        buf.add(chunk(0, 3))
    rows = {**chunk(0, 3), "discount": np.array([0.9, 0.0, 0.81], np.float32)}
    buf.add(rows)
    out = buf.sample(64)
    # Each sampled row keeps its own discount (rows are told apart by their reward).
    by_reward = dict(zip(rows["reward"].tolist(), rows["discount"].tolist()))
    for r, d in zip(out["reward"].tolist(), out["discount"].tolist()):
        assert by_reward[r] == pytest.approx(d)
    with pytest.raises(ValueError, match="'discount' contains NaN"):
        buf.add({**chunk(3, 1), "discount": np.array([np.nan], np.float32)})
    with pytest.raises(ValueError, match="unknown replay field"):
        ReplayBuffer(OBS, ACT, capacity=8).add(rows)


def test_n_step_mismatch_on_load_is_one_clear_error():
    plain = ReplayBuffer(OBS, ACT, capacity=8)
    plain.add(chunk(0, 3))
    with pytest.raises(ValueError, match="another --n-step"):
        ReplayBuffer(OBS, ACT, capacity=8, discount=True).load_state_dict(plain.state_dict())
    n_step = ReplayBuffer(OBS, ACT, capacity=8, discount=True)
    n_step.add({**chunk(0, 3), "discount": np.full(3, 0.9, np.float32)})
    with pytest.raises(ValueError, match="another --n-step"):
        ReplayBuffer(OBS, ACT, capacity=8).load_state_dict(n_step.state_dict())


def test_replay_config_rejects_bad_n_step_and_per_values():
    for bad in ({"n_step": 0}, {"per_alpha": -1.0}, {"per_beta": 1.5}, {"per_beta_steps": -1}):
        with pytest.raises(ValueError, match="--" + next(iter(bad)).replace("_", "-")):
            ReplayConfig(**bad)
