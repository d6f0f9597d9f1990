"""The learner as a Ray actor: a thin wrapper that feeds the plain `Learner` from the replay
actor and publishes its weights.

Feeding: every request asks the replay for up to `max_batches` batches at once, so one
~1 ms actor call serves several updates, and `in_flight` requests are outstanding so the
next batches are on their way while this one trains. Publishing: every `publish_interval`
updates the actor weights go into the object store once (`ray.put`) with a new
`policy_version`; env workers fetch the reference when they choose, never blocking us.
The actor is threaded (max_concurrency > 1): `run` trains in one thread while `progress`,
`latest_weights`, `state_dict` and `stop` answer from others, under one lock.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import ray

from learner.learner import Learner, LearnerConfig
from replay.server import split_batches


@ray.remote(max_concurrency=4)
class LearnerActor:
    """Owns the `Learner` inside the Ray cluster (on the GPU when it was given one)."""

    def __init__(self, obs_size: int, action_size: int, cfg: LearnerConfig, batch_size: int,
                 publish_interval: int, seed: int):
        import envs  # noqa: F401  (protobuf fast path in this worker process)

        self.learner = Learner(obs_size, action_size, cfg, seed=seed)
        self.batch_size = batch_size
        self.publish_interval = publish_interval
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.paused = threading.Event()
        self.losses: dict[str, float] = {}
        self.lag_sum = 0.0
        self.lag_batches = 0
        self.latest: tuple[int, list] = (0, [])
        self._publish()

    def device(self) -> str:
        return str(self.learner.device)

    def _publish(self) -> None:
        weights, version = self.learner.publish_weights()
        # A list keeps the ObjectRef a reference when it travels in a reply.
        self.latest = (version, [ray.put(weights)])
        self.last_publish = self.learner.learner_steps

    def latest_weights(self, known_version: int):
        """(version, [weights ref]) when newer than `known_version`, else None."""
        version, ref = self.latest
        return (version, ref) if version > known_version else None

    def run(self, replay, max_batches: int = 8, in_flight: int = 2) -> int:
        """Train from `replay` until `stop()`; returns the number of updates done.

        Sampled batches count as updates in the replay's rate limiter, so every batch that
        arrives is trained on, and no new request goes out while paused."""
        pending: list = []
        while not self.stopping.is_set():
            if not self.paused.is_set():
                pending += [replay.sample.remote(max_batches, self.batch_size)
                            for _ in range(in_flight - len(pending))]
            if not pending:
                time.sleep(0.01)
                continue
            ready, pending = ray.wait(pending, num_returns=1, timeout=0.1)
            stacked = ray.get(ready[0]) if ready else None
            if stacked is not None:
                self._train(stacked)
            elif ready:  # the replay says we are ahead of the data: let it come
                time.sleep(0.005)
        for stacked in ray.get(pending):
            if stacked is not None:
                self._train(stacked)
        return self.learner.learner_steps

    def _train(self, stacked: dict) -> None:
        with self.lock:
            for batch in split_batches(stacked, self.batch_size):
                metrics = self.learner.update(batch)
            lag = self.learner.policy_version - stacked["policy_version"].astype(np.float64)
            self.lag_sum += float(lag.mean())
            self.lag_batches += 1
            if self.learner.learner_steps - self.last_publish >= self.publish_interval:
                self._publish()
            self.losses = metrics

    def progress(self) -> dict:
        """Counters and the latest losses; policy lag averaged since the last call."""
        with self.lock:
            lag = self.lag_sum / self.lag_batches if self.lag_batches else None
            self.lag_sum, self.lag_batches = 0.0, 0
            return {"learner_steps": self.learner.learner_steps,
                    "policy_version": self.learner.policy_version,
                    "policy_lag": lag,
                    "losses": {k: float(v) for k, v in self.losses.items()
                               if k.startswith("losses/")}}

    def pause(self, paused: bool) -> None:
        """Stop taking updates (benchmarks measure env throughput without the learner)."""
        (self.paused.set if paused else self.paused.clear)()

    def stop(self) -> None:
        self.stopping.set()

    def state_dict(self) -> dict:
        """The learner's state on the CPU: the driver that saves it may have no GPU."""
        with self.lock:
            return to_cpu(self.learner.state_dict())

    def load_state_dict(self, state: dict) -> None:
        with self.lock:
            self.learner.load_state_dict(state)
            self._publish()


def to_cpu(tree):
    """Every tensor in a nested dict/list moved to the CPU."""
    if isinstance(tree, dict):
        return {k: to_cpu(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [to_cpu(v) for v in tree]
    return tree.cpu() if hasattr(tree, "cpu") else tree
