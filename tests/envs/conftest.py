"""Ports for the bridge's and the test scenes' tests: 6200-6399 only (tests/envs/players.py)."""

import pytest

from tests.envs.players import next_worker_id


@pytest.fixture
def player_worker_id() -> int:
    """A worker id whose port (5005 + id) is in 6200-6399, unused in this session and free."""
    return next_worker_id()
