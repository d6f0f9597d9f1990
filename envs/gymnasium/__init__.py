"""The Gymnasium bridge: any Gymnasium env served to the ML-Agents trainer as a Unity build.

`GYMNASIUM_EXECUTABLE` is the path to give `UnityEnvironment(file_name=...)`, with
`additional_args=["--env-id", ID]`; `check_env_id(ID)` says, before anything is launched,
what the trainer will see or why the env cannot be served. docs/gymnasium.md has the
mapping. Importing this package does not import gymnasium.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from envs.gymnasium.naming import PREFIX, behavior_name, env_id_of

if TYPE_CHECKING:
    from envs.gymnasium.spaces import BridgeSpec

GYMNASIUM_EXECUTABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Gymnasium")
__all__ = ["GYMNASIUM_EXECUTABLE", "PREFIX", "behavior_name", "check_env_id", "env_id_of"]
def check_env_id(env_id: str, max_episode_steps: int | None = None,
                 kwargs: dict | None = None) -> BridgeSpec:
    """Make the env once and map its spaces: the BridgeSpec the trainer will see, or
    ValueError with one line naming the problem and the fix."""
    from envs.gymnasium.check import check_env_id as check

    return check(env_id, max_episode_steps, kwargs)
