"""Run state beside the learner's: the replay file."""

import numpy as np
import pytest

from learner.checkpoint import CheckpointError
from runner.state import load_replay, save_replay


def test_a_broken_replay_file_names_the_way_to_keep_the_checkpoint(tmp_path):
    checkpoint = str(tmp_path / "latest.pt")
    save_replay(checkpoint, {"obs": np.zeros((4, 3), np.float32)})
    assert load_replay(checkpoint)["obs"].shape == (4, 3)
    path = tmp_path / "replay.pt"
    path.write_bytes(path.read_bytes()[:200])  # truncated mid-write by something else
    with pytest.raises(CheckpointError, match="truncated or corrupt") as raised:
        load_replay(checkpoint)
    message = str(raised.value)
    assert "--resume --no-save-replay" in message and "earlier checkpoint" not in message
