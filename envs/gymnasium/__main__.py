"""Serve a Gymnasium env to the ML-Agents trainer as if it were a Unity build.

Launched by the stock client through `envs/gymnasium/Gymnasium.x86_64`:
`UnityEnvironment(file_name="<repo>/envs/gymnasium/Gymnasium",
additional_args=["--env-id", "HalfCheetah-v5"])`. By hand (editor mode):
`python -m envs.gymnasium --env-id Pendulum-v1 --mlagents-port 5004`.
"""

from __future__ import annotations

import argparse
import json

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
    p.add_argument("--env-kwargs", default=None, metavar="JSON",
                   help="keyword arguments for gymnasium.make, a JSON object, e.g. "
                        "'{\"ctrl_cost_weight\": 0.2}'")
    return p


def env_kwargs(text: str | None) -> dict:
    """--env-kwargs as a dict; ValueError (one line) for anything but a JSON object."""
    if text is None:
        return {}
    try:
        kwargs = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"--env-kwargs {text!r} is not JSON ({err.msg}); give an object, "
                         "e.g. '{\"g\": 9.81}'") from None
    if not isinstance(kwargs, dict):
        raise ValueError(f"--env-kwargs {text!r} must be a JSON object of keyword arguments, "
                         "e.g. '{\"g\": 9.81}'")
    return kwargs


def bridge_options(argv: list[str]) -> tuple[int | None, dict]:
    """(--max-episode-steps, --env-kwargs) among the bridge's arguments `argv`, for the
    trainer to check the env before it launches anything; ValueError in one line."""
    parser = make_parser()
    parser.exit_on_error = False
    try:
        args, _ = parser.parse_known_args(argv)
    except argparse.ArgumentError as err:
        raise ValueError(f"--env-args: {err}") from None
    return args.max_episode_steps, env_kwargs(args.env_kwargs)


def make_simulation(args: argparse.Namespace) -> GymnasiumSimulation:
    if not args.env_id:
        raise ValueError("no --env-id given: pass one, e.g. --env-id HalfCheetah-v5")
    return GymnasiumSimulation(args.env_id, args.max_episode_steps, env_kwargs(args.env_kwargs))


def main(argv: list[str] | None = None) -> int:
    # For the life of the process: each area's copy may load a MuJoCo model, and a user's
    # module in the working directory may be imported when a copy is made.
    with mujoco_warnings_to_log(), working_directory_importable():
        return run_player("Gymnasium", make_parser(), make_simulation, argv)


if __name__ == "__main__":
    exit_now(main())
