"""ProcessWorker: the same EnvWorker in a child process (local mode's --overlap-envs)."""

import dataclasses
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from actors.config import EnvConfig, NoiseConfig
from actors.env_process import UnsupportedEnv
from actors.env_worker import EnvWorker
from actors.process_worker import ProcessWorker, WorkerProcessDied
from actors.signals import signals_deferred
from learner.config import LearnerConfig
from learner.learner import Learner
from tests.helpers import drone_pids, player_pids, wait_until

PORT = 5470  # this module's base ports: 5470-5479
SIM = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                   "envs", "sims", "Sim")


def drone(port: int) -> EnvConfig:
    return EnvConfig(num_areas=2, max_step=40, base_port=port)


def test_the_child_gives_what_the_worker_gives_in_process():
    """Same seed, same weights: the same transitions, episodes and noise/RNG state."""
    here = EnvWorker(drone(PORT), NoiseConfig(), seed=5)
    there = ProcessWorker(drone(PORT + 1), NoiseConfig(), seed=5)
    try:
        assert (there.behavior, there.obs_sizes, there.action_size) == (
            here.behavior, here.obs_sizes, here.action_size)
        weights, version = Learner(here.obs_size, here.action_size,
                                   LearnerConfig(device="cpu")).publish_weights()
        for worker in (here, there):
            worker.set_weights(weights, version)  # the child's is answered with the next call
        a, b = here.collect(50, "explore"), there.collect(50, "explore")
        assert a.env_steps == b.env_steps == 100 and len(a.episodes) == len(b.episodes) > 0
        for key in a.transitions:
            np.testing.assert_allclose(a.transitions[key], b.transitions[key], atol=1e-6)
        there.send_collect(20, "greedy")  # started, then waited for: the same rollout
        np.testing.assert_allclose(there.result().transitions["action"],
                                   here.collect(20, "greedy").transitions["action"], atol=1e-6)
        for worker in (here, there):
            worker.reset()  # the test phase's fresh episodes, through the pipe too
        np.testing.assert_allclose(there.collect(5, "greedy").transitions["obs"],
                                   here.collect(5, "greedy").transitions["obs"], atol=1e-6)
        state = there.state_dict()
        assert state["rng"] == here.state_dict()["rng"]
        # And back in, through the pipe: another RNG state, which the child then holds.
        other = {**here.state_dict(), "rng": np.random.default_rng(99).bit_generator.state}
        assert other["rng"] != state["rng"]
        there.load_state_dict(other)
        assert there.state_dict() == other
        assert there.take_obs_stats() is None  # not tracked without --normalize: no call
    finally:
        here.close()
        there.close()
    assert wait_until(lambda: drone_pids(PORT + 1) == [], timeout=5)


def test_the_childs_error_comes_back_with_its_type_and_nothing_outlives_it():
    cfg = EnvConfig(env=SIM, env_args=["--sim", "hybrid"], base_port=PORT + 2)
    with pytest.raises(UnsupportedEnv, match="hybrid actions"):
        ProcessWorker(cfg, NoiseConfig())
    assert wait_until(lambda: player_pids("tests.envs.sims") == [], timeout=5)


def test_a_dead_child_is_restarted_within_the_limits_and_its_env_does_not_outlive_it(
        capsys):
    """A killed child ended the run, with restarts left. Our envs also exit when their
    client's connection drops; a Unity build keeps running without its trainer, so the
    worker kills the env whose pid the child reported."""
    cfg = dataclasses.replace(drone(PORT + 3), max_lifetime_restarts=1)
    worker = ProcessWorker(cfg, NoiseConfig(), seed=1)
    try:
        weights, version = Learner(worker.obs_size, worker.action_size,
                                   LearnerConfig(device="cpu")).publish_weights()
        worker.set_weights(weights, version)
        first = drone_pids(PORT + 3)
        assert len(first) == 1
        before = worker.collect(10, "explore")  # the first child's first rollout
        os.kill(worker._process.pid, signal.SIGKILL)
        worker.send_collect(10, "explore")  # owed by the dead child: the new one answers
        rollout = worker.result()
        # with a seed of its own: the same one replayed the first child's env and noise
        assert not np.array_equal(rollout.transitions["obs"], before.transitions["obs"])
        assert rollout.env_steps == 20 and worker.restarts == 1
        assert "worker 0: its process exited (exit code -9); restarting it" in \
            capsys.readouterr().out
        assert set(rollout.transitions["policy_version"]) == {version}  # the last weights
        assert wait_until(lambda: first[0] not in drone_pids(PORT + 3), timeout=5)
        second = drone_pids(PORT + 3)
        assert len(second) == 1
        os.kill(worker._process.pid, signal.SIGKILL)  # past --max-lifetime-restarts 1
        with pytest.raises(WorkerProcessDied, match="exit code -9.*past the restart limits.*"
                                                    "--resume") as died:
            worker.collect(1, "random")
        assert "\n" not in str(died.value)
        assert wait_until(lambda: drone_pids(PORT + 3) == [], timeout=5)
    finally:
        worker.close()  # safe on a dead child


def test_the_child_closes_its_env_when_the_trainer_goes_away():
    """A trainer killed with SIGKILL cannot close anything: the child sees the pipe end,
    closes its env and exits."""
    worker = ProcessWorker(drone(PORT + 4), NoiseConfig(), seed=1)
    assert len(drone_pids(PORT + 4)) == 1
    worker._conn.close()  # what the trainer's death does to the child's pipe
    worker._process.join(timeout=30)
    assert worker._process.exitcode == 0
    assert wait_until(lambda: drone_pids(PORT + 4) == [], timeout=5)


