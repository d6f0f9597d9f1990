"""Starting, and restarting, one ML-Agents env process.

- Ports: each env is a gRPC server on base_port + worker_id in *our* process. A busy port
  moves the worker to the next free id (k + stride, k + 2*stride, ...) and says so.
- Localhost: the stock client binds all interfaces ([::]); ours binds 127.0.0.1 only,
  through the client's own `_get_communicator` hook, with the client otherwise unchanged.
- Restarts: a crashed, hung or NaN-emitting env is replaced, rate-limited as
  mlagents-learn does (a lifetime maximum and at most N per period).
- Processes: the stock client starts an env in a session of its own; closing or killing
  it kills that whole session, so that a launcher script's children go with it.
"""

from __future__ import annotations

import collections
import contextlib
import copyreg
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass

import grpc

import envs  # noqa: F401  (protobuf fast path before mlagents_envs)
from actors import env_output  # noqa: F401  (an env's output goes beside its log)
from mlagents_envs.environment import UnityEnvironment
from mlagents_envs.exception import (
    UnityCommunicationException,
    UnityCommunicatorStoppedException,
    UnityEnvironmentException,
    UnityTimeOutException,
    UnityWorkerInUseException,
)
from mlagents_envs.rpc_communicator import RpcCommunicator, UnityToExternalServicerImplementation
from mlagents_envs.communicator_objects.unity_to_external_pb2_grpc import (
    add_UnityToExternalProtoServicer_to_server,
)

# What a dead, hung or misbehaving env raises through the stock client. RuntimeError is
# its NaN/Inf guard on observations and rewards.
ENV_FAULTS = (UnityCommunicatorStoppedException, UnityTimeOutException,
              UnityEnvironmentException, UnityCommunicationException, RuntimeError)
MAX_ID_TRIES = 16
CLOSE_WAIT_S = 10  # the longest a closing env is waited for before it is killed


class EnvRestartsExhausted(Exception):
    """The env kept failing past the restart limits; the message is one line."""


class UnsupportedEnv(ValueError):
    """An env whose spec drone-ddpg cannot train (or that changed across a restart); the
    message is one line naming the problem and the fix."""


# What a reopen after a crash may raise besides ENV_FAULTS: every port taken (a race with
# another process), or an env that came back with another spec.
REOPEN_FAULTS = ENV_FAULTS + (UnityWorkerInUseException, UnsupportedEnv)


def _worker_in_use(message: str) -> UnityWorkerInUseException:
    """A UnityWorkerInUseException rebuilt from its text. Its constructor formats a worker
    id into its message, so plain unpickling (the constructor called with the message, as a
    process worker's pipe or Ray does) nested the whole message inside itself."""
    err = UnityWorkerInUseException.__new__(UnityWorkerInUseException)
    Exception.__init__(err, message)
    return err


copyreg.pickle(UnityWorkerInUseException, lambda err: (_worker_in_use, (str(err),)))


