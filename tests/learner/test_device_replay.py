"""DeviceReplay (ring wrap-around, sampling only filled rows, seeded device sampling) and the
feeding contract: ReplayBuffer.rows_since, ReplayServer.fetch and the learner-side Feed."""

import numpy as np
import pytest
import torch

from learner.device_replay import DeviceReplay, Feed
from replay.buffer import ReplayBuffer
from replay.config import ReplayConfig
from replay.rate_limiter import RateLimiter
from replay.server import ReplayServer

OBS, ACT = 4, 2


def rows(start: int, n: int) -> dict[str, np.ndarray]:
    """n transitions whose every field encodes its global row index g = start .. start+n-1
    (shifted by 1, so an unfilled zero slot never looks like a row)."""
    g = np.arange(start, start + n)
    ids = (g + 1).astype(np.float32)
    return {
        "obs": np.repeat(ids[:, None], OBS, axis=1),
        "action": np.repeat(-ids[:, None], ACT, axis=1),
        "reward": ids * 10,
        "next_obs": np.repeat(ids[:, None] + 0.5, OBS, axis=1),
        "terminated": (g % 2).astype(np.float32),
        "policy_version": g.astype(np.int64),
    }


def ids_of(data) -> list[int]:
    """Global row index of each row of a dict of arrays or tensors made by `rows`."""
    return [int(v) - 1 for v in np.asarray(data["obs"])[:, 0]]


def test_extend_wraps_around_the_ring():
    replay = DeviceReplay(OBS, ACT, capacity=5, device="cpu")
    replay.extend(rows(0, 3))
    replay.extend(rows(3, 4))  # rows 5 and 6 land in slots 0 and 1
    assert (replay.size, replay.total_added) == (5, 7)
    assert ids_of(replay._data) == [5, 6, 2, 3, 4]
    assert replay._data["policy_version"].tolist() == [5, 6, 2, 3, 4]
    assert replay._data["policy_version"].dtype == torch.int64
    assert replay._data["reward"].tolist() == [60.0, 70.0, 30.0, 40.0, 50.0]


def test_a_chunk_larger_than_the_ring_keeps_its_newest_rows():
    replay = DeviceReplay(OBS, ACT, capacity=4, device="cpu")
    replay.extend(rows(0, 1))
    replay.extend(rows(1, 10))  # rows 1..10; slot of row g is g % 4
    assert ids_of(replay._data) == [8, 9, 10, 7]
    assert (replay.size, replay.total_added) == (4, 11)


def test_missing_policy_version_is_stored_as_zero_and_bad_chunks_are_refused():
    replay = DeviceReplay(OBS, ACT, capacity=4, device="cpu")
    chunk = rows(0, 2)
    del chunk["policy_version"]
    replay.extend(chunk)
    assert replay._data["policy_version"].tolist() == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="missing"):
        replay.extend({"obs": np.zeros((2, OBS), np.float32)})
    with pytest.raises(ValueError, match="disagree"):
        replay.extend({**rows(0, 2), "reward": np.zeros(3, np.float32)})


def test_sample_draws_only_filled_rows_and_covers_them():
    replay = DeviceReplay(OBS, ACT, capacity=100, device="cpu")
    with pytest.raises(ValueError, match="empty"):
        replay.sample(4)
    replay.extend(rows(0, 10))
    batch = replay.sample(2000)
    assert set(ids_of(batch)) == set(range(10))  # never an unfilled (zero) slot
    assert batch["obs"].shape == (2000, OBS) and batch["reward"].shape == (2000,)
    # Fields of one sampled row belong together.
    assert torch.equal(batch["reward"], batch["obs"][:, 0] * 10)
    assert torch.equal(batch["policy_version"] + 1, batch["obs"][:, 0].long())


def test_sampling_is_reproducible_with_a_seeded_generator():
    a, b, c = (DeviceReplay(OBS, ACT, 50, "cpu", seed=s) for s in (7, 7, 8))
    for replay in (a, b, c):
        replay.extend(rows(0, 50))
    draws = [[ids_of(r.sample(16)) for _ in range(3)] for r in (a, b, c)]
    assert draws[0] == draws[1]
    assert draws[0] != draws[2]


def test_discount_field_when_asked_for():
    replay = DeviceReplay(OBS, ACT, capacity=4, device="cpu", discount=True)
    with pytest.raises(ValueError, match="discount"):
        replay.extend(rows(0, 2))
    replay.extend({**rows(0, 2), "discount": np.array([0.9, 0.81], np.float32)})
    assert "discount" in replay.sample(3)


def test_cuda_replay_holds_and_samples_the_same_rows():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: the pinned-memory replay is tested on GPU machines only")
    cpu, gpu = DeviceReplay(OBS, ACT, 8, "cpu"), DeviceReplay(OBS, ACT, 8, "cuda")
    for replay in (cpu, gpu):
        replay.extend(rows(0, 5))
        replay.extend(rows(5, 6))  # wraps
    for key, arr in cpu._data.items():
        assert torch.equal(gpu._data[key].cpu(), arr), key
    batch = gpu.sample(64)
    assert batch["obs"].device.type == "cuda"
    assert set(ids_of({"obs": batch["obs"].cpu()})) <= set(range(3, 11))


# --- rows_since ------------------------------------------------------------------------


