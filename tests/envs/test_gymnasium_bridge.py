"""The Gymnasium bridge against the STOCK mlagents-envs client, launched like a Unity build."""

import math
import time

import numpy as np
import pytest

import envs  # noqa: F401
from envs.gymnasium import GYMNASIUM_EXECUTABLE
from mlagents_envs.base_env import ActionTuple
from mlagents_envs.environment import UnityEnvironment
from mlagents_envs.exception import UnityEnvironmentException
from tests.envs.players import next_worker_id, opened, player_pids

TESTS = "tests.envs.sims.gym_envs:"


def bridge(worker_id, env_id, *args, **kwargs):
    return opened(GYMNASIUM_EXECUTABLE, worker_id, ["--env-id", env_id, *args], **kwargs)


def only_behavior(env):
    names = list(env.behavior_specs)
    assert len(names) == 1
    return names[0], env.behavior_specs[names[0]]


def step(env, name, continuous=None, discrete=None):
    env.set_actions(name, ActionTuple(
        continuous=None if continuous is None else np.asarray(continuous, np.float32),
        discrete=None if discrete is None else np.asarray(discrete, np.int32)))
    env.step()
    return env.get_steps(name)


def test_pendulum_actions_are_scaled_to_its_bounds(player_worker_id):
    with bridge(player_worker_id, "Pendulum-v1", num_areas=4) as env:
        name, spec = only_behavior(env)
        assert name == "Pendulum-v1?team=0" and spec.action_spec.continuous_size == 1
        before, _ = env.get_steps(name)
        after, _ = step(env, name, [[1.0], [-1.0], [0.5], [3.0]])
        cos, sin, thdot = before.obs[0].T.astype(np.float64)
        th = np.arctan2(sin, cos)
        # Pendulum: thdot' = thdot + (3 g / 2 l sin th + 3 / (m l^2) u) dt, g=10, m=l=1, dt=.05
        torque = ((after.obs[0][:, 2] - thdot) / 0.05 - 15.0 * np.sin(th)) / 3.0
        np.testing.assert_allclose(torque, [2.0, -2.0, 1.0, 2.0], atol=1e-3)
        th_norm = (th + math.pi) % (2 * math.pi) - math.pi
        cost = th_norm**2 + 0.1 * thdot**2 + 0.001 * np.array([2.0, -2.0, 1.0, 2.0]) ** 2
        np.testing.assert_allclose(after.reward, -cost, atol=1e-4)


def test_truncation_is_interrupted_and_restarts_in_the_same_message(player_worker_id):
    with bridge(player_worker_id, "Pendulum-v1", "--max-episode-steps", "5",
                num_areas=2) as env:
        name, _ = only_behavior(env)
        for i in range(5):
            decision, terminal = step(env, name, np.zeros((2, 1)))
            assert len(terminal) == (2 if i == 4 else 0)
        assert sorted(terminal.agent_id) == [0, 1] and terminal.interrupted.all()
        assert np.all(terminal.reward < 0)  # Pendulum's cost, not the restart's 0
        assert sorted(decision.agent_id) == [0, 1] and np.all(decision.reward == 0.0)
        assert not np.array_equal(terminal.obs[0][np.argsort(terminal.agent_id)],
                                  decision.obs[0][np.argsort(decision.agent_id)])


def test_cartpole_discrete_spec_and_termination(player_worker_id):
    with bridge(player_worker_id, "CartPole-v1") as env:
        name, spec = only_behavior(env)
        assert name == "CartPole-v1?team=0"
        assert [o.shape for o in spec.observation_specs] == [(4,)]
        assert spec.action_spec.continuous_size == 0
        assert spec.action_spec.discrete_branches == (2,)
        for _ in range(100):  # always push left: it falls within a few dozen steps
            decision, terminal = step(env, name, discrete=[[0]])
            if len(terminal):
                break
        assert list(terminal.agent_id) == [0] and not terminal.interrupted[0]
        assert terminal.reward[0] == 1.0 and list(decision.agent_id) == [0]


