"""ProcessWorker: an EnvWorker in a child process, for local mode's --overlap-envs.

Why a process and not a thread: the stock client spends about 2 ms of Python (protobuf,
numpy, mlagents_envs) per env.step(), holding the GIL. In a thread beside the learner that
Python took turns with the update's own, and an update took 2.32x its time alone
(bench/overlap.py; 1.55x beside a process, the rest being 2 shared cores). In a child
process the two share nothing but the pipe.

The child runs the very same EnvWorker; this class forwards the calls local mode makes
(`collect`, `reset`, `set_weights`, `take_obs_stats`, `state_dict`, `load_state_dict`).
Answers come back in order: `set_weights` and `send_collect` return at once and their
answers are read by the next call that waits (`result`). Calls and answers are pickled with
tensors as numpy arrays (`dumps`): the multiprocessing pickler that torch extends moves
every tensor through shared memory, and plain pickle writes each with torch.save; a weight
sync took 7 ms and 4.5 ms those ways. The child's exceptions come back with their own type,
so every error keeps its one-line report. The child ignores Ctrl-C and SIGTERM (the trainer
saves first, then closes it), and closes its env and exits when the trainer's end of the
pipe goes away, even if the trainer was killed.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import pickle
import signal
import time
from typing import NoReturn

import torch
from mlagents_envs.exception import UnityException

from actors.env_process import kill_group, own_group
from actors.env_worker import EnvWorker
from actors.signals import signals_deferred


class WorkerProcessDied(UnityException):
    """The child process of a worker exited while the trainer still needed it."""


def serve(conn, args: tuple, kwargs: dict) -> None:
    """The child's loop: build the EnvWorker, then answer calls until "close" or EOF."""
    # The trainer handles Ctrl-C and SIGTERM (also sent to a whole process group, by Slurm
    # or systemd): it saves with our state, then closes us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    torch.set_num_threads(1)  # one observation at a time: more threads only add overhead
    worker = None
    try:
        worker = EnvWorker(*args, **kwargs)
        answer(conn, "ok", (worker.behavior, worker.obs_sizes, worker.action_size), worker)
        while True:
            try:
                name, call_args = pickle.loads(conn.recv_bytes())
            except (EOFError, OSError):  # the trainer is gone: close the env, exit
                return
            if name == "close":
                return
            try:
                answer(conn, "ok", getattr(worker, name)(*call_args), worker)
            except Exception as err:  # noqa: BLE001 (re-raised in the trainer)
                answer(conn, "error", err, worker)
    except Exception as err:  # noqa: BLE001 (the EnvWorker did not start)
        answer(conn, "error", err, worker)
    finally:
        if worker is not None:
            worker.close()
        conn.close()


def answer(conn, status: str, value, worker) -> None:
    """Send one answer with the worker's restart count and its env's pid (for the trainer
    to kill, should this process die); an exception that would not survive the pipe goes
    as its text."""
    process = getattr(getattr(worker, "env", None), "_process", None)  # the client's Popen
    restarts = worker.restarts if worker is not None else 0
    if status == "error":
        try:
            pickle.loads(dumps(value))
        except Exception:  # noqa: BLE001
            value = UnityException(f"{type(value).__name__}: {value}")
    try:
        conn.send_bytes(dumps((status, value, restarts, getattr(process, "pid", None))))
    except (BrokenPipeError, OSError):
        pass  # the trainer is gone; nothing is waiting for this answer


class _TensorsAsArrays(pickle.Pickler):
    def reducer_override(self, obj):
        if isinstance(obj, torch.Tensor):
            return torch.from_numpy, (obj.detach().cpu().numpy(),)
        return NotImplemented


def dumps(obj) -> bytes:
    buffer = io.BytesIO()
    _TensorsAsArrays(buffer, pickle.HIGHEST_PROTOCOL).dump(obj)
    return buffer.getvalue()


class ProcessWorker:
    """EnvWorker(*args, **kwargs) in its own process, with the methods local mode uses."""

    def __init__(self, *args, worker_id: int = 0, **kwargs):
        context = multiprocessing.get_context("spawn")  # never fork a process holding torch
        self._conn, child = context.Pipe()
        self._process = context.Process(target=serve, name=f"env-worker-{worker_id}",
                                        args=(child, args, {**kwargs, "worker_id": worker_id}),
                                        daemon=True)
        self._process.start()
        child.close()
        self.worker_id = worker_id
        self.restarts = 0
        self._env_pid = None  # the child's env process, killed here if the child dies
        self._unanswered = 1  # answers owed, in order: the first is the env's spec
        experience = kwargs.get("experience")
        self._obs_stats = experience is not None and experience.obs_stats
        try:
            self.behavior, self.obs_sizes, self.action_size = self._receive()
        except BaseException:  # a refused env, or Ctrl-C while it starts: nothing outlives it
            self.close()
            raise
        self.obs_size = sum(self.obs_sizes)

    def _call(self, name: str, *args, wait: bool = True):
        message = dumps((name, args))
        try:
            with signals_deferred():
                self._conn.send_bytes(message)
                self._unanswered += 1
        except (BrokenPipeError, OSError):
            self._died()
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

    def _receive(self):
        """Read the next answer owed; raise it if it is an error."""
        try:
            self._conn.poll(None)  # the wait may be interrupted: nothing has been read yet
            with signals_deferred():
                data = self._conn.recv_bytes()
                self._unanswered -= 1
        except (EOFError, OSError):
            self._died()
        status, value, self.restarts, self._env_pid = pickle.loads(data)
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

    def close(self, timeout: float = 30.0) -> None:
        """Close the env and end the process (killed if it does not end within `timeout`
        seconds). Safe twice."""
        deadline = time.monotonic() + timeout
        if self._process.is_alive():
            self._drop_answers(deadline)
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

    def _drop_answers(self, deadline: float) -> None:
        """Read and drop the answers still owed (e.g. the other workers' rollouts after
        one raised): a child blocked sending a rollout larger than the pipe holds would never
        read the close, and be killed, after the whole wait, with its env."""
        try:
            while self._unanswered and self._conn.poll(max(0.0, deadline - time.monotonic())):
                self._conn.recv_bytes()
                self._unanswered -= 1
        except (EOFError, OSError):
            self._unanswered = 0  # the child is gone: nothing more will come

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
