"""An env that dies, hangs or sends NaN is restarted by its EnvWorker, rate-limited."""

import os
import signal
import socket
import time

import numpy as np
import pytest

import actors.env_worker
from actors.env_process import EnvRestartsExhausted, RestartPolicy, UnsupportedEnv
from actors.config import EnvConfig
from actors.env_worker import EnvWorker
from mlagents_envs.exception import UnityTimeOutException, UnityWorkerInUseException
from actors.config import NoiseConfig
from tests.helpers import drone_pids

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


def test_nan_observation_is_an_env_fault_and_never_stored(make_worker):
    worker = make_worker(env_args=["--fault-nan-at-step", "15"])
    rollout = worker.collect(40)
    assert worker.restarts >= 1
    assert_clean(rollout)


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


@pytest.mark.parametrize("failure", [
    UnityTimeOutException("the env took too long to respond"),
    UnityWorkerInUseException(7),  # a port race: every candidate port taken
    UnsupportedEnv("the restarted env has another spec"),
])
def test_a_failed_reopen_is_one_more_failed_restart(make_worker, monkeypatch, failure):
    worker = make_worker()
    worker.collect(5)
    real_open = actors.env_worker.open_env
    calls = []

    def open_failing_once(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise failure
        return real_open(*args, **kwargs)

    monkeypatch.setattr(actors.env_worker, "open_env", open_failing_once)
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

