"""Where an env process's own stdout and stderr go: a file beside its log
(env_logs/Player-<k>.out), not the trainer's terminal.

The stock client's launcher passes them through unless its logger is above DEBUG, when it
discards them (what mlagents-learn does). Through, a build's or a Gymnasium env's prints
tore the progress bar (a loud one buried it); discarded, a dynamic linker's error (a
missing .so: the likeliest start-up failure of a build on a headless server, which no
Unity log holds) is lost. In a file, the line for an env that exits before connecting
quotes it. Without a log folder (no -logFile) the stock launcher runs as it is.
"""

from __future__ import annotations

import os
import subprocess

from mlagents_envs import env_utils

_stock_launch = env_utils.launch_executable


def log_file_arg(args: list[str]) -> str | None:
    """The env's -logFile argument (the first one, as the player reads it), if any."""
    lowered = [a.lower() for a in args]
    if "-logfile" in lowered and lowered.index("-logfile") + 1 < len(args):
        return args[lowered.index("-logfile") + 1]
    return None


def output_path(log: str) -> str:
    """The file beside an env's log that holds its stdout and stderr."""
    return os.path.splitext(log)[0] + ".out"


def launch(file_name: str, args: list[str]) -> subprocess.Popen:
    """The stock launcher's process (its own session, the same arguments), its output
    appended to output_path(its log); the stock launcher itself when there is no log,
    or nothing to launch (it raises its own error then)."""
    log = log_file_arg(args)
    program = env_utils.validate_environment_path(file_name)
    if log is None or program is None:
        return _stock_launch(file_name, args)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(log)), exist_ok=True)
        out = open(output_path(log), "ab")
    except OSError:  # a folder we cannot write: the env's own log will not be there either
        return _stock_launch(file_name, args)
    with out:
        try:
            return subprocess.Popen([program, *args], start_new_session=True, stdout=out,
                                    stderr=subprocess.STDOUT)
        except PermissionError:  # its own error names the fix (chmod)
            return _stock_launch(file_name, args)


def last_output(log: str, tail_bytes: int = 4096) -> str:
    """The last line the env wrote to its stdout or stderr, '' if none."""
    try:
        with open(output_path(log), "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - tail_bytes))
            lines = [line.strip() for line in f.read().decode(errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [line for line in lines if line]
    return lines[-1][:300] if lines else ""


env_utils.launch_executable = launch  # (the client calls it through the module)
