"""runner/cli.py: tyro's boxed errors as one line, whatever the terminal's width."""

import pytest

from runner.cli import parse


@pytest.mark.parametrize("columns", ["60", "80", "100", "120"])
def test_invalid_choice_is_one_clean_line_at_any_width(monkeypatch, columns):
    """At 80 columns (a log, a pipe) tyro's box wrapped just before the final '.', which
    then failed the rewording: `invalid choice 'Local' for argument '--mode'. Expected one
    of ('ray', 'local') .; see --help`."""
    monkeypatch.setenv("COLUMNS", columns)
    with pytest.raises(ValueError) as err:
        parse(["--mode", "Local"])
    assert str(err.value) == "--mode 'Local': expected one of ray, local; see --help"
