"""Ctrl-C, SIGTERM and SIGKILL of the driver: a checkpoint survives, nothing is orphaned,
and --resume reaches the same total env steps."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.helpers import drone_pids, wait_until

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def ray_daemons() -> set[int]:
    """Pids of Ray's raylet and GCS server processes."""
    pids = set()
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace")
        except OSError:
            continue
        if "raylet" in cmd or "gcs_server" in cmd:
            pids.add(int(entry))
    return pids


def start(results, run_id: str, port: int, *extra):
    args = [sys.executable, "launch.py", "--run-id", run_id, "--results-dir", str(results),
            "--base-port", str(port), "--learning-starts", "300", "--batch-size", "32",
            "--max-step", "80", "--checkpoint-interval", "400", "--log-interval", "0.5", *extra]
    # A session of its own: a Ctrl-C in a terminal reaches the whole process group. SIGINT
    # as a terminal leaves it: a test run started in the background (`make test &`, nohup)
    # hands its children SIGINT ignored, and Python then never raises KeyboardInterrupt.
    return subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, preexec_fn=default_sigint)


def default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_line(proc, marker: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    for line in proc.stdout:
        if marker in line:
            return
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise AssertionError(f"never saw {marker!r}; stderr: {proc.stderr.read()[-2000:]}")


def our_drones(port: int, workers: int = 2) -> list[int]:
    return [p for k in range(workers) for p in drone_pids(port + k)]


def spawned_children(root: int) -> list[int]:
    """Pids of the live multiprocessing children below `root` (--overlap-envs runs its
    workers in them)."""
    return [p for p in descendants(root) if "spawn_main" in read_cmdline(str(p))]


def process_group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def alive(pids: list[int]) -> list[int]:
    return [p for p in pids if os.path.exists(f"/proc/{p}") and read_cmdline(str(p))]


def read_cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


@pytest.mark.parametrize("mode, sig, phase", [
    ("local", signal.SIGINT, "train"),
    ("local", signal.SIGTERM, "test"),
    ("local-overlap", signal.SIGINT, "train"),
    ("ray", signal.SIGINT, "train"),
    ("ray", signal.SIGTERM, "train"),
])
def test_interrupt_saves_closes_and_exits_cleanly(tmp_path, mode, sig, phase):
    port = {"local": 5900, "local-overlap": 5910, "ray": 5920}[mode] + (
        sig == signal.SIGTERM) * 5
    steps = ["--train-steps", "1000", "--test-steps", "100000"] if phase == "test" else \
        ["--train-steps", "100000"]
    # local-overlap: each env worker in a child process, which ignores Ctrl-C and is
    # closed by the trainer after the checkpoint.
    flags = ["--mode", "local", "--overlap-envs"] if mode == "local-overlap" else ["--mode", mode]
    proc = start(tmp_path, "intr", port, *flags, *steps)
    if phase == "test":
        wait_for_line(proc, "[test]")
    else:  # a first checkpoint (every 400 env steps) means learning has started
        checkpoint = tmp_path / "intr" / "checkpoints" / "latest.pt"
        assert wait_until(checkpoint.exists, timeout=120), proc.stderr.read()[-2000:]
    time.sleep(1.0)
    children = spawned_children(proc.pid)
    assert (len(children) == 2) == (mode == "local-overlap"), children
    # The run's own: a Ray instance that another program starts meanwhile is not its to stop.
    ours = ray_daemons() & set(descendants(proc.pid))
    assert (len(ours) >= 2) == (mode == "ray"), ours  # its raylet and GCS server
    if mode == "ray":  # a signal to the driver's group reaches none of Ray's processes
        assert not [name for pid, name in descendants(proc.pid).items()
                    if process_group(pid) == proc.pid], descendants(proc.pid)
    if sig == signal.SIGINT:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    elif mode == "ray":  # to the whole group, as scancel, systemd or `kill -TERM -PGID` do:
        os.killpg(proc.pid, signal.SIGTERM)  # Ray's processes died with the driver's group
    else:
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err, err[-3000:]
    assert "checkpoint saved" in out
    payload = torch.load(tmp_path / "intr" / "checkpoints" / "latest.pt", weights_only=True)
    assert payload["env_steps"] > 300
    assert wait_until(lambda: our_drones(port) == [], timeout=5)
    assert wait_until(lambda: not ours & ray_daemons(), timeout=15)
    assert wait_until(lambda: alive(children) == [], timeout=5)


def test_ctrl_c_with_a_hung_env_does_not_wait_out_its_timeout(tmp_path):
    """A stopped env held a Ctrl-C in Ray mode for 60 s: 30 s for the worker's loop, then
    30 s for a polite close of the env, and the step that the close cut short came back as
    Ray's "Unhandled error" traceback. (Local mode's close: tests/faults/test_env_faults.)"""
    port = 5965
    proc = start(tmp_path, "hung", port, "--mode", "ray", "--train-steps", "100000",
                 "--timeout-wait", "60")
    checkpoint = tmp_path / "hung" / "checkpoints" / "latest.pt"
    assert wait_until(checkpoint.exists, timeout=120), proc.stderr.read()[-2000:]
    hung = drone_pids(port)
    assert hung
    os.kill(hung[0], signal.SIGSTOP)  # alive but silent
    time.sleep(2.0)
    started = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    took = time.monotonic() - started
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "Unhandled error" not in err, err[-3000:]
    assert "checkpoint saved" in out
    assert took < 45, took  # 61-62 s before: well inside --timeout-wait now
    assert wait_until(lambda: our_drones(port) == [], timeout=5)


def test_sigkill_of_the_driver_then_resume_reaches_the_total(tmp_path):
    proc = start(tmp_path, "killed", 5940, "--mode", "local", "--num-workers", "1",
                 "--train-steps", "3000", "--test-steps", "200")
    checkpoint = tmp_path / "killed" / "checkpoints" / "latest.pt"
    assert wait_until(checkpoint.exists, timeout=120)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # the env notices its parent is gone and exits by itself
    assert wait_until(lambda: our_drones(5940, 1) == [], timeout=5)
    saved = torch.load(checkpoint, weights_only=True)["env_steps"]
    assert 0 < saved < 3000
    resumed = subprocess.run(
        [sys.executable, "launch.py", "--run-id", "killed", "--results-dir", str(tmp_path),
         "--resume", "--mode", "local", "--num-workers", "1", "--base-port", "5940",
         "--train-steps", "3000", "--test-steps", "200", "--learning-starts", "300",
         "--batch-size", "32", "--max-step", "80"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Traceback" not in resumed.stderr
    summary = json.loads((tmp_path / "killed" / "summary.json").read_text())
    assert summary["env_steps"] >= 3000 and summary["test"]["episodes"] > 0


def descendants(root: int) -> dict[int, str]:
    """pid -> command name of every live process below `root` (by parent links)."""
    parent, name = {}, {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as f:
                head, rest = f.read().rsplit(")", 1)
        except OSError:
            continue
        if rest.split()[0] != "Z":
            parent[int(entry)] = int(rest.split()[1])
            name[int(entry)] = head.split("(", 1)[1]
    found, frontier = {}, [root]
    while frontier:
        pid = frontier.pop()
        for child, p in parent.items():
            if p == pid and child not in found:
                found[child] = name[child]
                frontier.append(child)
    return found


# Ray's two node agents notice the raylet's death, then try to report it to the GCS, which
# died with it: they exit by themselves after about 90 s, holding nothing the next run needs
# (README, "When things go wrong").
LINGERING_AGENTS = ("ray::DashboardA", "ray::RuntimeEnv")


def test_sigkill_of_a_ray_driver_leaves_only_ray_agents_and_resume_works(tmp_path):
    proc = start(tmp_path, "rkill", 5960, "--num-workers", "2", "--train-steps", "2000",
                 "--test-steps", "200")
    checkpoint = tmp_path / "rkill" / "checkpoints" / "latest.pt"
    assert wait_until(checkpoint.exists, timeout=120), proc.stderr.read()[-2000:]
    below = descendants(proc.pid)
    assert len(our_drones(5960)) == 2 and any("raylet" in n for n in below.values())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # raylet, GCS, every worker actor and every env go within seconds (the envs exit with
    # their worker actor, which exits with the raylet).
    assert wait_until(lambda: not [p for p in descendants(1) if p in below
                                   and below[p] not in LINGERING_AGENTS], timeout=30)
    # An env a worker started in its last moments is not in `below`: it notices, once its
    # Python is up (about a second), that the worker is gone (the launcher names it), and
    # exits. Before the launcher did, it took its adopter for its parent and stayed 300 s.
    assert wait_until(lambda: our_drones(5960) == [], timeout=10), our_drones(5960)
    resumed = subprocess.run(
        [sys.executable, "launch.py", "--run-id", "rkill", "--results-dir", str(tmp_path),
         "--resume", "--num-workers", "2", "--base-port", "5960", "--train-steps", "2000",
         "--test-steps", "200", "--learning-starts", "300", "--batch-size", "32",
         "--max-step", "80"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0 and "Traceback" not in resumed.stderr, resumed.stderr[-2000:]
    summary = json.loads((tmp_path / "rkill" / "summary.json").read_text())
    assert summary["env_steps"] >= 2000 and summary["test"]["episodes"] > 0


@pytest.mark.parametrize("phase", ["train", "test"])
def test_ctrl_c_with_an_env_hung_in_an_overlap_child_saves_and_exits(tmp_path, monkeypatch,
                                                                     phase):
    """--overlap-envs with --transport in-process: an env that hangs inside a worker's
    child answers nothing, and no protocol time-out watches it. Ctrl-C waited for it
    forever (the round's thread, or the checkpoint's call for the worker's state); now it
    waits --timeout-wait, kills the child, saves and exits."""
    steps = ["--train-steps", "8"] if phase == "test" else ["--train-steps", "100000"]
    monkeypatch.setenv("HANGS_FLAG", str(tmp_path / "hangs"))
    proc = start(tmp_path, "hung", 5970, "--mode", "local", "--overlap-envs", "--transport",
                 "in-process", "--env", "gymnasium:tests.envs.sims.gym_envs:Hangs-v0",
                 "--num-workers", "1", "--num-areas", "1", "--timeout-wait", "3", *steps)
    try:
        wait_for_line(proc, "[test]" if phase == "test" else "results in")
        assert wait_until((tmp_path / "hangs").exists, timeout=60)
        children = spawned_children(proc.pid)
        assert len(children) == 1
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err, err[-3000:]
    assert "waiting up to 3 s" in out and "checkpoint saved" in out, out
    assert (tmp_path / "hung" / "checkpoints" / "latest.pt").exists()
    assert wait_until(lambda: alive(children) == [], timeout=5)
