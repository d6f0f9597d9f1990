"""The run's configuration: one small dataclass per component, composed here.

Each field's docstring is its `--help` line. Presets are whole configurations; flags
given on the command line override them.
"""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from dataclasses import dataclass, field
from typing import Annotated, Literal

import tyro

from actors.config import EnvConfig, ExperienceConfig, LoopConfig, NoiseConfig
from learner.config import LearnerConfig
from replay.config import ReplayConfig


@dataclass
class RunConfig:
    """What to run and where its results go."""

    run_id: str = "drone"
    """name of the run: results go to <results-dir>/<run-id>"""
    results_dir: str = "results"
    """folder that holds every run"""
    mode: Literal["ray", "local"] = "ray"
    """ray: env workers, replay and learner as Ray actors; local: all three in this process"""
    address: Annotated[str | None, tyro.conf.arg(metavar="auto|HOST:PORT")] = None
    """Ray cluster to join ('auto' or host:port); none starts a fresh local Ray instance"""
    num_workers: Annotated[int, tyro.conf.arg(aliases=("--num-envs",))] = 2
    """env workers, each with its own env on worker id 0..N-1 (alias --num-envs)"""
    train_steps: int = 50_000
    """env steps (agent transitions) to train for"""
    test_steps: int = 10_000
    """env steps to test for after training, without noise"""
    updates_per_step: float = 1.0
    """learner updates per env step once learning starts (update-to-data ratio)"""
    warmup_actions: Literal["random", "policy"] = "random"
    """actions until learning starts (Ray: until trained weights arrive): random or policy+noise"""
    collect_steps: int = 1
    """local mode: env.step() calls each worker makes between two rounds of updates"""
    overlap_envs: bool = False
    """local mode: env workers step the next round in child processes during the updates"""
    chunk_steps: int = 32
    """ray mode: env.step() calls a worker makes per replay insert"""
    sync_interval: int = 100
    """ray mode: env steps (agent transitions) between a worker's checks for newer weights"""
    publish_interval: int = 50
    """ray mode: learner updates between two weight publications (policy versions)"""
    seed: int = 0
    """seed for the env, the networks, the noise and the replay"""
    resume: bool = False
    """continue the run from its last checkpoint"""
    inference: bool = False
    """run only the test phase, with the run's checkpoint"""
    force: bool = False
    """overwrite an existing run with the same id"""
    initialize_from: Annotated[str | None, tyro.conf.arg(metavar="RUN_ID|FILE")] = None
    """start from another run's networks: its run id (in --results-dir) or a checkpoint file"""
    save_replay: bool = False
    """save the replay with every checkpoint, so --resume keeps it (written atomically)"""
    checkpoint_interval: int = 10_000
    """env steps between checkpoints"""
    keep_checkpoints: int = 5
    """most recent checkpoints kept, each with its ONNX (0: latest only), as mlagents-learn"""
    log_interval: float = 10.0
    """seconds between progress lines"""

    def __post_init__(self) -> None:
        checks = [
            (self.num_workers >= 1, "--num-workers must be >= 1"),
            (self.train_steps >= 0, "--train-steps must be >= 0"),
            (self.test_steps >= 0, "--test-steps must be >= 0"),
            # nan and inf get validate()'s own line ("must be a finite number")
            (not math.isfinite(self.updates_per_step) or 0 <= self.updates_per_step <= 1000,
             "--updates-per-step must be in 0..1000 "
             "(learner updates per env step; high-ratio methods such as REDQ use about 20)"),
            (self.collect_steps >= 1, "--collect-steps must be >= 1"),
            (self.chunk_steps >= 1, "--chunk-steps must be >= 1"),
            (self.sync_interval >= 1, "--sync-interval must be >= 1"),
            (self.publish_interval >= 1, "--publish-interval must be >= 1"),
            (self.checkpoint_interval >= 1, "--checkpoint-interval must be >= 1"),
            (self.keep_checkpoints >= 0, "--keep-checkpoints must be >= 0 (0: latest only)"),
            (self.log_interval > 0, "--log-interval must be > 0 seconds"),
            (self.results_dir.strip() != "", "--results-dir must not be empty: give a folder "
             "(default: results)"),
            (plain_name(self.run_id), f"--run-id must be a plain folder name (not empty, '.' "
             f"or '..', no '/'), got {self.run_id!r}"),
            (0 <= self.seed < 2**31, "--seed must be in 0..2147483647 (an int32 in the "
             "protocol)"),
            (self.address in (None, "auto") or ":" in self.address,
             f"--address must be 'auto' or host:port (e.g. 10.0.0.5:6379), got "
             f"{self.address!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


def plain_name(name: str) -> bool:
    """A name that stays one folder inside --results-dir (--force deletes that folder)."""
    return name not in ("", ".", "..") and not any(c in name for c in ("/", os.sep, "\0"))


@dataclass
class Config:
    """drone-ddpg: distributed actor-learner DDPG for Unity ML-Agents environments."""

    run: RunConfig = field(default_factory=RunConfig)
    env: EnvConfig = field(default_factory=EnvConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)


def resolve_replay(cfg: Config) -> ReplayConfig:
    """The replay config with --per-beta-steps 0 made concrete: the run's learner updates."""
    if cfg.replay.per_beta_steps:
        return cfg.replay
    # Updates start once the replay holds min_size rows (a full batch, learning_starts).
    past_start = max(cfg.run.train_steps - cfg.replay.min_size, 0)
    updates = int(cfg.run.updates_per_step * past_start)
    return dataclasses.replace(cfg.replay, per_beta_steps=max(updates, 1))


def experience_config(cfg: Config) -> ExperienceConfig:
    """What the env workers make of their steps, from the replay and learner flags."""
    return ExperienceConfig(n_step=cfg.replay.n_step, gamma=cfg.learner.gamma,
                            priorities=cfg.replay.prioritized, obs_stats=cfg.learner.normalize,
                            critic_action_layer=cfg.learner.critic_action_layer)


def loop_config(cfg: Config) -> LoopConfig:
    """A Ray env worker's loop, from the run's flags."""
    return LoopConfig(chunk_steps=cfg.run.chunk_steps, sync_interval=cfg.run.sync_interval,
                      random_warmup=cfg.run.warmup_actions == "random")


def seed_preset() -> Config:
    """The seed script's setup (docs/deviations.md): its hyperparameters and budget."""
    cfg = Config()
    cfg.run = dataclasses.replace(cfg.run, mode="local", num_workers=1, train_steps=50_000,
                                  test_steps=10_000, updates_per_step=1.0,
                                  warmup_actions="policy")
    cfg.replay = ReplayConfig(buffer_size=50_000, batch_size=128, learning_starts=5_000)
    cfg.env = dataclasses.replace(cfg.env, time_scale=12.0)  # the seed's training time scale
    cfg.learner = dataclasses.replace(cfg.learner, gamma=0.9, tau=1e-3, actor_lr=1e-4,
                                      critic_lr=5e-4, hidden_size=128)
    cfg.noise = NoiseConfig(noise="ou", noise_sigma=2e-3, ou_theta=1e-3, ou_mu=0.0)
    return cfg


def td3_preset() -> Config:
    """TD3's three fixes (Fujimoto et al. 2018) with the paper's values, on the defaults."""
    cfg = Config()
    cfg.learner = dataclasses.replace(cfg.learner, twin_critics=True, policy_delay=2,
                                      target_noise=0.2, target_noise_clip=0.5)
    return cfg


PRESETS = {"default": Config, "seed": seed_preset, "td3": td3_preset}


def validate(cfg: Config) -> None:
    """Cross-field checks, one line naming the flags and the fix (each config checks its own
    fields' ranges as it is built)."""
    checks = [
        (cfg.replay.batch_size <= cfg.replay.buffer_size,
         f"--batch-size ({cfg.replay.batch_size}) must not exceed --buffer-size "
         f"({cfg.replay.buffer_size})"),
        (cfg.replay.learning_starts <= cfg.replay.buffer_size,
         f"--learning-starts ({cfg.replay.learning_starts}) must not exceed --buffer-size "
         f"({cfg.replay.buffer_size}): learning would never start"),
        (not (cfg.run.resume and cfg.run.force), "--resume and --force contradict: pick one"),
        (not (cfg.run.inference and (cfg.run.resume or cfg.run.force)),
         "--inference only tests a trained run; --resume trains it on and --force starts it "
         "over: pick one"),
        (not (cfg.run.mode == "local" and cfg.run.address),
         "--address joins a Ray cluster, which --mode local never uses: drop one of them "
         "(a cluster run resumed keeps its --address: pass --address None to go on in local "
         "mode)"),
        (not (cfg.learner.cudagraphs and cfg.learner.device == "cpu"),
         "--cudagraphs needs the learner on a CUDA device: drop --device cpu or --cudagraphs"),
        (cfg.run.initialize_from != cfg.run.run_id,
         f"--initialize-from {cfg.run.run_id} names this run: give another run's id (--resume "
         "continues this one)"),
        (not (cfg.run.inference and cfg.run.test_steps == 0),
         "--inference with --test-steps 0 would test nothing: give --test-steps a budget"),
        (cfg.env.base_port + cfg.run.num_workers - 1 <= 65535,
         f"--base-port {cfg.env.base_port} + --num-workers {cfg.run.num_workers} runs past "
         "port 65535: lower --base-port"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)
    for part in dataclasses.fields(cfg):
        section = getattr(cfg, part.name)
        for name, hint in typing.get_type_hints(type(section)).items():
            value = getattr(section, name)
            if hint is float and not math.isfinite(value):
                raise ValueError(f"--{name.replace('_', '-')} must be a finite number, got "
                                 f"{value}")

