"""The DDPG math as one pure step: `update(state, batch) -> (state, metrics)`.

TD3's three fixes (Fujimoto et al. 2018) are options of the same step, each off by default:
twin critics with the smaller estimate in the target (`TwinCritic`), the actor and the
targets updated only on every d-th call (the caller says which: `update_actor`), and
target policy smoothing (clipped Gaussian noise on the target action).

No env, logging, Ray or numpy here: the caller moves batches onto the device and reads the
metrics when it wants to (they stay device tensors, so a GPU update never has to sync).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from learner.config import LearnerConfig
from learner.networks import Actor, Critic, TwinCritic
from learner.normalizer import ObsNormalizer

# Keys of a batch. Optional: `discount` (per-transition bootstrap discount, e.g. n-step) and
# `weights` (importance-sampling weights of prioritized replay).
BATCH_KEYS = ("obs", "action", "reward", "next_obs", "terminated", "discount", "weights")


@dataclass
class DDPGState:
    """Everything one DDPG update reads and writes."""

    actor: Actor
    critic: Critic
    actor_target: Actor
    critic_target: Critic
    actor_opt: torch.optim.Optimizer
    critic_opt: torch.optim.Optimizer
    gamma: float
    tau: float
    # TD3 target policy smoothing: std and clip of the noise on the target action (0 = off).
    target_noise: float = 0.0
    target_noise_clip: float = 0.5
    # --normalize: every network sees observations through it (its statistics are merged
    # from the workers' reports, never changed by an update); None = raw observations.
    normalizer: ObsNormalizer | None = None


def make_state(obs_size: int, action_size: int, cfg: LearnerConfig, device) -> DDPGState:
    """Fresh networks on `device`, targets as exact copies that never take gradients."""
    actor = Actor(obs_size, action_size, cfg.hidden_size).to(device)
    critic_type = TwinCritic if cfg.twin_critics else Critic
    critic = critic_type(obs_size, action_size, cfg.hidden_size,
                         cfg.critic_action_layer).to(device)
    actor_target = copy.deepcopy(actor).requires_grad_(False)
    critic_target = copy.deepcopy(critic).requires_grad_(False)
    return DDPGState(
        actor=actor,
        critic=critic,
        actor_target=actor_target,
        critic_target=critic_target,
        # fused: one kernel for all parameters' Adam math (+15% updates/s on CPU here).
        actor_opt=torch.optim.Adam(actor.parameters(), lr=cfg.actor_lr, fused=True),
        critic_opt=torch.optim.Adam(critic.parameters(), lr=cfg.critic_lr, fused=True),
        gamma=cfg.gamma,
        tau=cfg.tau,
        target_noise=cfg.target_noise,
        target_noise_clip=cfg.target_noise_clip,
        normalizer=ObsNormalizer(obs_size).to(device) if cfg.normalize else None,
    )


def normalized(state: DDPGState, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The batch with obs and next_obs through the state's normalizer (as they are, without)."""
    if state.normalizer is None:
        return batch
    return {**batch, "obs": state.normalizer(batch["obs"]),
            "next_obs": state.normalizer(batch["next_obs"])}


