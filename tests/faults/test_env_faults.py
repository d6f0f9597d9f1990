"""An env that dies, hangs or sends NaN is restarted by its EnvWorker, rate-limited."""

import os
import signal
import socket
import time

import numpy as np
import pytest

import actors.env_worker
from envs.in_process import InProcessEnv
from actors.env_process import (
    EnvRestartsExhausted,
    LocalUnityEnvironment,
    RestartPolicy,
    UnsupportedEnv,
    port_free,
)
from actors.config import EnvConfig
from actors.env_worker import EnvWorker
from mlagents_envs.exception import (
    UnityEnvironmentException,
    UnityTimeOutException,
    UnityWorkerInUseException,
)
from actors.config import NoiseConfig
from tests.helpers import drone_pids, player_pids, wait_until

IDS = iter(range(120, 160))  # ports 5125-5164: this module's own


@pytest.fixture
def make_worker():
    made = []

    def make(restarts=RestartPolicy(10, 10, 60.0), **env):
        cfg = EnvConfig(num_areas=2, max_step=200, **env)
        worker = EnvWorker(cfg, NoiseConfig(), worker_id=next(IDS), seed=1, restarts=restarts)
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.close()


def assert_clean(rollout):
    for key in ("obs", "next_obs", "reward", "action"):
        assert np.isfinite(rollout.transitions[key]).all(), key


def test_killed_env_is_restarted(make_worker):
    worker = make_worker()
    worker.collect(20)
    old = worker.env._process.pid
    os.kill(old, signal.SIGKILL)
    started = time.monotonic()
    rollout = worker.collect(40)
    assert worker.restarts == 1 and worker.env._process.pid != old
    assert time.monotonic() - started < 15
    assert rollout.num_transitions > 0
    assert_clean(rollout)


def test_hung_env_is_restarted_after_the_timeout(make_worker):
    worker = make_worker(timeout_wait=3)
    worker.collect(5)
    hung = worker.env._process.pid
    os.kill(hung, signal.SIGSTOP)
    started = time.monotonic()
    worker.collect(5)
    assert worker.restarts == 1
    assert 2.5 < time.monotonic() - started < 15
    assert hung not in drone_pids()  # the hung process was killed, not left behind


@pytest.mark.parametrize("transport", ["protocol", "in-process"])
def test_nan_observation_is_an_env_fault_and_never_stored(make_worker, transport):
    worker = make_worker(env_args=["--fault-nan-at-step", "15"], transport=transport)
    rollout = worker.collect(40)
    assert worker.restarts >= 1
    assert_clean(rollout)
    assert isinstance(worker.env, InProcessEnv) == (transport == "in-process")


@pytest.mark.parametrize("transport", ["protocol", "in-process"])
def test_an_env_whose_close_fails_too_is_restarted(make_worker, transport, capfd):
    """A simulator that went away fails its step, then its close: the close's error
    stopped the restart in-process (and left the other area's copy open), and over the
    protocol printed a traceback on the trainer's terminal."""
    from tests.envs.sims.gym_envs import LostSimulator

    worker = make_worker(env="gymnasium:tests.envs.sims.gym_envs:LostSimulator-v0",
                         transport=transport)
    closes = LostSimulator.closes
    worker.collect(4)
    assert worker.restarts >= 1
    if transport == "in-process":
        assert LostSimulator.closes - closes == 2 * worker.restarts  # both areas' copies
    assert "Traceback" not in capfd.readouterr().err


def test_closing_a_hung_env_waits_at_most_close_wait_s(make_worker, monkeypatch):
    """The stock close waits --timeout-wait for the env to exit: a hung env held a Ctrl-C
    in local mode that long (61 s at the default)."""
    import actors.env_process

    monkeypatch.setattr(actors.env_process, "CLOSE_WAIT_S", 1)
    worker = make_worker(timeout_wait=30)
    worker.collect(3)
    hung = worker.env._process.pid
    os.kill(hung, signal.SIGSTOP)
    started = time.monotonic()
    worker.close()
    assert time.monotonic() - started < 15  # 30 s before
    assert wait_until(lambda: hung not in drone_pids(), timeout=5)


