"""The headless Drone: the Unity ML-Agents "Drone" environment re-implemented in numpy,
speaking the real ML-Agents protocol so the stock `mlagents_envs` client drives it.

`DRONE_EXECUTABLE` is the path to give `UnityEnvironment(file_name=...)`.
"""

import os

DRONE_EXECUTABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Drone")
BEHAVIOR_NAME = "My Behavior?team=0"
