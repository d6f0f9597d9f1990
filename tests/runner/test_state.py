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


@pytest.mark.parametrize("saved, now, refused", [
    ({"n_step": 3, "gamma": 0.99}, {"n_step": 3, "gamma": 0.98}, True),  # rows summed by 0.99
    ({"n_step": 3, "gamma": 0.99}, {"n_step": 2, "gamma": 0.99}, True),  # 3-step sums
    ({"n_step": 3, "gamma": 0.99}, {"n_step": 3, "gamma": 0.99}, False),
    ({"n_step": 1, "gamma": 0.99}, {"n_step": 1, "gamma": 0.9}, False),  # raw rewards: fine
    (None, {"n_step": 3, "gamma": 0.99}, False),  # a replay saved before it was recorded
])
def test_a_saved_n_step_replay_needs_its_n_and_gamma(tmp_path, saved, now, refused):
    """Only 1-step against n-step was caught (by the discount field): n 3 to 2, or another
    --gamma, trained on rows whose returns were summed otherwise."""
    checkpoint = str(tmp_path / "latest.pt")
    save_replay(checkpoint, {"obs": np.zeros((4, 3), np.float32)}, "a", saved)
    if not refused:
        assert load_replay(checkpoint, "a", now) is not None
        return
    with pytest.raises(ValueError, match="made with another --n-step or --gamma") as raised:
        load_replay(checkpoint, "a", now)
    assert "\n" not in str(raised.value) and "without --save-replay" in str(raised.value)


def test_empty_arrays_from_a_worker_pipe_save_in_a_checkpoint(tmp_path):
    """--overlap-envs --noise ou: after the test phase every agent's OU state is reset, and
    the empty arrays of each worker's state_dict, unpickled from its pipe, share one
    address across dtypes: torch.save refused the run's final checkpoint (a traceback,
    exit status 1, no summary.json)."""
    import pickle

    from actors.noise import OUNoise
    from actors.worker_pipe import dumps
    from learner.checkpoint import load_checkpoint, save_checkpoint
    from runner.state import to_numpy, to_torch

    noise = OUNoise(3, 0.0, 0.15, 0.1, np.random.default_rng(0))
    states = [pickle.loads(dumps(noise.state_dict())) for _ in range(2)]  # as from 2 workers
    path = str(tmp_path / "latest.pt")
    save_checkpoint(path, {"noise": [to_torch(s) for s in states]})
    loaded = to_numpy(load_checkpoint(path)["noise"])
    assert [s["states"].shape for s in loaded] == [(0, 3), (0, 3)]
    noise.load_state_dict(loaded[0])
