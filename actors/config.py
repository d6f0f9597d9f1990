"""What the env workers run: the env and how it is restarted (light: no torch, no mlagents)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from envs.drone import BUNDLED, is_bundled


@dataclass
class EnvConfig:
    """The env each worker runs."""

    env: str = BUNDLED
    """bundled-drone (the headless Drone), gymnasium:<env-id> (any Gymnasium env through the
    bridge, e.g. gymnasium:HalfCheetah-v5 or my_pkg.module:MyEnv-v0), or the path of a Unity
    build without its extension"""
    num_areas: int = 1
    """training areas (agents) per env process, sent to the env as num_areas"""
    base_port: int = 5005
    """ML-Agents base port: worker k listens on base-port + k"""
    time_scale: float = 20.0
    """Unity time scale, in training and test alike (the headless Drone ignores it)"""
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
    """what counts as a success: positive-terminal = the episode terminated (not at a step
    limit) with a positive final reward (the Drone's goal); none = no success rate is
    reported; auto = positive-terminal for the bundled Drone, none for any other env"""
    agent_timeout: int = 1000
    """env steps after which an agent that stopped asking for decisions without ending its
    episode is forgotten, with its episode (agents that vanish must not leak memory)"""

    def tracks_success(self) -> bool:
        """Whether episodes of this env have a success to report."""
        if self.success == "auto":
            return is_bundled(self.env)
        return self.success == "positive-terminal"
