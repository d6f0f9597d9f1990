"""What a checkpoint load refuses, each with one line naming the file and the fix."""

import pytest
import torch

from learner.checkpoint import CheckpointError, check_finite, load_checkpoint, save_checkpoint

RUN = {"env_steps": 300, "train_episodes": 4, "wall_s": 1.5, "phase": "train"}


def test_bytes_flipped_inside_a_tensor_are_refused(tmp_path):
    """torch.load does not check the archive's checksums: a checkpoint with flipped bytes
    resumed on silently wrong weights."""
    path = tmp_path / "latest.pt"
    save_checkpoint(str(path), {"learner": {"w": torch.full((256,), 1.2345)}, **RUN})
    data = bytearray(path.read_bytes())
    at = bytes(data).find(torch.full((4,), 1.2345).numpy().tobytes())
    assert at > 0
    data[at + 1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"fails its checksum\); use an earlier"):
        load_checkpoint(str(path), holds="learner")


@pytest.mark.parametrize("change", [{"env_steps": None}, {"env_steps": "300"},
                                    {"phase": "finished"}, {"wall_s": True},
                                    {"test_wall_s": "1.0"}, {"train_recent": [[1.0, 2]]},
                                    {"train_recent": [[1.0, 2.5, None]]}])
def test_a_run_checkpoint_without_valid_counters_is_refused(tmp_path, change):
    """A missing or mistyped counter was a KeyError or TypeError traceback at resume."""
    path = tmp_path / "latest.pt"
    run = {key: value for key, value in {**RUN, **change}.items() if value is not None}
    save_checkpoint(str(path), {"learner": {}, **run})
    key = next(iter(change))
    with pytest.raises(CheckpointError, match=f"holds no valid '{key}'.*--force"):
        load_checkpoint(str(path), holds="learner")
    assert load_checkpoint(str(path))  # a file that holds no run's state needs none


def test_non_finite_optimizer_state_is_refused():
    """NaN in Adam's moments resumed, then diverged at once and sent the user back to the
    same checkpoint."""
    moments = {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.zeros(2),
                             "exp_avg_sq": torch.tensor([1.0, float("inf")])}},
               "param_groups": [{"lr": 3e-4, "params": [0]}]}
    with pytest.raises(CheckpointError, match="non-finite critic_opt"):
        check_finite({"actor": {}, "critic_opt": moments})


@pytest.mark.parametrize("state", [5, None, [1, 2], "learner"])
def test_a_learner_state_that_is_not_a_mapping_is_refused(tmp_path, state):
    """It passed the load and ended --resume/--initialize-from in an AttributeError
    traceback ('int' object has no attribute 'get') in check_sizes."""
    path = tmp_path / "latest.pt"
    save_checkpoint(str(path), {"learner": state, **RUN})
    with pytest.raises(CheckpointError, match="not a mapping: it is corrupt or was edited"):
        load_checkpoint(str(path), holds="learner")