def test_ctrl_c_waits_until_a_message_is_whole():
    """Ctrl-C inside a send or a read is held until it ends, then raised as usual: half a
    message would leave the pipe out of step and both ends waiting."""
    # As in a terminal: a test run started in the background may inherit SIGINT ignored.
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    reached = False
    try:
        with pytest.raises(KeyboardInterrupt):
            with signals_deferred():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)  # a handler that raises would have raised by now
                reached = True
    finally:
        signal.signal(signal.SIGINT, before)
    assert reached


def test_close_reads_a_rollout_still_owed_so_the_child_ends_cleanly():
    """After one worker's error the trainer closes the others with rollouts unread: a
    child blocked sending one larger than the pipe holds never read the close, and was
    killed after the whole wait, with its env."""
    worker = ProcessWorker(EnvConfig(num_areas=16, base_port=PORT + 8), NoiseConfig(), seed=0)
    worker.send_collect(500, "explore")  # 8,000 transitions: far more than a pipe holds
    worker.close(timeout=20)
    assert worker._process.exitcode == 0  # it closed its env and returned; not killed
    assert wait_until(lambda: drone_pids(PORT + 8) == [], timeout=5)


def test_a_child_hung_in_its_env_is_killed_and_none_replaces_it():
    """An env hung inside the child (--transport in-process, no protocol time-out): a
    stopping run reads what is owed for a while, then kills the child; the wait for its
    answer ends at once in WorkerProcessDied, and no new child starts."""
    cfg = EnvConfig(env="gymnasium:tests.envs.sims.gym_envs:Hangs-v0", num_areas=1,
                    transport="in-process")
    worker = ProcessWorker(cfg, NoiseConfig(), seed=0)
    try:
        worker.collect(10)  # steps 1-10: answered
        worker.send_collect(20)  # step 25 never returns
        assert not worker.settle(time.monotonic() + 1.0)
        first = worker._process
        worker.kill()
        started = time.monotonic()
        with pytest.raises(WorkerProcessDied):
            worker.result()
        assert time.monotonic() - started < 5
        with pytest.raises(WorkerProcessDied):  # what the checkpoint's state call meets
            worker.state_dict()
        assert worker._process is first and not first.is_alive() and worker.restarts == 0
    finally:
        worker.close()


def test_a_child_stuck_in_its_env_exits_when_the_trainer_is_killed():
    """The trainer SIGKILLed while an env hung inside its child (--transport in-process):
    the child never read the pipe's end, and ran on forever."""
    import subprocess
    import sys

    from actors.worker_pipe import ORPHAN_GRACE_S

    trainer = ("from actors.config import EnvConfig, NoiseConfig\n"
               "from actors.process_worker import ProcessWorker\n"
               "import time\n"
               "cfg = EnvConfig(env='gymnasium:tests.envs.sims.gym_envs:Hangs-v0', "
               "num_areas=1, transport='in-process')\n"
               "worker = ProcessWorker(cfg, NoiseConfig(), seed=0)\n"
               "worker.collect(10)\n"
               "worker.send_collect(20)  # its 25th step never returns\n"
               "print(worker._process.pid, flush=True)\n"
               "time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", trainer], stdout=subprocess.PIPE, text=True)
    try:
        child = int(proc.stdout.readline())
        time.sleep(1.0)  # stuck in the env by now
    finally:
        proc.kill()
        proc.wait()

    def running() -> bool:
        try:
            with open(f"/proc/{child}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    assert running()  # stuck, and it would have stayed so
    assert wait_until(lambda: not running(), timeout=ORPHAN_GRACE_S + 10)


def test_a_ctrl_c_to_the_group_while_the_child_starts_leaves_it_to_the_trainer():
    """A Ctrl-C (to the process group) while a child's Python still imported, before serve()
    ignores it, killed the child with a KeyboardInterrupt traceback (in the run's output);
    the child inherits the signals blocked now, and serve() drops them. In a process of its
    own: the first child's start() also starts multiprocessing's resource tracker, which
    unblocked them."""
    probe = ("import multiprocessing.context as mc, os, signal, sys\n"
             "from actors.config import EnvConfig, NoiseConfig\n"
             "from actors.process_worker import ProcessWorker\n"
             "start = mc.SpawnProcess.start\n"
             "def start_then_ctrl_c(self):\n"
             "    start(self)\n"
             "    os.kill(self.pid, signal.SIGINT)  # the group's, as the child's Python starts\n"
             "mc.SpawnProcess.start = start_then_ctrl_c\n"
             f"cfg = EnvConfig(env={SIM!r}, env_args=['--sim', 'hybrid'], base_port={PORT + 9})\n"
             "try:\n"
             "    ProcessWorker(cfg, NoiseConfig())\n"
             "except Exception as err:\n"
             "    print(type(err).__name__)\n")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, "-c", probe], cwd=repo, capture_output=True,
                          text=True, timeout=120)
    assert done.stdout.splitlines()[-1:] == ["UnsupportedEnv"], (done.stdout[-500:],
                                                             done.stderr[-2000:])
    assert "KeyboardInterrupt" not in done.stderr, done.stderr[-2000:]
    assert wait_until(lambda: player_pids("tests.envs.sims") == [], timeout=5)


def test_a_signal_while_a_child_starts_is_raised_after_the_start():
    """...not in start()'s middle, which left the child a half-written start (EOFError)."""
    from actors.signals import signals_blocked

    previous = signal.signal(signal.SIGTERM, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    finished = []
    try:
        with pytest.raises(KeyboardInterrupt):
            with signals_blocked():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)
                finished.append(True)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert finished == [True]
