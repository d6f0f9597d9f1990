"""The test-only scenes, as the STOCK client sees them (they serve the trainer's tests)."""

import numpy as np

import envs  # noqa: F401
from mlagents_envs.base_env import ActionTuple
from tests.envs.players import opened
from tests.envs.sims import SIM_EXECUTABLE
from tests.envs.sims.reach import SPEED


def scene(worker_id, name, **kwargs):
    return opened(SIM_EXECUTABLE, worker_id, ["--sim", name], **kwargs)


def act(env, name, continuous=None, discrete=None):
    env.set_actions(name, ActionTuple(
        continuous=None if continuous is None else np.asarray(continuous, np.float32),
        discrete=None if discrete is None else np.asarray(discrete, np.int32)))


def test_two_behaviors(player_worker_id):
    with scene(player_worker_id, "two-behaviors", num_areas=2) as env:
        specs = env.behavior_specs
        assert list(specs) == ["Alpha?team=0", "Beta?team=0"]
        assert [o.shape for o in specs["Alpha?team=0"].observation_specs] == [(2,)]
        assert [o.shape for o in specs["Beta?team=0"].observation_specs] == [(3,)]
        assert specs["Alpha?team=0"].action_spec.continuous_size == 2
        assert specs["Beta?team=0"].action_spec.continuous_size == 3
        alpha, _ = env.get_steps("Alpha?team=0")
        beta, _ = env.get_steps("Beta?team=0")
        assert list(alpha.agent_id) == [0, 1] and list(beta.agent_id) == [2, 3]
        act(env, "Alpha?team=0", np.ones((2, 2)))  # Beta gets the client's zero actions
        env.step()
        np.testing.assert_allclose(env.get_steps("Alpha?team=0")[0].obs[0],
                                   alpha.obs[0] + SPEED, atol=1e-6)
        np.testing.assert_allclose(env.get_steps("Beta?team=0")[0].obs[0], beta.obs[0])


def test_visual(player_worker_id):
    with scene(player_worker_id, "visual") as env:
        (name, spec), = env.behavior_specs.items()
        assert name == "Visual?team=0" and spec.action_spec.continuous_size == 2
        assert [o.shape for o in spec.observation_specs] == [(2,), (8, 8, 3)]
        assert [int(d) for d in spec.observation_specs[1].dimension_property] == [2, 2, 1]
        decision, _ = env.get_steps(name)
        image = decision.obs[1][0]
        np.testing.assert_allclose(image[..., 2], np.arange(64).reshape(8, 8) / 64, atol=1e-7)
        assert image[..., 0].sum() == 1.0 and image[4, 4, 0] == 1.0  # the point at (0, 0)
        assert image[..., 1].sum() == 1.0  # the goal


def test_discrete(player_worker_id):
    with scene(player_worker_id, "discrete") as env:
        (name, spec), = env.behavior_specs.items()
        assert spec.action_spec.continuous_size == 0
        assert spec.action_spec.discrete_branches == (3, 3)
        before, _ = env.get_steps(name)
        act(env, name, discrete=[[2, 0]])  # x: +1, y: -1
        env.step()
        after, _ = env.get_steps(name)
        np.testing.assert_allclose(after.obs[0] - before.obs[0], [[SPEED, -SPEED]], atol=1e-6)


def test_hybrid(player_worker_id):
    with scene(player_worker_id, "hybrid") as env:
        (name, spec), = env.behavior_specs.items()
        assert spec.action_spec.continuous_size == 1
        assert spec.action_spec.discrete_branches == (4,)
        before, _ = env.get_steps(name)
        act(env, name, continuous=[[0.0]], discrete=[[3]])  # half speed, y+
        env.step()
        after, _ = env.get_steps(name)
        np.testing.assert_allclose(after.obs[0] - before.obs[0], [[0.0, SPEED / 2]], atol=1e-6)


def test_decision_periods(player_worker_id):
    with scene(player_worker_id, "decision-periods") as env:
        (name, spec), = env.behavior_specs.items()
        assert name == "Periodic?team=0" and spec.action_spec.continuous_size == 1
        decision, _ = env.get_steps(name)
        assert list(decision.agent_id) == [0, 1, 2, 3]
        transitions, ends = 0, []
        for s in range(1, 13):
            act(env, name, np.full((len(decision), 1), 0.5))  # per-step reward 1
            env.step()
            decision, terminal = env.get_steps(name)
            assert sorted(decision.agent_id) == [k for k in range(4) if s % (k + 1) == 0]
            if s <= 4 and s % 4 == 0:
                assert decision.reward[list(decision.agent_id).index(3)] == 4.0  # 4 steps
            transitions += len(decision)  # each report: a terminal or a continuing decision
            ends += [(s, int(a), bool(i)) for a, i in zip(terminal.agent_id, terminal.interrupted)]
        assert transitions == 12 + 6 + 4 + 3
        assert ends == [(4, 0, False), (8, 0, True), (8, 1, False), (12, 0, False),
                        (12, 2, False)]


def test_vanishing(player_worker_id):
    with scene(player_worker_id, "vanishing") as env:
        (name, _), = env.behavior_specs.items()
        decision, _ = env.get_steps(name)
        seen, gone, transitions = set(decision.agent_id), set(), 0
        previous = set(decision.agent_id)
        for _ in range(15):
            act(env, name, np.zeros((len(decision), 1)))
            env.step()
            decision, terminal = env.get_steps(name)
            now = set(decision.agent_id)
            assert len(terminal) == 0 and len(now) == 2
            assert not now & gone  # a vanished id never comes back
            gone |= previous - now
            transitions += len(now & previous)
            seen |= now
            previous = now
        assert transitions == (15 - 15 // 3) + (15 - 15 // 5)
        assert len(gone) == 15 // 3 + 15 // 5 and seen == set(range(10))
