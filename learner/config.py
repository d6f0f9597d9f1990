"""The learner's configuration (light: no torch), its --help text and range checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import tyro


# torch.set_num_threads(N) with N in the tens of thousands makes OpenMP fail to create its
# threads ("Thread creation failed") or crash the process (SIGSEGV), with no message.
MAX_TORCH_THREADS = 1024


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
    critic_action_layer: Literal[1, 2] = 2
    """critic layer the action enters: 2 (DDPG paper, seed) or 1, with obs (TD3, SB3, CleanRL)"""
    device: Annotated[Literal["auto", "cpu", "cuda"],
                      tyro.conf.arg(aliases=("--torch-device",))] = "auto"
    """learner device; auto = cuda when available (alias --torch-device)"""
    device_replay: bool = True
    """ray mode: train from a copy of the replay on the learner's device (not --prioritized)"""
    compile: bool = False
    """torch.compile the update (slower than eager on a 2-core CPU; not yet measured on a GPU)"""
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
    """normalize observations by running mean and variance, as mlagents-learn; in ONNX too"""

    def __post_init__(self) -> None:
        checks = [
            (0.0 <= self.gamma <= 1.0, f"--gamma must be in [0, 1], got {self.gamma}"),
            (0.0 < self.tau <= 1.0, f"--tau must be in (0, 1], got {self.tau}"),
            (self.actor_lr > 0 and self.critic_lr > 0, "--actor-lr and --critic-lr must be > 0, "
             f"got {self.actor_lr} and {self.critic_lr}"),
            (self.hidden_size >= 1, "--hidden-size must be >= 1"),
            (0 <= self.torch_threads <= MAX_TORCH_THREADS,
             f"--torch-threads must be in 0..{MAX_TORCH_THREADS} (0 = torch's default; more "
             "threads than cores only slow the learner)"),
            (self.policy_delay >= 1, "--policy-delay must be >= 1 (1 = every update)"),
            (self.target_noise >= 0, "--target-noise must be >= 0 (0 = no smoothing)"),
            (self.target_noise_clip > 0, "--target-noise-clip must be > 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