def critic_target(state: DDPGState, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """y = r + discount * (1 - terminated) * Q'(s', mu'(s') [+ clipped noise]), from the
    target networks; with twin critics Q' is the smaller of the two estimates.

    Only termination stops the bootstrap: a truncated (interrupted) transition has
    terminated = 0, so its value is still estimated from the next observation.
    """
    return bootstrap_target(state.critic_target, state.actor_target, batch, state.gamma,
                            state.target_noise, state.target_noise_clip)


def bootstrap_target(critic: torch.nn.Module, actor: Actor, batch: dict[str, torch.Tensor],
                     gamma: float, noise: float = 0.0, noise_clip: float = 0.5
                     ) -> torch.Tensor:
    """r + discount * (1 - terminated) * critic(s', actor(s')) without gradients; discount is
    the batch's own (n-step) or else gamma. A critic that answers (2, B) (TwinCritic) gives
    the smaller estimate; noise > 0 smooths the target action with N(0, noise^2) clipped to
    +-noise_clip. Env workers use it with their online copies for initial replay priorities."""
    discount = batch.get("discount")
    if discount is None:
        discount = gamma
    with torch.no_grad():
        next_action = actor(batch["next_obs"])
        if noise > 0:
            jitter = (torch.randn_like(next_action) * noise).clamp(-noise_clip, noise_clip)
            next_action = (next_action + jitter).clamp(-1.0, 1.0)
        next_q = critic(batch["next_obs"], next_action)
        if next_q.dim() == 2:  # twin critics: clipped double Q
            next_q = next_q.min(dim=0).values
        return batch["reward"] + discount * (1.0 - batch["terminated"]) * next_q


def soft_update(target: torch.nn.Module, online: torch.nn.Module, tau: float) -> None:
    """target <- (1 - tau) * target + tau * online, one batched kernel over all parameters."""
    with torch.no_grad():
        torch._foreach_lerp_(list(target.parameters()), list(online.parameters()), tau)


def update(state: DDPGState, batch: dict[str, torch.Tensor], update_actor: bool = True
           ) -> tuple[DDPGState, dict[str, torch.Tensor]]:
    """One step: the critic(s), then (when `update_actor`) the actor against the updated
    critic and both soft target updates. TD3's delayed updates pass update_actor=False on
    all but every d-th step; DDPG always passes True.

    batch: obs (B,O), action (B,A), reward (B,), next_obs (B,O), terminated (B,) float,
    optional discount (B,) and weights (B,); observations raw (normalized here, if at all).
    Metrics are detached tensors on the batch's device: `losses/*` scalars (the actor's only
    when it moved), and `td_abs` (B,) = |y - Q(s,a)| (the first critic's) for priorities.
    """
    batch = normalized(state, batch)
    y = critic_target(state, batch)
    q = state.critic(batch["obs"], batch["action"])  # (B,), or (2, B) for twin critics
    weights = batch.get("weights")
    # Importance weights (prioritized replay) undo the bias of non-uniform sampling; with
    # twin critics each critic's loss counts in full, as in TD3.
    squared = (q - y) ** 2 if weights is None else weights * (q - y) ** 2
    critic_loss = squared.mean(dim=-1).sum()
    state.critic_opt.zero_grad(set_to_none=True)
    # inputs= keeps the gradient to the critic alone, whatever the loss happens to touch.
    critic_loss.backward(inputs=list(state.critic.parameters()))
    state.critic_opt.step()
    q1 = q[0] if q.dim() == 2 else q
    metrics = {
        "losses/critic_loss": critic_loss.detach(),
        "losses/q_values": q1.detach().mean(),
        # Not under losses/: a (B,) tensor, which scalar logging must not see.
        "td_abs": (y - q1.detach()).abs(),
    }
    if update_actor:
        metrics["losses/actor_loss"] = actor_step(state, batch["obs"])
        soft_update(state.actor_target, state.actor, state.tau)
        soft_update(state.critic_target, state.critic, state.tau)
    return state, metrics


def actor_step(state: DDPGState, obs: torch.Tensor) -> torch.Tensor:
    """One actor step up the (first) critic's value of its own actions; returns the loss."""
    critic = state.critic.q1 if isinstance(state.critic, TwinCritic) else state.critic
    actor_loss = -critic(obs, state.actor(obs)).mean()
    state.actor_opt.zero_grad(set_to_none=True)
    # The actor loss flows through the critic; without inputs= it would also fill the
    # critic's .grad, which grad-norm logging or clipping would mistake for the critic's own.
    actor_loss.backward(inputs=list(state.actor.parameters()))
    state.actor_opt.step()
    return actor_loss.detach()
