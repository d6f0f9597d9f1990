"""The DDPG math on tiny CPU tensors: gradient isolation, targets, bootstrapping."""

import copy

import pytest
import torch

from learner.ddpg import critic_target, make_state, update
from learner.config import LearnerConfig

OBS, ACT = 4, 2


def make(tau=0.1, gamma=0.9, actor_lr=1e-2, critic_lr=1e-2, seed=0):
    torch.manual_seed(seed)
    cfg = LearnerConfig(
        gamma=gamma, tau=tau, actor_lr=actor_lr, critic_lr=critic_lr, hidden_size=16
    )
    state = make_state(OBS, ACT, cfg, "cpu")
    # Targets start as copies of the online nets; nudge them so that a soft update that
    # ignored either side (or copied one over) would show.
    with torch.no_grad():
        for net in (state.actor_target, state.critic_target):
            for p in net.parameters():
                p.add_(0.1 * torch.randn_like(p))
    return state


def make_batch(b=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    return {
        "obs": torch.randn(b, OBS, generator=g),
        "action": torch.rand(b, ACT, generator=g) * 2 - 1,
        "reward": torch.randn(b, generator=g),
        "next_obs": torch.randn(b, OBS, generator=g),
        "terminated": (torch.rand(b, generator=g) < 0.5).float(),
    }


def next_q(state, batch):
    """Q'(s', mu'(s')) computed independently of ddpg.update."""
    with torch.no_grad():
        return state.critic_target(batch["next_obs"], state.actor_target(batch["next_obs"]))


def manual_step(loss, module, optimizer):
    """Apply `loss`'s gradient to `module` alone; returns the gradients used."""
    grads = torch.autograd.grad(loss, list(module.parameters()))
    for p, g in zip(module.parameters(), grads):
        p.grad = g.clone()
    optimizer.step()
    return grads


def critic_only_step(state, batch):
    """What a step on the critic loss alone does; returns the critic gradients it used."""
    y = batch["reward"] + state.gamma * (1 - batch["terminated"]) * next_q(state, batch)
    loss = ((state.critic(batch["obs"], batch["action"]) - y) ** 2).mean()
    return manual_step(loss, state.critic, state.critic_opt)


def actor_only_step(state, batch):
    """What a step on the actor loss alone does (against the current critic)."""
    loss = -state.critic(batch["obs"], state.actor(batch["obs"])).mean()
    return manual_step(loss, state.actor, state.actor_opt)


def assert_all_close(xs, ys):
    for x, y in zip(list(xs), list(ys), strict=True):
        assert torch.allclose(x, y, rtol=1e-5, atol=1e-6), (x - y).abs().max()


def test_critic_gets_only_the_critic_loss_gradient():
    state, batch = make(), make_batch()
    ref = copy.deepcopy(state)
    grads = critic_only_step(ref, batch)
    state, _ = update(state, batch)
    # Had the actor loss back-propagated into the critic, its .grad would hold the sum.
    assert_all_close((p.grad for p in state.critic.parameters()), grads)
    assert_all_close(state.critic.parameters(), ref.critic.parameters())


def test_actor_gets_only_the_actor_loss_gradient():
    state, batch = make(), make_batch()
    ref = copy.deepcopy(state)
    critic_only_step(ref, batch)
    grads = actor_only_step(ref, batch)
    state, _ = update(state, batch)
    assert_all_close((p.grad for p in state.actor.parameters()), grads)
    assert_all_close(state.actor.parameters(), ref.actor.parameters())


def test_targets_take_no_gradient_and_move_only_by_the_soft_update():
    tau = 0.1
    state, batch = make(tau=tau), make_batch()
    pairs = ((state.actor_target, state.actor), (state.critic_target, state.critic))
    old = [[p.detach().clone() for p in target.parameters()] for target, _ in pairs]
    state, _ = update(state, batch)
    for (target, online), old_params in zip(pairs, old):
        for p, p_old, p_new in zip(target.parameters(), old_params, online.parameters()):
            assert not p.requires_grad and p.grad is None
            assert torch.allclose(p, (1 - tau) * p_old + tau * p_new, rtol=0, atol=1e-7)
            assert not torch.equal(p, p_old)  # it did move


def test_critic_target_is_built_without_a_graph():
    # Even if a target net were trainable by mistake, y must carry no gradient path
    # (the seed built it with a graph): the critic loss would otherwise push on the targets.
    state, batch = make(), make_batch()
    state.actor_target.requires_grad_(True)
    state.critic_target.requires_grad_(True)
    y = critic_target(state, batch)
    assert not y.requires_grad and y.grad_fn is None


def test_tau_zero_leaves_targets_untouched():
    state, batch = make(), make_batch()
    state.tau = 0.0  # below what --tau accepts: the math itself, not the CLI
    old = copy.deepcopy((state.actor_target.state_dict(), state.critic_target.state_dict()))
    for _ in range(3):
        state, _ = update(state, batch)
    for before, target in zip(old, (state.actor_target, state.critic_target)):
        for key, value in target.state_dict().items():
            assert torch.equal(value, before[key])


def test_truncation_bootstraps_and_termination_does_not():
    gamma = 0.9
    base = make_batch(b=1)
    state0 = make(gamma=gamma)
    with torch.no_grad():
        q = state0.critic(base["obs"], base["action"])
    bootstrap = gamma * next_q(state0, base)
    expected = {
        0.0: ((q - (base["reward"] + bootstrap)) ** 2).mean(),
        1.0: ((q - base["reward"]) ** 2).mean(),
    }
    assert not torch.allclose(expected[0.0], expected[1.0])  # the test can tell them apart
    for terminated, loss in expected.items():
        batch = {**base, "terminated": torch.tensor([terminated])}
        _, metrics = update(make(gamma=gamma), batch)
        assert torch.allclose(metrics["losses/critic_loss"], loss), terminated


def test_per_transition_discount_replaces_gamma():
    state0, batch = make(gamma=0.9), make_batch()
    batch["discount"] = torch.linspace(0.0, 0.5, len(batch["reward"]))
    with torch.no_grad():
        q = state0.critic(batch["obs"], batch["action"])
    live = 1 - batch["terminated"]
    nq = next_q(state0, batch)
    with_discount = ((q - (batch["reward"] + batch["discount"] * live * nq)) ** 2).mean()
    with_gamma = ((q - (batch["reward"] + 0.9 * live * nq)) ** 2).mean()
    assert not torch.allclose(with_discount, with_gamma)
    _, metrics = update(make(gamma=0.9), batch)
    assert torch.allclose(metrics["losses/critic_loss"], with_discount)


def test_metrics_are_detached_scalars_and_td_abs_per_sample():
    _, metrics = update(make(), make_batch(b=8))
    assert set(metrics) == {"losses/critic_loss", "losses/actor_loss", "losses/q_values",
                            "td_abs"}
    for key, value in metrics.items():
        assert isinstance(value, torch.Tensor) and not value.requires_grad
        assert value.shape == ((8,) if key == "td_abs" else ()), key
        assert torch.all(torch.isfinite(value))


def weighted_case(weights):
    """(metrics of update, q, y) for a batch carrying these importance weights."""
    state0, batch = make(gamma=0.9), make_batch()
    batch["weights"] = weights
    with torch.no_grad():
        q = state0.critic(batch["obs"], batch["action"])
    y = batch["reward"] + 0.9 * (1 - batch["terminated"]) * next_q(state0, batch)
    _, metrics = update(make(gamma=0.9), batch)
    return metrics, q, y


def test_importance_weights_scale_the_critic_loss():
    weights = torch.linspace(0.1, 1.0, 8)
    metrics, q, y = weighted_case(weights)
    manual = (weights * (q - y) ** 2).mean()
    assert not torch.allclose(manual, ((q - y) ** 2).mean())  # the weights matter here
    assert torch.allclose(metrics["losses/critic_loss"], manual)


def test_unit_weights_equal_the_unweighted_update():
    batch = make_batch()
    plain_state, plain = update(make(gamma=0.9), batch)
    weighted_state, weighted = update(make(gamma=0.9), {**batch, "weights": torch.ones(8)})
    assert torch.allclose(weighted["losses/critic_loss"], plain["losses/critic_loss"])
    assert_all_close(weighted_state.critic.parameters(), plain_state.critic.parameters())


def test_td_abs_is_the_absolute_td_error_before_the_step():
    metrics, q, y = weighted_case(torch.linspace(0.1, 1.0, 8))
    assert torch.allclose(metrics["td_abs"], (y - q).abs(), rtol=1e-5, atol=1e-6)


def test_learns_a_one_step_problem():
    """Reward -|a - 0.5|^2, every episode one step: Q fits and the actor heads for 0.5."""
    # A slow actor: chasing an untrained critic would saturate tanh at the bounds.
    state = make(tau=0.01, actor_lr=1e-4, critic_lr=1e-3)
    g = torch.Generator().manual_seed(2)
    probe = torch.randn(64, OBS, generator=g)
    with torch.no_grad():
        start_gap = (state.actor(probe) - 0.5).abs().mean()
    losses = []
    for _ in range(400):
        batch = make_batch(b=64, seed=int(torch.randint(1 << 30, (1,), generator=g)))
        batch["reward"] = -((batch["action"] - 0.5) ** 2).sum(-1)
        batch["terminated"] = torch.ones(64)
        state, metrics = update(state, batch)
        losses.append(float(metrics["losses/critic_loss"]))
    assert sum(losses[-20:]) < 0.2 * sum(losses[:20])
    with torch.no_grad():
        assert (state.actor(probe) - 0.5).abs().mean() < 0.5 * start_gap


@pytest.mark.parametrize("b", [1, 5])
def test_critic_output_is_one_value_per_sample(b):
    state, batch = make(), make_batch(b=b)
    assert state.critic(batch["obs"], batch["action"]).shape == (b,)
    assert state.actor(batch["obs"]).shape == (b, ACT)