def test_halfcheetah_spec_and_a_few_steps(player_worker_id):
    with bridge(player_worker_id, "HalfCheetah-v5", num_areas=2) as env:
        name, spec = only_behavior(env)
        assert name == "HalfCheetah-v5?team=0"
        assert [o.shape for o in spec.observation_specs] == [(17,)]
        assert spec.action_spec.continuous_size == 6 and spec.action_spec.discrete_size == 0
        rng = np.random.default_rng(0)
        first, _ = env.get_steps(name)
        for _ in range(5):
            decision, terminal = step(env, name, rng.uniform(-1, 1, (2, 6)))
        assert len(terminal) == 0 and decision.obs[0].shape == (2, 17)
        assert np.all(np.isfinite(decision.obs[0])) and not np.array_equal(
            decision.obs[0], first.obs[0])


def test_dict_observation_order_scaling_and_termination(player_worker_id, tmp_path):
    with bridge(player_worker_id, TESTS + "Echo-v0", "--no-such-flag", "7",
                log_folder=str(tmp_path)) as env:
        name, spec = only_behavior(env)
        assert name == "Echo-v0?team=0"
        assert [(o.name, o.shape) for o in spec.observation_specs] == [
            ("position", (3,)), ("velocity", (2,))]
        decision, terminal = step(env, name, [[-1.0, -1.0]])
        np.testing.assert_allclose(decision.obs[0], [[-2.0, 0.0, 1.0]])  # the env's bounds
        assert decision.reward[0] == -2.0 and len(terminal) == 0
        decision, terminal = step(env, name, [[0.5, 1.0]])  # action[1] = 10: terminated
        np.testing.assert_allclose(terminal.obs[0], [[1.0, 10.0, 2.0]])
        assert terminal.reward[0] == 1.0 and not terminal.interrupted[0]
        np.testing.assert_allclose(decision.obs[0], [[0.0, 0.0, 0.0]])  # restarted
    log = (tmp_path / f"Player-{player_worker_id}.log").read_text()
    assert "ignoring unknown arguments, as a Unity player does: --no-such-flag 7" in log


def reset_velocities(worker_id, *args, **kwargs):
    with bridge(worker_id, TESTS + "Echo-v0", *args, num_areas=4, **kwargs) as env:
        decision, _ = env.get_steps(only_behavior(env)[0])
        assert list(decision.agent_id) == [0, 1, 2, 3]
        return decision.obs[1].copy()


def test_areas_are_seeded_apart_and_reproducibly(player_worker_id):
    a = reset_velocities(player_worker_id, seed=3)
    b = reset_velocities(next_worker_id(), seed=3)
    c = reset_velocities(next_worker_id(), seed=4)
    d = reset_velocities(next_worker_id(), "--seed", "4", seed=3)
    assert len(np.unique(a, axis=0)) == 4  # every area its own stream
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(c, d)  # --seed overrides the client's seed


def test_image_observation_and_discrete_start(player_worker_id):
    with bridge(player_worker_id, TESTS + "Image-v0") as env:
        name, spec = only_behavior(env)
        image = spec.observation_specs[0]
        assert image.shape == (6, 5, 3) and [int(d) for d in image.dimension_property] == [2, 2, 1]
        assert spec.action_spec.discrete_branches == (3,)
        decision, _ = step(env, name, discrete=[[2]])  # branch value 2 = Discrete start -1 + 2
        pattern = 15 * np.arange(6)[:, None, None] + 3 * np.arange(5)[None, :, None] + np.arange(3)
        pattern[5, 4, 2] = 102
        np.testing.assert_allclose(decision.obs[0][0], pattern / 255.0, rtol=1e-6)
        assert decision.reward[0] == 1.0


def test_env_kwargs_reach_gymnasium_make_in_both_transports(player_worker_id):
    from envs.in_process import open_in_process

    args = ["--env-kwargs", '{"height": 7, "width": 9}']
    with bridge(player_worker_id, TESTS + "Image-v0", *args) as env:
        name, spec = only_behavior(env)
        assert spec.observation_specs[0].shape == (7, 9, 3)
    ours = open_in_process(f"gymnasium:{TESTS}Image-v0", ["--env-id", TESTS + "Image-v0", *args],
                           0, 1)
    try:
        assert dict(ours.behavior_specs) == {name: spec}
    finally:
        ours.close()


