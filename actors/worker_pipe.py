"""The child side of a ProcessWorker (actors/process_worker.py), and the pipe's format.

The child builds the EnvWorker and answers calls until "close" or the pipe's end. Calls and
answers are pickled with tensors as numpy arrays (`dumps`): the multiprocessing pickler
that torch extends moves every tensor through shared memory, and plain pickle writes each
with torch.save; a weight sync took 7 ms and 4.5 ms those ways.
"""

from __future__ import annotations

import io
import os
import pickle
import signal
import threading
import time
from typing import Callable

import torch
from mlagents_envs.exception import UnityException

from actors.env_worker import EnvWorker


def serve(conn, args: tuple, kwargs: dict) -> None:
    """The child's loop: build the EnvWorker, then answer calls until "close" or EOF."""
    # The trainer handles Ctrl-C and SIGTERM (also sent to a whole process group, by Slurm
    # or systemd): it saves with our state, then closes us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Started with both blocked (ProcessWorker._start): one that came meanwhile is dropped
    # now, and the env process this starts gets the usual mask.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    torch.set_num_threads(1)  # one observation at a time: more threads only add overhead
    worker = None
    exit_when_orphaned(lambda: worker)
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


ORPHAN_GRACE_S = 5.0  # for the loop to see the pipe's end and close its env itself


def exit_when_orphaned(worker_of: Callable[[], EnvWorker | None]) -> None:
    """The trainer's death (SIGKILL, OOM) ends the pipe, and the loop then closes its env
    and returns; but not while it is stuck in an env that never returns (--transport
    in-process). Once the trainer is gone that long, the env's processes (if any) are
    killed and this process exits: nothing is left running."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        time.sleep(ORPHAN_GRACE_S)
        env = getattr(worker_of(), "env", None)
        if hasattr(env, "kill"):  # an env process (the protocol): its whole session
            env.kill()
        os._exit(1)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


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
