"""The run folder `<results-dir>/<run-id>/`, made (or reused) before anything starts.

Layout:
    configuration.yaml       the effective configuration (reloaded on --resume)
    checkpoints/latest.pt    written atomically (learner/checkpoint.py)
    checkpoints/checkpoint-<env steps>.pt, <Behavior>-<env steps>.onnx
                             the last --keep-checkpoints checkpoints and their policies
    <Behavior>.onnx          the actor for Unity, rewritten with every checkpoint
    events.out.tfevents.*    TensorBoard, a file per session: charts/ losses/ perf/ Environment/
    episodes.csv             one row per finished episode (phase, env_steps, return, ...)
    env_logs/Player-<k>.log  each env process's log (.out: its stdout and stderr)
    summary.json             counters and the train/test results, written atomically
    .in-use                  the pid of the drone-ddpg process using it (removed at its end)
Beside it, `--force` keeps `.<run-id>.replaced` (the old run until the session ends: then
deleted if the new run started, else put back), `.<run-id>.failed-start` (a failed start).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil

from learner.files import write_atomic, written_through
from runner.errors import RunError


def prepare_run_dir(results_dir: str, run_id: str, resume: bool, force: bool,
                    inference: bool) -> str:
    """Create (or reuse, on --resume/--inference) the run folder, marked in use by this
    process until `release_run_dir`; returns its path."""
    path = os.path.join(results_dir, run_id)
    if os.path.dirname(os.path.abspath(path)) != os.path.abspath(results_dir):
        # --force deletes this folder: it must be one folder inside the results folder.
        raise RunError(f"--run-id must be a plain folder name, got {run_id!r}")
    with claiming(results_dir):
        return _prepare(path, results_dir, run_id, resume, force, inference)


@contextlib.contextmanager
def claiming(results_dir: str):
    """One process at a time checks and claims a run folder in `results_dir`: two started
    at once both passed the in-use check before either wrote its mark, and ran in one
    folder. A lock on the results folder itself (released with its descriptor, also when
    the process dies), so no lock file is left behind."""
    try:
        os.makedirs(results_dir, exist_ok=True)
        fd = os.open(results_dir, os.O_RDONLY)
    except OSError as err:
        raise RunError(f"cannot write to {results_dir} ({err.strerror}): pass "
                       f"{path_fix(err)}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _prepare(path: str, results_dir: str, run_id: str, resume: bool, force: bool,
             inference: bool) -> str:
    user = in_use_by(path)
    if user is not None:
        raise RunError(f"run {run_id!r} is in use by another drone-ddpg process (pid {user}): "
                       "wait for it to end, or pick another --run-id (if none is running, "
                       f"remove {os.path.join(path, IN_USE)})")
    recover_replaced(path)
    remove_partial_writes(path)
    if not (resume or inference) and os.path.isdir(path) and only_debris(path):
        shutil.rmtree(path)  # what a start that failed left (logs): not a run to keep
    exists = os.path.isdir(path) and bool(os.listdir(path))
    if (resume or inference) and not exists:
        raise RunError(f"no run {run_id!r} in {results_dir}: drop --resume/--inference to "
                       "start it, or check --run-id and --results-dir")
    if (resume or inference) and not os.path.isfile(checkpoint_path(path)):
        raise RunError(no_checkpoint(path, run_id))
    if exists and not (resume or inference):
        if not force:
            raise RunError(f"run {run_id!r} already exists in {results_dir}: pass --resume to "
                           "continue it, --force to overwrite it, or another --run-id")
        set_aside(path)
    try:
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, IN_USE), "w", encoding="utf-8") as f:
            f.write(str(os.getpid()))
    except OSError as err:
        if exists and force:  # the old run back where it was, not hidden until a next start
            with contextlib.suppress(OSError):
                shutil.rmtree(path, ignore_errors=True)
                os.rename(aside_path(path, "replaced"), path)
        raise RunError(f"cannot write to {path} ({err.strerror}): pass "
                       f"{path_fix(err)}") from None
    return path


def remove_partial_writes(path: str) -> None:
    """The temporary files of writes a killed process never finished (a checkpoint, a
    replay: as large as the real ones), in the run folder and its checkpoints; no process
    uses the folder now (checked by the caller)."""
    for folder in (path, os.path.join(path, "checkpoints")):
        names = os.listdir(folder) if os.path.isdir(folder) else []
        for name in [n for n in names if written_through(n)]:
            with contextlib.suppress(OSError):
                os.remove(os.path.join(folder, name))


def no_checkpoint(path: str, run_id: str) -> str:
    """Why a --resume finds nothing to resume, and the fix: --force deletes the run, so
    not that while a kept checkpoint-<N>.pt can stand in for latest.pt."""
    latest = checkpoint_path(path)
    if os.path.isdir(latest):  # neither advice below would work: copying onto it, --force
        return f"{latest} is a folder, not a checkpoint: move it away, then --resume again"
    folder = os.path.dirname(latest)
    kept = sorted((int(m.group(1)), m.group(0)) for m in map(
        KEPT.fullmatch, os.listdir(folder) if os.path.isdir(folder) else []) if m)
    if kept:
        newest = os.path.join(folder, kept[-1][1])
        return (f"run {run_id!r} has no {latest}, but keeps {newest}: copy it to {latest} "
                "and --resume again")
    return (f"run {run_id!r} has no checkpoint ({latest}): it stopped before its first; "
            "start it over: --force instead of --resume")


def path_fix(err: OSError) -> str:
    """What to pass instead when the run folder cannot be made or moved."""
    return "a shorter --run-id" if err.errno == errno.ENAMETOOLONG else "a writable --results-dir"


IN_USE = ".in-use"  # the pid of the drone-ddpg process using the run folder


def in_use_by(path: str) -> int | None:
    """The pid of another live process that marked this run folder in use, else None."""
    try:
        with open(os.path.join(path, IN_USE), encoding="utf-8") as f:
            pid = int(f.read().strip())
        if pid != os.getpid():
            os.kill(pid, 0)  # no signal sent: only whether it exists
            return pid if runs_python(pid) else None
    except (OSError, ValueError):  # no mark, a dead process, or garbage
        pass
    return None


def runs_python(pid: int) -> bool:
    """Whether `pid` runs a Python interpreter (a run's); a pid that a crashed run's mark
    names may belong to another program by now. True when /proc cannot say."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            program = f.read().split(b"\0", 1)[0]
    except OSError:
        return True
    return b"python" in os.path.basename(program).lower()


def only_debris(path: str) -> bool:
    """The folder holds only what a start that failed before training leaves (env logs,
    an empty TensorBoard file, an episodes.csv with no episode, a dead process's in-use
    mark), so a corrected rerun need not --force."""
    names = os.listdir(path)
    return bool(names) and all(n in ("env_logs", IN_USE) or n.startswith("events.out.tfevents.")
                               or (n == "episodes.csv" and header_only(os.path.join(path, n)))
                               for n in names)


def header_only(csv_path: str) -> bool:
    """An episodes.csv without a single episode (its header, written at start-up)."""
    with open(csv_path, encoding="utf-8", errors="replace") as f:
        return len(f.readlines()) <= 1


def aside_path(run_dir: str, what: str) -> str:
    """A hidden sibling of the run folder: `.<run-id>.<what>`."""
    head, name = os.path.split(os.path.normpath(run_dir))
    return os.path.join(head, f".{name}.{what}")


def set_aside(path: str) -> None:
    """--force: keep the old run as .<run-id>.replaced until the new session ends (a new
    run that fails to start, a bad env or too large a replay, must not cost the old one)."""
    if os.path.islink(path):
        raise RunError(f"{path} is a symbolic link: --force replaces only plain folders; "
                       "remove the link or pass another --run-id")
    replaced = aside_path(path, "replaced")
    try:
        if os.path.isdir(replaced):
            shutil.rmtree(replaced)  # left by a forced run that started, then was killed
        os.rename(path, replaced)
    except OSError as err:
        raise RunError(f"cannot set {path} aside for --force ({err.strerror}): pass "
                       f"{path_fix(err)}") from None


def recover_replaced(path: str) -> None:
    """A forced start killed before it started (SIGKILL, the OOM killer) left the old run
    set aside: it comes back, whatever this session asks for."""
    replaced = aside_path(path, "replaced")
    if not os.path.isdir(replaced) or (os.path.isdir(path) and not only_debris(path)):
        return
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.rename(replaced, path)
    print(f"note: {path} is back: an interrupted --force had set it aside", flush=True)


def release_run_dir(run_dir: str, force: bool) -> str | None:
    """At the end of a session: drop the in-use mark; after --force, the replaced run goes
    if the new one started (it saved its configuration.yaml); otherwise the failed start
    moves to .<run-id>.failed-start and the replaced run comes back. A note for the user
    in that case (or when the files could not be moved)."""
    with contextlib.suppress(OSError):
        os.remove(os.path.join(run_dir, IN_USE))
    replaced = aside_path(run_dir, "replaced")
    if not force or not os.path.isdir(replaced):
        return None
    try:
        if os.path.isfile(os.path.join(run_dir, "configuration.yaml")):
            shutil.rmtree(replaced)
            return None
        failed = aside_path(run_dir, "failed-start")
        shutil.rmtree(failed, ignore_errors=True)
        os.rename(run_dir, failed)
        os.rename(replaced, run_dir)
    except OSError as err:
        return f"could not put the previous run back ({err}); it is in {replaced}"
    return (f"the new run did not start: the previous run is back in {run_dir} as it was; "
            f"the failed start's env logs are in {failed}")


def checkpoint_path(run_dir: str) -> str:
    """Where a run keeps its checkpoint."""
    return os.path.join(run_dir, "checkpoints", "latest.pt")


KEPT = re.compile(r"checkpoint-(\d+)\.pt")


def keep_checkpoint(run_dir: str, onnx: str, env_steps: int, keep: int) -> None:
    """The checkpoint just written and its ONNX policy, kept as checkpoints/checkpoint-<env
    steps>.pt and <Behavior>-<env steps>.onnx beside it (copies, written atomically with the
    originals' permissions); the oldest beyond `keep` go."""
    if keep == 0:
        return
    folder = os.path.dirname(checkpoint_path(run_dir))
    stem = os.path.splitext(os.path.basename(onnx))[0]
    for source, kept in ((checkpoint_path(run_dir), f"checkpoint-{env_steps}.pt"),
                         (onnx, f"{stem}-{env_steps}.onnx")):
        with open(source, "rb") as original:
            write_atomic(os.path.join(folder, kept), original.read(),
                         mode=os.stat(source).st_mode & 0o777)
    steps = sorted(int(m.group(1)) for m in map(KEPT.fullmatch, os.listdir(folder)) if m)
    for old in steps[:-keep]:
        for name in (f"checkpoint-{old}.pt", f"{stem}-{old}.onnx"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(folder, name))


def initialize_path(results_dir: str, initialize_from: str) -> str:
    """The checkpoint --initialize-from names: a file given as such, else the latest of the
    run of that id."""
    if initialize_from.endswith(".pt") or os.path.isfile(initialize_from):
        return initialize_from
    return checkpoint_path(os.path.join(results_dir, initialize_from))


def initialize_problem(results_dir: str, run_id: str, initialize_from: str | None
                       ) -> str | None:
    """Said before any env starts: --initialize-from names no checkpoint, or one inside
    this run's own folder (which --force sets aside before it would be read)."""
    if initialize_from is None:
        return None
    path = initialize_path(results_dir, initialize_from)
    if not os.path.isfile(path):
        return (f"--initialize-from {initialize_from}: no checkpoint at {path}; give the id "
                "of a run in --results-dir that saved one, or a checkpoint file")
    own = os.path.realpath(os.path.join(results_dir, run_id))
    if os.path.commonpath([os.path.realpath(path), own]) == own:
        return (f"--initialize-from {initialize_from} is in this run's own folder, which a "
                "new run replaces: copy the checkpoint elsewhere first, or --resume the run")
    return None


def write_summary(run_dir: str, summary: dict, inference: bool = False) -> dict:
    """summary.json, written atomically; returns what was written. --inference tests a
    trained run: the file keeps what training wrote (counters, rates, train results) and
    takes this session's test results."""
    path = os.path.join(run_dir, "summary.json")
    if inference:
        try:
            with open(path, encoding="utf-8") as f:
                trained = json.load(f)
            if isinstance(trained, dict):  # not an edited file's null or list
                summary = {**trained, "test": summary["test"]}
        except (OSError, ValueError):  # training stopped before its summary: this one
            pass
    write_atomic(path, json.dumps(summary, indent=2))
    return summary
