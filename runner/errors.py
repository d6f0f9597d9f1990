"""The run's own errors: each message is one line naming the problem and what to do next."""

import os
import shutil
import sys


class RunError(Exception):
    """A problem with the run folder, stated in one line with its fix."""


class RayUnreachable(Exception):
    """Ray could not be joined (or started) as asked; the message is one line."""


class RunAborted(Exception):
    """A part of the run that cannot be replaced died; one line says what and what next."""


def out_of_memory(err: BaseException) -> MemoryError | None:
    """`err` as a MemoryError when it is one: numpy raises MemoryError, torch's allocators a
    RuntimeError ("can't allocate memory", CUDA's "out of memory"); else None."""
    if isinstance(err, MemoryError):
        return err
    text = str(err)
    if isinstance(err, RuntimeError) and ("can't allocate memory" in text
                                          or "out of memory" in text.lower()):
        return MemoryError(text.strip().splitlines()[0] if text.strip() else "")
    return None


def venv_command(name: str) -> str:
    """`name` when it is on PATH, else the one beside this interpreter (the venv's, which
    `make run` does not put on PATH), as a message should tell the user to type it."""
    beside = os.path.join(os.path.dirname(sys.executable), name)
    if shutil.which(name) or not os.path.exists(beside):
        return name
    relative = os.path.relpath(beside)
    return beside if relative.startswith("..") else relative
