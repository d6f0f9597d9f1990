"""The run's configuration: one small dataclass per component, composed here.

Each field's docstring is its `--help` line. Presets are whole configurations; flags
given on the command line override them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import io
import math
import os
import re
import sys
import typing
from dataclasses import dataclass, field
from typing import Annotated, Literal

import tyro

from actors.config import EnvConfig, ExperienceConfig, NoiseConfig
from learner.config import LearnerConfig
from replay.config import ReplayConfig
from runner.config_file import apply as config_file_apply
from runner.config_file import load_yaml


@dataclass
class RunConfig:
    """What to run and where its results go."""

    run_id: str = "drone"
    """name of the run: results go to <results-dir>/<run-id>"""
    results_dir: str = "results"
    """folder that holds every run"""
    mode: Literal["ray", "local"] = "ray"
    """ray: env workers, replay and learner as Ray actors; local: all in this process, no Ray"""
    address: str | None = None
    """Ray cluster to join ('auto' or host:port); none starts a fresh local Ray instance"""
    num_workers: Annotated[int, tyro.conf.arg(aliases=("--num-envs",))] = 2
    """env worker processes, each with its own env on worker id 0..N-1 (alias --num-envs)"""
    train_steps: int = 50_000
    """env steps (agent transitions) to train for"""
    test_steps: int = 10_000
    """env steps to test for after training, without noise"""
    updates_per_step: float = 1.0
    """learner updates per env step once learning starts (update-to-data ratio)"""
    warmup_actions: Literal["random", "policy"] = "random"
    """actions before learning starts: uniform random, or the initial policy plus noise"""
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
    save_replay: bool = False
    """save the replay with every checkpoint, so --resume keeps it (written atomically)"""
    checkpoint_interval: int = 10_000
    """env steps between checkpoints"""
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
            (self.log_interval > 0, "--log-interval must be > 0 seconds"),
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
    past_start = max(cfg.run.train_steps - cfg.replay.learning_starts, 0)
    updates = int(cfg.run.updates_per_step * past_start)
    return dataclasses.replace(cfg.replay, per_beta_steps=max(updates, 1))


def experience_config(cfg: Config) -> ExperienceConfig:
    """What the env workers make of their steps, from the replay and learner flags."""
    return ExperienceConfig(n_step=cfg.replay.n_step, gamma=cfg.learner.gamma,
                            priorities=cfg.replay.prioritized, obs_stats=cfg.learner.normalize,
                            critic_action_layer=cfg.learner.critic_action_layer)


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


def parse(argv: list[str]) -> Config:
    """`[CONFIG.yaml] [--preset NAME] [flags]` -> Config.

    Later sources win: the preset (or the defaults), on --resume/--inference the run's own
    saved configuration.yaml instead, then the config file, then the flags."""
    rest, env_args = split_env_args(argv)
    config_file = rest.pop(0) if rest and not rest[0].startswith("-") else None
    file_data = load_yaml(config_file) if config_file else None
    base = PRESETS[pop_preset(rest)]()
    cfg = cli(with_file(base, file_data, config_file), rest)
    saved = os.path.join(cfg.run.results_dir, cfg.run.run_id, "configuration.yaml")
    if (cfg.run.resume or cfg.run.inference) and os.path.exists(saved):
        data = load_yaml(saved)
        for key in RUN_CONTROL:  # how this session was started is the flags' business
            data.get("run", {}).pop(key, None)
        base = config_file_apply(Config(), data, saved)
        cfg = cli(with_file(base, file_data, config_file), rest)
    if env_args is not None:
        cfg.env = dataclasses.replace(cfg.env, env_args=env_args)
    return cfg


def with_file(base: Config, data: dict | None, path: str | None) -> Config:
    """`base` with a config file's values over it (none given: `base` itself)."""
    return base if data is None else config_file_apply(base, data, path)


def split_env_args(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """(our arguments, the env's): as with mlagents-learn, everything after --env-args goes
    to the env executable, flags included (Unity's own start with '-')."""
    if "--env-args" not in argv:
        return list(argv), None
    i = argv.index("--env-args")
    return list(argv[:i]), list(argv[i + 1:])


RUN_CONTROL = ("resume", "inference", "force")


def pop_preset(rest: list[str]) -> str:
    """Remove `--preset NAME` from `rest`; returns the name ('default' when absent)."""
    preset = "default"
    for i, arg in enumerate(rest):
        if arg == "--preset" and i + 1 < len(rest):
            preset = rest[i + 1]
            del rest[i : i + 2]
            break
        if arg.startswith("--preset="):
            preset = arg.split("=", 1)[1]
            del rest[i]
            break
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return preset


def cli(base: Config, args: list[str]) -> Config:
    """tyro over `base`, its errors reduced to one line (--help is shown as it is)."""
    errors, output = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(output):
            return tyro.cli(Config, default=base, args=args, config=(tyro.conf.OmitArgPrefixes,),
                            description=DESCRIPTION)
    except SystemExit as done:
        if not done.code:  # --help: show it
            sys.stdout.write(output.getvalue())
            raise
        raise ValueError(one_line_cli_error(errors.getvalue() + output.getvalue())) from None


DESCRIPTION = (f"{Config.__doc__}\n\nlaunch.py [CONFIG.yaml] [--preset NAME] [flags]: a config "
               f"file (configs/*.yaml) or a preset ({', '.join(PRESETS)}) sets the starting "
               "values; flags override them.")


def flag_names() -> list[str]:
    """Every --flag the CLI accepts: field names, their --no- forms, and the aliases."""
    names = ["--help", "--preset", "--num-envs", "--torch-device"]
    for part in dataclasses.fields(Config):
        for f in dataclasses.fields(part.default_factory()):
            flag = f.name.replace("_", "-")
            names += [f"--{flag}", f"--no-{flag}"] if f.type in (bool, "bool") else [f"--{flag}"]
    return names


def one_line_cli_error(text: str) -> str:
    """tyro's boxed message as one line, with a suggestion for a mistyped flag."""
    # Box borders come as Unicode or ASCII (|, +, -) depending on the terminal.
    lines = [re.sub(r"[│╭╮╰╯─]+", " ", line).strip().strip("|+").strip()
             for line in text.splitlines()]
    lines = [line for line in lines if re.search(r"[^\s+|=-]", line)
             and "For full helptext" not in line]
    # The first line is the box title; the message below it may wrap over several lines.
    message = " ".join(lines[1:]) or (lines[0] if lines else "invalid arguments")
    unknown = re.findall(r"--[\w-]+", message) if "Unrecognized" in message else []
    if unknown:
        # --lr -> --actor-lr, --critic-lr: a flag that ends with the word beats a near spelling.
        close = [n for n in flag_names() if n.endswith("-" + unknown[0][2:])
                 and not n.startswith("--no-")] or difflib.get_close_matches(
                     unknown[0], flag_names(), n=1)
        hint = f" (did you mean {' or '.join(close[:3])}?)" if close else ""
        return f"unknown flag {unknown[0]}{hint}; see --help for every flag"
    return f"{message[0].lower()}{message[1:]}; see --help"


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
        (not (cfg.learner.cudagraphs and cfg.learner.device == "cpu"),
         "--cudagraphs needs the learner on a CUDA device: drop --device cpu or --cudagraphs"),
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
