"""ReplayServer: rate-limited sampling, the long-run ratio with several workers, backoff,
per-worker counts, split_batches and state round trips."""

import numpy as np
import pytest

from replay.config import ReplayConfig
from replay.server import ReplayServer, default_tolerance, split_batches

OBS, ACT = 4, 2


def make_chunk(n: int, version: int = 0, seed: int = 0) -> dict[str, np.ndarray]:
    """n random transitions, all stamped with `version`."""
    rng = np.random.default_rng(seed)
    return {
        "obs": rng.normal(size=(n, OBS)).astype(np.float32),
        "action": rng.uniform(-1, 1, size=(n, ACT)).astype(np.float32),
        "reward": rng.normal(size=n).astype(np.float32),
        "next_obs": rng.normal(size=(n, OBS)).astype(np.float32),
        "terminated": (rng.random(n) < 0.1).astype(np.float32),
        "policy_version": np.full(n, version, dtype=np.int64),
    }


def server(ratio=1.0, starts=100, batch=8, capacity=10_000, tolerance=None) -> ReplayServer:
    cfg = ReplayConfig(buffer_size=capacity, batch_size=batch, learning_starts=starts)
    return ReplayServer(OBS, ACT, cfg, updates_per_step=ratio, seed=3, tolerance=tolerance)


def test_sample_is_capped_by_max_batches_and_by_the_allowance():
    srv = server(ratio=1.0, starts=100, batch=8, tolerance=0)
    srv.insert(make_chunk(100), worker_id=0)
    srv.insert(make_chunk(30), worker_id=0)  # 30 updates allowed
    out = srv.sample(max_batches=20, batch_size=8)
    assert set(out) == {"obs", "action", "reward", "next_obs", "terminated", "policy_version"}
    assert len(out["obs"]) == 20 * 8  # capped by max_batches
    out = srv.sample(max_batches=20, batch_size=8)
    assert len(out["obs"]) == 10 * 8 and out["obs"].shape == (80, OBS)  # the 10 left
    assert srv.sample(max_batches=20, batch_size=8) is None  # ahead: wait for data
    assert srv.stats()["sampled_batches"] == 30 and srv.stats()["updates_allowed"] == 0


def test_none_before_learning_starts_even_with_tolerance():
    srv = server(ratio=1.0, starts=100, batch=8, tolerance=50)
    srv.insert(make_chunk(99), worker_id=0)
    assert srv.sample(4, 8) is None
    srv.insert(make_chunk(1), worker_id=0)
    assert len(srv.sample(100, 8)["obs"]) == 50 * 8  # min_size reached: the slack alone


def test_policy_version_comes_back_with_samples():
    srv = server(ratio=1.0, starts=10, batch=4, tolerance=0)
    srv.insert(make_chunk(10, version=7), worker_id=0)
    srv.insert(make_chunk(10, version=9), worker_id=1)
    out = srv.sample(10, 4)
    assert out["policy_version"].dtype == np.int64
    assert set(np.unique(out["policy_version"])) <= {7, 9}


def test_backoff_appears_when_nothing_samples_and_never_during_the_fill():
    srv = server(ratio=1.0, starts=500, batch=8, tolerance=64)
    replies = [srv.insert(make_chunk(50), worker_id=0)["backoff"] for _ in range(10)]
    assert not any(replies)  # 500 rows: the fill
    assert not srv.insert(make_chunk(64), worker_id=0)["backoff"]  # lag 64: at the tolerance
    assert srv.insert(make_chunk(1), worker_id=1)["backoff"]  # lag 65
    assert srv.stats()["backoffs"] == 1
    assert srv.insert_should_wait() == {"backoff": True}  # asking inserts nothing
    assert srv.stats()["inserted"] == 565
    srv.sample(max_batches=10, batch_size=8)  # the learner catches up a little
    assert srv.insert_should_wait() == {"backoff": False}
    assert not srv.insert(make_chunk(1), worker_id=1)["backoff"]


def test_per_worker_counts_and_totals():
    srv = server()
    for wid, n in [(0, 10), (3, 25), (0, 5), (7, 0)]:
        srv.insert(make_chunk(n), worker_id=wid)
    stats = srv.stats()
    assert stats["worker_inserted"] == {0: 15, 3: 25, 7: 0}
    assert stats["inserted"] == stats["size"] == 40
    assert stats["samples_per_insert"] is None  # not past learning_starts yet


def test_malformed_chunk_changes_nothing():
    srv = server()
    bad = make_chunk(5)
    bad["reward"] = bad["reward"][:3]
    with pytest.raises(ValueError):
        srv.insert(bad, worker_id=0)
    assert srv.stats()["inserted"] == 0 and srv.stats()["worker_inserted"] == {}


