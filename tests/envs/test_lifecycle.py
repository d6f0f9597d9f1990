"""The Drone process's life: started by the stock client, by hand, from anywhere; it never
outlives its trainer."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np

import envs  # noqa: F401
from envs.drone import BEHAVIOR_NAME, DRONE_EXECUTABLE
from mlagents_envs.base_env import ActionTuple
from mlagents_envs.environment import UnityEnvironment
from tests.helpers import drone_pids, wait_until

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV_NO_DRONE_PYTHON = {k: v for k, v in os.environ.items() if k != "DRONE_PYTHON"}


def client_script(worker_id: int) -> str:
    """A trainer that opens the Drone, steps it, prints the env pid, then waits forever."""
    return textwrap.dedent(f"""
        import sys, time, numpy as np
        sys.path.insert(0, {REPO!r})
        import envs
        from mlagents_envs.environment import UnityEnvironment
        from mlagents_envs.base_env import ActionTuple
        env = UnityEnvironment(file_name={DRONE_EXECUTABLE!r}, worker_id={worker_id},
                               no_graphics=True)
        env.reset()
        name = list(env.behavior_specs)[0]
        for _ in range(10):
            env.set_actions(name, ActionTuple(continuous=np.zeros((1, 3), np.float32)))
            env.step()
        print("ENV_PID", env._process.pid, flush=True)
        time.sleep(600)
    """)


def start_client(worker_id: int, cwd: str, env=None) -> tuple[subprocess.Popen, int]:
    """Start `client_script`; the Drone's own log shares its stdout, so look for our line."""
    client = subprocess.Popen([sys.executable, "-c", client_script(worker_id)], cwd=cwd,
                              env=env, stdout=subprocess.PIPE, text=True)
    for line in client.stdout:
        if line.startswith("ENV_PID "):
            return client, int(line.split()[1])
    client.kill()
    raise AssertionError(f"the client exited ({client.wait()}) without starting the env")


def test_drone_exits_when_its_trainer_is_killed(tmp_path):
    worker_id = 70
    client, env_pid = start_client(worker_id, cwd=str(tmp_path))
    try:
        assert drone_pids(5005 + worker_id) == [env_pid]
        client.send_signal(signal.SIGKILL)
        client.wait()
        assert wait_until(lambda: drone_pids(5005 + worker_id) == [], timeout=5)
    finally:
        client.kill()
        for pid in drone_pids(5005 + worker_id):
            os.kill(pid, signal.SIGKILL)


def test_drone_exits_when_its_trainer_dies_while_it_starts(tmp_path):
    """The trainer dies before the Drone's Python is up (a worker killed as it restarted
    its env; here Python starts 1 s late and the trainer dies after 0.3 s): the Drone took
    the process it was handed to for its parent, watched that, and waited for a trainer
    until its 300 s connect timeout. The launcher, a shell up in milliseconds, names the
    real parent."""
    port = 5005 + 71
    late_python = tmp_path / "late_python"
    late_python.write_text(f"#!/bin/sh\nsleep 1\nexec {sys.executable} \"$@\"\n")
    late_python.chmod(0o755)
    starter = textwrap.dedent(f"""
        import os, subprocess, time
        env = subprocess.Popen([{DRONE_EXECUTABLE + ".x86_64"!r}, "-nographics", "-batchmode",
                                "--mlagents-port", "{port}"], start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(env.pid, flush=True)
        time.sleep(0.3)
        os._exit(0)
    """)
    done = subprocess.run([sys.executable, "-c", starter], cwd=str(tmp_path),
                          env={**os.environ, "DRONE_PYTHON": str(late_python)},
                          capture_output=True, text=True, timeout=60)
    try:
        assert drone_pids(port) == [int(done.stdout.split()[0])]  # Python is still to come
        assert wait_until(lambda: drone_pids(port) == [], timeout=10)
    finally:
        for pid in drone_pids(port):
            os.kill(pid, signal.SIGKILL)


def test_runs_from_another_directory_on_the_project_interpreter(tmp_path):
    # A decoy envs/ package in the caller's directory and a python3 on PATH that fails:
    # neither may be used by the launcher.
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "__init__.py").write_text("raise SystemExit('decoy envs imported')\n")
    (tmp_path / "bin").mkdir()
    trap = tmp_path / "bin" / "python3"
    trap.write_text("#!/bin/sh\necho 'PATH python3 used' >&2\nexit 3\n")
    trap.chmod(0o755)
    env = dict(ENV_NO_DRONE_PYTHON, PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    client, env_pid = start_client(71, cwd=str(tmp_path), env=env)
    try:
        exe = os.readlink(f"/proc/{env_pid}/exe")
        assert os.path.realpath(exe) == os.path.realpath(sys.executable)
    finally:
        client.kill()
        client.wait()
    assert wait_until(lambda: drone_pids(5005 + 71) == [], timeout=5)


def test_editor_mode_started_by_hand():
    drone = subprocess.Popen([sys.executable, "-m", "envs.drone", "--mlagents-port", "5004"],
                             cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        env = UnityEnvironment(file_name=None, timeout_wait=30)  # port 5004, as the Editor
        env.reset()
        env.set_actions(BEHAVIOR_NAME, ActionTuple(continuous=np.ones((1, 3), np.float32)))
        env.step()
        decision, _ = env.get_steps(BEHAVIOR_NAME)
        assert decision.obs[0].shape == (1, 9) and decision.obs[0][0, 3] > 0
        env.close()
        assert drone.wait(timeout=5) == 0
        # The stock client's close() hands the stop message (status 400) to its servicer
        # thread, then stops its gRPC server with no grace period, so the env sees either
        # that message or the aborted call, depending on which thread wins. Both must make
        # it stop at once with exit code 0; neither may be a crash.
        log = drone.stdout.read()
        assert ("stopping: closed by the trainer" in log
                or "stopping: trainer unreachable (UNAVAILABLE)" in log
                or "stopping: trainer unreachable (CANCELLED)" in log), log
    finally:
        drone.kill()


def test_gives_up_cleanly_when_no_trainer_listens():
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "envs.drone", "--mlagents-port", "5099", "--connect-timeout", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and time.monotonic() - started < 15
    assert "trainer unreachable (DEADLINE_EXCEEDED)" in done.stdout


def test_launcher_names_a_missing_interpreter(tmp_path):
    env = dict(os.environ, DRONE_PYTHON=str(tmp_path / "nope" / "python"))
    done = subprocess.run([DRONE_EXECUTABLE + ".x86_64", "--mlagents-port", "5098"],
                          env=env, capture_output=True, text=True, timeout=10)
    assert done.returncode == 127
    assert "no Python at" in done.stderr and "make install" in done.stderr
