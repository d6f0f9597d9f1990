"""Serve a Gymnasium env to the ML-Agents trainer as if it were a Unity build.

Launched by the stock client through `envs/gymnasium/Gymnasium.x86_64`:
`UnityEnvironment(file_name="<repo>/envs/gymnasium/Gymnasium",
additional_args=["--env-id", "HalfCheetah-v5"])`. By hand (editor mode):
`python -m envs.gymnasium --env-id Pendulum-v1 --mlagents-port 5004`.
"""

from __future__ import annotations

import argparse

from envs.gymnasium.check import mujoco_warnings_to_log, working_directory_importable
from envs.gymnasium.simulation import GymnasiumSimulation
from envs.unity_player.player import exit_now, player_parser, run_player


def make_parser() -> argparse.ArgumentParser:
    p = player_parser("Gymnasium", __doc__)
    p.add_argument("--env-id", default=None,
                   help="Gymnasium env id, e.g. HalfCheetah-v5; my_package.module:MyEnv-v0 "
                        "imports my_package.module first (which registers MyEnv-v0)")
    p.add_argument("--max-episode-steps", type=int, default=None,
                   help="override the env's time limit (episodes end as truncated)")
    return p


def make_simulation(args: argparse.Namespace) -> GymnasiumSimulation:
    if not args.env_id:
        raise ValueError("no --env-id given: pass one, e.g. --env-id HalfCheetah-v5")
    return GymnasiumSimulation(args.env_id, args.max_episode_steps)


def main(argv: list[str] | None = None) -> int:
    # For the life of the process: each area's copy may load a MuJoCo model, and a user's
    # module in the working directory may be imported when a copy is made.
    with mujoco_warnings_to_log(), working_directory_importable():
        return run_player("Gymnasium", make_parser(), make_simulation, argv)


if __name__ == "__main__":
    exit_now(main())
