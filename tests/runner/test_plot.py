"""The learning-curve PNG, from a small fake run folder."""

import json
import os

import pytest
from PIL import Image

from runner.plot import PNG_NAME, PlotError, main, plot_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def run_dir(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    path = tmp_path / "fake-run"
    writer = SummaryWriter(str(path))
    for i in range(40):
        writer.add_scalar("charts/episodic_return", -10 + i * 0.4, 100 * (i + 1))
    for i, rate in enumerate((0.1, 0.5, 0.8)):
        writer.add_scalar("charts/success_rate", rate, 1000 * (i + 1))
    for value in (4.0, 5.0, 6.0):
        writer.add_scalar("charts/test_episodic_return", value, 4001)
    writer.close()
    summary = {"env_steps": 4000, "wall_s": 12.5,
               "test": {"episodes": 3, "mean_return": 5.0, "success_rate": 0.67}}
    (path / "summary.json").write_text(json.dumps(summary))
    return str(path)


def test_plot_run_writes_a_png(run_dir):
    path = plot_run(run_dir)
    assert path == os.path.join(run_dir, PNG_NAME)
    with open(path, "rb") as f:
        assert f.read(8) == PNG_MAGIC
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.width > 0 and image.height > 0


def test_main_prints_the_path(run_dir, capsys):
    results, run_id = os.path.split(run_dir)
    assert main(["--run-id", run_id, "--results-dir", results]) == 0
    assert capsys.readouterr().out.strip() == os.path.join(run_dir, PNG_NAME)


def test_a_png_that_cannot_be_written_is_one_line(run_dir, capsys):
    """A directory where the PNG goes (as a read-only folder or a full disk) gave a
    traceback."""
    os.mkdir(os.path.join(run_dir, PNG_NAME))
    results, run_id = os.path.split(run_dir)
    assert main(["--run-id", run_id, "--results-dir", results]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: cannot write ") and \
        "make it writable, then plot again" in err


def test_missing_run_dir_is_one_line(tmp_path, capsys):
    with pytest.raises(PlotError) as err:
        plot_run(str(tmp_path / "nope"))
    assert "\n" not in str(err.value) and "--run-id" in str(err.value)
    assert main(["--run-id", "nope", "--results-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_run_without_events_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(PlotError, match="no TensorBoard events") as err:
        plot_run(str(tmp_path / "empty"))
    assert "\n" not in str(err.value)


def test_an_env_without_a_success_gets_the_return_panel_only(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    path = tmp_path / "no-success"
    writer = SummaryWriter(str(path))
    for i in range(20):
        writer.add_scalar("charts/episodic_return", -900 + 30 * i, 100 * (i + 1))
    writer.close()
    (path / "summary.json").write_text(json.dumps(
        {"env_steps": 2000, "wall_s": 5.0, "test": {"episodes": 2, "success_rate": None}}))
    with_success = Image.open(plot_run(run_dir_with_success(tmp_path))).size
    alone = Image.open(plot_run(str(path))).size
    assert alone[0] == with_success[0] and alone[1] < with_success[1]  # one panel, not two


def run_dir_with_success(tmp_path) -> str:
    from torch.utils.tensorboard import SummaryWriter

    path = tmp_path / "success"
    writer = SummaryWriter(str(path))
    writer.add_scalar("charts/episodic_return", 1.0, 100)
    writer.add_scalar("charts/success_rate", 0.5, 100)
    writer.close()
    (path / "summary.json").write_text(json.dumps({"env_steps": 100, "wall_s": 1.0}))
    return str(path)


def test_the_test_band_is_the_last_test_phase_the_summary_reports():
    """After a train, a --resume and an --inference, the band said 47 episodes (every
    session's test phase, one of them an older policy's) while summary.json said 21."""
    import numpy as np

    from runner.plot import TEST_RETURN, last_test

    steps = np.array([4064] * 5 + [6112] * 3 + [6112] * 2)
    values = np.array([1.0] * 5 + [4.0] * 3 + [5.0] * 2)
    scalars = {TEST_RETURN: (steps, values)}
    np.testing.assert_array_equal(last_test(scalars, {"test": {"episodes": 2}}), [5.0, 5.0])
    np.testing.assert_array_equal(last_test(scalars, {}), [4.0, 4.0, 4.0, 5.0, 5.0])
    assert last_test({}, {"test": {"episodes": 2}}) is None


@pytest.mark.parametrize("argv, words", [
    (["--run-id", "r", "--foo"], "unrecognized arguments: --foo"),
    ([], "the following arguments are required: --run-id"),
])
def test_bad_arguments_are_one_line(argv, words, capsys):
    """argparse printed its usage line too."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.count("\n") == 1 and words in err, err


@pytest.mark.parametrize("text", ["null", "[]", '{"test": 5}', '{"env_steps": "abc"}',
                                  '{"env_steps": 5, "wall_s": "x"}',
                                  '{"test": {"episodes": "x"}}',
                                  '{"test": {"success_rate": "x"}}'])
def test_a_summary_of_the_wrong_shape_is_plotted_without(run_dir, text):
    """summary.json is optional to the plot (invalid JSON is skipped): valid JSON of the
    wrong shape must be skipped too, not end in a traceback."""
    with open(os.path.join(run_dir, "summary.json"), "w") as f:
        f.write(text)
    assert os.path.isfile(plot_run(run_dir))


@pytest.mark.parametrize("text", ['{"test": {"episodes": 2.5}}',
                                  '{"env_steps": Infinity, "wall_s": 1}'])
def test_a_summary_with_a_fraction_of_an_episode_or_an_infinite_count_is_skipped(run_dir,
                                                                                  text):
    """JSON numbers the plot cannot use passed the shape check: a fraction of an episode
    slices the test returns (TypeError), an infinite env count sets the axis limits
    (ValueError: Axis limits cannot be NaN or Inf); tracebacks."""
    with open(os.path.join(run_dir, "summary.json"), "w") as f:
        f.write(text)
    assert os.path.isfile(plot_run(run_dir))