def test_hybrid_actions(player_worker_id):
    with bridge(player_worker_id, TESTS + "Hybrid-v0") as env:
        name, spec = only_behavior(env)
        assert spec.action_spec.continuous_size == 1
        assert spec.action_spec.discrete_branches == (2, 3)
        decision, _ = step(env, name, continuous=[[0.5]], discrete=[[1, 2]])
        np.testing.assert_allclose(decision.obs[0], [[0.5, 1.0, 2.0]])


def test_nan_passes_through_to_the_client(player_worker_id):
    with bridge(player_worker_id, TESTS + "NanEcho-v0") as env:
        name, _ = only_behavior(env)
        step(env, name, [[0.0, 0.0]])
        step(env, name, [[0.0, 0.0]])
        with pytest.raises(RuntimeError, match="NaN"):  # the stock client's own guard
            step(env, name, [[0.0, 0.0]])


def test_close_leaves_no_process(player_worker_id):
    port = 5005 + player_worker_id
    env = UnityEnvironment(file_name=GYMNASIUM_EXECUTABLE, worker_id=player_worker_id,
                           no_graphics=True, additional_args=["--env-id", "HalfCheetah-v5"])
    env.reset()
    process = env._process
    assert player_pids("envs.gymnasium", port) == [process.pid]  # the launchers exec'd
    started = time.monotonic()
    env.close()
    assert time.monotonic() - started < 5.0  # it left on the close message, not killed
    assert process.returncode == 0
    assert player_pids("envs.gymnasium", port) == []


def test_unsupported_space_exits_at_once_with_one_line(player_worker_id, tmp_path):
    started = time.monotonic()
    with pytest.raises(UnityEnvironmentException, match="return code 2"):
        # The client looks at its process every timeout_wait / 10 s while it waits.
        UnityEnvironment(file_name=GYMNASIUM_EXECUTABLE, worker_id=player_worker_id,
                         no_graphics=True, log_folder=str(tmp_path), timeout_wait=30,
                         additional_args=["--env-id", "FrozenLake-v1"])
    assert time.monotonic() - started < 10.0  # far from timeout_wait
    log = (tmp_path / f"Player-{player_worker_id}.log").read_text()
    errors = [line for line in log.splitlines() if "not supported" in line]
    assert len(errors) == 1 and "FlattenObservation" in errors[0]
    assert player_pids("envs.gymnasium", 5005 + player_worker_id) == []


def test_a_message_over_the_grpc_limit_is_an_error_that_says_so(player_worker_id, tmp_path):
    """It was logged as a clean stop, "trainer unreachable", with exit code 0."""
    with pytest.raises(UnityEnvironmentException, match="return code 1"):
        with bridge(player_worker_id, TESTS + "BigImage-v0", num_areas=2, timeout_wait=20,
                    log_folder=str(tmp_path)):
            pass
    log = (tmp_path / f"Player-{player_worker_id}.log").read_text()
    assert "MiB is over the trainer's gRPC limit (4 MiB): lower --num-areas" in log
    assert player_pids("envs.gymnasium", 5005 + player_worker_id) == []


def test_an_env_failing_as_it_builds_its_areas_is_an_error_not_a_hang(player_worker_id):
    """The bridge built its areas before the handshake's last message, which the stock
    client awaits without a time limit: a failure there hung the trainer for good."""
    import threading

    outcome = {}

    def connect():
        try:
            with bridge(player_worker_id, TESTS + "OneCopyOnly-v0", num_areas=2,
                        timeout_wait=10):
                outcome["error"] = None
        except Exception as err:  # noqa: BLE001 (checked below)
            outcome["error"] = err

    client = threading.Thread(target=connect, daemon=True)
    client.start()
    client.join(timeout=40)
    assert "error" in outcome, "the client still waits for the env"
    assert isinstance(outcome["error"], UnityEnvironmentException), outcome["error"]
    assert player_pids("envs.gymnasium", 5005 + player_worker_id) == []


def test_a_refusal_is_printed_once_when_the_bridge_is_run_by_hand():
    """Without -logFile the log goes to the terminal: the refusal came twice (the log line,
    then the line for the trainer's stderr)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "envs.gymnasium", "--env-id",
                           TESTS + "Unbounded-v0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert (done.stdout + done.stderr).count("infinite bounds") == 1, done
