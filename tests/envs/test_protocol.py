"""Conformance of the headless Drone with the STOCK mlagents-envs client, unmodified."""

import atexit
import contextlib
import logging
import socket
import time
import uuid

import numpy as np
import pytest

import envs  # noqa: F401
from envs.drone import BEHAVIOR_NAME, DRONE_EXECUTABLE
from mlagents_envs.base_env import ActionTuple
from mlagents_envs.environment import UnityEnvironment
from mlagents_envs.exception import UnityWorkerInUseException
from mlagents_envs.side_channel.engine_configuration_channel import EngineConfigurationChannel
from mlagents_envs.side_channel.environment_parameters_channel import (
    EnvironmentParametersChannel,
)
from mlagents_envs.side_channel.raw_bytes_channel import RawBytesChannel
from tests.helpers import drone_pids

@contextlib.contextmanager
def drone(worker_id, **kwargs):
    env = UnityEnvironment(file_name=DRONE_EXECUTABLE, worker_id=worker_id, no_graphics=True,
                           **kwargs)
    try:
        env.reset()
        yield env
    finally:
        env.close()


def act(env, action):
    env.set_actions(BEHAVIOR_NAME, ActionTuple(continuous=np.asarray(action, np.float32)))
    env.step()
    return env.get_steps(BEHAVIOR_NAME)


def toward_goal(obs):
    """Fly at the goal: action index -> axis is a0->z, a1->x, a2->y."""
    return np.clip(-0.4 * obs[:, [2, 0, 1]], -1, 1)


def test_behavior_spec(worker_id):
    with drone(worker_id) as env:
        assert list(env.behavior_specs) == [BEHAVIOR_NAME]
        spec = env.behavior_specs[BEHAVIOR_NAME]
        assert [o.shape for o in spec.observation_specs] == [(9,)]
        assert spec.action_spec.continuous_size == 3
        assert spec.action_spec.discrete_size == 0


def test_reset_gives_a_fresh_decision(worker_id):
    with drone(worker_id, num_areas=4) as env:
        dec, term = env.get_steps(BEHAVIOR_NAME)
        assert len(term) == 0 and sorted(dec.agent_id) == [0, 1, 2, 3]
        obs = dec.obs[0]
        assert obs.dtype == np.float32
        assert np.all(np.abs(obs[:, :3]) <= 5.0)  # goal within the spawn cube
        assert np.all(obs[:, 3:] == 0.0)  # velocities zeroed at reset
        assert np.all(dec.reward == 0.0)


def test_step_reward_is_progress_minus_penalty(worker_id):
    with drone(worker_id, num_areas=2) as env:
        dec, _ = env.get_steps(BEHAVIOR_NAME)
        d0 = np.linalg.norm(dec.obs[0][:, :3], axis=1)
        dec, term = act(env, toward_goal(dec.obs[0]))
        assert len(term) == 0
        d1 = np.linalg.norm(dec.obs[0][:, :3], axis=1)
        np.testing.assert_allclose(dec.reward, d0 - d1 - 0.01, atol=1e-5)
        assert np.all(d1 < d0)


def run_until_terminal(env, policy, max_steps=2000):
    """Step until some agent terminates; returns (terminal, decision) of that message."""
    dec, _ = env.get_steps(BEHAVIOR_NAME)
    for _ in range(max_steps):
        dec, term = act(env, policy(dec.obs[0]))
        if len(term):
            return term, dec
    raise AssertionError(f"no episode ended within {max_steps} steps")


def test_goal_gives_plus_one_and_terminal_and_next_decision_share_a_message(worker_id):
    with drone(worker_id, num_areas=3) as env:
        term, dec = run_until_terminal(env, toward_goal)
        assert np.all(term.reward == 1.0)
        assert not term.interrupted.any()
        assert np.all(np.linalg.norm(term.obs[0][:, :3], axis=1) <= 0.5)
        # The finished agents already have their next episode's first decision.
        assert set(term.agent_id) <= set(dec.agent_id) and len(dec) == 3
        fresh = np.isin(dec.agent_id, term.agent_id)
        assert np.all(dec.obs[0][fresh, 3:] == 0.0) and np.all(dec.reward[fresh] == 0.0)


def test_leaving_the_radius_gives_minus_one(worker_id):
    with drone(worker_id, num_areas=2) as env:
        term, _ = run_until_terminal(env, lambda obs: -toward_goal(obs) * 10)
        assert np.all(term.reward == -1.0)
        assert not term.interrupted.any()
        assert np.all(np.linalg.norm(term.obs[0][:, :3], axis=1) > 10.0)


def test_max_step_interrupts(worker_id):
    with drone(worker_id, num_areas=4, additional_args=["--max-step", "25"]) as env:
        for step in range(1, 26):
            dec, term = act(env, np.zeros((4, 3)))
            if step < 25:
                assert len(term) == 0
        assert sorted(term.agent_id) == [0, 1, 2, 3]
        assert term.interrupted.all()
        np.testing.assert_allclose(term.reward, -0.01, atol=1e-6)  # hovering in place
        assert len(dec) == 4


