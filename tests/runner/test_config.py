"""Config files, presets, aliases and CLI overrides."""

import os

import pytest

from runner.config import Config, parse, seed_preset

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def conf(name: str) -> str:
    return os.path.join(REPO, "configs", name)


def test_shipped_files_are_the_presets():
    assert parse([conf("drone.yaml")]) == Config()
    assert parse([conf("seed.yaml")]) == seed_preset()


def test_yaml_plus_cli_override_gives_the_expected_config():
    cfg = parse([conf("seed.yaml"), "--batch-size", "64", "--num-envs", "3",
                 "--torch-device", "cpu", "--no-graphics"])
    assert cfg.replay.batch_size == 64  # the flag wins
    assert cfg.replay.buffer_size == 50_000 and cfg.learner.gamma == 0.9  # from the file
    assert cfg.run.num_workers == 3 and cfg.learner.device == "cpu"  # mlagents-learn aliases
    assert cfg.env.graphics is False


def test_unknown_key_names_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("learner:\n  gama: 0.9\n")
    with pytest.raises(ValueError, match=r"unknown key 'learner.gama' \(did you mean 'gamma'\?\)"):
        parse([str(bad)])
    bad.write_text("lerner:\n  gamma: 0.9\n")
    with pytest.raises(ValueError, match="unknown key 'lerner'"):
        parse([str(bad)])


def test_missing_or_invalid_file(tmp_path):
    with pytest.raises(ValueError, match="cannot read config file"):
        parse([str(tmp_path / "nope.yaml")])
    broken = tmp_path / "broken.yaml"
    broken.write_text("run: [unclosed\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        parse([str(broken)])


def test_resume_reloads_the_runs_own_configuration(tmp_path):
    from runner.config_file import save_config

    first = parse(["--run-id", "r", "--results-dir", str(tmp_path), "--batch-size", "48",
                   "--force"])
    (tmp_path / "r").mkdir()
    save_config(str(tmp_path / "r"), first)
    again = parse(["--run-id", "r", "--results-dir", str(tmp_path), "--resume",
                   "--train-steps", "9000"])
    assert again.replay.batch_size == 48  # from the run's configuration.yaml
    assert again.run.train_steps == 9000 and again.run.resume and not again.run.force


def test_resume_with_a_config_file_layers_it_over_the_saved_configuration(tmp_path):
    """The run's own configuration.yaml, then the file given, then the flags (the file
    used to replace the saved configuration, losing what the first session's flags set)."""
    from runner.config_file import save_config

    first = parse(["--run-id", "r", "--results-dir", str(tmp_path), "--batch-size", "48",
                   "--num-areas", "3"])
    (tmp_path / "r").mkdir()
    save_config(str(tmp_path / "r"), first)
    override = tmp_path / "more.yaml"
    override.write_text("run:\n  train_steps: 7000\nenv:\n  num_areas: 2\n")
    again = parse([str(override), "--run-id", "r", "--results-dir", str(tmp_path),
                   "--resume", "--num-areas", "4"])
    assert again.replay.batch_size == 48  # saved
    assert again.run.train_steps == 7000  # the file
    assert again.env.num_areas == 4  # the flag
