"""The warning lines printed before a run starts (runner/config_warnings.py)."""

import pytest

from runner.cli import parse


@pytest.mark.parametrize("args, warned", [
    (["--train-steps", "3000", "--learning-starts", "5000"], True),
    (["--train-steps", "5000", "--learning-starts", "100", "--batch-size", "5000",
      "--buffer-size", "8000"], True),  # the batch size bounds the first update too
    (["--train-steps", "5001", "--learning-starts", "5000"], False),
    (["--train-steps", "3000", "--learning-starts", "5000", "--updates-per-step", "0"], False),
    (["--train-steps", "3000", "--learning-starts", "5000", "--inference"], False),
    # a resumed run may be past learning_starts already (it said so of a finished run)
    (["--train-steps", "100", "--resume", "--run-id", "no-such-run"], False),
])
def test_a_budget_that_never_updates_is_said(args, warned):
    from runner.config_warnings import budget_warning

    warning = budget_warning(parse(args))
    assert (warning is not None) == warned
    if warned:
        assert "\n" not in warning and "will not update" in warning


@pytest.mark.parametrize("env, warned", [
    ("bundled-drone", True), ("gymnasium:Pendulum-v1", True), ("Builds/MyGame.x86_64", False)])
def test_environment_parameters_our_envs_ignore_are_said(env, warned):
    from runner.config_warnings import env_params_warning

    assert env_params_warning(parse(["--env", env])) is None  # none given
    warning = env_params_warning(parse(["--env", env, "--env-params", "gravity", "9.8"]))
    assert (warning is not None) == warned
    if warned:
        assert "\n" not in warning and "--env-params (gravity) has no effect" in warning


@pytest.mark.parametrize("env, args, stray", [
    ("bundled-drone", ["--max-step", "300", "--train-steps", "500", "--log-interval=2"],
     "--train-steps, --log-interval=2"),
    ("gymnasium:Pendulum-v1", ["--env-kwargs", "{}", "--seed", "3"], None),
    ("Builds/MyGame.x86_64", ["-myFlag", "3", "--seed", "3"], "--seed"),
])
def test_trainer_flags_after_env_args_are_said(env, args, stray):
    """They went to the env, which ignored them, and the run trained on the defaults."""
    from runner.config_warnings import env_args_warning

    warning = env_args_warning(parse(["--env", env, "--env-args", *args]))
    if stray is None:
        assert warning is None
    else:
        assert warning.startswith(f"--env-args passes {stray} to the env, not") and \
            "put the trainer's flags before --env-args" in warning


@pytest.mark.parametrize("args, unread", [
    (["--mode", "local", "--chunk-steps", "5"], "--mode local ignores --chunk-steps (only"),
    (["--overlap-envs", "--collect-steps", "4"],
     "--mode ray ignores --collect-steps, --overlap-envs (only"),
    (["--mode", "local", "--no-device-replay"], "--mode local ignores --device-replay"),
    (["--mode", "local", "--overlap-envs", "--collect-steps", "4"], None),  # its own flags
    (["--chunk-steps", "5", "--sync-interval", "10"], None),
    (["configs/drone.yaml", "--mode", "local"], None),  # a file that spells the defaults out
])
def test_a_flag_only_the_other_mode_reads_is_said(args, unread):
    """`--mode local --chunk-steps 5` trained 50,000 steps with --chunk-steps ignored, and
    not a word about it."""
    from runner.config_warnings import other_mode_flags

    warning = other_mode_flags(parse(args))
    assert (warning is None) == (unread is None), warning
    if unread:
        assert warning.startswith(unread) and "\n" not in warning
