"""The Gymnasium bridge's mapping and its one-line refusals, in-process (no env launched)."""

import os
import re
import sys

import numpy as np
import pytest
from gymnasium import spaces

import envs
from envs.drone import DRONE_EXECUTABLE
from envs.gymnasium import GYMNASIUM_EXECUTABLE, behavior_name, check_env_id, env_id_of
from envs.gymnasium.simulation import GymnasiumSimulation, area_seed
from envs.gymnasium.spaces import action_mapping, observation_parts

TESTS = "tests.envs.sims.gym_envs:"


def test_resolve_env():
    assert envs.resolve_env("bundled-drone") == (DRONE_EXECUTABLE, [])
    assert envs.resolve_env("gymnasium:HalfCheetah-v5") == (
        GYMNASIUM_EXECUTABLE, ["--env-id", "HalfCheetah-v5"])
    assert envs.resolve_env("gymnasium:pkg.mod:My-v0") == (
        GYMNASIUM_EXECUTABLE, ["--env-id", "pkg.mod:My-v0"])
    assert envs.resolve_env("/builds/MyGame") == ("/builds/MyGame", [])
    assert env_id_of("gymnasium:CartPole-v1") == "CartPole-v1" and env_id_of("x") is None
    with pytest.raises(ValueError, match="gymnasium:<env-id>"):
        envs.resolve_env("gymnasium:")


def test_behavior_name_rule():
    assert behavior_name("HalfCheetah-v5") == "HalfCheetah-v5?team=0"
    assert behavior_name("my_pkg.envs:MyEnv-v0") == "MyEnv-v0?team=0"
    assert behavior_name("ALE/Pong-v5") == "ALE_Pong-v5?team=0"
    assert behavior_name("a b?c/d") == "a_b_c_d?team=0"


def test_dict_order_is_the_spaces_own_sorted_key_order():
    parts = observation_parts(spaces.Dict({"z": spaces.Box(0, 1, (2,)),
                                           "a": spaces.Box(0, 1, (3,)),
                                           "img": spaces.Box(0, 255, (4, 5, 3), np.uint8)}))
    assert [(p.key, p.spec.shape) for p in parts] == [("a", (3,)), ("img", (4, 5, 3)),
                                                      ("z", (2,))]
    assert [p.scale for p in parts] == [None, pytest.approx(1 / 255), None]
    assert [p.spec.name for p in parts] == ["a", "img", "z"]


def test_continuous_scaling_is_linear_and_clipped():
    box = spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 10.0], np.float32))
    mapping, branches = action_mapping(box)
    assert branches == () and mapping.continuous == 2
    scaled = mapping.scale(np.array([[-1, -1], [0, 0], [1, 1], [5, -5]], np.float32))
    np.testing.assert_allclose(scaled, [[-2, 0], [0, 5], [2, 10], [2, 0]])


def test_discrete_multidiscrete_and_hybrid_mapping():
    mapping, branches = action_mapping(spaces.Discrete(3, start=-1))
    assert branches == (3,)
    assert mapping.env_actions(np.zeros((2, 0)), np.array([[0], [2]])) == [-1, 1]
    mapping, branches = action_mapping(spaces.MultiDiscrete([2, 4], start=[1, 0]))
    assert branches == (2, 4)
    np.testing.assert_array_equal(mapping.env_actions(None, np.array([[1, 3]]))[0], [2, 3])
    hybrid = spaces.Tuple((spaces.Box(-3.0, 3.0, (1,)), spaces.Discrete(2)))
    mapping, branches = action_mapping(hybrid)
    assert branches == (2,) and mapping.continuous == 1
    (box, disc), = mapping.env_actions(np.array([[1.0]]), np.array([[1]]))
    assert box[0] == 3.0 and disc == 1 and hybrid.contains((box, disc))


@pytest.mark.parametrize("space, words", [
    (spaces.Discrete(4), re.escape("observation space Discrete(4) is not supported")),
    (spaces.Box(0, 1, (3, 4)), "FlattenObservation"),
    (spaces.Dict({"a": spaces.Discrete(2)}), "observation 'a'"),
    (spaces.Dict({}), "empty Dict"),
])
def test_unsupported_observations_are_refused_in_one_line(space, words):
    with pytest.raises(ValueError, match=words) as err:
        observation_parts(space)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("space, words", [
    (spaces.Box(-np.inf, np.inf, (2,)), "infinite bounds"),
    (spaces.Box(-1, 1, (2, 2)), "1-D float Box"),
    (spaces.Box(0, 5, (2,), np.int64), "1-D float Box"),
    (spaces.MultiDiscrete([[2, 3], [2, 2]]), "MultiDiscrete must be 1-D"),
    (spaces.MultiBinary(3), "not supported"),
    (spaces.Tuple((spaces.Discrete(2), spaces.Box(-1, 1, (1,)))), "not supported"),
])
def test_unsupported_actions_are_refused_in_one_line(space, words):
    with pytest.raises(ValueError, match=words) as err:
        action_mapping(space)
    assert "\n" not in str(err.value)


