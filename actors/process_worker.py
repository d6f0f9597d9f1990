"""ProcessWorker: an EnvWorker in a child process, for local mode's --overlap-envs.

Why a process and not a thread: the stock client spends about 2 ms of Python (protobuf,
numpy, mlagents_envs) per env.step(), holding the GIL. In a thread beside the learner that
Python took turns with the update's own, and an update took 2.32x its time alone
(bench/overlap.py; 1.55x beside a process, the rest being 2 shared cores). In a child
process the two share nothing but the pipe.

The child runs the very same EnvWorker; this class forwards the calls local mode makes
(`collect`, `reset`, `set_weights`, `take_obs_stats`, `state_dict`, `load_state_dict`).
Answers come back in order: `set_weights` and `send_collect` return at once and their
answers are read by the next call that waits (`result`); the pipe's format and the child's
loop are in actors/worker_pipe.py. The child's exceptions come back with their own type,
so every error keeps its one-line report. A child that dies is replaced (ProcessWorker).
The child ignores Ctrl-C and SIGTERM (the trainer saves first, then closes it), and closes
its env and exits when the trainer's end of the pipe goes away, even if the trainer was
killed.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import pickle
import signal
import time
from multiprocessing import resource_tracker
from typing import NoReturn

import numpy as np
from mlagents_envs.exception import UnityException

from actors.config import EnvConfig
from actors.env_process import RestartPolicy, UnsupportedEnv, kill_group, own_group
from actors.signals import signals_blocked, signals_deferred
from actors.worker_pipe import dumps, serve


class WorkerProcessDied(UnityException):
    """The child process of a worker exited while the trainer still needed it."""


class ProcessWorker:
    """EnvWorker(cfg, *args, **kwargs) in its own process, with the methods local mode uses.

    A child that dies once started (killed, crashed) is started again, as Ray restarts a
    dead actor, under the env's restart limits (counted with its env's restarts): its
    episodes in flight are lost; it gets the last weights sent and the calls whose answers
    the dead one owed."""

    def __init__(self, cfg: EnvConfig, *args, worker_id: int = 0, **kwargs):
        self._spawn = ((cfg, *args), {**kwargs, "worker_id": worker_id})
        self.worker_id = worker_id
        self.restarts = 0
        self._restarts_before = 0  # those of the children before this one, their deaths too
        self._restart_times: collections.deque[float] = collections.deque()
        self._weights: bytes | None = None  # the last set_weights call: a new child's first
        self._sent: list[bytes] = []  # the calls whose answers are owed, in order
        self._killed = False  # by kill(): the run is stopping, no replacement starts
        experience = kwargs.get("experience")
        self._obs_stats = experience is not None and experience.obs_stats
        self.behavior, self.obs_sizes, self.action_size = self._start(None)
        self.obs_size = sum(self.obs_sizes)

    def _start(self, restarts: RestartPolicy | None) -> tuple:
        """Start a child; returns the env's spec, its first answer."""
        context = multiprocessing.get_context("spawn")  # never fork a process holding torch
        self._conn, child = context.Pipe()
        args, kwargs = self._spawn
        self._process = context.Process(target=serve, name=f"env-worker-{self.worker_id}",
                                        args=(child, args, {**kwargs, "restarts": restarts}),
                                        daemon=True)
        self._env_pid = None  # the child's env process, killed here if the child dies
        self._unanswered = 1  # answers owed, in order: the first is the env's spec
        try:
            # Started with Ctrl-C and SIGTERM blocked, which the child inherits: one sent to
            # the process group while the child's Python and torch import (a second or so)
            # killed it there, with a KeyboardInterrupt traceback; serve() now ignores them
            # first, then unblocks them. Ours is raised after start(), not in its middle
            # (the child then read a half-written start and died with EOFError).
            # Multiprocessing's resource tracker unblocks both as it starts (the first
            # child's start() starts it): started before the block, it keeps out of it.
            resource_tracker.ensure_running()
            try:
                with signals_blocked():
                    self._process.start()
            finally:
                child.close()
            return self._receive(respawn=False)
        except BaseException:  # a refused env, or Ctrl-C while it starts: nothing outlives it
            self.close()
            raise

    def _respawn(self) -> None:
        """The child died: another, if the restart limits allow one now."""
        if self._killed:
            self._died()
        self._process.join(timeout=5)
        self._kill_env()
        self._conn.close()
        cfg = self._spawn[0][0]
        policy = RestartPolicy(cfg.max_lifetime_restarts, cfg.restarts_rate_limit_n,
                               cfg.restarts_rate_limit_period_s)
        policy.count, policy.times = self.restarts, self._restart_times
        died = f"worker {self.worker_id}: its process exited (exit code {self._process.exitcode})"
        if not policy.allow():
            self._unanswered = 0
            raise WorkerProcessDied(f"{died} after {self.restarts} restarts, past the restart "
                                    "limits; --resume continues from the last checkpoint")
        print(f"{died}; restarting it", flush=True)
        self.restarts = self._restarts_before = policy.count
        # A seed of its own, as Ray gives a restarted actor: the first one's would replay
        # its env's goals and start states and its noise (here derived, so runs repeat).
        args, kwargs = self._spawn
        seed = np.random.SeedSequence([kwargs.get("seed", 0), self.worker_id, policy.count])
        self._spawn = (args, {**kwargs, "seed": int(seed.generate_state(1)[0]) % 2**31})
        owed, self._sent = self._sent, []
        spec = self._start(policy)  # the child's env restarts count on from policy.count
        if spec != (self.behavior, self.obs_sizes, self.action_size):
            self.close()
            raise UnsupportedEnv(f"worker {self.worker_id}: the restarted env has another spec "
                                 f"{spec}; restart the run")
        try:
            for message in ([self._weights] if self._weights is not None else []) + owed:
                self._send(message)
        except (BrokenPipeError, OSError):
            self._respawn()

    def _send(self, message: bytes) -> None:
        with signals_deferred():
            self._sent.append(message)  # sent again to a new child should this one die
            self._conn.send_bytes(message)
            self._unanswered += 1

    def _call(self, name: str, *args, wait: bool = True):
        message = dumps((name, args))
        if name == "set_weights":
            self._weights = message
        try:
            self._send(message)
        except (BrokenPipeError, OSError):
            self._respawn()
        return self.result() if wait else None

    def result(self):
        """The answer to the last call sent; the answers owed before it are read (and their
        first error raised) on the way."""
        # Read every answer owed, this one last, so the pipe never falls out of step: not
        # when one of them is an error (the first is raised), nor when Ctrl-C stops a wait
        # (its answer is read by the next call).
        error, value = None, None
        while self._unanswered:
            try:
                value = self._receive()
            except WorkerProcessDied:
                raise
            except Exception as err:  # noqa: BLE001
                error = error or err
        if error is not None:
            raise error
        return value

    def _receive(self, respawn: bool = True):
        """Read the next answer owed; raise it if it is an error. A child that died is
        replaced (`respawn`), and the answers read from its successor."""
        try:
            self._conn.poll(None)  # the wait may be interrupted: nothing has been read yet
            with signals_deferred():
                data = self._conn.recv_bytes()
                self._unanswered -= 1
                if self._sent:  # (the spec, a child's first answer, answers no call)
                    self._sent.pop(0)
        except (EOFError, OSError):
            if not respawn:
                self._died()
            self._respawn()
            return self._receive()
        status, value, restarts, self._env_pid = pickle.loads(data)
        self.restarts = self._restarts_before + restarts
        if status == "error":
            raise value
        return value

    def _died(self) -> NoReturn:
        self._unanswered = 0  # nothing more will come
        self._process.join(timeout=5)
        self._kill_env()
        raise WorkerProcessDied(
            f"worker {self.worker_id}'s process exited (exit code {self._process.exitcode}) "
            "while the run still needed it; --resume continues from the last checkpoint")

    def collect(self, num_steps: int, mode: str = "explore"):
        return self._call("collect", num_steps, mode)

    def send_collect(self, num_steps: int, mode: str = "explore") -> None:
        """Start a `collect` and return at once; `result()` waits for its rollout, so that
        several workers' children step at the same time."""
        self._call("collect", num_steps, mode, wait=False)

    def reset(self) -> None:
        self._call("reset")

    def set_weights(self, weights: dict, policy_version: int) -> None:
        """Sent without waiting: the child adopts them before its next call, and an error
        it raised comes back with that call's answer."""
        self._call("set_weights", weights, policy_version, wait=False)

    def take_obs_stats(self) -> dict | None:
        return self._call("take_obs_stats") if self._obs_stats else None

    def state_dict(self) -> dict:
        return self._call("state_dict")

    def load_state_dict(self, state: dict) -> None:
        self._call("load_state_dict", state)

    def settle(self, until: float) -> bool:
        """Read (and drop) the answers still owed, until time.monotonic() reaches `until`;
        returns whether none is owed any more. For a run that stops: the child can then be
        asked for its state, or be killed (`kill`) if it is still busy."""
        try:
            while self._unanswered and self._conn.poll(max(0.0, until - time.monotonic())):
                try:
                    self._receive(respawn=False)
                except Exception:  # noqa: BLE001 (the run is stopping for its own reason)
                    pass
        except (EOFError, OSError):
            self._unanswered = 0
        return not self._unanswered

    def kill(self) -> None:
        """End the child and its env now, whatever they are doing (an env hung inside the
        child, --transport in-process): a wait for its answers ends in WorkerProcessDied,
        and no replacement starts. For a run that stops."""
        self._killed = True
        if self._process.is_alive():
            self._process.kill()
        self._kill_env()

    def close(self, timeout: float = 30.0) -> None:
        """Close the env and end the process (killed if it does not end within `timeout`
        seconds). Safe twice."""
        deadline = time.monotonic() + timeout
        if self._process.is_alive():
            # The answers still owed (e.g. the other workers' rollouts after one raised): a
            # child blocked sending a rollout larger than the pipe holds would never read the
            # close, and be killed, after the whole wait, with its env.
            self.settle(deadline)
            try:
                self._conn.send_bytes(dumps(("close", ())))
            except (BrokenPipeError, OSError):
                pass
            self._process.join(timeout=max(0.0, deadline - time.monotonic()))
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        if self._process.exitcode != 0:  # killed, or died: its env may still run
            self._kill_env()
        self._conn.close()

    def _kill_env(self) -> None:
        # The env's whole session when it leads one (a launcher script's children too).
        if self._env_pid is not None:
            group = own_group(self._env_pid)
            try:
                if group is not None:
                    kill_group(group)
                else:
                    os.kill(self._env_pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass  # already gone (the pid was the env's until the child reaped it)
            self._env_pid = None
