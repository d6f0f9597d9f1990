"""The run's own errors: each message is one line naming the problem and what to do next."""

import errno
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


# What a full disk, a quota or a permission gives a checkpoint, an ONNX export or a log
# write, and what to do then: the previous checkpoint is still there (files are replaced
# atomically), so --resume continues from it.
WRITE_FIXES = {errno.ENOSPC: "free space", errno.EDQUOT: "free space",
               errno.EIO: "check the disk", errno.EACCES: "make it writable",
               errno.EPERM: "make it writable", errno.EROFS: "make it writable",
               errno.EISDIR: "remove that folder"}
NEED_A_PATH = {errno.EACCES, errno.EPERM}  # without one, e.g. a signal we may not send


def write_error(err: OSError, run_dir: str) -> str | None:
    """The one line for an OSError that writing the run's files raised, or None when it
    is not such an error. A failed write() names no file: the run folder is named then."""
    from learner.files import written_through

    fix = WRITE_FIXES.get(err.errno)
    if fix is None or (err.errno in NEED_A_PATH and err.filename is None):
        return None
    # A rename names both files: the one it could not replace is the second.
    where = err.filename2 or err.filename
    where = where if where is not None else f"in {run_dir}"
    where = written_through(where) or where  # the file, not its temporary one
    reason = err.strerror or type(err).__name__
    return (f"cannot write {where}: {reason}; {fix} (or pass another --results-dir) and "
            "--resume")
