"""Helpers for tests that launch the bridge or the test scenes with the stock client."""

from __future__ import annotations

import contextlib
import os

import envs  # noqa: F401  (protobuf fast path before mlagents_envs)
from mlagents_envs.environment import UnityEnvironment


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
