"""Ports for the bridge's and the test scenes' tests: 6200-6399 only (worker ids 1195-1394
on base port 5005), skipping any port that another run holds right now."""

import itertools
import socket

import pytest

BASE_PORT = 5005
FIRST_PORT, LAST_PORT = 6200, 6399
_next = itertools.count(FIRST_PORT - BASE_PORT)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def player_worker_id() -> int:
    """A worker id whose port (5005 + id) is in 6200-6399, unused in this session and free."""
    for worker_id in _next:
        if BASE_PORT + worker_id > LAST_PORT:
            raise RuntimeError("ports 6200-6399 are used up: tests open too many envs")
        if _port_free(BASE_PORT + worker_id):
            return worker_id
    raise AssertionError("unreachable")