def test_check_env_id_summarises_what_the_trainer_will_see(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MuJoCo would drop MUJOCO_LOG.TXT here
    cheetah = check_env_id("HalfCheetah-v5")
    assert cheetah.behavior_name == "HalfCheetah-v5?team=0"
    assert cheetah.observation_shapes == ((17,),) and cheetah.continuous_size == 6
    assert cheetah.discrete_branches == () and cheetah.max_episode_steps == 1000
    assert os.listdir(tmp_path) == []
    cartpole = check_env_id("CartPole-v1", max_episode_steps=50)
    assert cartpole.discrete_branches == (2,) and cartpole.max_episode_steps == 50
    assert "discrete branches [2]" in cartpole.summary()


@pytest.mark.parametrize("env_id, words", [
    ("FrozenLake-v1", re.escape("Discrete(16) is not supported")),
    (TESTS + "Unbounded-v0", "infinite bounds"),
    ("NoSuchEnv-v0", "pprint_registry"),
    ("Pendulm-v1", r"Did you mean: `Pendulum`\? Otherwise check the id"),  # (was "?;")
    ("no_such_module:Env-v0", "No module named 'no_such_module'"),
    # A user's own envs/ or runner package is hidden behind this project's of that name.
    ("envs.my_envs:Mine-v0", "'envs' is also a package of drone-ddpg.*rename your package"),
    ("runner:Mine-v0", "'runner' is also a package of drone-ddpg.*rename your package"),
    ("tests.my_envs:Mine-v0", "'tests' is also a package of drone-ddpg.*rename your package"),
    ("bench:Mine-v0", "'bench' is also a package of drone-ddpg.*rename your package"),
    ("launch:Mine-v0", "'launch' is also a module of drone-ddpg.*rename your module"),
])
def test_check_env_id_refuses_in_one_line(env_id, words):
    with pytest.raises(ValueError, match=words) as err:
        check_env_id(env_id)
    assert "\n" not in str(err.value) and env_id in str(err.value)


@pytest.mark.parametrize("source, words", [
    # the user's module imports something missing: name it, not "install that package"
    ("import libfoo_missing\n", "No module named 'libfoo_missing'; user_mod imports "
                                 "libfoo_missing, which is not installed: install it$"),
    # its own code raises ImportError (a library it loads): say which import to try
    ("raise ImportError('libfoo.so.1: cannot open')\n",
     "libfoo.so.1: cannot open; importing user_mod failed: check that "),
    # the module imports, but registers no such id: gymnasium's guess is from its own list
    ("", "Environment `Mine` doesn.t exist; check the id against those user_mod "
         "registers"),
])
def test_a_users_module_that_fails_is_told_what_failed(tmp_path, monkeypatch, source, words):
    (tmp_path / "user_mod.py").write_text(source)
    monkeypatch.chdir(tmp_path)  # a module in the working directory is importable
    monkeypatch.delitem(sys.modules, "user_mod", raising=False)
    with pytest.raises(ValueError, match=words) as err:
        check_env_id("user_mod:Mine-v0")
    assert "\n" not in str(err.value) and "?;" not in str(err.value)


def test_bad_max_episode_steps():
    with pytest.raises(ValueError, match="--max-episode-steps must be >= 1"):
        check_env_id("CartPole-v1", max_episode_steps=0)


def test_area_seeds_are_distinct_and_stable():
    seeds = [area_seed(s, k) for s in (0, 1) for k in range(4)]
    assert len(set(seeds)) == 8 and area_seed(0, 1) == seeds[1]
    assert area_seed(-1, 0) != area_seed(0, 0)


def test_terminal_and_next_first_decision_share_a_step():
    sim = GymnasiumSimulation("CartPole-v1")
    sim.start(num_areas=2, seed=0)
    try:
        sim.reset()
        for _ in range(100):
            batch = sim.step({})[sim.behavior]  # no actions: action 0 pushes left until it falls
            if batch.done.any():
                break
        ended = batch.agent_id[batch.done]
        assert len(ended) and batch.done[:len(ended)].all()  # terminal rows come first
        decisions = batch.agent_id[~batch.done]
        assert sorted(decisions) == [0, 1]  # every agent decides, the restarted ones too
        fresh = ~batch.done & np.isin(batch.agent_id, ended)
        assert np.all(batch.reward[fresh] == 0.0) and np.all(batch.reward[batch.done] == 1.0)
        assert not batch.max_step_reached.any()  # fell over: terminated, not truncated
    finally:
        sim.close()
