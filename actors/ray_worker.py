"""An env worker as a Ray actor: a thin loop around the plain `EnvWorker`.

It makes `chunk_steps` env.step() calls at a time and pushes each chunk to the replay actor
(one call per chunk: single transitions would cost ~1 ms each); every chunk collected is
inserted. At most one insert is in flight; when the replay answers `backoff` (the learner is
far behind the update-to-data ratio) it waits, at most `max_backoff_s` per chunk. Every
`sync_interval` env steps it asks the learner for newer weights (and, with --normalize,
sends its observation statistics) and picks the weights up when the answer arrives, never
blocking on the learner. Until the first trained weights arrive it acts at random (warm-up,
with the default --warmup-actions random), as local mode does before learning starts.
"""

from __future__ import annotations

import os
import threading
import time
import warnings

import numpy as np
import ray

from actors.env_process import RestartPolicy
from actors.agents import Episode
from actors.config import EnvConfig, ExperienceConfig, LoopConfig, NoiseConfig
from actors.env_worker import EnvWorker


@ray.remote(max_concurrency=2)
class EnvWorkerActor:
    """One env process and its agents, feeding the shared replay."""

    def __init__(self, env_cfg: EnvConfig, noise_cfg: NoiseConfig, hidden_size: int,
                 worker_id: int, seed: int, log_folder: str | None, id_stride: int = 1,
                 restarts: RestartPolicy | None = None,
                 experience: ExperienceConfig | None = None):
        """Light: the env opens at the first `spec()` call, so that an env that fails to
        start or that we cannot train comes back as that call's error (one line for the
        driver), not as a dead actor with a traceback."""
        import envs  # noqa: F401  (protobuf fast path in this worker process)

        self.args = (env_cfg, noise_cfg, hidden_size, worker_id, seed, log_folder, id_stride,
                     restarts, experience)
        self.worker: EnvWorker | None = None
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.looping = False  # run() is in progress: its env may be mid-step, or hung
        self.new_episodes: list[Episode] = []
        self.weight_updates = 0
        self.tested = 0  # test phase: transitions so far, and episodes test_drain() has
        self.test_episodes: list[Episode] = []  # not taken yet
        self.node = ray.get_runtime_context().get_node_id()

    def spec(self) -> dict:
        """Open the env if it is not open yet (first call, or after Ray restarted us)."""
        if self.worker is None:
            self.worker = EnvWorker(*self._incarnation_args())
        w = self.worker
        return {"obs_size": w.obs_size, "obs_sizes": w.obs_sizes, "action_size": w.action_size,
                "behavior": w.behavior, "node": self.node,
                "pid": os.getpid()}  # a new pid after a call failed = Ray restarted us

    def _incarnation_args(self) -> tuple:
        """The EnvWorker's arguments; after Ray restarted this actor, with a fresh seed: the
        first incarnation's would replay its goals, start states and noise."""
        # Ray 2.60's property reads its own deprecated actor_id: without the filter its
        # RayDeprecationWarning lands in the user's terminal.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            reconstructed = ray.get_runtime_context().was_current_actor_reconstructed
        if not reconstructed:
            return self.args
        seed = int(np.random.SeedSequence().generate_state(1)[0]) % 2**31
        return self.args[:4] + (seed,) + self.args[5:]

    def run(self, replay, learner, loop: LoopConfig) -> int:
        """Collect and push until `stop()`; returns this worker's env steps. An error
        after close() is the close's doing (the env went from under a step that did not
        stop, e.g. a hung one at Ctrl-C), not a failure to report."""
        self.looping = True
        try:
            return self._loop(replay, learner, loop)
        except Exception:
            if self.worker is not None and self.worker.closed:
                return self.worker.env_steps
            raise
        finally:
            self.looping = False

    def _loop(self, replay, learner, loop: LoopConfig) -> int:
        pending_insert = None
        weights_call = None
        since_sync = 0
        # A (re)started worker takes the current weights before it acts.
        self._adopt_if_ready(learner.latest_weights.remote(self.worker.policy_version), wait=True)
        while not self.stopping.is_set():
            # Version 1 is the learner's untrained initial actor: act at random until then.
            warm = loop.random_warmup and self.worker.policy_version <= 1
            mode = "random" if warm else "explore"
            rollout = self.worker.collect(loop.chunk_steps, mode)
            with self.lock:
                self.new_episodes.extend(rollout.episodes)
            reply = ray.get(pending_insert) if pending_insert is not None else {}
            # What was collected is inserted, even past the budget: data is never dropped.
            pending_insert = replay.insert.remote(rollout.transitions, self.worker.worker_id)
            if reply.get("full"):  # the run's env-step budget is spent
                break
            self._honour_backoff(reply, replay, loop.max_backoff_s)
            since_sync += rollout.env_steps
            if since_sync >= loop.sync_interval:
                report = self.worker.take_obs_stats()  # --normalize: not awaited
                if report is not None:
                    learner.merge_obs_stats.remote(report)
                weights_call = weights_call or learner.latest_weights.remote(
                    self.worker.policy_version)
                if self._adopt_if_ready(weights_call):
                    weights_call, since_sync = None, 0
        if pending_insert is not None:
            ray.get(pending_insert)
        report = self.worker.take_obs_stats()  # what this worker saw since its last report:
        if report is not None:  # awaited, so it is merged before the learner's last publish
            ray.get(learner.merge_obs_stats.remote(report))
        return self.worker.env_steps

    def _honour_backoff(self, reply: dict, replay, max_backoff_s: float) -> None:
        deadline = time.monotonic() + max_backoff_s
        while reply.get("backoff") and time.monotonic() < deadline and not self.stopping.is_set():
            time.sleep(0.025)  # each check queues behind the learner's sample calls
            reply = ray.get(replay.insert_should_wait.remote())

    def _adopt_if_ready(self, weights_call, wait: bool = False) -> bool:
        ready, _ = ray.wait([weights_call], timeout=None if wait else 0)
        if not ready:
            return False
        answer = ray.get(weights_call)
        if answer is not None:
            policy_version, (ref,) = answer
            self.worker.set_weights(ray.get(ref), policy_version)
            with self.lock:
                self.weight_updates += 1
        return True

    def drain(self) -> dict | None:
        """Episodes finished since the last call, and this worker's counters (None while
        its env is not open: a restarted actor the driver has not seen yet)."""
        if self.worker is None:
            return None
        with self.lock:
            episodes, self.new_episodes = self.new_episodes, []
            return {"worker_id": self.worker.worker_id, "episodes": episodes,
                    "env_steps": self.worker.env_steps, "policy_version":
                    self.worker.policy_version, "weight_updates": self.weight_updates,
                    "restarts": self.worker.restarts, "node": self.node}

    def stop(self) -> None:
        self.stopping.set()

    def env_pid(self) -> int | None:
        """The env process's pid (fault tests and the soak benchmark kill it)."""
        env = self.worker.env if self.worker is not None else None
        process = getattr(env, "_process", None)  # the stock client's Popen
        return None if process is None else process.pid

    def test(self, weights_ref: list, policy_version: int, transitions: int) -> list[Episode]:
        """Greedy episodes over at least `transitions` agent transitions, with the given
        weights; returns those that test_drain() has not taken."""
        self.spec()  # opens the env if Ray restarted us after the last check
        self.worker.set_weights(ray.get(weights_ref[0]), policy_version)
        self.worker.reset()  # no test episode carries steps taken while exploring
        with self.lock:
            self.tested, self.test_episodes, seen = 0, [], 0
        while seen < transitions:
            rollout = self.worker.collect(1, "greedy")
            seen += rollout.env_steps
            with self.lock:
                self.tested += rollout.env_steps
                self.test_episodes += rollout.episodes
        return self.test_drain()["episodes"]

    def test_drain(self) -> dict:
        """The test phase so far (for the driver's bar): transitions, and the episodes
        finished since the last call."""
        with self.lock:
            episodes, self.test_episodes = self.test_episodes, []
            return {"env_steps": self.tested, "episodes": episodes}

    def close(self) -> None:
        if self.worker is not None:  # a loop still running did not stop: its env may hang
            self.worker.close(kill=self.looping)