def test_restarts_are_rate_limited(make_worker):
    worker = make_worker(restarts=RestartPolicy(max_lifetime=5, rate_n=1, rate_period_s=60.0))
    os.kill(worker.env._process.pid, signal.SIGKILL)
    worker.collect(3)
    assert worker.restarts == 1
    os.kill(worker.env._process.pid, signal.SIGKILL)
    with pytest.raises(EnvRestartsExhausted, match="restart limits"):
        worker.collect(3)


def test_lifetime_limit():
    policy = RestartPolicy(max_lifetime=2, rate_n=100, rate_period_s=1.0)
    assert policy.allow() and policy.allow() and not policy.allow()


def test_busy_port_moves_to_the_next_free_worker_id(make_worker, capsys):
    worker_id = next(IDS)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 5005 + worker_id))
        cfg = EnvConfig(num_areas=1)
        worker = EnvWorker(cfg, NoiseConfig(), worker_id=worker_id, seed=0, id_stride=100)
        try:
            assert worker.env._port == 5005 + worker_id + 100
            assert worker.collect(3).num_transitions == 3
        finally:
            worker.close()
    assert f"port {5005 + worker_id} is in use" in capsys.readouterr().out


def test_every_port_busy_names_the_ports(monkeypatch):
    """The line said the stock client's 'worker number 0 is still in use', naming no
    port; ours was only the exception's cause, which the user never saw."""
    import launch
    from actors import env_process

    monkeypatch.setattr(env_process, "port_free", lambda port: False)
    with pytest.raises(UnityWorkerInUseException) as err:
        env_process.free_worker_id(5300, 0, 1)
    line = launch.error_line(err.value, None, "results/r")
    assert line == "ports 5300..5315 (every 1) are all in use: pass another --base-port"


