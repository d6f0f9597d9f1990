"""What --env says for a Gymnasium env, and the behavior name it gets (light: no gymnasium)."""

from __future__ import annotations

import re

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