def first_line(error: BaseException) -> str:
    """An exception's first line ('' when it has no message)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


class LocalhostCommunicator(RpcCommunicator):
    """The stock RPC communicator, listening on 127.0.0.1 instead of every interface."""

    def create_server(self) -> None:
        self.check_port(self.port)
        self.server = grpc.server(thread_pool=_pool(), options=(("grpc.so_reuseport", 0),))
        self.unity_to_external = UnityToExternalServicerImplementation()
        add_UnityToExternalProtoServicer_to_server(self.unity_to_external, self.server)
        try:  # grpcio raises where older releases returned 0 (another process was faster)
            bound = self.server.add_insecure_port(f"127.0.0.1:{self.port}")
        except RuntimeError:
            bound = 0
        if bound == 0:
            raise UnityWorkerInUseException(self.worker_id)
        self.server.start()
        self.is_open = True

    def poll_for_timeout(self, poll_callback=None) -> None:
        """Wait up to timeout_wait for the env's next message, checking on its process
        between slices of at least one second: the stock slices are timeout_wait // 10,
        which is 0 under 10 s and turns the wait into a busy loop at 100% CPU."""
        deadline, slice_s = time.monotonic() + self.timeout_wait, max(1, self.timeout_wait // 10)
        while (left := deadline - time.monotonic()) > 0:
            if self.unity_to_external.parent_conn.poll(min(left, slice_s)):
                return
            if poll_callback:
                poll_callback()  # raises when the env process has exited
        raise UnityTimeOutException(
            f"the env did not answer within timeout_wait ({self.timeout_wait} s)")


def _pool():
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=10)


class LocalUnityEnvironment(UnityEnvironment):
    """UnityEnvironment whose gRPC server binds localhost (the client's own hook), that
    closes what it started when its constructor fails, and whose close or kill takes the
    env's whole process session, children included."""

    def __init__(self, *args, **kwargs):
        # The stock constructor cleans up after a time-out only. On anything else (an env
        # that exits at once, Ctrl-C) nobody gets the object to close: its gRPC thread then
        # blocks the interpreter's exit and the env process runs on.
        try:
            super().__init__(*args, **kwargs)
        except BaseException:
            self.kill()
            self._close(timeout=5)  # only reaps it: it was just killed
            raise

    @staticmethod
    def _get_communicator(worker_id, base_port, timeout_wait):
        return LocalhostCommunicator(worker_id, base_port, timeout_wait)

    @property
    def _process(self):
        return self.__dict__.get("_popen")

    @_process.setter
    def _process(self, popen) -> None:
        # Noted at launch: once the client has reaped the env, its group is unknowable.
        self.__dict__["_popen"] = popen
        if popen is not None:
            self._group = own_group(popen.pid)

    def kill(self) -> None:
        """SIGKILL the env and every process of its session (no wait, no close)."""
        kill_group(self.__dict__.pop("_group", None))
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()

    def _close(self, timeout=None) -> None:
        """The stock close (ask, wait, kill), then whatever the env left in its session.
        Also runs at exit (the client registers it): it must work on a half-built object.
        The stock wait is --timeout-wait (60 s): a hung env held a Ctrl-C that long."""
        process = self._process
        if timeout is None:
            timeout = min(self.__dict__.get("_timeout_wait", CLOSE_WAIT_S), CLOSE_WAIT_S)
        if "_communicator" in self.__dict__:  # absent when the port was taken
            super()._close(timeout)
        kill_group(self.__dict__.pop("_group", None))
        if process is not None and process.returncode is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)  # the client killed it without reaping it


def own_group(pid: int) -> int | None:
    """The env's process group, if it leads its own (the stock client starts it with
    start_new_session=True); None otherwise, so that we never signal our own group."""
    try:
        group = os.getpgid(pid)
    except ProcessLookupError:
        return None
    return group if group == pid and group != os.getpgrp() else None


def kill_group(group: int | None) -> None:
    """SIGKILL a process group noted by `own_group` (None: nothing)."""
    if group is not None:
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass  # the group is empty: every process of it has exited


def port_free(port: int) -> bool:
    """The stock client's own test: can we bind localhost:port right now?"""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_worker_id(base_port: int, worker_id: int, stride: int) -> int:
    """`worker_id` if its port is free, else the next free id k + stride, k + 2*stride..."""
    # Never past the last port (bind() would raise OverflowError); validate() keeps the
    # first candidate within it.
    candidates = [worker_id + i * stride for i in range(MAX_ID_TRIES)
                  if base_port + worker_id + i * stride <= 65535]
    for candidate in candidates:
        if port_free(base_port + candidate):
            if candidate != worker_id:
                print(f"port {base_port + worker_id} is in use: worker {worker_id} uses worker "
                      f"id {candidate} (port {base_port + candidate}) instead", flush=True)
            return candidate
    last = base_port + candidates[-1]
    # Said in the exception's own text: it reaches the user (across Ray too), its cause not.
    raise _worker_in_use(f"ports {base_port + worker_id}..{last} (every {stride}) are all in "
                         "use: pass another --base-port")


@dataclass
class RestartPolicy:
    """mlagents-learn's defaults: 10 restarts in a lifetime, at most 1 per 60 s."""

    max_lifetime: int = 10
    rate_n: int = 1
    rate_period_s: float = 60.0

    def __post_init__(self) -> None:
        self.times: collections.deque[float] = collections.deque()
        self.count = 0

    def allow(self) -> bool:
        """Record a restart if the limits allow one now."""
        now = time.monotonic()
        while self.times and now - self.times[0] > self.rate_period_s:
            self.times.popleft()
        if self.count >= self.max_lifetime or len(self.times) >= self.rate_n:
            return False
        self.times.append(now)
        self.count += 1
        return True
