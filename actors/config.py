"""The env workers' configuration (light: no torch, no mlagents): the env and its restarts,
exploration noise, what a worker makes of its steps, and how a Ray worker paces itself."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated, Literal

from tyro.constructors import PrimitiveConstructorSpec

from envs import runs_in_process
from envs.drone import BUNDLED, is_bundled

FLOAT32_MAX = 3.4028234663852886e38


def name_value_pairs(args: list[str]) -> dict[str, float]:
    """`NAME VALUE [NAME VALUE ...]` from the command line, as a mapping."""
    if len(args) % 2:
        raise ValueError("give NAME VALUE pairs, e.g. --env-params gravity 9.81")
    try:
        return {name: float(value) for name, value in zip(args[::2], args[1::2])}
    except ValueError as err:
        raise ValueError(f"every VALUE must be a number ({err})") from None


# One flag for the whole mapping: tyro would otherwise make a flag per key of the default,
# and the keys a user adds could not be given.
NAME_VALUE_PAIRS = PrimitiveConstructorSpec(
    nargs="*", metavar="NAME VALUE ...", instance_from_str=name_value_pairs,
    is_instance=lambda value: isinstance(value, dict),
    str_from_instance=lambda params: [s for kv in params.items() for s in map(str, kv)])


@dataclass
class EnvConfig:
    """The env each worker runs."""

    env: str = BUNDLED
    """bundled-drone, gymnasium:<env-id> or gymnasium:<module>:<env-id>, or a Unity build path"""
    num_areas: int = 1
    """training areas (agents) per env process, sent to the env as num_areas"""
    base_port: int = 5005
    """ML-Agents base port: worker k listens on base-port + k"""
    time_scale: float = 20.0
    """Unity time scale, in training and test alike (the Drone and Gymnasium envs ignore it)"""
    max_step: int = 1000
    """episode step limit passed to the bundled headless Drone, 0 = none; other envs: unused"""
    env_args: list[str] = field(default_factory=list)
    """arguments passed to the env executable: everything after --env-args (put it last)"""
    graphics: bool = False
    """render the env (Unity builds); off by default, as mlagents-learn's --no-graphics"""
    timeout_wait: int = 60
    """seconds to wait for the env to answer before it counts as hung and is restarted"""
    max_lifetime_restarts: int = 10
    """env restarts a worker may do in the whole run (as mlagents-learn)"""
    restarts_rate_limit_n: int = 1
    """env restarts a worker may do per --restarts-rate-limit-period-s (as mlagents-learn)"""
    restarts_rate_limit_period_s: float = 60.0
    """period of the restart rate limit, in seconds"""
    success: Literal["auto", "positive-terminal", "none"] = "auto"
    """success = positive final reward at termination (positive-terminal), none, or auto (Drone)"""
    agent_timeout: int = 1000
    """env.step() calls after which an agent that stopped asking for decisions is forgotten"""
    transport: Literal["protocol", "in-process"] = "protocol"
    """protocol: each env its own process (any env); in-process: Drone, gymnasium: envs, no wire"""
    env_params: Annotated[dict[str, float], NAME_VALUE_PAIRS] = field(default_factory=dict)
    """floats a Unity build reads (Academy.Instance.EnvironmentParameters), set at each start"""

    def __post_init__(self) -> None:
        checks = [
            (self.num_areas >= 1, "--num-areas must be >= 1"),
            (self.max_step >= 0, "--max-step must be >= 0 (0 = no limit)"),
            (self.timeout_wait >= 1, "--timeout-wait must be >= 1 second"),
            (self.max_lifetime_restarts >= 0 and self.restarts_rate_limit_n >= 0,
             "--max-lifetime-restarts and --restarts-rate-limit-n must be >= 0"),
            (self.agent_timeout >= 1, "--agent-timeout must be >= 1"),
            (1024 <= self.base_port <= 65535, "--base-port must be in 1024..65535"),
            (self.time_scale > 0, "--time-scale must be > 0"),
            (self.restarts_rate_limit_period_s > 0, "--restarts-rate-limit-period-s must be > 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        check_env_params(self.env_params)
        if self.transport == "in-process" and not runs_in_process(self.env):
            raise ValueError(f"--transport in-process runs bundled-drone and gymnasium:<env-id> "
                             f"only, not {self.env!r}: a Unity build needs the protocol (drop "
                             "--transport)")

    def tracks_success(self) -> bool:
        """Whether episodes of this env have a success to report."""
        if self.success == "auto":
            return is_bundled(self.env)
        return self.success == "positive-terminal"


def check_env_params(params: dict[str, float]) -> None:
    """What the environment parameters side channel can carry: ASCII names, float32 values."""
    for name, value in params.items():
        if not name or not name.isascii():
            raise ValueError(f"--env-params name {name!r} must be non-empty ASCII (the side "
                             "channel's encoding): rename it")
        if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
            raise ValueError(f"--env-params {name} {value} is not a finite 32-bit float: pass "
                             "a value within +-3.4e38")


@dataclass
class NoiseConfig:
    """Exploration noise."""

    noise: Literal["gaussian", "ou"] = "gaussian"
    """exploration noise added to the actor's action"""
    noise_sigma: float = 0.1
    """std of the Gaussian noise, or of the OU increments"""
    ou_theta: float = 0.15
    """OU mean-reversion rate per step (0 to 1)"""
    ou_mu: float = 0.0
    """OU mean"""

    def __post_init__(self) -> None:
        if self.noise not in ("gaussian", "ou"):
            raise ValueError(f"--noise must be gaussian or ou, got {self.noise!r}")
        if self.noise_sigma < 0:
            raise ValueError(f"--noise-sigma must be >= 0, got {self.noise_sigma}")
        if not 0 <= self.ou_theta <= 1:
            raise ValueError(f"--ou-theta must be in [0, 1], got {self.ou_theta}")


@dataclass
class ExperienceConfig:
    """How a worker turns steps into replay rows (derived from the replay and learner flags)."""

    n_step: int = 1  # n-step returns; 1 = plain transitions
    gamma: float = 0.95  # discount of the n-step return and of the priorities' TD target
    priorities: bool = False  # send initial priorities computed with the local critic
    obs_stats: bool = False  # count observation statistics for the learner's normalizer
    critic_action_layer: int = 2  # the critic copy's layout, for the priorities


@dataclass
class LoopConfig:
    """How a worker actor paces itself."""

    chunk_steps: int = 32  # env.step() calls per replay insert
    sync_interval: int = 100  # env steps (agent transitions) between weight checks
    max_backoff_s: float = 1.0  # longest pause per chunk when the learner is behind
    random_warmup: bool = True  # uniform random actions until trained weights arrive
