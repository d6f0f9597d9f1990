"""Errors raised inside Ray actors, as the driver would have raised them itself: one line.

Ray wraps a remote method's exception in a RayTaskError (its `cause` is the original) and
an actor whose constructor raised in a RayActorError that carries only the traceback text.
"""

from __future__ import annotations

import re

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

from actors.env_process import EnvRestartsExhausted
from learner.checkpoint import CheckpointError
from mlagents_envs.exception import UnityException
from runner.errors import RunAborted, out_of_memory


def task_cause(err: RayTaskError) -> BaseException:
    """The exception a remote call raised, as the driver would have raised it itself (our
    one-line errors and the env client's), else a RunAborted naming it in one line."""
    cause = getattr(err, "cause", None)
    if isinstance(cause, (ValueError, EnvRestartsExhausted, UnityException, CheckpointError)):
        return cause
    memory = out_of_memory(cause) if cause is not None else None
    if memory is not None:
        return memory
    return RunAborted(f"{type(cause or err).__name__}: {one_line(cause or err)}")


def creation_error(err: RayActorError) -> BaseException:
    """An actor whose constructor raised: Ray gives only the remote traceback's text; its
    last 'SomeError: message' line, as the driver would have raised it."""
    lines = plain(str(err)).splitlines()
    for line in reversed(lines):
        found = re.match(r"\s*(?:[\w.]+\.)?(\w*Error): (.+)", line)
        if found:
            name, text = found.groups()
            if "MemoryError" in name:
                return MemoryError(text)
            return ValueError(text) if name == "ValueError" else RunAborted(f"{name}: {text}")
    return RunAborted(one_line(err))


# The replay's rows live only in its memory: its death ends the run, whenever it comes.
REPLAY_DIED = "the replay actor died; --resume continues from the last checkpoint"
ANSWER_S = 30.0  # an actor silent this long on a short call is hung (stopped, or stuck)


def answered(ref, what: str, timeout: float = ANSWER_S):
    """ray.get(ref), or RunAborted naming `what` when it gives no answer within `timeout`
    seconds: a learner or replay whose process hangs would hold the run, and every Ctrl-C
    or SIGTERM meant to end it, forever."""
    try:
        return ray.get(ref, timeout=timeout)
    except GetTimeoutError:
        raise RunAborted(f"the {what} stopped answering (nothing in {timeout:.0f} s: its "
                         "process is stopped or stuck); --resume continues from the last "
                         "checkpoint") from None


def failure(k: int, err: RayTaskError) -> str:
    """Why worker k's loop failed, in one line, without the worker's name (its own
    errors start with it; the line that reports it names it once)."""
    return one_line(getattr(err, "cause", err)).removeprefix(f"worker {k}: ")


def one_line(error: BaseException) -> str:
    """An exception's first line, without the terminal colours Ray adds."""
    text = plain(str(error)).strip()
    return (text.splitlines() or [""])[0][:300]


def plain(text: str) -> str:
    """`text` without the terminal colours Ray adds to remote tracebacks."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)
