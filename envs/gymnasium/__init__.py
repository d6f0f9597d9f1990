"""The Gymnasium bridge: any Gymnasium env served to the ML-Agents trainer as a Unity build.

`GYMNASIUM_EXECUTABLE` is the path to give `UnityEnvironment(file_name=...)`, with
`additional_args=["--env-id", ID]`; `check_env_id(ID)` says, before anything is launched,
what the trainer will see or why the env cannot be served. docs/gymnasium.md has the
mapping. Importing this package does not import gymnasium.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from envs.gymnasium.spaces import BridgeSpec

GYMNASIUM_EXECUTABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Gymnasium")
PREFIX = "gymnasium:"  # what --env says for it: gymnasium:<env-id>
_NOT_IN_STEM = re.compile(r"[^A-Za-z0-9._-]")


def env_id_of(env: str) -> str | None:
    """The Gymnasium env id of an --env value 'gymnasium:<env-id>', else None."""
    return env[len(PREFIX):] if env.startswith(PREFIX) else None


def behavior_name(env_id: str) -> str:
    """The behavior's wire name for an env id: the id after any 'module:' prefix, with
    every character other than letters, digits, '.', '_' and '-' replaced by '_', then
    '?team=0' (as Unity appends). Without the suffix it is a valid file name stem."""
    return _NOT_IN_STEM.sub("_", env_id.rsplit(":", 1)[-1]) + "?team=0"


def check_env_id(env_id: str, max_episode_steps: int | None = None) -> BridgeSpec:
    """Make the env once and map its spaces: the BridgeSpec the trainer will see, or
    ValueError with one line naming the problem and the fix."""
    from envs.gymnasium.check import check_env_id as check

    return check(env_id, max_episode_steps)
