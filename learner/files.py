"""One way to write a file that a crash, a reader or a power cut never sees half-written:
checkpoints, the replay, the ONNX policy, summary.json and configuration.yaml all use it."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from typing import BinaryIO, Callable

# The temporary file write_atomic writes `name` through: .<name>.<random>.tmp beside it.
_TEMPORARY = re.compile(r"^\.(.+)\.[^.]+\.tmp$")


def written_through(path: str) -> str | None:
    """The file that `path` was write_atomic's temporary file for (None if it is not one):
    what a failed write is about, and what a killed process left half-written."""
    found = _TEMPORARY.match(os.path.basename(path))
    return os.path.join(os.path.dirname(path), found.group(1)) if found else None


def write_atomic(path: str, data: bytes | str | Callable[[BinaryIO], None],
                 mode: int = 0o644) -> None:
    """Write `data` (bytes, text, or a function that writes to the open binary file) to a
    temporary file beside `path`, fsync it, rename it over `path`, then fsync the folder so
    the rename itself survives a power cut. On any failure the old file stays as it was and
    the temporary file is removed. `mode`: the file's permissions (mkstemp makes 0600; a
    model or a summary is meant to be read by others)."""
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as err:
        full = not isinstance(err, OSError) and disk_full(directory)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if full:  # torch.save's writer says only "unexpected pos ..." when the disk fills
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path) from err
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def disk_full(directory: str, below: int = 1 << 20) -> bool:
    """Less than `below` bytes left to us on the folder's file system."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < below
