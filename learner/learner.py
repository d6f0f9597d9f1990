"""The plain (Ray-free) learner: owns networks, optimizers, device and counters."""

from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
import torch
import tyro

from learner import ddpg, fast
from learner.checkpoint import check_normalizer, check_sizes, check_twin_critics


@dataclass
class LearnerConfig:
    """DDPG learner."""

    gamma: float = 0.95
    """discount factor (0.99 drifts and collapses on the Drone: docs/deviations.md)"""
    tau: float = 0.005
    """soft target update rate (fraction of the online weights blended in per update)"""
    actor_lr: float = 3e-4
    """actor Adam learning rate"""
    critic_lr: float = 3e-4
    """critic Adam learning rate"""
    hidden_size: int = 128
    """units per hidden layer (actor and critic)"""
    device: Annotated[Literal["auto", "cpu", "cuda"],
                      tyro.conf.arg(aliases=("--torch-device",))] = "auto"
    """learner device; auto = cuda when available (alias --torch-device)"""
    device_replay: bool = True
    """ray mode: train from a replay shard on the learner's device, fed in chunks (off, or
    with --prioritized: sample batches from the replay actor, the plain reference path)"""
    compile: bool = False
    """torch.compile the update (pays off on GPU; slower than eager on this CPU)"""
    cudagraphs: bool = False
    """capture the whole update in a CUDA graph (needs --device cuda or a GPU with auto)"""
    torch_threads: int = 1
    """torch intra-op threads on CPU, 0 = torch's default (more only fight the envs for cores)"""
    twin_critics: bool = False
    """TD3: two critics, the target takes the smaller of their estimates (clipped double Q)"""
    policy_delay: int = 1
    """TD3: update the actor and the targets on every d-th critic update (1 = DDPG)"""
    target_noise: float = 0.0
    """TD3: std of the Gaussian noise added to the target action (0 = no smoothing)"""
    target_noise_clip: float = 0.5
    """TD3: the target action's noise is clipped to +-this"""
    normalize: bool = False
    """normalize observations by their running mean and variance, merged from every worker
    (as mlagents-learn's network_settings.normalize); inside the exported ONNX too"""


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; 'cuda' without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda but no CUDA device is available; use --device auto or cpu")
    return torch.device(name)


