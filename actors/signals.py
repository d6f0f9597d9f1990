"""Ctrl-C held back over a few lines that must not be cut in half."""

from __future__ import annotations

import contextlib
import signal
import threading


@contextlib.contextmanager
def signals_deferred():
    """Ctrl-C (and the SIGTERM that launch.py turns into it) in the main thread waits until
    the block is done, then is raised: a message half sent over a pipe would leave both
    ends waiting for bytes that never come, and a module half imported (Ray's) breaks its
    own exit handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals are handled in the main thread only
        return
    caught: list[int] = []
    before = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum))
              for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
        if caught:
            signal.raise_signal(caught[0])


@contextlib.contextmanager
def signals_blocked():
    """Ctrl-C and SIGTERM held back by this thread's signal mask in the block, and by
    signals_deferred's handlers (another thread may take a signal the mask holds back): a
    child process started in the block inherits the mask, so one sent to the process group
    while the child's Python still imports (before it can ignore them) waits in the child
    until it unblocks them; here it is raised after the block."""
    held = {signal.SIGINT, signal.SIGTERM}
    with signals_deferred():
        before = signal.pthread_sigmask(signal.SIG_BLOCK, held)
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, before)
