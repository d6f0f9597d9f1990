"""Run state beside the learner's: the replay file."""

import numpy as np
import pytest

from learner.checkpoint import CheckpointError
from runner.state import load_replay, save_replay


def test_a_broken_replay_file_names_the_way_to_keep_the_checkpoint(tmp_path):
    checkpoint = str(tmp_path / "latest.pt")
    save_replay(checkpoint, {"obs": np.zeros((4, 3), np.float32)}, "a")
    assert load_replay(checkpoint, "a")["obs"].shape == (4, 3)
    path = tmp_path / "replay.pt"
    path.write_bytes(path.read_bytes()[:200])  # truncated mid-write by something else
    with pytest.raises(CheckpointError, match="truncated or corrupt") as raised:
        load_replay(checkpoint)
    message = str(raised.value)
    assert "--resume --no-save-replay" in message and "earlier checkpoint" not in message


def test_a_replay_from_another_save_is_not_restored(tmp_path, capsys):
    """The run stopped after writing the replay and before the checkpoint: the checkpoint
    on disk is the previous save's, and the replay's counters run ahead of it."""
    checkpoint = str(tmp_path / "latest.pt")
    save_replay(checkpoint, {"obs": np.zeros((4, 3), np.float32)}, "second")
    assert load_replay(checkpoint, "first") is None
    assert "was not saved with the checkpoint" in capsys.readouterr().out
    assert load_replay(checkpoint, "second") is not None
