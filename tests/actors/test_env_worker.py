"""EnvWorker against the real headless Drone: every agent's transitions, matched by id."""

import numpy as np
import pytest
import torch

from actors.config import EnvConfig
from actors.env_worker import EnvWorker
from actors.config import NoiseConfig
from envs.drone.controller import proportional_action

WORKER_IDS = iter(range(80, 100))  # ports 5085-5104: this module's own


@pytest.fixture
def make_worker():
    made = []

    def make(num_areas=4, max_step=1000, policy=None, noise=NoiseConfig()):
        worker = EnvWorker(EnvConfig(num_areas=num_areas, max_step=max_step), noise,
                           worker_id=next(WORKER_IDS), seed=3)
        made.append(worker)
        if policy is not None:  # drive the env with a known controller instead of the actor
            worker.act = lambda obs, agent_ids, mode: policy(obs)
        return worker

    yield make
    for worker in made:
        worker.close()


def test_spec_comes_from_the_env(make_worker):
    worker = make_worker(num_areas=2)
    assert (worker.obs_size, worker.action_size) == (9, 3)
    assert worker.behavior == "My Behavior?team=0"
    assert (worker.policy.fc1.in_features, worker.policy.mu.out_features) == (9, 3)


def test_every_agent_gives_a_transition_every_step(make_worker):
    worker = make_worker(num_areas=4, policy=lambda obs: np.zeros((len(obs), 3), np.float32))
    rollout = worker.collect(10)
    assert rollout.num_transitions == 40
    t = rollout.transitions
    assert t["obs"].shape == (40, 9) and t["next_obs"].shape == (40, 9)
    assert t["action"].shape == (40, 3) and t["terminated"].sum() == 0


def test_goal_episodes_are_terminated_successes(make_worker):
    worker = make_worker(num_areas=4, policy=proportional_action)
    rollout = worker.collect(150)
    t = rollout.transitions
    ended = t["terminated"] == 1.0
    assert ended.sum() == len(rollout.episodes) >= 4
    np.testing.assert_array_equal(t["reward"][ended], 1.0)
    # The terminal transition's next_obs is where the episode ended, not the reset obs.
    assert np.all(np.linalg.norm(t["next_obs"][ended, :3], axis=1) <= 0.5)
    assert all(e.success and not e.interrupted for e in rollout.episodes)
    # Each episode's return is the sum of its rewards.
    assert all(e.episode_return > 0 and e.length >= 1 for e in rollout.episodes)


def test_truncation_is_not_termination(make_worker):
    worker = make_worker(num_areas=3, max_step=20,
                         policy=lambda obs: np.zeros((len(obs), 3), np.float32))
    rollout = worker.collect(20)
    t = rollout.transitions
    assert rollout.num_transitions == 60 and t["terminated"].sum() == 0  # truncation bootstraps
    assert len(rollout.episodes) == 3
    assert all(e.interrupted and not e.success and e.length == 20 for e in rollout.episodes)


def test_transitions_chain_by_agent_id(make_worker):
    """Within an episode an agent's next_obs is its own next row's obs (not another
    agent's: every drone's observation differs); rows are kept per agent id as the worker
    hands them to its experience builder."""
    worker = make_worker(num_areas=4, policy=proportional_action)
    steps = []
    push = worker.experience.transitions
    worker.experience.transitions = lambda step: (steps.append(dict(step)), push(step))[1]
    worker.collect(120)
    by_agent = {}
    for step in steps:
        for i, agent in enumerate(step["agent_id"].tolist()):
            by_agent.setdefault(agent, []).append({k: v[i] for k, v in step.items()})
    assert len(by_agent) == 4
    chained = ends = 0
    for rows in by_agent.values():
        for row, after in zip(rows, rows[1:]):
            if row["episode_end"]:  # its successor is a fresh reset
                ends += 1
                continue
            np.testing.assert_array_equal(row["next_obs"], after["obs"])
            chained += 1
    assert ends >= 1 and chained >= 4 * 100
    # Drones differ: a next_obs taken from another agent could not pass the check above.
    first = np.stack([rows[0]["next_obs"] for rows in by_agent.values()])
    assert len(np.unique(first, axis=0)) == 4


def test_noise_is_per_agent_and_reset_at_episode_end(make_worker):
    worker = make_worker(num_areas=2, max_step=5, noise=NoiseConfig(noise="ou", noise_sigma=0.2))
    calls = []
    original_reset = worker.noise.reset
    worker.noise.reset = lambda ids: (calls.append(list(ids)), original_reset(ids))
    worker.collect(5)
    assert sorted(a for c in calls for a in c) == [0, 1]  # both agents' episodes ended


