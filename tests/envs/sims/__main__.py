"""Serve one test scene: `python -m tests.envs.sims --sim NAME --mlagents-port P`."""

from __future__ import annotations

import argparse

from envs.unity_player.player import exit_now, player_parser, run_player
from tests.envs.sims import NAMES, SCENES


def make_simulation(args: argparse.Namespace):
    if args.sim not in SCENES:
        raise ValueError(f"--sim {args.sim!r} is not a test scene: pass one of {', '.join(NAMES)}")
    return SCENES[args.sim]()


def main(argv: list[str] | None = None) -> int:
    parser = player_parser("Sim", __doc__)
    parser.add_argument("--sim", default=None, help=f"scene: {', '.join(NAMES)}")
    return run_player("Sim", parser, make_simulation, argv)


if __name__ == "__main__":
    exit_now(main())
