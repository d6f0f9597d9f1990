"""RateLimiter: the min_size gate, allowances at the ratio, backoff, state round trips."""

import math

import pytest

from replay.rate_limiter import RateLimiter


def test_nothing_allowed_before_min_size():
    lim = RateLimiter(updates_per_step=1.0, min_size=100, tolerance=10)
    lim.record_insert(99)
    assert lim.updates_allowed() == 0
    assert not lim.inserts_should_wait()
    lim.record_insert(1)  # min_size reached: the slack alone is allowed
    assert lim.updates_allowed() == 10


@pytest.mark.parametrize("ratio", [0.5, 2.0, 0.7, 0.1])
@pytest.mark.parametrize("tol", [0.0, 3.0, 7.5])
def test_allowed_is_floor_of_ratio_times_rows_past_min_size_plus_tolerance(ratio, tol):
    lim = RateLimiter(ratio, min_size=50, tolerance=tol)
    lim.record_insert(50)
    for n in (1, 2, 7, 10, 33, 100):  # checked after each chunk, the total growing
        lim.record_insert(n)
        past = lim.inserted - 50
        # Decimal-exact floor: 0.7 * 10 must give 7, not 6 from float rounding.
        assert lim.updates_allowed() == math.floor(round(ratio * past + tol, 6))


def test_record_updates_reduces_allowance_to_zero_but_not_below():
    lim = RateLimiter(2.0, min_size=0, tolerance=4)
    lim.record_insert(10)  # target 20, ceiling 24
    assert lim.updates_allowed() == 24
    lim.record_updates(20)
    assert lim.updates_allowed() == 4
    lim.record_updates(4)
    assert lim.updates_allowed() == 0
    lim.record_updates(3)  # a caller that overshoots is told to wait, never a negative number
    assert lim.updates_allowed() == 0
    lim.record_insert(2)  # target 24, ceiling 28, 27 done
    assert lim.updates_allowed() == 1
    assert lim.updates_done == 27 and lim.inserted == 12


def test_zero_ratio_never_allows_nor_waits():
    lim = RateLimiter(0.0, min_size=0, tolerance=100)
    lim.record_insert(1_000_000)
    assert lim.updates_allowed() == 0
    assert not lim.inserts_should_wait()


def test_inserts_should_wait_flips_when_learner_lags_by_more_than_tolerance():
    lim = RateLimiter(0.5, min_size=20, tolerance=5)
    lim.record_insert(20)
    lim.record_insert(10)  # lag 5: exactly the tolerance, not more
    assert not lim.inserts_should_wait()
    lim.record_insert(1)  # lag 5.5
    assert lim.inserts_should_wait()
    lim.record_updates(1)  # lag 4.5: the learner caught up
    assert not lim.inserts_should_wait()


def test_inserts_never_wait_before_min_size():
    lim = RateLimiter(10.0, min_size=1000, tolerance=0)
    for _ in range(999):
        lim.record_insert(1)
        assert not lim.inserts_should_wait()
    lim.record_insert(2)  # past min_size by 1 with no updates: lag 10 > 0
    assert lim.inserts_should_wait()


def test_negative_arguments_are_rejected():
    with pytest.raises(ValueError):
        RateLimiter(-1.0, 0, 0)
    with pytest.raises(ValueError):
        RateLimiter(1.0, -1, 0)
    with pytest.raises(ValueError):
        RateLimiter(1.0, 0, -1)
    lim = RateLimiter(1.0, 0, 0)
    with pytest.raises(ValueError):
        lim.record_insert(-1)
    with pytest.raises(ValueError):
        lim.record_updates(-1)


def test_state_round_trip_restores_counters():
    lim = RateLimiter(1.5, min_size=10, tolerance=2)
    lim.record_insert(40)
    lim.record_updates(17)
    other = RateLimiter(1.5, min_size=10, tolerance=2)
    other.load_state_dict(lim.state_dict())
    assert (other.inserted, other.updates_done) == (40, 17)
    assert other.updates_allowed() == lim.updates_allowed() == 30
    assert other.inserts_should_wait() == lim.inserts_should_wait()


def test_owed_is_what_the_ratio_calls_for_without_the_slack():
    lim = RateLimiter(2.0, min_size=10, tolerance=8)
    lim.record_insert(9)
    assert lim.owed() == 0  # before min_size
    lim.record_insert(6)  # 5 past min_size: 10 updates called for
    assert (lim.owed(), lim.updates_allowed()) == (10, 18)
    lim.record_updates(13)  # ahead of the ratio: nothing owed, slack left
    assert (lim.owed(), lim.updates_allowed()) == (0, 5)