class Learner:
    """Owns the networks, optimizers, device, learner_steps and policy_version."""

    def __init__(self, obs_size: int, action_size: int, cfg: LearnerConfig, seed: int = 0):
        # Both are process-wide: the learner is meant to own its process (or Ray actor).
        torch.manual_seed(seed)
        if cfg.torch_threads > 0:
            torch.set_num_threads(cfg.torch_threads)
        self.cfg = cfg
        self.obs_size = obs_size
        self.action_size = action_size
        self.device = resolve_device(cfg.device)
        self.state = ddpg.make_state(obs_size, action_size, cfg, self.device)
        self.update_fn = fast.make_update_fn(self.state, compile=cfg.compile,
                                             cudagraphs=cfg.cudagraphs)
        self.learner_steps = 0
        self.policy_version = 0

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """One DDPG step on a numpy batch (see ddpg.update); returns device-tensor metrics.

        Keys outside ddpg.BATCH_KEYS (e.g. the policy version of each transition) are ignored.
        """
        # torch.tensor copies: replay may hand out read-only views of its storage.
        tensors = {
            key: torch.tensor(batch[key], dtype=torch.float32, device=self.device)
            for key in ddpg.BATCH_KEYS
            if key in batch
        }
        return self.update_tensors(tensors)

    def update_tensors(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One update on tensors already on the device (the device-replay path).

        The metrics are this update's own tensors, safe to keep across calls: an update fn
        may hand back the same output tensors every time (a CUDA graph's static outputs),
        so they are copied here, where every caller passes."""
        # TD3's delayed updates: the actor and the targets move on every d-th update only.
        update_actor = (self.learner_steps + 1) % self.cfg.policy_delay == 0
        metrics = self.update_fn({k: batch[k] for k in ddpg.BATCH_KEYS if k in batch},
                                 update_actor)
        self.learner_steps += 1
        return {key: value.clone() for key, value in metrics.items()}

    def update_batches(self, batches: list[dict[str, np.ndarray]]
                       ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """One update per batch, in order: (the last update's metrics, every row's |TD|
        concatenated in the batches' order), for priorities of a stacked sample."""
        metrics, td = {}, []
        for batch in batches:
            metrics = self.update(batch)
            td.append(metrics["td_abs"])
        return metrics, torch.cat(td)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic action(s) mu(obs) as float32 numpy on the CPU, shape (..., action_size)."""
        with torch.no_grad():
            obs_t = torch.tensor(obs, dtype=torch.float32, device=self.device)
            if self.state.normalizer is not None:
                obs_t = self.state.normalizer(obs_t)
            return self.state.actor(obs_t).cpu().numpy()

    def actor_weights(self) -> dict[str, torch.Tensor]:
        """A CPU copy of the actor's state_dict, safe to ship to env workers."""
        return _cpu_copy(self.state.actor)

    def publish_weights(self, critic: bool = False) -> tuple[dict[str, dict], int]:
        """Bump policy_version; return ({"actor": weights[, "critic": weights]
        [, "normalizer": its statistics]}, version).

        critic: include the critic, for workers that compute initial replay priorities."""
        self.policy_version += 1
        weights = {"actor": self.actor_weights()}
        if critic:  # with twin critics the first one: the workers' estimate is a first guess
            critic_net = self.state.critic
            weights["critic"] = _cpu_copy(getattr(critic_net, "q1", critic_net))
        if self.state.normalizer is not None:
            weights["normalizer"] = _cpu_copy(self.state.normalizer)
        return weights, self.policy_version

    def merge_obs_stats(self, report: dict | None) -> None:
        """Fold a worker's observation statistics (`ObsStats.take()`) into the normalizer."""
        if report is not None and self.state.normalizer is not None:
            self.state.normalizer.merge(report)

    def state_dict(self) -> dict:
        """Everything needed to resume bit-for-bit; only weights_only-loadable types."""
        s = self.state
        return {
            "actor": s.actor.state_dict(),
            "critic": s.critic.state_dict(),
            "actor_target": s.actor_target.state_dict(),
            "critic_target": s.critic_target.state_dict(),
            "actor_opt": s.actor_opt.state_dict(),
            "critic_opt": s.critic_opt.state_dict(),
            "learner_steps": self.learner_steps,
            "policy_version": self.policy_version,
            "torch_rng_state": torch.get_rng_state(),
            "cuda_rng_state": torch.cuda.get_rng_state(self.device)
            if self.device.type == "cuda"
            else None,
            "obs_size": self.obs_size,
            "action_size": self.action_size,
            "hidden_size": self.cfg.hidden_size,
            "twin_critics": self.cfg.twin_critics,
            "normalizer": None if s.normalizer is None else s.normalizer.state_dict(),
        }

    def load_state_dict(self, d: dict) -> None:
        """Restore a state_dict() (e.g. from load_checkpoint); CheckpointError on size mismatch."""
        check_sizes(d, self.obs_size, self.action_size, self.cfg.hidden_size)
        check_normalizer(d, self.cfg.normalize)
        check_twin_critics(d, self.cfg.twin_critics)
        s = self.state
        s.actor.load_state_dict(d["actor"])
        s.critic.load_state_dict(d["critic"])
        s.actor_target.load_state_dict(d["actor_target"])
        s.critic_target.load_state_dict(d["critic_target"])
        if s.normalizer is not None:
            s.normalizer.load_state_dict(d["normalizer"])
        # Optimizer.load_state_dict moves its moments onto the parameters' device.
        s.actor_opt.load_state_dict(d["actor_opt"])
        s.critic_opt.load_state_dict(d["critic_opt"])
        self.learner_steps = int(d["learner_steps"])
        self.policy_version = int(d["policy_version"])
        # set_rng_state wants a CPU ByteTensor, whatever map_location the load used.
        torch.set_rng_state(d["torch_rng_state"].cpu())
        if d.get("cuda_rng_state") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(d["cuda_rng_state"].cpu(), self.device)
        # Loading optimizer state replaces the tensors a compiled or captured update holds.
        self.update_fn = fast.make_update_fn(self.state, compile=self.cfg.compile,
                                             cudagraphs=self.cfg.cudagraphs)


def _cpu_copy(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    # copy=True: on a CPU learner .to("cpu") alone would alias the live parameters.
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}