def test_explore_clips_and_greedy_is_deterministic(make_worker):
    worker = make_worker(num_areas=2)
    with torch.no_grad():
        for p in worker.policy.parameters():
            p.fill_(0.5)  # saturate tanh: the greedy action is ~1, so noise must be clipped
    obs = np.ones((2, 9), np.float32)
    ids = np.array([0, 1])
    explored = worker.act(obs, ids, "explore")
    assert explored.dtype == np.float32 and np.all(np.abs(explored) <= 1.0)
    np.testing.assert_array_equal(worker.act(obs, ids, "greedy"), worker.act(obs, ids, "greedy"))
    rand = worker.act(obs, ids, "random")
    assert rand.shape == (2, 3) and np.all(np.abs(rand) <= 1.0)


def test_set_weights_tags_transitions_with_the_policy_version(make_worker):
    worker = make_worker(num_areas=2)
    worker.set_weights({"actor": {k: v.clone() for k, v in
                                  worker.policy.state_dict().items()}}, 7)
    t = worker.collect(3).transitions
    np.testing.assert_array_equal(t["policy_version"], 7)


def test_zero_steps_is_an_empty_rollout(make_worker):
    rollout = make_worker(num_areas=2).collect(0, "greedy")
    assert rollout.num_transitions == 0 and rollout.episodes == []
    assert rollout.transitions["obs"].shape == (0, 9)


def test_an_env_closed_under_a_running_collect_is_not_restarted(make_worker, capsys):
    """Ray's driver closes a worker at Ctrl-C while its test phase still steps the env on
    another thread: that used to print 'env failed (... No Unity environment is loaded.);
    restarting it' and open a new env on the way out."""
    from mlagents_envs.exception import UnityEnvironmentException

    worker = make_worker(num_areas=1)
    worker.close()
    gone = UnityEnvironmentException("No Unity environment is loaded.")
    with pytest.raises(UnityEnvironmentException):
        worker._restart(gone)
    assert worker.env is None and worker.restarts == 0
    assert "restarting" not in capsys.readouterr().out


def test_workers_of_one_run_get_envs_seeded_apart(make_worker):
    """Worker k's env gets seed + k (as mlagents-learn seeds its env workers): with the
    same seed for all, every worker replayed the same goals, N copies of one stream."""
    zeros = lambda obs: np.zeros((len(obs), 3), np.float32)  # noqa: E731
    first, second = make_worker(num_areas=2, policy=zeros), make_worker(num_areas=2, policy=zeros)
    assert second.worker_id == first.worker_id + 1 and first.seed == second.seed
    obs = [w.collect(1).transitions["obs"] for w in (first, second)]
    assert not np.allclose(obs[0], obs[1])


def test_reset_starts_every_episode_afresh(make_worker):
    """The test phase resets first: its greedy episodes used to carry the steps (and the
    return) that the same episodes had taken while exploring."""
    zeros = lambda obs: np.zeros((len(obs), 3), np.float32)  # noqa: E731
    worker = make_worker(num_areas=2, max_step=40, policy=zeros)
    assert not worker.collect(25).episodes  # mid-episode: 25 of 40 steps taken
    worker.reset()
    assert not worker.collect(39).episodes  # without the reset, both ended at step 40
    ended = worker.collect(1).episodes
    assert len(ended) == 2 and all(e.length == 40 and e.interrupted for e in ended)


def test_a_worker_acts_through_the_normalizer_its_weights_carry(make_worker):
    """--normalize: after set_weights the worker's greedy actions are the learner's on raw
    observations (normalized first), not its actor's on the raw observations."""
    from learner.config import LearnerConfig
    from learner.learner import Learner
    from learner.normalizer import ObsStats
    from tests.helpers import act

    worker = make_worker(num_areas=1)
    learner = Learner(9, 3, LearnerConfig(hidden_size=128, normalize=True, device="cpu"))
    rng = np.random.default_rng(0)
    shifted = rng.normal(np.arange(9) * 3.0, np.arange(1, 10) * 0.5, (500, 9))
    stats = ObsStats(9)
    stats.add(shifted)
    learner.merge_obs_stats(stats.take())
    worker.set_weights(*learner.publish_weights())
    raw = rng.normal(np.arange(9) * 3.0, np.arange(1, 10) * 0.5, (6, 9)).astype(np.float32)
    greedy = worker.act(raw, np.arange(6), "greedy")
    np.testing.assert_allclose(greedy, act(learner, raw), rtol=1e-5, atol=1e-6)
    # The statistics matter: on raw observations the same actor acts otherwise.
    with torch.no_grad():
        assert not np.allclose(worker.actor(torch.from_numpy(raw)).numpy(), greedy, atol=1e-3)
