"""The warning lines printed before a run starts: a configuration that runs, but most
likely not as its user meant (each said in one line with the fix, never refused)."""

from __future__ import annotations


def warnings_for(cfg) -> list[str]:
    """Every warning that applies to `cfg`, in the order they are printed."""
    found = (env_args_warning(cfg), budget_warning(cfg), env_params_warning(cfg),
             other_mode_flags(cfg))
    return [warning for warning in found if warning]


def budget_warning(cfg) -> str | None:
    """A budget that never reaches the first update is allowed (a smoke run, data only),
    but said: otherwise '0 updates/s' and an untrained test phase come unexplained."""
    if cfg.run.inference or cfg.run.resume or cfg.run.updates_per_step == 0:
        return None  # (a resumed run's steps so far are in its checkpoint, not known here)
    if cfg.run.train_steps > cfg.replay.min_size:
        return None
    return (f"--train-steps {cfg.run.train_steps} does not pass the {cfg.replay.min_size} "
            "rows the replay needs before the first update (--learning-starts, "
            "--batch-size): the learner will not update; raise --train-steps or lower "
            "--learning-starts")


def env_params_warning(cfg) -> str | None:
    """Our envs read no environment parameters: a run that sets some is told, rather than
    left to believe its values changed anything."""
    from envs import runs_in_process

    if not cfg.env.env_params or not runs_in_process(cfg.env.env):
        return None
    return (f"--env {cfg.env.env} reads no environment parameters, so --env-params "
            f"({', '.join(cfg.env.env_params)}) has no effect (it is for a Unity build's "
            "Academy.Instance.EnvironmentParameters)")


# Flags that are ours and also the bundled envs' own (envs/unity_player/player.py, the
# Drone's and the bridge's __main__): after --env-args they are meant for the env.
BUNDLED_ENV_FLAGS = {"--seed", "--max-step"}


def env_args_warning(cfg) -> str | None:
    """Everything after --env-args goes to the env: our own flags there (put after it by
    mistake) would otherwise be silently ignored by the env and missed by the trainer."""
    from envs import runs_in_process
    from runner.cli import flag_names

    ours = set(flag_names()) - (BUNDLED_ENV_FLAGS if runs_in_process(cfg.env.env) else set())
    stray = [arg for arg in cfg.env.env_args if arg.split("=", 1)[0] in ours]
    if not stray:
        return None
    return (f"--env-args passes {', '.join(stray)} to the env, not to the trainer (everything "
            "after --env-args goes to the env): put the trainer's flags before --env-args")


# Flags that only one mode reads: (section, field, flag, the mode that reads it).
MODE_FLAGS = [("run", "collect_steps", "--collect-steps", "local"),
              ("run", "overlap_envs", "--overlap-envs", "local"),
              ("run", "chunk_steps", "--chunk-steps", "ray"),
              ("run", "sync_interval", "--sync-interval", "ray"),
              ("run", "publish_interval", "--publish-interval", "ray"),
              ("learner", "device_replay", "--device-replay", "ray")]


def other_mode_flags(cfg) -> str | None:
    """The flags set away from their defaults that only the other mode reads: said, not
    silently ignored (None when there are none)."""
    unread = [flag for section, name, flag, mode in MODE_FLAGS if mode != cfg.run.mode
              and getattr(getattr(cfg, section), name)
              != type(getattr(cfg, section)).__dataclass_fields__[name].default]
    if not unread:
        return None
    return (f"--mode {cfg.run.mode} ignores {', '.join(unread)} (only the other mode reads "
            f"{'them' if len(unread) > 1 else 'it'}): drop {'them' if len(unread) > 1 else 'it'}"
            " or pass the other --mode")
