"""Config files, presets, aliases and CLI overrides."""

import os

import pytest

from runner.cli import parse
from runner.config import Config, seed_preset

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


@pytest.mark.parametrize("text, expected", [
    ("run:\n  num_workers: '2'\n", "run.num_workers must be an integer, got '2'"),
    ("run:\n  train_steps: [1, 2]\n", "run.train_steps must be an integer"),
    ("run:\n  run_id: null\n", "run.run_id must be a string, got None"),
    ("run:\n  mode: bogus\n", "run.mode must be one of 'ray', 'local', got 'bogus'"),
    ("learner:\n  hidden_size: 64.5\n", "learner.hidden_size must be an integer, got 64.5"),
    ("learner:\n  device: tpu\n", "learner.device must be one of 'auto', 'cpu', 'cuda'"),
    ("env:\n  env_args: --foo\n", "env.env_args must be a list of strings, got '--foo'"),
    ("learner:\n  actor_lr: fast\n", "learner.actor_lr must be a number, got 'fast'"),
    ("env:\n  env_params: [1, 2]\n", "env.env_params must be a mapping of strings to numbers"),
    ("env:\n  env_params:\n    g: high\n", "env.env_params must be a mapping of strings to n"),
])
def test_config_file_values_of_the_wrong_type_name_the_key(tmp_path, text, expected):
    """dataclasses.replace checks no types: a string or a list went into a field unchecked
    and failed later with a traceback, or ran (mode: bogus ran in Ray mode)."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ValueError, match="bad.yaml: ") as raised:
        parse([str(bad)])
    assert expected in str(raised.value)


def test_yaml_numbers_without_a_dot_are_numbers(tmp_path):
    """YAML 1.1 reads 1e-3 as a string; a float field takes it as the number it means."""
    f = tmp_path / "lr.yaml"
    f.write_text("learner:\n  actor_lr: 1e-3\n  critic_lr: 2\n")
    cfg = parse([str(f)])
    assert cfg.learner.actor_lr == 1e-3 and cfg.learner.critic_lr == 2.0


@pytest.mark.parametrize("text", ["[]\n", "0\n", "false\n", "[run]\n"])
def test_a_config_file_that_is_not_sections_is_refused(tmp_path, text):
    """A file holding `[]`, `0` or `false` was read as an empty one: no change, silently."""
    f = tmp_path / "odd.yaml"
    f.write_text(text)
    with pytest.raises(ValueError, match="odd.yaml must hold sections"):
        parse([str(f)])


def test_an_empty_config_file_changes_nothing(tmp_path):
    f = tmp_path / "empty.yaml"
    f.write_text("# nothing yet\n")
    assert parse([str(f)]) == parse([])


def test_binary_config_file_names_the_file(tmp_path):
    f = tmp_path / "blob.yaml"
    f.write_bytes(b"\xff\xfe\x00\x01binary")
    with pytest.raises(ValueError, match="blob.yaml is not a text"):
        parse([str(f)])


@pytest.mark.parametrize("args, expected", [
    (["--run-id", ""], "--run-id must be a plain folder name"),
    (["--run-id", ".."], "--run-id must be a plain folder name"),
    (["--run-id", "a/b"], "--run-id must be a plain folder name"),
    (["--seed", "-1"], "--seed must be in 0..2147483647"),
    (["--address", "localhost"], "--address must be 'auto' or host:port"),
    (["--base-port", "70000"], "--base-port must be in 1024..65535"),
    (["--base-port", "65535", "--num-workers", "2"], "runs past port 65535"),
    (["--time-scale", "nan"], "--time-scale must be > 0"),
    (["--log-interval", "-1"], "--log-interval must be > 0"),
    (["--noise-sigma", "inf"], "--noise-sigma must be a finite number"),
    (["--ou-mu", "nan"], "--ou-mu must be a finite number"),
    (["--updates-per-step", "inf"], "--updates-per-step must be a finite number"),
    (["--updates-per-step", "1e300"], "--updates-per-step must be in 0..1000"),
    (["--per-alpha", "inf"], "--per-alpha must be a finite number"),
    (["--target-noise", "inf"], "--target-noise must be a finite number"),
    (["--ou-theta", "2"], "--ou-theta must be in [0, 1]"),
    (["--noise-sigma", "-1"], "--noise-sigma must be >= 0"),
    (["--transport", "in-process", "--env", "Build/MyGame"], "a Unity build needs the protocol"),
    (["--inference", "--test-steps", "0", "--run-id", "no-such-run"], "would test nothing"),
    (["--device", "cpu", "--cudagraphs"], "--cudagraphs needs the learner on a CUDA device"),
    (["--inference", "--force", "--run-id", "no-such-run"], "--inference only tests a trained"),
    (["--inference", "--resume", "--run-id", "no-such-run"], "--resume trains it on"),
    (["--mode", "local", "--address", "auto"], "pass --address None to go on in local mode"),
    (["--initialize-from", "drone"], "--initialize-from drone names this run"),
    (["--env-params", "gravity"], "give NAME VALUE pairs, e.g. --env-params gravity 9.81"),
    (["--env-params", "gravity", "high"], "every VALUE must be a number"),
    (["--env-params", "gravity", "nan"], "--env-params gravity nan is not a finite 32-bit"),
    (["--env-params", "gravity", "1e39"], "is not a finite 32-bit float"),
    (["--env-params", "schwerkraftä", "1"], "must be non-empty ASCII"),
    (["--torch-threads", "100000"], "--torch-threads must be in 0..1024"),
    (["--results-dir", ""], "--results-dir must not be empty"),
])
def test_values_out_of_range_are_refused(args, expected):
    """Each was accepted and failed later: a traceback, a misleading env error, or a run
    that deleted the folder above --results-dir (--run-id .. --force)."""
    from runner.config import validate

    with pytest.raises(ValueError) as raised:
        validate(parse(args))
    assert expected in str(raised.value)


@pytest.mark.parametrize("args, expected", [
    (["--env-params", "gravity"],
     "--env-params: give NAME VALUE pairs, e.g. --env-params gravity 9.81; see --help"),
    (["--train-steps", "abc"], "--train-steps takes a whole number, not 'abc'; see --help"),
    (["--tau", "x"], "--tau takes a number, not 'x'; see --help"),
    (["--mode", "foo"], "--mode 'foo': expected one of ray, local; see --help"),
    (["--train-steps", "-5"], "--train-steps must be >= 0; see --help"),
    (["--train-steps"], "--train-steps needs a value; see --help"),
])
def test_flag_errors_read_as_our_own(args, expected):
    """tyro's wording came through: 'Argument helptext: ...' pasted in, 'error parsing run:',
    'Expected one of ('ray', 'local').'."""
    from runner.config import validate

    with pytest.raises(ValueError) as raised:
        validate(parse(args))
    assert str(raised.value) == expected


def test_env_params_come_from_a_file_flags_and_the_saved_configuration(tmp_path):
    from runner.config_file import save_config

    f = tmp_path / "params.yaml"
    f.write_text("env:\n  env_params:\n    gravity: 9.8\n    wind: 1e-3\n")
    assert parse([str(f)]).env.env_params == {"gravity": 9.8, "wind": 1e-3}
    # the flag gives the whole mapping, keys the file did not have included
    assert parse([str(f), "--env-params", "drag", "2"]).env.env_params == {"drag": 2.0}
    first = parse([str(f), "--run-id", "p", "--results-dir", str(tmp_path)])
    (tmp_path / "p").mkdir()
    save_config(str(tmp_path / "p"), first)
    again = parse(["--run-id", "p", "--results-dir", str(tmp_path), "--resume"])
    assert again.env.env_params == {"gravity": 9.8, "wind": 1e-3}


def test_a_flag_missing_its_prefix_suggests_the_flags_that_end_with_it():
    """--lr used to suggest --help (the nearest spelling), not the two learning rates."""
    with pytest.raises(ValueError, match=r"did you mean --actor-lr or --critic-lr\?"):
        parse(["--lr", "1e-3"])


def test_a_saved_configuration_reused_as_a_template_never_resumes_or_overwrites(tmp_path):
    """configuration.yaml holds the settings, not how the session started: a --force run's
    file, reused as a config file, silently deleted and retrained the run it came from."""
    from runner.config_file import save_config

    cfg = parse(["--run-id", "fz", "--force", "--results-dir", str(tmp_path)])
    save_config(str(tmp_path), cfg)
    saved = (tmp_path / "configuration.yaml").read_text()
    assert "force" not in saved and "resume" not in saved and "inference" not in saved
    assert parse([str(tmp_path / "configuration.yaml")]).run.force is False
    template = tmp_path / "old.yaml"  # a file saved before: refused, with the fix
    template.write_text("run:\n  run_id: fz\n  force: true\n")
    with pytest.raises(ValueError, match=r"old.yaml: run.force is true in a config file; "
                                         r"set it false .* pass --force on the command line"):
        parse([str(template)])


def test_resume_refuses_what_it_would_silently_ignore(tmp_path):
    """--resume rebuilds the run's saved configuration: a --preset was dropped without a
    word, and a run missing its configuration.yaml went on with the defaults."""
    run_dir = tmp_path / "r"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "latest.pt").write_bytes(b"")
    (run_dir / "configuration.yaml").write_text("learner:\n  hidden_size: 8\n")
    where = ["--run-id", "r", "--results-dir", str(tmp_path)]
    assert parse(["--resume", *where]).learner.hidden_size == 8
    for session in ("--resume", "--inference"):  # it was ignored, and saved as if it were not
        with pytest.raises(ValueError, match="--initialize-from starts a new run; --resume "
                                             "and --inference continue this one"):
            parse([session, "--initialize-from", "other", *where])
    with pytest.raises(ValueError, match="--preset td3 sets up a new run; --resume and "
                                         "--inference keep the run's saved configuration"):
        parse(["--resume", "--preset", "td3", *where])
    (run_dir / "configuration.yaml").unlink()
    with pytest.raises(ValueError, match="run 'r' has no configuration.yaml .* restore the "
                                         "file, or give the run's config file first"):
        parse(["--inference", *where])
    given = tmp_path / "mine.yaml"
    given.write_text("learner:\n  hidden_size: 16\n")
    assert parse([str(given), "--resume", *where]).learner.hidden_size == 16


@pytest.mark.parametrize("argv, message", [
    (["--preset"], "--preset needs a name: one of default, seed, td3"),
    (["--preset", "--resume"], "--preset needs a name"),
    (["--preset", "td3", "--preset=seed"], "--preset is given more than once: keep one"),
    (["--batch-size", "64", conf("td3.yaml")], "the config file .*td3.yaml must come first"),
])
def test_misplaced_presets_and_files_are_named(argv, message):
    with pytest.raises(ValueError, match=message):
        parse(argv)


def test_a_key_given_twice_in_a_config_file_is_refused(tmp_path):
    """YAML kept the last silently: an edit lower in the file undid one above it."""
    path = tmp_path / "twice.yaml"
    path.write_text("run:\n  train_steps: 100\n  seed: 1\n  train_steps: 200\n")
    with pytest.raises(ValueError, match=r"key 'train_steps' is given twice \(line 4\)"):
        parse([str(path)])


@pytest.mark.parametrize("run_section", ["run:\n", "run: []\n", "run: 5\n"])
def test_resume_with_an_edited_configuration_whose_run_is_not_a_mapping(tmp_path, run_section):
    """A run's configuration.yaml edited down to an empty (or non-mapping) run: section:
    one line naming the file (or the section skipped when empty), no AttributeError."""
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "configuration.yaml").write_text(run_section)
    argv = ["--run-id", "r", "--results-dir", str(tmp_path), "--resume"]
    if run_section == "run:\n":  # an empty section is no change, as in any config file
        assert parse(argv).run.resume
    else:
        with pytest.raises(ValueError, match="section 'run' must map field names to values"):
            parse(argv)


@pytest.mark.parametrize("text", ["{run: {num_workers: 1}}: 3\n", "[a, b]: 1\n",
                                  "run:\n  ? [seed]\n  : 1\n"])
def test_a_config_file_with_a_list_or_mapping_as_a_key_is_one_line(tmp_path, text):
    """The duplicate-key check hashed every key: TypeError: unhashable type, a traceback."""
    path = tmp_path / "complex.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"is not valid YAML \(the key on line \d is a "
                                         r"(dict|list), not a name"):
        parse([str(path)])


def test_an_mlagents_learn_trainer_config_is_named_as_such(tmp_path):
    """'unknown key 'behaviors'; fix or remove it' sent the user to delete every
    hyperparameter of the file they meant to train with."""
    path = tmp_path / "trainer_config.yaml"
    path.write_text("behaviors:\n  My Behavior:\n    trainer_type: sac\n    hyperparameters:\n"
                    "      batch_size: 128\n    max_steps: 500000\n"
                    "env_settings:\n  num_envs: 2\n")
    with pytest.raises(ValueError, match=r"is an mlagents-learn trainer config \(its "
                                         r"'behaviors' section\).*configs/drone.yaml"):
        parse([str(path)])


@pytest.mark.parametrize("text, key", [("1: 2\n", "1"), ("~: {}\n", "None"),
                                       ("run:\n  train_steps: 5\n  true: 1\n", "'run.True'"),
                                       ("run:\n  3.5: 1\n", "'run.3.5'")])
def test_a_config_file_key_that_is_a_number_or_null_is_one_line(tmp_path, text, key):
    """A key YAML reads as a number, a boolean or null is unknown, but the close-match hint
    fed it to difflib, which takes strings: TypeError: 'int' object is not iterable."""
    path = tmp_path / "numbers.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=rf"unknown key {key}; fix or remove it"):
        parse([str(path)])


@pytest.mark.parametrize("text, line", [
    ("replay:\n  batch_size: 0\n", "replay.batch_size: --batch-size must be >= 1"),
    ("learner:\n  actor_lr: .nan\n", "learner.actor_lr: --actor-lr and --critic-lr must be > 0, "
     "got nan and 0.0003")])
def test_a_config_file_value_out_of_range_names_its_file_and_key(tmp_path, text, line):
    """The line named only a flag the user never passed ('--batch-size must be >= 1'), and
    gave no value: nothing pointed at the NaN."""
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as refused:
        parse([str(path)])
    assert str(refused.value) == f"{path}: {line}"
