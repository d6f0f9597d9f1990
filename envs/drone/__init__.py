"""The headless Drone: the Unity ML-Agents "Drone" environment re-implemented in numpy,
speaking the real ML-Agents protocol so the stock `mlagents_envs` client drives it.

`DRONE_EXECUTABLE` is the path to give `UnityEnvironment(file_name=...)`.
"""

import os

DRONE_EXECUTABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Drone")
# What --env says for it: a name that reads the same wherever the repo is.
BUNDLED = "bundled-drone"


def is_bundled(env: str) -> bool:
    return env in (BUNDLED, DRONE_EXECUTABLE)

BEHAVIOR_NAME = "My Behavior?team=0"
