"""The learner as a Ray actor: a thin wrapper that feeds the plain `Learner` from the replay
actor and publishes its weights.

Feeding (default, `--device-replay`): the learner keeps its own replay shard on its
device, fetches the rows inserted since its cursor in chunks of up to 4096 with one call
in flight, draws indices on the device, and does as many updates per fetched chunk as
samples-per-insert allows. Plain path (`--no-device-replay`, the reference): each request
asks the replay actor for up to 8 batches, 2 requests in flight.

Prioritized replay (`--prioritized`) always takes the plain path: the device shard samples
uniformly. The new |TD| errors of each stacked sample go back to the replay actor in one
`update_priorities` call, not awaited.

Ending: `finish()` (the workers have stopped) makes the loop take exactly the updates the
last inserts call for, without the limiter's slack, then return; `stop()` returns at once.

Publishing: every `publish_interval` updates the actor weights go into the object store
once (`ray.put`) with a new `policy_version`; env workers fetch the reference when they
choose, never blocking us. Weights that went NaN/Inf are never published (nor handed to a
checkpoint): `TrainingDiverged` ends `run`, and the driver reports it in one line.
The actor is threaded (max_concurrency > 1): `run` trains in one thread while `progress`,
`latest_weights`, `state_dict` and `stop` answer from others, under one lock.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import ray
import torch

from learner.checkpoint import tree_map
from learner.device_replay import DeviceReplay, Feed
from learner.learner import Learner
from learner.config import LearnerConfig
from replay.config import ReplayConfig
from replay.rate_limiter import RateLimiter
from replay.server import split_batches

# The loop's idle wait when there is nothing to train on, and the least time between fetches.
IDLE_S = 0.002
FETCH_EVERY_S = 0.01


@ray.remote(max_concurrency=4)
class LearnerActor:
    """Owns the `Learner` inside the Ray cluster (on the GPU when it was given one)."""

    def __init__(self, cfg: LearnerConfig, replay_cfg: ReplayConfig, updates_per_step: float,
                 publish_interval: int, seed: int):
        """Light: the process starts (torch imports) while the env workers start; the
        networks come with `setup`, once the env has told us its sizes."""
        import envs  # noqa: F401  (protobuf fast path in this worker process)

        self.cfg, self.replay_cfg, self.seed = cfg, replay_cfg, seed
        self.updates_per_step = updates_per_step
        self.batch_size = replay_cfg.batch_size
        self.publish_interval = publish_interval
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.finishing = threading.Event()
        self.paused = threading.Event()
        self.losses: dict[str, float] = {}
        # Policy lag summed over this session's batches, and their count: the driver takes
        # each interval's mean from two readings (a reading that reset it lost every poll's
        # batches but the last one before a report).
        self.lag_session = [0.0, 0]

    def setup(self, obs_size: int, action_size: int) -> str:
        """Build the learner (and its device replay shard); returns its device."""
        self.learner = Learner(obs_size, action_size, self.cfg, seed=self.seed)
        self.feed = None
        rc = self.replay_cfg
        if self.cfg.device_replay and not rc.prioritized:
            # No slack ahead: the learner holds every row it trains on, so it can keep the
            # ratio exactly; the server's slack (worker back-off) is what absorbs jitter.
            self.feed = Feed(DeviceReplay(obs_size, action_size, rc.buffer_size,
                                          self.learner.device, seed=self.seed,
                                          discount=rc.n_step > 1),
                             RateLimiter(self.updates_per_step, rc.min_size, tolerance=0.0))
        self._publish()
        return str(self.learner.device)

    def device(self) -> str:
        return str(self.learner.device)

    def _publish(self, new: bool = True) -> None:
        weights, policy_version = self.learner.publish_weights(self.replay_cfg.prioritized, new)
        # A list keeps the ObjectRef a reference when it travels in a reply.
        self.latest = (policy_version, [ray.put(weights)])
        self.last_publish = self.learner.learner_steps

    def latest_weights(self, known_version: int):
        """(policy_version, [weights ref]) when newer than `known_version`, else None."""
        policy_version, ref = self.latest
        return (policy_version, ref) if policy_version > known_version else None

    def run(self, replay) -> int:
        """Train from `replay` until `stop()`, or until caught up after `finish()`; returns
        the number of updates done."""
        run = self.run_device_replay if self.feed is not None else self.run_sampled
        updates = run(replay)
        with self.lock:  # the test phase tests what the checkpoint holds: the last update,
            if self.learner.unpublished:  # and the last observation statistics merged
                self._publish()
        return updates

    def run_device_replay(self, replay, fetch_rows: int = 4096, max_chunk: int = 64) -> int:
        """Fetch new rows into the device shard in the background; train on the shard as
        many updates as samples-per-insert allows, sampling indices on the device."""
        pending, last_fetch = None, 0.0
        caught_up = False  # a fetch sent after finish() came back with every row
        while not self.stopping.is_set():
            if pending is not None and ray.wait([pending[0]], timeout=0)[0]:
                self.feed.ingest(ray.get(pending[0]))
                caught_up = pending[1] and self.feed.cursor >= self.feed.inserted_total
                pending = None
            if pending is None and time.monotonic() - last_fetch >= FETCH_EVERY_S:
                pending = (replay.fetch.remote(self.feed.cursor, fetch_rows,
                                               self.feed.limiter.updates_done),
                           self.finishing.is_set())
                last_fetch = time.monotonic()
            # The feed has no slack: what it allows is exactly what the ratio calls for. A
            # chunk ends at the next publication, so that one comes every publish_interval.
            allowed = 0 if self.paused.is_set() else min(self.feed.updates_allowed(), max_chunk,
                                                         self._until_publish())
            if allowed:
                self._train_device(allowed)
            elif caught_up:
                break
            else:
                time.sleep(IDLE_S)
        return self.learner.learner_steps

    def _until_publish(self) -> int:
        """Updates left before the next publication is due (at least 1)."""
        return max(1, self.publish_interval - (self.learner.learner_steps - self.last_publish))

    def _train_device(self, n: int) -> None:
        with self.lock:
            versions = []
            for _ in range(n):
                batch = self.feed.replay.sample(self.batch_size)
                metrics = self.learner.update_tensors(batch)
                versions.append(batch["policy_version"])
            self.feed.record_updates(n)
            sampled = torch.cat(versions).double().mean().item()  # one sync per chunk
            self._after_updates(metrics, self.learner.policy_version - sampled)

    def run_sampled(self, replay, max_batches: int = 8, in_flight: int = 2) -> int:
        """The plain path: batches sampled by the replay actor, 8 per call, 2 calls out.

        Sampled batches count as updates in the replay's rate limiter, so every batch that
        arrives is trained on, and no new request goes out while paused. After `finish()`
        requests are exact; the first that comes back empty means we have caught up."""
        pending: list = []  # (ref, sent after finish())
        while not self.stopping.is_set():
            if not self.paused.is_set():
                exact = self.finishing.is_set()
                pending += [(replay.sample.remote(max_batches, self.batch_size, exact), exact)
                            for _ in range(in_flight - len(pending))]
            if not pending:
                time.sleep(0.01)
                continue
            ready, _ = ray.wait([ref for ref, _ in pending], num_returns=1, timeout=0.1)
            if not ready:
                continue
            (ref, exact), = [p for p in pending if p[0] == ready[0]]
            pending.remove((ref, exact))
            stacked = ray.get(ref)
            if stacked is not None:
                self._train(stacked, replay)
            elif exact:
                break
            else:  # the replay says we are ahead of the data: let it come
                time.sleep(0.005)
        for stacked in ray.get([ref for ref, _ in pending]):
            if stacked is not None:
                self._train(stacked, replay)
        return self.learner.learner_steps

    def _train(self, stacked: dict, replay) -> None:
        with self.lock:
            metrics, td = self.learner.update_batches(split_batches(stacked, self.batch_size))
            if "indices" in stacked:  # prioritized: one call for the whole stacked sample
                replay.update_priorities.remote(stacked["indices"], td.cpu().numpy(),
                                                stacked["generations"])
            sampled = float(stacked["policy_version"].astype(np.float64).mean())
            self._after_updates(metrics, self.learner.policy_version - sampled)

    def _after_updates(self, metrics: dict, lag: float) -> None:
        """Policy lag bookkeeping and weight publication (the caller holds the lock)."""
        self.lag_session[0] += lag
        self.lag_session[1] += 1
        if self.learner.learner_steps - self.last_publish >= self.publish_interval:
            self._publish()
        self.losses = {**self.losses, **metrics}  # TD3: the actor's loss of its last update

    def progress(self) -> dict:
        """Counters and the latest losses; policy lag summed over this session's batches
        and their count (policy_lag_sums), and its mean (policy_lag_session)."""
        with self.lock:
            total, batches = self.lag_session
            return {"learner_steps": self.learner.learner_steps,
                    "policy_version": self.learner.policy_version,
                    "policy_lag_sums": (total, batches),
                    "policy_lag_session": total / batches if batches else None,
                    "losses": {k: float(v) for k, v in self.losses.items()
                               if k.startswith("losses/")}}

    def merge_obs_stats(self, report: dict) -> None:
        """A worker's observation statistics (--normalize), merged under the lock: an update
        never sees half-written normalizer buffers."""
        with self.lock:
            self.learner.merge_obs_stats(report)

    def pause(self, paused: bool) -> None:
        """Stop taking updates (benchmarks measure env throughput without the learner)."""
        (self.paused.set if paused else self.paused.clear)()

    def finish(self) -> None:
        """The workers have stopped: take the updates their last inserts call for, then
        end the loop (`run` returns)."""
        self.finishing.set()

    def stop(self) -> None:
        self.stopping.set()

    def state_dict(self) -> dict:
        """The learner's state on the CPU (the driver that saves it may have no GPU), with
        the feed's counters: the learner owns the update count of the device path."""
        with self.lock:
            state = tree_map(lambda x: x.cpu() if isinstance(x, torch.Tensor) else x,
                             self.learner.state_dict())
            state["feed"] = self.feed.state_dict() if self.feed is not None else None
            return state

    def initialize_from(self, state: dict) -> None:
        """Another run's networks as this run's start (Learner.initialize_from), published
        as a new policy: the workers act with it, not at random."""
        with self.lock:
            self.learner.initialize_from(state)
            self._publish()

    def load_state_dict(self, state: dict, feed: dict | None = None) -> None:
        """Restore a `state_dict()`. feed: the counters to continue from, when the replay
        they count came back too; without it what is owed restarts with the empty replay."""
        with self.lock:
            self.learner.load_state_dict(state)
            if self.feed is not None and feed is not None:
                self.feed.load_state_dict(feed)
            self._publish(new=False)  # the saved policy, under its saved version
