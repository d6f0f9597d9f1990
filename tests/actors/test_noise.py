"""Exploration noise: OU independence, reset and statistics; Gaussian; explore() clipping."""

import numpy as np
import pytest

from actors.noise import GaussianNoise, OUNoise, explore, make_noise
from actors.config import NoiseConfig


def ou(theta=0.15, sigma=0.2, mu=0.0, action_size=3, seed=0) -> OUNoise:
    return OUNoise(action_size, mu=mu, theta=theta, sigma=sigma, rng=np.random.default_rng(seed))


def run(noise, agent_ids, steps: int) -> np.ndarray:
    """(steps, len(agent_ids), action_size) trajectory of samples."""
    return np.stack([noise.sample(np.asarray(agent_ids)) for _ in range(steps)])


def innovations(x: np.ndarray, theta: float, mu: float = 0.0) -> np.ndarray:
    """The sigma * N(0,1) draws recovered from consecutive OU states (they are iid)."""
    return x[1:] - x[:-1] - theta * (mu - x[:-1])


def test_ou_dimensions_are_independent():
    theta = 0.15
    x = run(ou(theta=theta), np.arange(50), 2000).astype(np.float64)
    eps = innovations(x, theta).reshape(-1, 3)  # ~100k iid draws per dim
    corr = np.corrcoef(eps.T)
    # The seed's shared draw gives correlation exactly 1. Independent: std error ~0.003,
    # tolerance 0.02 (~6 std errors).
    assert np.all(np.abs(corr[np.triu_indices(3, 1)]) < 0.02), corr
    # The states themselves too (autocorrelated, so fewer effective samples: tolerance 0.05).
    corr_x = np.corrcoef(x.reshape(-1, 3).T)
    assert np.all(np.abs(corr_x[np.triu_indices(3, 1)]) < 0.05), corr_x


def test_ou_agents_are_independent():
    theta = 0.15
    x = run(ou(theta=theta, action_size=1), [7, 8], 50_000)[..., 0].astype(np.float64)
    assert not np.allclose(x[:, 0], x[:, 1])
    eps = innovations(x, theta)
    # 50k iid pairs: std error ~0.0045; tolerance 0.03.
    assert abs(np.corrcoef(eps.T)[0, 1]) < 0.03


def test_ou_reset_returns_only_that_agent_to_mu():
    mu, theta = 0.3, 0.2
    noise = ou(theta=theta, sigma=1.0, mu=mu)
    for _ in range(5):
        noise.sample(np.array([1, 2, 3]))
    before = dict(zip(*noise.state_dict().values()))
    noise.reset(np.array([2]))
    after = dict(zip(*noise.state_dict().values()))
    np.testing.assert_array_equal(after[1], before[1])
    np.testing.assert_array_equal(after[3], before[3])
    # Agent 2 restarts at mu: with sigma 0 its next step stays exactly at mu,
    # while the others keep decaying from where they were.
    noise.sigma = 0.0
    out = noise.sample(np.array([1, 2, 3])).astype(np.float64)
    np.testing.assert_allclose(out[1], [mu] * 3, rtol=1e-6)
    np.testing.assert_allclose(out[0], mu + (1 - theta) * (before[1] - mu), rtol=1e-6)
    np.testing.assert_allclose(out[2], mu + (1 - theta) * (before[3] - mu), rtol=1e-6)


def test_ou_new_agent_starts_at_mu():
    noise = ou(theta=0.5, sigma=0.0, mu=-0.4)
    np.testing.assert_allclose(noise.sample(np.array([42])), [[-0.4] * 3], rtol=1e-6)


def test_ou_mean_reversion_is_exact_without_noise():
    mu, theta = 0.3, 0.15
    noise = ou(theta=theta, sigma=0.0, mu=mu)
    x0 = np.array([[1.0, -2.0, 0.5]])
    noise.load_state_dict({"agent_ids": np.array([0]), "states": x0})
    for k in range(1, 31):
        x = noise.sample(np.array([0]))
        assert x.dtype == np.float32
        # Exact up to the float32 return: rtol 1e-6.
        np.testing.assert_allclose(x, mu + (1 - theta) ** k * (x0 - mu), rtol=1e-6, atol=1e-7)


