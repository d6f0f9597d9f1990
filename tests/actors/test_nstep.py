"""NStep: hand-computed n-step sums at terminations, truncations and short episodes."""

import numpy as np
import pytest

from actors.nstep import NStep
from replay.buffer import ReplayBuffer

GAMMA = 0.5  # powers of 1/2 and integer rewards: every expected value is exact in float32
REWARDS = [1.0, 2.0, 4.0, 8.0, 16.0]


def step(k: int, agent: int = 0):
    """Step k of an agent's episode: obs encodes (agent, k) so rows can be traced."""
    obs = np.array([agent, k], np.float32)
    return obs, np.array([k / 10], np.float32), obs + np.array([0, 1], np.float32)


def push_one(ns, agent, k, reward, end=False, terminated=False, version=None):
    obs, action, next_obs = step(k, agent)
    return ns.push([agent], obs[None], action[None], [reward], next_obs[None], [terminated],
                   [end], None if version is None else [version])


def run_episode(ns, rewards, terminated, agent=0):
    """Push one agent's episode; returns the output of each step."""
    last = len(rewards) - 1
    return [push_one(ns, agent, k, r, end=k == last, terminated=terminated and k == last)
            for k, r in enumerate(rewards)]


def check(out, starts, returns, next_k, discounts, terminated, agent=0):
    np.testing.assert_array_equal(out["obs"][:, 1], starts)
    np.testing.assert_array_equal(out["obs"][:, 0], agent)
    np.testing.assert_allclose(out["action"][:, 0], np.array(starts, np.float32) / 10)
    np.testing.assert_array_equal(out["reward"], returns)
    np.testing.assert_array_equal(out["next_obs"][:, 1], next_k)
    np.testing.assert_array_equal(out["discount"], discounts)
    np.testing.assert_array_equal(out["terminated"], terminated)
    assert out["reward"].dtype == out["discount"].dtype == np.float32


def test_episode_ending_in_termination():
    outs = run_episode(NStep(3, GAMMA), REWARDS, terminated=True)
    assert [len(o["reward"]) for o in outs] == [0, 0, 1, 1, 3]
    check(outs[2], [0], [1 + 0.5 * 2 + 0.25 * 4], [3], [0.125], [0])
    check(outs[3], [1], [2 + 0.5 * 4 + 0.25 * 8], [4], [0.125], [0])
    # At the termination every open window closes on the terminal obs, with no bootstrap.
    check(outs[4], [2, 3, 4], [4 + 0.5 * 8 + 0.25 * 16, 8 + 0.5 * 16, 16], [5, 5, 5],
          [0, 0, 0], [1, 1, 1])


def test_episode_ending_in_truncation_bootstraps_with_the_window_length():
    outs = run_episode(NStep(3, GAMMA), REWARDS, terminated=False)
    check(outs[4], [2, 3, 4], [12, 16, 16], [5, 5, 5], [0.125, 0.25, 0.5], [0, 0, 0])


@pytest.mark.parametrize("terminated, discounts", [(True, [0, 0]), (False, [0.25, 0.5])])
def test_episode_shorter_than_n_flushes_partial_windows(terminated, discounts):
    ns = NStep(4, GAMMA)
    outs = run_episode(ns, [3.0, 6.0], terminated)
    assert len(outs[0]["reward"]) == 0
    check(outs[1], [0, 1], [3 + 0.5 * 6, 6], [2, 2], discounts, [float(terminated)] * 2)
    assert ns.pending == 0


def test_n_equal_1_reproduces_one_step_transitions():
    rng = np.random.default_rng(0)
    ns = NStep(1, 0.9)
    for _ in range(50):
        b = 3
        ids = rng.permutation(10)[:b]
        obs, next_obs = rng.normal(size=(2, b, 5)).astype(np.float32)
        action = rng.uniform(-1, 1, (b, 2)).astype(np.float32)
        reward = rng.normal(size=b).astype(np.float32)
        end = rng.random(b) < 0.3
        term = (end & (rng.random(b) < 0.5)).astype(np.float32)
        version = rng.integers(0, 100, b)
        out = ns.push(ids, obs, action, reward, next_obs, term, end, version)
        expected = {"obs": obs, "action": action, "reward": reward, "next_obs": next_obs,
                    "terminated": term, "policy_version": version,
                    "discount": np.where(term > 0, 0, np.float32(0.9)).astype(np.float32)}
        for key, value in expected.items():
            np.testing.assert_array_equal(out[key], value, err_msg=key)
        assert ns.pending == 0


def push_rows(ns, rows):
    """Push one step of several agents: rows of (agent, k, reward, end, terminated)."""
    agents = [r[0] for r in rows]
    obs, action, next_obs = (np.stack(x) for x in zip(*(step(k, a) for a, k, *_ in rows)))
    reward, end, term = ([r[i] for r in rows] for i in (2, 3, 4))
    return ns.push(agents, obs, action, reward, next_obs, term, end)


