"""TD3's three fixes as options of the DDPG step, pinned on tiny CPU tensors."""

import copy

import numpy as np
import pytest
import torch

from learner.checkpoint import CheckpointError
from learner.ddpg import bootstrap_target, critic_target, make_state, update
from learner.learner import Learner
from learner.config import LearnerConfig
from learner.networks import TwinCritic
from tests.helpers import act

OBS, ACT = 4, 2


def td3_config(**overrides) -> LearnerConfig:
    values = dict(hidden_size=16, gamma=0.9, tau=0.1, actor_lr=1e-2, critic_lr=1e-2,
                  twin_critics=True, policy_delay=2, target_noise=0.2, target_noise_clip=0.5)
    return LearnerConfig(**{**values, **overrides})


def make_batch(b=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    return {"obs": torch.randn(b, OBS, generator=g),
            "action": torch.rand(b, ACT, generator=g) * 2 - 1,
            "reward": torch.randn(b, generator=g),
            "next_obs": torch.randn(b, OBS, generator=g),
            "terminated": (torch.rand(b, generator=g) < 0.3).float()}


def test_the_target_takes_the_smaller_critic():
    torch.manual_seed(0)
    state = make_state(OBS, ACT, td3_config(target_noise=0.0), "cpu")
    assert isinstance(state.critic_target, TwinCritic)
    with torch.no_grad():  # make the two target critics disagree a lot
        state.critic_target.q2.q.bias.add_(5.0)
    batch = make_batch()
    with torch.no_grad():
        next_action = state.actor_target(batch["next_obs"])
        q1 = state.critic_target.q1(batch["next_obs"], next_action)
        q2 = state.critic_target.q2(batch["next_obs"], next_action)
    expected = batch["reward"] + 0.9 * (1 - batch["terminated"]) * torch.minimum(q1, q2)
    torch.testing.assert_close(critic_target(state, batch), expected)
    assert torch.equal(torch.minimum(q1, q2), q1)  # q2 is 5 higher everywhere: q1 wins


class RecordingCritic(torch.nn.Module):
    """A critic that remembers the actions it was asked about and values them 0."""

    def forward(self, obs, action):
        self.seen = action.clone()
        return torch.zeros(len(obs))


def test_the_smoothing_noise_is_clipped_and_the_action_stays_in_bounds():
    torch.manual_seed(0)
    actor = make_state(OBS, ACT, td3_config(), "cpu").actor_target
    critic, batch = RecordingCritic(), make_batch(b=4096)
    bootstrap_target(critic, actor, batch, 0.9, noise=100.0, noise_clip=0.5)
    with torch.no_grad():
        clean = actor(batch["next_obs"])
    noise = critic.seen - clean
    assert noise.abs().max() <= 0.5 + 1e-6  # clipped, though its std is 100
    assert (critic.seen.abs() <= 1.0).all()  # the noisy action is clipped to the bounds
    inside = clean.abs() < 0.4  # where the bounds cannot have clipped the noisy action
    at_clip = (noise[inside].abs() - 0.5).abs() < 1e-5
    assert at_clip.float().mean() > 0.99  # |N(0, 100^2)| < 0.5 only 0.4% of the time
    bootstrap_target(critic, actor, batch, 0.9)  # without noise: the target action itself
    assert torch.equal(critic.seen, clean)


@pytest.mark.parametrize("noise", [0.0, 0.2, 100.0])
def test_the_update_smooths_the_target_action_by_the_states_noise(noise):
    """Through update(): the target critic sees actor_target(next_obs) plus noise clipped to
    +-target_noise_clip when target_noise > 0, and exactly that action when it is 0."""
    torch.manual_seed(0)
    state = make_state(OBS, ACT, td3_config(target_noise=noise, target_noise_clip=0.3), "cpu")
    state.critic_target = RecordingCritic()
    batch = make_batch(b=4096)
    update(state, batch, update_actor=False)  # no soft update: the recorder has no weights
    with torch.no_grad():
        clean = state.actor_target(batch["next_obs"])
    jitter = state.critic_target.seen - clean
    if noise == 0.0:
        assert torch.equal(jitter, torch.zeros_like(jitter))
        return
    inside = clean.abs() < 0.6  # where the bounds cannot have clipped the noisy action
    assert inside.float().mean() > 0.9 and jitter.abs().max() <= 0.3 + 1e-6
    assert (jitter[inside] != 0).all()
    if noise == 100.0:  # std far past the clip: almost every draw lands on it
        assert ((jitter[inside].abs() - 0.3).abs() < 1e-5).float().mean() > 0.99
    else:  # std 0.2 clipped at 0.3: ~13% clipped, the rest spread with about that std
        assert 0.15 < jitter[inside].std().item() < 0.2


def test_actor_and_targets_move_only_on_every_dth_update():
    learner = Learner(OBS, ACT, td3_config(policy_delay=3))
    s = learner.state
    nets = {"actor": s.actor, "actor_target": s.actor_target, "critic": s.critic,
            "critic_target": s.critic_target}
    batch = {k: v.numpy() for k, v in make_batch().items()}
    for step in range(1, 7):
        before = {k: copy.deepcopy(n.state_dict()) for k, n in nets.items()}
        metrics = learner.update(batch)
        moved = {k: any(not torch.equal(v, before[k][name]) for name, v in n.state_dict().items())
                 for k, n in nets.items()}
        third = step % 3 == 0
        assert moved == {"actor": third, "actor_target": third, "critic": True,
                         "critic_target": third}, step
        assert ("losses/actor_loss" in metrics) == third


def test_plain_ddpg_is_unchanged_by_the_options_being_off():
    torch.manual_seed(0)
    plain = make_state(OBS, ACT, LearnerConfig(hidden_size=16), "cpu")
    assert not isinstance(plain.critic, TwinCritic) and plain.target_noise == 0.0
    _, metrics = update(plain, make_batch())
    assert {"losses/critic_loss", "losses/actor_loss", "losses/q_values", "td_abs"} <= set(
        metrics)


def test_twin_critics_checkpoint_round_trip_and_refuse_a_single_critic_run():
    learner = Learner(OBS, ACT, td3_config())
    batch = {k: v.numpy() for k, v in make_batch().items()}
    for _ in range(3):
        learner.update(batch)
    state = learner.state_dict()
    again = Learner(OBS, ACT, td3_config())
    again.load_state_dict(state)
    for a, b in zip(again.state.critic.parameters(), learner.state.critic.parameters()):
        assert torch.equal(a, b)
    assert again.learner_steps == 3  # the delay's phase comes back with the counter
    with pytest.raises(CheckpointError, match="with --twin-critics"):
        Learner(OBS, ACT, LearnerConfig(hidden_size=16)).load_state_dict(state)


def test_workers_get_the_first_critic_for_their_priorities():
    learner = Learner(OBS, ACT, td3_config())
    weights, _ = learner.publish_weights(critic=True)
    q1 = learner.state.critic.q1.state_dict()
    assert weights["critic"].keys() == q1.keys()
    assert all(torch.equal(weights["critic"][k], q1[k]) for k in q1)
    raw = np.random.default_rng(0).standard_normal((5, OBS)).astype(np.float32)
    assert act(learner, raw).shape == (5, ACT)
