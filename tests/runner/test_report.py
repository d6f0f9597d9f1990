"""The end-of-run table: every result and every path."""

import os

from runner.report import end_of_run_table

SUMMARY = {
    "env_steps": 50000, "learner_steps": 45000, "policy_version": 45000, "wall_s": 200.0,
    "train": {"episodes": 263, "mean_over": 100, "mean_return": 0.65, "mean_length": 359.1,
              "success_rate": 0.7},
    "test": {"episodes": 16, "mean_over": 16, "mean_return": -2.0029, "mean_length": 645.7,
             "success_rate": 0.375},
}


def test_table_has_every_item_and_path():
    run_dir = os.path.join("results", "my-run")
    table = end_of_run_table(SUMMARY, run_dir, os.path.join(run_dir, "Drone.onnx"))
    for text in ("env steps", "50000", "wall time", "200.0 s", "steps/s", "250",
                 "updates/s", "225", "train success", "0.70", "test success", "0.38",
                 "train return", "+0.65", "test return", "-2.00",
                 "last 100 of 263 episodes", "all 16 episodes",
                 os.path.join(run_dir, "checkpoints", "latest.pt"),
                 os.path.join(run_dir, "Drone.onnx"), "tensorboard --logdir results"):
        assert text in table, text


def test_measured_rates_win_over_averages():
    summary = dict(SUMMARY, perf={"env_steps_per_s": 999.0, "updates_per_s": 777.0})
    table = end_of_run_table(summary, "results/r", None)
    assert "999" in table and "777" in table and "run average" not in table


def test_missing_values_and_onnx_read_as_dashes():
    table = end_of_run_table({}, "results/r", None)
    assert "not exported" in table and "no episodes" in table
    assert "results/r/checkpoints/latest.pt" in table


def test_an_env_without_a_success_gets_no_success_rows():
    no_success = {phase: dict(SUMMARY[phase], success_rate=None) for phase in ("train", "test")}
    table = end_of_run_table(dict(SUMMARY, **no_success), "results/r", None)
    assert "success" not in table
    assert "train return" in table and "+0.65" in table and "-2.00" in table


def test_tensorboard_is_the_one_beside_python_when_not_on_path(tmp_path, monkeypatch):
    """`make run` does not put .venv/bin on PATH: `tensorboard --logdir results`, as
    printed, was 'command not found'. The same for `ray` in the cluster messages."""
    from runner import errors

    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "tensorboard").write_text("")
    (tmp_path / "bin" / "ray").write_text("")
    monkeypatch.setattr(errors.sys, "executable", str(tmp_path / "bin" / "python"))
    monkeypatch.setattr(errors.shutil, "which", lambda name: None)
    monkeypatch.chdir(tmp_path)
    assert "bin/tensorboard --logdir results" in end_of_run_table(SUMMARY, "results/r", None)
    assert errors.venv_command("ray") == "bin/ray"
    monkeypatch.setattr(errors.shutil, "which", lambda name: "/usr/bin/tensorboard")
    assert "\nTensorBoard    tensorboard --logdir" in end_of_run_table(SUMMARY, "results/r", None)


def test_a_test_phase_that_ended_no_episode_says_how_to_get_one():
    summary = dict(SUMMARY, test={"episodes": 0, "mean_over": 0, "mean_return": None})
    table = end_of_run_table(summary, "results/r", None, test_steps=1000)
    assert "no episode ended within --test-steps 1000: raise it" in table
    assert "no episodes" in end_of_run_table(summary, "results/r", None, test_steps=0)


def test_a_single_episode_reads_as_one():
    """'(all 1 episodes)'."""
    summary = dict(SUMMARY, test={"episodes": 1, "mean_over": 1, "mean_return": -5.61})
    assert "-5.61 (1 episode)" in end_of_run_table(summary, "results/r", None)