def select(out, index):
    return {key: value[index] for key, value in out.items()}


def test_two_interleaved_agents_keep_separate_windows():
    ns = NStep(2, GAMMA)
    # Agent 1: 3 steps ending in a termination; agent 2: 4 steps, truncated. They share steps
    # in varying row order, and agent 2 requests no decision at step 1.
    out0 = push_rows(ns, [(2, 0, 10.0, 0, 0), (1, 0, 1.0, 0, 0)])
    out1 = push_rows(ns, [(1, 1, 2.0, 0, 0)])
    out2 = push_rows(ns, [(1, 2, 4.0, 1, 1), (2, 1, 20.0, 0, 0)])
    out3 = push_rows(ns, [(2, 2, 40.0, 0, 0)])
    out4 = push_rows(ns, [(2, 3, 80.0, 1, 0)])
    assert len(out0["reward"]) == 0
    check(out1, [0], [1 + 0.5 * 2], [2], [0.25], [0], agent=1)
    # Per agent in row order, oldest window first: agent 1's flush, then agent 2's window 0.
    np.testing.assert_array_equal(out2["obs"][:, 0], [1, 1, 2])
    check(select(out2, [0, 1]), [1, 2], [2 + 0.5 * 4, 4], [3, 3], [0, 0], [1, 1], agent=1)
    check(select(out2, [2]), [0], [10 + 0.5 * 20], [2], [0.25], [0], agent=2)
    check(out3, [1], [20 + 0.5 * 40], [3], [0.25], [0], agent=2)
    check(out4, [2, 3], [40 + 0.5 * 80, 80], [4, 4], [0.25, 0.5], [0, 0], agent=2)
    assert ns.pending == 0


def test_same_agent_id_starts_a_fresh_episode_after_its_end():
    ns = NStep(3, GAMMA)
    run_episode(ns, [1.0, 2.0], terminated=True)
    outs = run_episode(ns, [5.0, 6.0, 7.0], terminated=False)
    check(outs[2], [0, 1, 2], [5 + 3 + 1.75, 6 + 3.5, 7], [3, 3, 3], [0.125, 0.25, 0.5],
          [0, 0, 0])


def test_policy_version_is_the_window_first_steps():
    ns = NStep(2, GAMMA)
    push_one(ns, 0, 0, 1.0, version=7)
    out = push_one(ns, 0, 1, 1.0, version=8)
    np.testing.assert_array_equal(out["policy_version"], [7])
    out = push_one(ns, 0, 2, 1.0, end=True, version=9)
    np.testing.assert_array_equal(out["policy_version"], [8, 9])


def test_many_agents_grow_the_slots_and_match_single_agent_runs():
    """40 agents with random episode ends agree with one NStep per agent."""
    rng = np.random.default_rng(1)
    shared, alone = NStep(3, 0.9), {a: NStep(3, 0.9) for a in range(40)}
    for t in range(30):
        agents = rng.permutation(40)[: rng.integers(1, 40)]
        end = rng.random(len(agents)) < 0.3
        term = end & (rng.random(len(agents)) < 0.5)
        rows_ = [(int(a), t, float(rng.normal()), e, m) for a, e, m in zip(agents, end, term)]
        out = push_rows(shared, rows_)
        expected = [push_rows(alone[row[0]], [row]) for row in rows_]
        for key in out:
            np.testing.assert_array_equal(
                out[key], np.concatenate([e[key] for e in expected]), err_msg=key)
    assert shared.pending == sum(ns.pending for ns in alone.values())


def test_rejects_duplicate_agents_and_termination_without_episode_end():
    ns = NStep(2, GAMMA)
    with pytest.raises(ValueError, match="distinct"):
        push_rows(ns, [(1, 0, 1.0, 0, 0), (1, 0, 1.0, 0, 0)])
    with pytest.raises(ValueError, match="episode_end"):
        push_rows(ns, [(1, 0, 1.0, 0, 1)])


def test_empty_step_returns_empty_transitions():
    out = NStep(2, GAMMA).push([], np.zeros((0, 3)), np.zeros((0, 2)), [], np.zeros((0, 3)),
                                [], [])
    assert out["obs"].shape == (0, 3) and out["discount"].shape == (0,)


def test_output_fits_the_replay_buffer_apart_from_discount():
    outs = run_episode(NStep(2, GAMMA), REWARDS, terminated=True)
    buf = ReplayBuffer(obs_size=2, action_size=1, capacity=16)
    for out in outs:
        buf.add({key: value for key, value in out.items() if key != "discount"})
    assert buf.size == len(REWARDS)
