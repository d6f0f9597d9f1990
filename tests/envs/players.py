"""Helpers for tests that launch the bridge or the test scenes with the stock client."""

from __future__ import annotations

import contextlib
import itertools

import envs  # noqa: F401  (protobuf fast path before mlagents_envs)
from actors.env_process import port_free
from mlagents_envs.environment import UnityEnvironment
from tests.helpers import player_pids  # noqa: F401  (the bridge's tests use it from here)

# The bridge's and the test scenes' tests use ports 6200-6399 only (worker ids 1195-1394 on
# base port 5005), since other suites use other ranges and may run at the same time.
BASE_PORT = 5005
FIRST_PORT, LAST_PORT = 6200, 6399
_next_id = itertools.count(FIRST_PORT - BASE_PORT)


def next_worker_id() -> int:
    """A worker id whose port is in 6200-6399, unused in this session and free now."""
    for worker_id in _next_id:
        if BASE_PORT + worker_id > LAST_PORT:
            raise RuntimeError("ports 6200-6399 are used up: tests open too many envs")
        if port_free(BASE_PORT + worker_id):
            return worker_id
    raise AssertionError("unreachable")


@contextlib.contextmanager
def opened(file_name: str, worker_id: int, args: list[str], **kwargs):
    """A reset UnityEnvironment on `file_name` with `additional_args=args`; closed after."""
    env = UnityEnvironment(file_name=file_name, worker_id=worker_id, no_graphics=True,
                           additional_args=args, **kwargs)
    try:
        env.reset()
        yield env
    finally:
        env.close()
