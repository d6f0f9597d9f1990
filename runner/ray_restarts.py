"""Env worker actors that Ray is restarting, waited for without blocking the driver.

A worker whose actor died is restarted by Ray (`max_restarts`), but only once a node has
room for it: after its node is lost that may take long, or never happen. The driver's loop
(progress, checkpoints, the learner's health) must go on meanwhile, so each restart is a
ping with a deadline, looked at on every check.
"""

from __future__ import annotations

import time

import ray
from ray.exceptions import ActorDiedError, RayActorError, RayTaskError

from runner.ray_errors import failure

RESTART_WAIT_S = 60.0  # how long a dead worker's actor may take to answer again


class Restarting:
    """Workers whose actor died: a `spec` ping each, and a deadline."""

    def __init__(self, workers: list, wait_s: float = RESTART_WAIT_S):
        self.workers = workers
        self.wait_s = wait_s
        self.waiting: dict[int, tuple] = {}  # worker id -> (ping, deadline)
        self.given_up: set[int] = set()  # workers Ray will not restart (restarts used up)
        self.lost: set[int] = set()  # settled without an answer (given up, or too late)
        self.failed: dict[int, RayTaskError] = {}  # back, but their env did not open

    def add(self, k: int) -> None:
        self.waiting[k] = (self.workers[k].spec.remote(), time.monotonic() + self.wait_s)

    def poll(self) -> list[tuple[int, dict | None]]:
        """(id, spec) of each worker that answers again; (id, None) of each past its
        deadline, that Ray gave up on (`given_up`) or whose env did not open (`failed`). A
        ping sent while the actor restarts fails (ActorUnavailableError): it is sent again,
        since a call must not be sent into that window. One that fails with ActorDiedError
        found the actor dead for good (its max_restarts used up; a restarting actor queues
        calls): no use waiting for it."""
        settled = []
        for k, (ping, deadline) in list(self.waiting.items()):
            if ray.wait([ping], timeout=0)[0]:
                try:
                    settled.append((k, ray.get(ping)))
                    del self.waiting[k]
                    continue
                except ActorDiedError:
                    self.given_up.add(k)
                    deadline = 0.0
                except RayTaskError as err:  # the actor is back, its env did not open: an
                    self.failed[k] = err  # env's failure, as the worker's loop reports one
                    deadline = 0.0
                except RayActorError:
                    self.waiting[k] = (self.workers[k].spec.remote(), deadline)
            if time.monotonic() >= deadline:
                del self.waiting[k]
                self.lost.add(k)
                settled.append((k, None))
        return settled

    def why(self, k: int) -> str:
        """Why worker k settled without an answer, for the line that drops it."""
        if k in self.failed:
            return failure(k, self.failed[k])
        return "its actor died too often" if k in self.given_up else \
            "its actor did not come back"

    def answers(self, k: int) -> bool:
        """Whether worker k's actor may be called now: not restarting, not lost. A call to
        an actor that Ray has not placed again waits (its node is gone), and the counters
        of a new incarnation that the driver has not taken back yet start from zero."""
        return k not in self.waiting and k not in self.lost

    def settle(self, timeout_s: float | None = None) -> list[tuple[int, dict | None]]:
        """poll() until every worker answered or passed its deadline (or `timeout_s`, which
        gives up on the rest): at the start and at the end, with nothing else to do."""
        end = None if timeout_s is None else time.monotonic() + timeout_s
        settled = self.poll()
        while self.waiting and (end is None or time.monotonic() < end):
            time.sleep(0.2)
            settled += self.poll()
        settled += [(k, None) for k in self.waiting]
        self.lost.update(self.waiting)
        self.waiting.clear()
        return settled