def simulate(srv, ticks, calls_per_tick, max_batches, batch, max_wait_ticks=3):
    """Two workers push chunks of different sizes each tick. One told to back off asks again
    each tick and pushes once the answer is no, or after `max_wait_ticks` (a bounded wait).
    After the pushes the learner makes up to `calls_per_tick` sample calls, stopping at None."""
    chunk_rows = {0: 37, 1: 150}
    chunks = {w: make_chunk(n, seed=w) for w, n in chunk_rows.items()}
    waited = dict.fromkeys(chunk_rows, None)  # ticks spent backing off, None when pushing
    for _ in range(ticks):
        for w in chunk_rows:
            if waited[w] is not None:
                waited[w] += 1
                if srv.insert_should_wait()["backoff"] and waited[w] < max_wait_ticks:
                    continue
            waited[w] = 0 if srv.insert(chunks[w], worker_id=w)["backoff"] else None
        for _ in range(calls_per_tick):
            out = srv.sample(max_batches, batch)
            if out is None:
                break
            assert len(out["obs"]) <= max_batches * batch


@pytest.mark.parametrize("ratio", [0.5, 2.0])
@pytest.mark.parametrize("learner", ["fast", "slow"])
def test_long_run_samples_per_insert_is_batch_size_times_ratio(ratio, learner):
    batch, ticks, rows_per_tick = 8, 300, 37 + 150
    srv = server(ratio=ratio, starts=500, batch=batch, capacity=5_000)  # default tolerance
    # Fast: could sample far more than the ratio allows, so it is held back by the limiter.
    # Slow: about half of what two always-pushing workers call for, so they are held back.
    calls = 50 if learner == "fast" else max(1, round(ratio * rows_per_tick / 2 / 16))
    simulate(srv, ticks, calls_per_tick=calls, max_batches=16, batch=batch)
    stats = srv.stats()
    assert stats["samples_per_insert"] == pytest.approx(batch * ratio, rel=0.1)
    assert stats["backoffs"] > 0  # the 150-row chunk alone grants more than the slack
    if learner == "fast":  # the learner always caught up in time: no tick was lost
        assert stats["inserted"] == ticks * rows_per_tick
    else:  # throttled to the learner, which stays within the slack plus one tick of data
        assert stats["inserted"] < 0.75 * ticks * rows_per_tick
        assert srv.limiter.lag() <= srv.limiter.tolerance + ratio * rows_per_tick
    assert sum(stats["worker_inserted"].values()) == stats["inserted"]
    assert stats["worker_inserted"][1] > stats["worker_inserted"][0]


def test_default_tolerance_scales_with_ratio_with_a_floor():
    assert default_tolerance(1.0) == 64
    assert default_tolerance(0.1) == 16
    assert server(ratio=2.0).limiter.tolerance == 128


def test_buffer_too_small_to_ever_sample_is_rejected():
    with pytest.raises(ValueError, match="never be sampled"):
        server(starts=200, capacity=100)


def test_split_batches_views_of_the_stacked_rows():
    srv = server(ratio=1.0, starts=10, batch=4, tolerance=0)
    srv.insert(make_chunk(20), worker_id=0)
    stacked = srv.sample(max_batches=3, batch_size=4)
    batches = split_batches(stacked, 4)
    assert len(batches) == 3
    for i, b in enumerate(batches):
        assert b["obs"].shape == (4, OBS) and b["action"].shape == (4, ACT)
        assert b["reward"].shape == b["terminated"].shape == b["policy_version"].shape == (4,)
        assert np.shares_memory(b["obs"], stacked["obs"])  # a view, not a copy
        np.testing.assert_array_equal(b["next_obs"], stacked["next_obs"][4 * i : 4 * i + 4])
    with pytest.raises(ValueError, match="multiple"):
        split_batches(stacked, 5)


def test_state_round_trip_continues_identically():
    a = server(ratio=1.5, starts=50, batch=4, capacity=300, tolerance=6)
    for i in range(8):  # past capacity, so the ring has wrapped
        a.insert(make_chunk(45, version=i, seed=i), worker_id=i % 2)
        a.sample(5, 4)
    b = server(ratio=1.5, starts=50, batch=4, capacity=300, tolerance=6)
    b.load_state_dict(a.state_dict())
    assert b.stats() == a.stats()
    for i in range(8, 12):
        assert a.insert(make_chunk(20, seed=i), 1) == b.insert(make_chunk(20, seed=i), 1)
        out_a, out_b = a.sample(7, 4), b.sample(7, 4)
        assert out_a.keys() == out_b.keys()
        for key in out_a:
            np.testing.assert_array_equal(out_a[key], out_b[key])
    assert b.stats() == a.stats()