@pytest.mark.parametrize("failure", [
    UnityTimeOutException("the env took too long to respond"),
    UnityWorkerInUseException(7),  # a port race: every candidate port taken
    UnsupportedEnv("the restarted env has another spec"),
])
def test_a_failed_reopen_is_one_more_failed_restart(make_worker, monkeypatch, failure):
    worker = make_worker()
    worker.collect(5)
    real_open = actors.env_worker.start_env
    calls = []

    def open_failing_once(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise failure
        return real_open(*args, **kwargs)

    monkeypatch.setattr(actors.env_worker, "start_env", open_failing_once)
    os.kill(worker.env._process.pid, signal.SIGKILL)
    rollout = worker.collect(20)  # the worker lives on: budget is left
    assert len(calls) == 2 and worker.restarts == 2
    assert rollout.num_transitions > 0
    assert_clean(rollout)


def test_spent_limits_kill_the_env_before_raising(make_worker):
    worker = make_worker(restarts=RestartPolicy(max_lifetime=0, rate_n=1, rate_period_s=60.0),
                         timeout_wait=3)
    worker.collect(3)
    hung = worker.env._process.pid
    os.kill(hung, signal.SIGSTOP)  # alive but silent: only a kill ends it
    with pytest.raises(EnvRestartsExhausted, match="restart limits"):
        worker.collect(3)
    assert hung not in drone_pids()


def test_a_restarted_env_gets_the_environment_parameters_again(tmp_path):
    """Unity reads them when an episode begins: an env restarted without them would run
    on its defaults for the rest of the run, and nothing would say so."""
    cfg = EnvConfig(env_params={"gravity": 9.5, "wind": -0.25})
    worker = EnvWorker(cfg, NoiseConfig(), worker_id=next(IDS), seed=0, log_folder=str(tmp_path))
    try:
        worker.collect(3)
        os.kill(worker.env._process.pid, signal.SIGKILL)
        worker.collect(3)
        assert worker.restarts == 1
        log = "".join(p.read_text() for p in tmp_path.glob("Player-*.log"))
        pid = worker.env._process.pid  # the restarted env's
        for line in ("environment parameter gravity = 9.5", "environment parameter wind = -0.25"):
            assert f"[Drone pid {pid}] {line}" in log
    finally:
        worker.close()


def never_connects(tmp_path, then: str = "wait") -> tuple[str, str]:
    """A tiny env executable that starts a child `sleep`, writes its pid, then `then`s
    without ever connecting; returns (its path, the child pid file's path)."""
    script, pid_file = tmp_path / "NotUnity.sh", tmp_path / "child.pid"
    script.write_text(f"#!/bin/sh\nsleep 1000 &\necho $! > {pid_file}\n{then}\n")
    script.chmod(0o755)
    return str(script), str(pid_file)


def child_gone(pid_file: str) -> bool:
    """Whether the script's child `sleep` is gone (a zombie awaiting its reaper counts)."""
    pid = int(open(pid_file).read())
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def kill_child(pid_file: str) -> None:
    """A failing test may have left the child behind: do not leave it to the suite."""
    if os.path.exists(pid_file) and not child_gone(pid_file):
        os.kill(int(open(pid_file).read()), signal.SIGKILL)


@pytest.mark.parametrize("then, expected", [
    ("wait", "did not connect within --timeout-wait 1 s"),  # hangs: the time-out
    ("exit 0", "exited before connecting (return code 0)"),  # exits at once, e.g. /bin/true
])
def test_an_env_that_never_connects_is_one_line_and_leaves_no_child(tmp_path, then, expected):
    script, pid_file = never_connects(tmp_path, then)
    cfg = EnvConfig(env=script, timeout_wait=1)  # the client polls in steps of timeout/10
    logs = str(tmp_path / "env_logs")
    try:
        with pytest.raises((UnityTimeOutException, UnityEnvironmentException)) as caught:
            EnvWorker(cfg, NoiseConfig(), worker_id=next(IDS), seed=0, log_folder=logs)
        message = str(caught.value)
        assert expected in message and "\n" not in message, message
        assert "ML-Agents build" in message and logs in message  # the fix, and where to look
        # This script writes no log: the message must not send the user to a missing file.
        assert "it wrote no log" in message and "its log:" not in message
        # The script was killed, and so was its child: the env's whole session.
        assert wait_until(lambda: not player_pids(script) and child_gone(pid_file), timeout=5)
    finally:
        kill_child(pid_file)


def test_ctrl_c_while_connecting_kills_the_env_and_its_child(tmp_path, monkeypatch):
    script, pid_file = never_connects(tmp_path)

    def interrupted(self, init_parameters):
        wait_until(lambda: os.path.exists(pid_file), timeout=5)
        raise KeyboardInterrupt

    monkeypatch.setattr(LocalUnityEnvironment, "_send_academy_parameters", interrupted)
    worker_id = next(IDS)
    try:
        with pytest.raises(KeyboardInterrupt):
            LocalUnityEnvironment(file_name=script, worker_id=worker_id, base_port=5005,
                                  timeout_wait=30)
        assert wait_until(lambda: not player_pids(script) and child_gone(pid_file), timeout=5)
        assert port_free(5005 + worker_id)  # the gRPC server stopped: the exit cannot hang
    finally:
        kill_child(pid_file)


def test_an_env_failing_at_its_first_reset_is_one_line_naming_its_log(tmp_path):
    """It connected, then exited while making its areas: the user got the stock client's
    'Environment shut down with return code 1.', with no word of the log that says why."""
    cfg = EnvConfig(env="gymnasium:tests.envs.sims.gym_envs:OneCopyOnly-v0", num_areas=2,
                    timeout_wait=10)
    logs = str(tmp_path / "env_logs")
    with pytest.raises(UnityEnvironmentException) as caught:
        EnvWorker(cfg, NoiseConfig(), worker_id=next(IDS), seed=0, log_folder=logs)
    message = str(caught.value)
    assert "exited at its first reset (return code 1)" in message, message
    assert f"its log: {logs}/Player-" in message and "\n" not in message
    assert "no second copy" in open(message.split("its log: ")[1].split(";")[0]).read()


@pytest.mark.parametrize("transport,env", [("protocol", "NanResetEcho"),
                                           ("in-process", "NanResetEcho"),
                                           ("protocol", "InfResetEcho")])
def test_nan_or_inf_at_the_first_reset_is_one_line_with_the_fix(main_error, tmp_path,
                                                                 transport, env):
    """No restart mends a reset that gives NaN or Inf: the stock client's RuntimeError (or
    the in-process env's) came out as a traceback and exit status 1; its Inf message
    ('had Infinite values') still did after NaN's was caught."""
    line, _ = main_error("--mode", "local", "--transport", transport,
                         "--env", f"gymnasium:tests.envs.sims.gym_envs:{env}-v0",
                         "--results-dir", str(tmp_path), "--base-port", "5165",
                         "--train-steps", "100")
    assert "its first reset gave NaN or Inf" in line and "fix the env's reset" in line, line
    assert ("its log: " in line) == (transport == "protocol"), line
    assert wait_until(lambda: player_pids("envs.gymnasium") == [], timeout=5)


def test_an_env_that_exits_is_reported_with_the_error_its_log_ends_with(tmp_path, capfd):
    """Over the protocol an env that raised and exited said only 'Environment shut down
    with return code 1': the cause was in its log, which Ray mode's line did not name."""
    cfg = EnvConfig(env="gymnasium:tests.envs.sims.gym_envs:LostSimulator-v0", num_areas=1)
    worker = EnvWorker(cfg, NoiseConfig(), worker_id=next(IDS), seed=1,
                       log_folder=str(tmp_path), restarts=RestartPolicy(1, 10, 60.0))
    try:
        with pytest.raises(EnvRestartsExhausted) as exhausted:
            worker.collect(20)
    finally:
        worker.close()
    message = str(exhausted.value)
    said = "its log ends with ConnectionError: the simulator went away"
    assert said in message and "after 1 restart, past" in message and "\n" not in message
    log = message.split("its log: ")[1]
    assert os.path.dirname(log) == str(tmp_path) and "went away" in open(log).read()
    assert said in capfd.readouterr().out  # the first failure's "restarting it" line


def test_an_envs_own_output_goes_beside_its_log_and_into_the_line(tmp_path, capfd):
    """The stock launcher passed an env's stdout and stderr to the trainer's terminal: a
    loud build buried the progress bar (400,000 lines), and a build that could not start (a
    missing library, which only the dynamic linker says, on stderr) got 'run it by hand'."""
    linker = "./Game.x86_64: error while loading shared libraries: libGLU.so.1: cannot open"
    script, pid_file = never_connects(
        tmp_path, f"echo 'Mono path[0] = Game_Data/Managed'\necho '{linker}' >&2\nexit 127")
    cfg = EnvConfig(env=script, timeout_wait=5)
    logs = tmp_path / "env_logs"
    worker_id = next(IDS)
    try:
        with pytest.raises(UnityEnvironmentException) as caught:
            EnvWorker(cfg, NoiseConfig(), worker_id=worker_id, seed=0, log_folder=str(logs))
    finally:
        kill_child(pid_file)
    output = logs / f"Player-{worker_id}.out"
    assert f"it last printed {linker!r} ({output})" in str(caught.value), caught.value
    assert output.read_text().splitlines() == ["Mono path[0] = Game_Data/Managed", linker]
    printed = capfd.readouterr()
    assert "Mono path" not in printed.out + printed.err and linker not in printed.err
