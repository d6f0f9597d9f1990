"""Making a Gymnasium env for the bridge, with one-line errors the trainer can show as is."""

from __future__ import annotations

import contextlib
import logging
import os
import sys

import gymnasium

from envs.gymnasium.spaces import ActionMapping, BridgeSpec, ObservationPart, bridge_spec

log = logging.getLogger("gymnasium_bridge")

_NOT_FOUND_HINT = ("check the id (gymnasium.pprint_registry() lists the registered ones), or "
                   "write it as module:EnvId so that the module registering it is imported")
_IMPORT_HINT = "install that package, or put its module on PYTHONPATH or in the working directory"
# This project's top-level packages and launch.py (first on the path of the trainer and of
# the bridge): a user's package of the same name is hidden behind ours.
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OWN_PACKAGES = tuple(sorted(name for name in os.listdir(_ROOT)
                            if os.path.isfile(os.path.join(_ROOT, name, "__init__.py")))
                     ) + ("launch",)


def log_mujoco_warnings() -> tuple[bool, object]:
    """MuJoCo prints its warnings on the terminal and appends them to MUJOCO_LOG.TXT in the
    working directory (the trainer's); send them to our log instead, once each. Returns
    (whether MuJoCo is installed, the handler it had)."""
    try:
        import mujoco
    except ImportError:
        return False, None
    seen: set[str] = set()

    def warn(message: str) -> None:
        if message not in seen:
            seen.add(message)
            log.info("MuJoCo: %s", message.strip())

    previous = mujoco.get_mju_user_warning()
    mujoco.set_mju_user_warning(warn)
    return True, previous


@contextlib.contextmanager
def mujoco_warnings_to_log():
    """log_mujoco_warnings() while the block runs."""
    installed, previous = log_mujoco_warnings()
    try:
        yield
    finally:
        if installed:
            import mujoco

            mujoco.set_mju_user_warning(previous)


@contextlib.contextmanager
def working_directory_importable():
    """A user's module in the working directory can register envs, as on PYTHONPATH; it
    goes last on sys.path so that it never shadows this project or an installed package."""
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.append(cwd)
    try:
        yield
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def make_env(env_id: str, max_episode_steps: int | None = None,
             kwargs: dict | None = None) -> gymnasium.Env:
    """`gymnasium.make(env_id, **kwargs)` (which imports 'module:' first); ValueError in one
    line."""
    if max_episode_steps is not None and max_episode_steps < 1:
        raise ValueError(f"--max-episode-steps must be >= 1, got {max_episode_steps}; leave "
                         "it out to keep the env's own time limit")
    try:
        with working_directory_importable():
            return gymnasium.make(env_id, max_episode_steps=max_episode_steps,
                                  **(kwargs or {}))
    except gymnasium.error.UnregisteredEnv as err:
        hint = _shadowed(env_id) or _not_found_hint(env_id)
        raise ValueError(f"--env-id {env_id}: {_then(_first_line(err), hint)}") from None
    except ImportError as err:  # gymnasium's is the import's, with two sentences of advice
        hint = _shadowed(env_id) or _import_hint(env_id, err)
        said = err.__cause__ if isinstance(err.__cause__, ImportError) else err
        raise ValueError(f"--env-id {env_id}: {_then(_first_line(said), hint)}") from None
    except TypeError as err:  # most often a keyword the env does not take
        raise ValueError(f"--env-id {env_id}: gymnasium.make failed with TypeError: "
                         f"{_first_line(err)}; check --env-kwargs against the env's "
                         "constructor") from None
    except Exception as err:  # the env's own constructor failed: say what it said
        raise ValueError(f"--env-id {env_id}: gymnasium.make failed with "
                         f"{type(err).__name__}: {_first_line(err)}; check the env id and "
                         "that the env builds on its own") from None


def _shadowed(env_id: str) -> str | None:
    """The fix when `module:EnvId` names a module under one of this project's own
    top-level packages, which Python finds before the user's package of that name."""
    top = env_id.split(":", 1)[0].split(".", 1)[0] if ":" in env_id else ""
    if top not in OWN_PACKAGES:
        return None
    kind = "module" if top == "launch" else "package"
    return (f"'{top}' is also a {kind} of drone-ddpg, which hides yours of that name: "
            f"rename your {kind} (e.g. my_{top})")


def _not_found_hint(env_id: str) -> str:
    if ":" not in env_id:
        return _NOT_FOUND_HINT
    module = env_id.split(":", 1)[0]  # imported: the id is not one it registers
    return (f"check the id against those {module} registers (gymnasium.pprint_registry() "
            "lists every registered id)")


def _import_hint(env_id: str, err: ImportError) -> str:
    """Which import failed: the user's module itself, or something it imports."""
    module = env_id.split(":", 1)[0] if ":" in env_id else ""
    cause = err.__cause__ if isinstance(err.__cause__, ImportError) else err
    missing = getattr(cause, "name", None) or ""
    if module and missing and missing != module and not module.startswith(missing + "."):
        return f"{module} imports {missing}, which is not installed: install it"
    if module and not missing:  # raised by the module's own code (a library it loads)
        return (f"importing {module} failed: check that `python -c 'import {module}'` works "
                "in this folder")
    return _IMPORT_HINT


def _then(text: str, hint: str) -> str:
    """`text`, then `hint`: after gymnasium's "Did you mean: `X`?", as the other way."""
    text = text.rstrip().rstrip(".")
    return f"{text} Otherwise {hint}" if text.endswith("?") else f"{text}; {hint}"


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def open_env(env_id: str, max_episode_steps: int | None = None, kwargs: dict | None = None
             ) -> tuple[gymnasium.Env, BridgeSpec, list[ObservationPart], ActionMapping]:
    """Make the env and map its spaces; the env is closed again if they are refused."""
    env = make_env(env_id, max_episode_steps, kwargs)
    try:
        limit = env.spec.max_episode_steps if env.spec is not None else None
        spec, parts, actions = bridge_spec(env_id, env.observation_space, env.action_space,
                                           limit)
    except BaseException:
        env.close()
        raise
    return env, spec, parts, actions


def check_env_id(env_id: str, max_episode_steps: int | None = None,
                 kwargs: dict | None = None) -> BridgeSpec:
    """What the trainer will see for `env_id` through the bridge, checked before anything
    is launched: raises ValueError with one line naming the problem and the fix."""
    with mujoco_warnings_to_log():
        env, spec, _, _ = open_env(env_id, max_episode_steps, kwargs)
        env.close()
    return spec
