"""Environments: the headless Drone, the Gymnasium bridge and the ML-Agents protocol glue.

Importing this package installs the protobuf fast path (envs/protobuf_compat.py) so that
`mlagents_envs` imported afterwards runs on the current protobuf runtime.
"""

from envs import protobuf_compat as _protobuf_compat

_protobuf_compat.install()


def resolve_env(env: str) -> tuple[str, list[str]]:
    """What to launch for an --env value: (file_name for UnityEnvironment, extra arguments).

    `bundled-drone` is the headless Drone; `gymnasium:<env-id>` is the Gymnasium bridge
    with `--env-id <env-id>`; anything else is a Unity build's path, relative to the working
    directory (a name without a slash gets one, or the stock client's subprocess looks it
    up on PATH instead).
    """
    import os

    from envs import drone, gymnasium

    if drone.is_bundled(env):
        return drone.DRONE_EXECUTABLE, []
    env_id = gymnasium.env_id_of(env)
    if env_id is None:
        return (env if os.sep in env else os.path.join(os.curdir, env)), []
    if not env_id:
        raise ValueError(f"--env {env!r} names no Gymnasium env: write gymnasium:<env-id>, "
                         "e.g. gymnasium:HalfCheetah-v5")
    return gymnasium.GYMNASIUM_EXECUTABLE, ["--env-id", env_id]


def runs_in_process(env: str) -> bool:
    """Whether --env names a simulation of ours (the Drone, a Gymnasium env), which
    --transport in-process can step without a process of its own (envs/in_process.py)."""
    from envs import drone, gymnasium

    return drone.is_bundled(env) or gymnasium.env_id_of(env) is not None
