"""--normalize: running statistics merged exactly from worker reports, applied the same way by
the learner's update, the workers' policy and the checkpoint."""

import numpy as np
import pytest
import torch

from learner.checkpoint import CheckpointError
from learner.ddpg import make_state, update
from learner.learner import Learner
from learner.config import LearnerConfig
from learner.normalizer import CLIP, NormalizedActor, ObsNormalizer, ObsStats
from tests.helpers import act

OBS, ACT = 4, 2


def observations(seed: int, rows: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal([10.0, -3.0, 0.0, 500.0], [2.0, 0.1, 1.0, 50.0], (rows, OBS))


def test_merged_reports_equal_the_statistics_of_all_rows():
    chunks = [observations(seed, rows) for seed, rows in enumerate((1, 7, 300, 2, 45))]
    workers = [ObsStats(OBS), ObsStats(OBS)]
    normalizer = ObsNormalizer(OBS)
    for k, chunk in enumerate(chunks):
        workers[k % 2].add(chunk)
        if k % 2:  # reports arrive at different times from different workers
            normalizer.merge(workers[1].take())
    normalizer.merge(workers[0].take())
    assert workers[0].take() is None  # a report empties the worker's counts
    every = np.concatenate(chunks)
    assert normalizer.count.item() == len(every)
    np.testing.assert_allclose(normalizer.mean.numpy(), every.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(normalizer.var.numpy(), every.var(axis=0), rtol=1e-5)


def test_forward_standardizes_and_clips():
    normalizer = ObsNormalizer(OBS)
    raw = torch.tensor(observations(0, 5), dtype=torch.float32)
    assert torch.equal(normalizer(raw), torch.clamp(raw, -CLIP, CLIP))  # identity at first
    normalizer.merge(ObsStats_of(observations(1, 1000)))
    out = normalizer(torch.tensor(observations(2, 2000), dtype=torch.float32))
    assert out.mean(dim=0).abs().max() < 0.1 and (out.std(dim=0) - 1).abs().max() < 0.1
    far = normalizer(torch.full((1, OBS), 1e6))
    assert torch.all(far == CLIP)


def ObsStats_of(rows: np.ndarray) -> dict:
    stats = ObsStats(OBS)
    stats.add(rows)
    return stats.take()


def test_the_update_sees_normalized_observations():
    """update() on raw observations with a normalizer = update() on pre-normalized ones."""
    cfg = LearnerConfig(hidden_size=16, normalize=True)
    torch.manual_seed(0)
    with_norm = make_state(OBS, ACT, cfg, "cpu")
    with_norm.normalizer.merge(ObsStats_of(observations(3, 500)))
    torch.manual_seed(0)
    plain = make_state(OBS, ACT, LearnerConfig(hidden_size=16), "cpu")
    g = torch.Generator().manual_seed(4)
    raw = {"obs": torch.tensor(observations(5, 8), dtype=torch.float32),
           "next_obs": torch.tensor(observations(6, 8), dtype=torch.float32),
           "action": torch.rand(8, ACT, generator=g) * 2 - 1, "reward": torch.randn(8),
           "terminated": torch.zeros(8)}
    pre = {**raw, "obs": with_norm.normalizer(raw["obs"]),
           "next_obs": with_norm.normalizer(raw["next_obs"])}
    _, m1 = update(with_norm, raw)
    _, m2 = update(plain, pre)
    assert torch.allclose(m1["td_abs"], m2["td_abs"])
    for a, b in zip(with_norm.actor.parameters(), plain.actor.parameters()):
        assert torch.allclose(a, b)


def test_weights_carry_the_normalizer_and_the_worker_policy_acts_as_the_learner():
    learner = Learner(OBS, ACT, LearnerConfig(hidden_size=16, normalize=True))
    learner.merge_obs_stats(ObsStats_of(observations(7, 300)))
    weights, _ = learner.publish_weights()
    # What an env worker builds from them (actors/env_worker.py set_weights).
    from learner.networks import Actor

    actor, normalizer = Actor(OBS, ACT, 16), ObsNormalizer(OBS)
    actor.load_state_dict(weights["actor"])
    normalizer.load_state_dict(weights["normalizer"])
    raw = observations(8, 16).astype(np.float32)
    with torch.no_grad():
        worker_action = NormalizedActor(normalizer, actor)(torch.from_numpy(raw)).numpy()
    np.testing.assert_allclose(worker_action, act(learner, raw), rtol=1e-6, atol=1e-7)


def test_checkpoint_keeps_the_statistics_and_refuses_a_mismatched_flag():
    learner = Learner(OBS, ACT, LearnerConfig(hidden_size=16, normalize=True))
    learner.merge_obs_stats(ObsStats_of(observations(9, 100)))
    state = learner.state_dict()
    again = Learner(OBS, ACT, LearnerConfig(hidden_size=16, normalize=True))
    again.load_state_dict(state)
    assert torch.equal(again.state.normalizer.mean, learner.state.normalizer.mean)
    again.merge_obs_stats(ObsStats_of(observations(10, 100)))  # counting goes on from 100
    assert again.state.normalizer.count.item() == 200
    with pytest.raises(CheckpointError, match="with --normalize"):
        Learner(OBS, ACT, LearnerConfig(hidden_size=16)).load_state_dict(state)
    plain = Learner(OBS, ACT, LearnerConfig(hidden_size=16)).state_dict()
    with pytest.raises(CheckpointError, match="without --normalize"):
        again.load_state_dict(plain)