def test_num_areas_16_gives_16_agents(worker_id):
    with drone(worker_id, num_areas=16) as env:
        dec, _ = env.get_steps(BEHAVIOR_NAME)
        assert sorted(dec.agent_id) == list(range(16))
        dec, _ = act(env, np.zeros((16, 3)))
        assert dec.obs[0].shape == (16, 9)
        assert len(np.unique(dec.obs[0][:, :3], axis=0)) == 16  # own goal per area


def first_obs(worker_id, **kwargs):
    with drone(worker_id, **kwargs) as env:
        return env.get_steps(BEHAVIOR_NAME)[0].obs[0].copy()


def test_seed_flag_and_client_seed(worker_id):
    a = first_obs(worker_id, num_areas=2, additional_args=["--seed", "7"])
    b = first_obs(worker_id, num_areas=2, additional_args=["--seed", "7"])
    c = first_obs(worker_id, num_areas=2, additional_args=["--seed", "8"])
    d = first_obs(worker_id, num_areas=2, seed=8)  # the seed the client sends
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(c, d)


def test_time_scale_side_channel_is_accepted(worker_id, tmp_path):
    channel = EngineConfigurationChannel()
    with drone(worker_id, side_channels=[channel], log_folder=str(tmp_path)) as env:
        channel.set_configuration_parameters(time_scale=12.0)
        act(env, np.zeros((1, 3)))
        channel.set_configuration_parameters(time_scale=1.0)
        act(env, np.zeros((1, 3)))
    log = (tmp_path / f"Player-{worker_id}.log").read_text()
    assert "time_scale set to 12" in log and "time_scale set to 1 " in log


def test_environment_parameters_reach_the_env(worker_id, tmp_path):
    params = EnvironmentParametersChannel()
    params.set_float_parameter("gravity", 9.81)
    params.set_uniform_sampler_parameters("mass", 1.0, 2.0, seed=3)  # a sampler: not a float
    with drone(worker_id, side_channels=[params], log_folder=str(tmp_path)) as env:
        params.set_float_parameter("wind_speed", -0.5)  # later ones travel with a step
        act(env, np.zeros((1, 3)))
    log = (tmp_path / f"Player-{worker_id}.log").read_text()
    assert "environment parameter gravity = 9.81" in log
    assert "environment parameter wind_speed = -0.5" in log
    assert "mass" not in log


class _Recorder(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record.getMessage())


def test_unknown_side_channels_ignored_and_none_sent(worker_id):
    listen = RawBytesChannel(uuid.uuid4())  # registered: anything sent on it is recorded
    talk = RawBytesChannel(uuid.uuid4())  # a channel the env does not know
    recorder = _Recorder()
    manager_log = logging.getLogger("mlagents_envs.side_channel.side_channel_manager")
    manager_log.addHandler(recorder)
    try:
        with drone(worker_id, side_channels=[listen, talk]) as env:
            talk.send_raw_data(b"hello unity")
            for _ in range(3):
                dec, _ = act(env, np.zeros((1, 3)))
            assert len(dec) == 1
    finally:
        manager_log.removeHandler(recorder)
    assert listen.get_and_clear_received_messages() == []
    assert talk.get_and_clear_received_messages() == []
    assert not [r for r in recorder.records if "Unknown side channel" in r]


def test_two_envs_at_once(worker_id):
    with drone(worker_id, num_areas=1) as a, drone(worker_id + 100, num_areas=3) as b:
        for _ in range(20):
            dec_a, _ = act(a, np.ones((1, 3)))
            dec_b, _ = act(b, -np.ones((3, 3)))
        assert len(dec_a) == 1 and len(dec_b) == 3
        assert dec_a.obs[0][0, 4] > 0 > dec_b.obs[0][0, 4]  # each flew its own way


def test_busy_port_raises_worker_in_use(worker_id, monkeypatch):
    # The stock client registers its atexit close before it binds the port, so a failed
    # constructor leaves a callback that fails at exit; keep this test's out of atexit.
    monkeypatch.setattr(atexit, "register", lambda fn: None)
    with drone(worker_id):
        with pytest.raises(UnityWorkerInUseException):
            UnityEnvironment(file_name=DRONE_EXECUTABLE, worker_id=worker_id, no_graphics=True)
    with socket.socket() as s:
        s.bind(("localhost", 5005 + worker_id))
        with pytest.raises(UnityWorkerInUseException):
            UnityEnvironment(file_name=DRONE_EXECUTABLE, worker_id=worker_id, no_graphics=True)
    assert drone_pids(5005 + worker_id) == []


def test_close_leaves_no_process(worker_id):
    port = 5005 + worker_id
    env = UnityEnvironment(file_name=DRONE_EXECUTABLE, worker_id=worker_id, no_graphics=True)
    env.reset()
    process = env._process
    assert drone_pids(port) == [process.pid]  # the launcher exec'd Python: same pid
    started = time.monotonic()
    env.close()
    # It exits by itself on the close message, long before the client's kill timeout.
    assert time.monotonic() - started < 5.0
    assert process.returncode == 0
    assert drone_pids(port) == []