def test_exact_sampling_grants_only_what_is_owed():
    srv = server(ratio=1.0, starts=8, batch=4, capacity=300, tolerance=6)
    srv.insert(make_chunk(20), worker_id=0)  # 12 updates called for, 18 allowed
    assert len(srv.sample(100, 4, exact=True)["reward"]) == 12 * 4
    assert srv.sample(100, 4, exact=True) is None
    assert len(srv.sample(100, 4)["reward"]) == 6 * 4  # the slack, when not exact


def test_a_bare_buffer_state_loads_caught_up():
    """Local mode's replay file held only the buffer before it held the counters too."""
    old = server(ratio=2.0, starts=10, batch=4, capacity=300, tolerance=0)
    old.insert(make_chunk(45), worker_id=0)
    fresh = server(ratio=2.0, starts=10, batch=4, capacity=300, tolerance=0)
    fresh.load_state_dict(old.state_dict()["buffer"])
    assert fresh.stats()["size"] == 45 and fresh.limiter.inserted == 45
    assert fresh.sample(100, 4) is None  # nothing owed for rows already there
    fresh.insert(make_chunk(3), worker_id=0)
    assert len(fresh.sample(100, 4)["reward"]) == 2 * 3 * 4


def test_insert_says_full_once_the_budget_is_in():
    server = ReplayServer(4, 2, ReplayConfig(buffer_size=1000, batch_size=8, learning_starts=8),
                          1.0)
    assert server.insert(make_chunk(50), worker_id=0)["full"] is False  # no budget: never
    server.set_budget(120)
    assert server.insert(make_chunk(50), worker_id=0)["full"] is False  # 100 < 120
    assert server.insert(make_chunk(50), worker_id=1)["full"] is True  # 150 >= 120
    assert server.stats()["inserted"] == 150  # the last chunk is stored all the same


def test_prioritized_server_hands_out_weights_and_takes_priority_updates():
    cfg = ReplayConfig(buffer_size=1000, batch_size=8, learning_starts=50, prioritized=True,
                       per_beta=0.4, per_beta_steps=10)
    srv = ReplayServer(OBS, ACT, cfg, updates_per_step=1.0, seed=3, tolerance=0)
    srv.insert(make_chunk(60), worker_id=0)
    out = srv.sample(max_batches=5, batch_size=8)
    assert {"indices", "generations", "weights"} <= set(out) and len(out["weights"]) == 40
    assert srv.stats()["per_beta"] == pytest.approx(0.4 + 0.6 * 5 / 10)  # 5 updates fed
    td = np.linspace(0.1, 4.0, 40)
    assert srv.update_priorities(out["indices"], td, out["generations"]) > 0
    # A stale update (its rows rewritten since) is dropped and counted as such.
    srv.insert(make_chunk(1000, seed=1), worker_id=0)
    assert srv.update_priorities(out["indices"], td, out["generations"]) == 0
    stats = srv.stats()
    assert stats["stale_priority_updates"] == 40 and stats["priority_updates"] > 0


def test_worker_priorities_ride_along_in_the_chunk():
    cfg = ReplayConfig(buffer_size=100, batch_size=8, learning_starts=8, prioritized=True,
                       per_alpha=1.0)
    srv = ReplayServer(OBS, ACT, cfg, updates_per_step=1.0, seed=3)
    srv.insert({**make_chunk(2), "priority": np.array([1.0, 3.0])}, worker_id=0)
    p = srv.buffer.tree.priorities(np.arange(2))
    assert p[1] / p[0] == pytest.approx(3.0, rel=1e-5)


def test_uniform_server_refuses_priority_updates():
    srv = server()
    srv.insert(make_chunk(100), worker_id=0)
    with pytest.raises(ValueError, match="--prioritized"):
        srv.update_priorities(np.array([0]), np.array([1.0]), np.array([1]))


def test_a_replay_that_cannot_fit_in_memory_is_refused_before_allocating():
    import os

    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    rows = total // (4 * (2 * 9 + 3 + 4) + 8) + 1  # one row more than the machine holds
    cfg = ReplayConfig(buffer_size=rows, batch_size=4, learning_starts=4)
    assert "lower --buffer-size" in cfg.memory_problem(9, 3)
    assert ReplayConfig(buffer_size=rows // 2).memory_problem(9, 3) is None
    assert "2 replay copies" in ReplayConfig(buffer_size=rows // 2).memory_problem(9, 3, 2)
    with pytest.raises(ValueError, match="more than this machine's"):
        ReplayServer(9, 3, cfg, 1.0)
