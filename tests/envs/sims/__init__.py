"""Test-only scenes served by the project's Unity-player protocol server.

Launch one with the stock client like a Unity build:
`UnityEnvironment(file_name=SIM_EXECUTABLE, additional_args=["--sim", NAME])`.
NAMES lists them; each scene's module says what it presents.
"""

import os

from tests.envs.sims import scenes
from tests.envs.sims.schedules import DecisionPeriods, Vanishing

SIM_EXECUTABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Sim")

SCENES = {
    "two-behaviors": scenes.two_behaviors,
    "visual": scenes.visual,
    "discrete": scenes.discrete,
    "hybrid": scenes.hybrid,
    "one-area": scenes.one_area,
    "decision-periods": DecisionPeriods,
    "vanishing": Vanishing,
}
NAMES = tuple(SCENES)
