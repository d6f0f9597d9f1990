"""drone-ddpg's entry point.

Until the training issues land, it flies the Drone under the stock ML-Agents client with
a hand-written proportional controller and prints what happens: proof that the env, the
protocol and the launcher work on this machine. `make run` calls it.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np
import tyro

import envs  # noqa: F401  (protobuf fast path before mlagents_envs)
from envs.drone import DRONE_EXECUTABLE
from envs.drone.controller import proportional_action


@dataclass
class FlyConfig:
    """Fly the Drone with a proportional controller through the stock ML-Agents client."""

    env: str = DRONE_EXECUTABLE
    """path to the env executable, without extension (a Unity build works the same way)"""
    episodes: int = 20
    """episodes to fly before stopping"""
    num_areas: int = 4
    """training areas (agents) in the env process"""
    worker_id: int = 0
    """ML-Agents worker id: the client listens on base-port + worker-id"""
    base_port: int = 5005
    """ML-Agents base port"""
    max_step: int = 1000
    """episode step limit passed to the headless Drone (0 = none, as in the original)"""
    seed: int = 0
    """seed sent to the env"""


def open_env(cfg: FlyConfig):
    from mlagents_envs.environment import UnityEnvironment

    args = ["--max-step", str(cfg.max_step)] if cfg.env == DRONE_EXECUTABLE else []
    return UnityEnvironment(file_name=cfg.env, worker_id=cfg.worker_id, base_port=cfg.base_port,
                            seed=cfg.seed, num_areas=cfg.num_areas, no_graphics=True,
                            additional_args=args)


def fly(env, cfg: FlyConfig) -> tuple[int, int, int]:
    """Fly until `cfg.episodes` end; returns (episodes, successes, env steps)."""
    from mlagents_envs.base_env import ActionTuple

    env.reset()
    name = next(iter(env.behavior_specs))
    returns: dict[int, float] = {}
    episodes = successes = steps = 0
    decision, _ = env.get_steps(name)
    while episodes < cfg.episodes:
        env.set_actions(name, ActionTuple(continuous=proportional_action(decision.obs[0])))
        env.step()
        steps += 1
        decision, terminal = env.get_steps(name)
        for agent, reward in zip(terminal.agent_id, terminal.reward):
            episode_return = returns.pop(agent, 0.0) + reward
            episodes += 1
            reached = reward == 1.0
            successes += reached
            outcome = "reached the goal" if reached else (
                "interrupted" if terminal.interrupted[terminal.agent_id == agent][0] else "lost")
            print(f"episode {episodes:3d}  agent {agent}  step {steps:5d}  "
                  f"return {episode_return:+.2f}  {outcome}")
        for agent, reward in zip(decision.agent_id, decision.reward):
            returns[agent] = returns.get(agent, 0.0) + reward
    return episodes, successes, steps


def main(cfg: FlyConfig) -> int:
    from mlagents_envs.exception import UnityEnvironmentException, UnityWorkerInUseException

    try:
        env = open_env(cfg)
    except UnityWorkerInUseException:
        print(f"error: port {cfg.base_port + cfg.worker_id} is in use; pass another "
              "--worker-id", file=sys.stderr)
        return 2
    except UnityEnvironmentException as err:
        print(f"error: cannot start the env at {cfg.env!r} ({err}); pass --env with the "
              "path of a Unity Linux build (without .x86_64)", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        episodes, successes, steps = fly(env, cfg)
    except KeyboardInterrupt:
        print("interrupted: closing the env", file=sys.stderr)
        return 130
    finally:
        env.close()
    wall = time.monotonic() - started
    print(f"{episodes} episodes, {successes} at the goal ({successes / max(episodes, 1):.0%}), "
          f"{steps} steps x {cfg.num_areas} areas in {wall:.1f} s "
          f"({steps / wall:.0f} steps/s, {steps * cfg.num_areas / wall:.0f} agent-steps/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(tyro.cli(FlyConfig)))