def test_rows_since_returns_exactly_the_new_rows_in_order_also_after_wrap():
    buffer = ReplayBuffer(OBS, ACT, capacity=8)
    buffer.add(rows(0, 5))
    got, cursor, total = buffer.rows_since(0, 100)
    assert (ids_of(got), cursor, total) == ([0, 1, 2, 3, 4], 5, 5)
    assert buffer.rows_since(5, 100)[0]["obs"].shape == (0, OBS)  # nothing new
    buffer.add(rows(5, 6))  # rows 8, 9, 10 wrap into slots 0, 1, 2
    got, cursor, total = buffer.rows_since(5, 100)
    assert (ids_of(got), cursor, total) == ([5, 6, 7, 8, 9, 10], 11, 11)
    assert got["policy_version"].tolist() == [5, 6, 7, 8, 9, 10]
    assert got["terminated"].tolist() == [1, 0, 1, 0, 1, 0]


def test_rows_since_caps_at_max_rows_and_continues_from_the_cursor():
    buffer = ReplayBuffer(OBS, ACT, capacity=8)
    buffer.add(rows(0, 7))
    got, cursor, total = buffer.rows_since(0, 3)
    assert (ids_of(got), cursor, total) == ([0, 1, 2], 3, 7)
    got, cursor, _ = buffer.rows_since(cursor, 3)
    assert (ids_of(got), cursor) == ([3, 4, 5], 6)


def test_rows_since_skips_rows_that_fell_out_of_the_ring():
    buffer = ReplayBuffer(OBS, ACT, capacity=8)
    buffer.add(rows(0, 11))
    buffer.add(rows(11, 20))  # total 31: rows 23..30 are left
    got, cursor, total = buffer.rows_since(11, 100)
    assert (ids_of(got), cursor, total) == (list(range(23, 31)), 31, 31)
    assert cursor - len(got["obs"]) - 11 == 12  # the rows lost to the fetcher
    with pytest.raises(ValueError, match="cursor"):
        buffer.rows_since(32, 10)


def test_fed_device_replay_mirrors_the_buffer_slot_for_slot():
    buffer = ReplayBuffer(OBS, ACT, capacity=16)
    replay = DeviceReplay(OBS, ACT, capacity=16, device="cpu")
    cursor, start = 0, 0
    for n in (5, 9, 7, 3):  # wraps the ring twice, fetched in chunks of at most 6
        buffer.add(rows(start, n))
        start += n
        while cursor < buffer.total_added:
            got, cursor, _ = buffer.rows_since(cursor, 6)
            replay.extend(got)
    for key, arr in buffer._data.items():
        assert np.array_equal(replay._data[key].numpy(), arr), key


# --- server.fetch and Feed ----------------------------------------------------------------


def make_server(ratio=1.0, starts=8, tolerance=4.0) -> ReplayServer:
    cfg = ReplayConfig(buffer_size=1000, batch_size=4, learning_starts=starts)
    return ReplayServer(OBS, ACT, cfg, updates_per_step=ratio, tolerance=tolerance)


def test_server_fetch_records_the_learner_updates_for_worker_backoff():
    server = make_server(ratio=1.0, starts=8, tolerance=4.0)
    assert server.insert(rows(0, 20), worker_id=0)["backoff"]  # 12 updates owed, none done
    got, cursor, total = server.fetch(0, 100, updates_done=0)
    assert (len(got["obs"]), cursor, total) == (20, 20, 20)
    server.fetch(cursor, 100, updates_done=10)
    assert server.limiter.updates_done == 10
    assert server.stats()["sampled_batches"] == 10
    assert server.samples_per_insert() == 10 * 4 / (20 - 8)
    assert not server.insert_should_wait()["backoff"]  # lag 2 <= tolerance 4
    with pytest.raises(ValueError, match="went back"):
        server.fetch(cursor, 100, updates_done=9)


def test_feed_grants_updates_at_the_ratio_on_the_rows_it_holds():
    server = make_server()
    feed = Feed(DeviceReplay(OBS, ACT, 1000, "cpu"), RateLimiter(0.5, min_size=8, tolerance=2))
    server.insert(rows(0, 6), worker_id=0)
    assert feed.ingest(server.fetch(feed.cursor, 100, 0)) == 6
    assert feed.updates_allowed() == 0  # below min_size
    server.insert(rows(6, 30), worker_id=0)  # 36 rows on the server
    feed.ingest(server.fetch(feed.cursor, 20, 0))  # holds 26 of them
    assert (feed.cursor, feed.inserted_total) == (26, 36)
    assert feed.updates_allowed() == int(0.5 * (26 - 8) + 2)  # 11
    feed.record_updates(11)
    assert feed.updates_allowed() == 0
    feed.ingest(server.fetch(feed.cursor, 100, feed.limiter.updates_done))
    assert feed.updates_allowed() == 5 and server.limiter.updates_done == 11


def test_a_restored_feed_refills_its_shard_without_counting_rows_twice():
    server = make_server(ratio=1.0, starts=8, tolerance=4.0)
    feed = Feed(DeviceReplay(OBS, ACT, 1000, "cpu"), RateLimiter(1.0, min_size=8, tolerance=0))
    server.insert(rows(0, 30), worker_id=0)
    feed.ingest(server.fetch(feed.cursor, 100, 0))
    feed.record_updates(feed.updates_allowed())  # caught up: 22 updates
    server.insert(rows(30, 5), worker_id=0)  # in the replay's snapshot, not yet fetched
    saved, replay_state = feed.state_dict(), server.state_dict()

    server = make_server(ratio=1.0, starts=8, tolerance=4.0)
    server.load_state_dict(replay_state)
    feed = Feed(DeviceReplay(OBS, ACT, 1000, "cpu"), RateLimiter(1.0, min_size=8, tolerance=0))
    feed.load_state_dict(saved)
    while feed.cursor < server.stats()["inserted"]:  # refill from the oldest row held
        feed.ingest(server.fetch(feed.cursor, 16, feed.limiter.updates_done))
    assert feed.replay.size == 35
    assert feed.updates_allowed() == 5  # only the rows the saved feed had not counted
