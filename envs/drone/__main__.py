"""Run the headless Drone: `python -m envs.drone --mlagents-port 5004` (editor mode).

The stock client launches it through `envs/drone/Drone.x86_64` with the arguments it gives
a Unity player: `-nographics -batchmode --mlagents-port P [-logFile F] [additional_args]`.
"""

from __future__ import annotations

import argparse

from envs.drone.simulation import DroneSimulation
from envs.unity_player.player import exit_now, player_parser, run_player


def make_parser() -> argparse.ArgumentParser:
    p = player_parser("Drone", __doc__)
    p.add_argument("--max-step", type=int, default=0, help="episode step limit, 0 = none")
    p.add_argument("--fault-nan-at-step", type=int, default=0,
                   help="fault injection for tests: send a NaN observation at this step")
    return p


def make_simulation(args: argparse.Namespace) -> DroneSimulation:
    return DroneSimulation(max_step=args.max_step, nan_at_step=args.fault_nan_at_step)


def main(argv: list[str] | None = None) -> int:
    return run_player("Drone", make_parser(), make_simulation, argv)


if __name__ == "__main__":
    exit_now(main())
