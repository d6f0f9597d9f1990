"""Helpers for tests that launch the bridge or the test scenes with the stock client."""

from __future__ import annotations

import contextlib
import itertools
import os
import socket

import envs  # noqa: F401  (protobuf fast path before mlagents_envs)
from mlagents_envs.environment import UnityEnvironment

# The bridge's and the test scenes' tests use ports 6200-6399 only (worker ids 1195-1394 on
# base port 5005), since other suites use other ranges and may run at the same time.
BASE_PORT = 5005
FIRST_PORT, LAST_PORT = 6200, 6399
_next_id = itertools.count(FIRST_PORT - BASE_PORT)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def next_worker_id() -> int:
    """A worker id whose port is in 6200-6399, unused in this session and free now."""
    for worker_id in _next_id:
        if BASE_PORT + worker_id > LAST_PORT:
            raise RuntimeError("ports 6200-6399 are used up: tests open too many envs")
        if _port_free(BASE_PORT + worker_id):
            return worker_id
    raise AssertionError("unreachable")


def player_pids(module: str, port: int) -> list[int]:
    """Pids of live `python -m <module>` processes given --mlagents-port `port`."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read().decode(errors="replace").split("\0")
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and module in args and str(port) in args:
            pids.append(int(entry))
    return pids


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