def test_ou_stationary_std():
    theta, sigma = 0.15, 0.2
    noise = ou(theta=theta, sigma=sigma)
    ids = np.arange(200)
    run(noise, ids, 200)  # burn-in: 0.85^200 ~ 1e-14 of the start remains
    x = run(noise, ids, 1500).astype(np.float64)
    expected = sigma / np.sqrt(2 * theta - theta**2)
    # ~200*3*1500*(0.15/1.85) ~ 73k effective samples: relative std error ~0.3%;
    # tolerance 3%.
    assert abs(x.std() / expected - 1) < 0.03, (x.std(), expected)
    assert abs(x.mean()) < 0.03 * expected


def test_ou_state_dict_round_trip():
    a = ou(seed=5)
    a.sample(np.array([3, 9]))
    b = ou(seed=6)
    b.load_state_dict(a.state_dict())
    b.rng = np.random.default_rng(11)
    a.rng = np.random.default_rng(11)
    np.testing.assert_array_equal(a.sample(np.array([9, 3, 4])), b.sample(np.array([9, 3, 4])))


def test_repeated_agent_id_in_one_call_rejected():
    with pytest.raises(ValueError, match="unique"):
        ou().sample(np.array([1, 1]))


def test_gaussian_std_and_shape():
    sigma = 0.3
    noise = GaussianNoise(3, sigma, np.random.default_rng(0))
    x = np.concatenate([noise.sample(np.arange(100)) for _ in range(1000)]).astype(np.float64)
    assert x.shape == (100_000, 3)
    # 300k iid draws: relative std error of the std ~0.13%; tolerance 2%.
    assert abs(x.std() / sigma - 1) < 0.02
    assert abs(x.mean()) < 0.01 * sigma  # std error of the mean ~0.0018 sigma
    corr = np.corrcoef(x.T)
    assert np.all(np.abs(corr[np.triu_indices(3, 1)]) < 0.02)
    noise.reset(np.array([1, 2]))  # no-op, must not raise
    assert noise.state_dict() == {}


@pytest.mark.parametrize("kind", ["ou", "gaussian"])
def test_same_seed_same_noise(kind):
    cfg = NoiseConfig(noise=kind, noise_sigma=0.2)
    a = make_noise(cfg, 3, np.random.default_rng(7))
    b = make_noise(cfg, 3, np.random.default_rng(7))
    c = make_noise(cfg, 3, np.random.default_rng(8))
    ids = np.array([0, 1, 2])
    xa, xb, xc = run(a, ids, 20), run(b, ids, 20), run(c, ids, 20)
    np.testing.assert_array_equal(xa, xb)
    assert not np.allclose(xa, xc)
    assert xa.dtype == np.float32 and xa.shape == (20, 3, 3)


def test_make_noise_uses_config():
    rng = np.random.default_rng(0)
    o = make_noise(NoiseConfig(noise="ou", noise_sigma=0.5, ou_theta=0.3, ou_mu=0.1), 2, rng)
    assert isinstance(o, OUNoise)
    assert (o.action_size, o.sigma, o.theta, o.mu) == (2, 0.5, 0.3, 0.1)
    g = make_noise(NoiseConfig(), 3, rng)
    assert isinstance(g, GaussianNoise) and (g.action_size, g.sigma) == (3, 0.1)
    with pytest.raises(ValueError):
        NoiseConfig(noise_sigma=-1.0)
    with pytest.raises(ValueError):
        NoiseConfig(noise="uniform")


def test_explore_clips_and_returns_float32():
    action = np.array([[0.9, -0.9, 0.0], [1.0, -1.0, 0.5]], dtype=np.float64)
    noise = np.array([[0.5, -0.5, 0.25], [0.0, 0.0, -2.0]], dtype=np.float64)
    out = explore(action, noise)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.float32([[1.0, -1.0, 0.25], [1.0, -1.0, -1.0]]))
    rng = np.random.default_rng(0)
    big = explore(rng.uniform(-1, 1, (1000, 3)), rng.normal(0, 5, (1000, 3)))
    assert big.min() >= -1.0 and big.max() <= 1.0
    with pytest.raises(ValueError):
        explore(np.zeros((2, 3)), np.zeros((1, 3)))


def test_a_resume_may_switch_the_noise_kind():
    """--resume --noise ou over a Gaussian run's checkpoint raised KeyError 'states'."""
    gaussian = GaussianNoise(2, sigma=0.1, rng=np.random.default_rng(0))
    process = ou(action_size=2)
    process.sample(np.array([3]))
    process.load_state_dict(gaussian.state_dict())
    assert process.state_dict()["agent_ids"].size == 0  # every agent starts again at mu
    gaussian.load_state_dict(ou(action_size=2).state_dict())  # and the other way
