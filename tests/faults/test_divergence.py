"""What a run cannot go on from ends it with one line naming the fix, in both modes: a
saved replay that no longer fits a resume, and training that diverged to NaN/Inf (whose
weights reach neither a worker nor a checkpoint)."""

import dataclasses
import os
from types import SimpleNamespace

import pytest

from learner.checkpoint import save_checkpoint
from learner.learner import Learner
from runner.config import parse
from runner.state import save_replay

OBS, ACT = 9, 3


def saved_run(tmp_path, buffer_size: int, cfg) -> str:
    """A checkpoint and a saved replay of `buffer_size` rows' capacity; returns its path."""
    from replay.server import ReplayServer

    path = str(tmp_path / "checkpoints" / "latest.pt")
    os.makedirs(os.path.dirname(path))
    server = ReplayServer(OBS, ACT, dataclasses.replace(cfg.replay, buffer_size=buffer_size),
                          1.0)
    save_replay(path, server.state_dict())
    save_checkpoint(path, {"learner": Learner(OBS, ACT, cfg.learner).state_dict(),
                           "env_steps": 0, "train_episodes": 0, "phase": "train",
                           "wall_s": 0.0})
    return path


def test_ray_resume_with_a_replay_that_no_longer_fits_is_one_line(local_ray, tmp_path):
    """Ray mode restores the replay in its actor: the actor's error must reach the user as
    the replay's own one line (with its fix), not as Ray's remote traceback."""
    import ray

    from replay.ray_replay import ReplayActor
    from runner.distributed import restore

    cfg = parse(["--save-replay", "--buffer-size", "3000", "--learning-starts", "100",
                 "--batch-size", "32", "--hidden-size", "8", "--device", "cpu",
                 "--results-dir", str(tmp_path)])
    path = saved_run(tmp_path, 5000, cfg)
    replay = ReplayActor.remote(OBS, ACT, cfg.replay, 1.0)
    fleet = SimpleNamespace(replay=replay, learner=None,
                            specs=[{"obs_size": OBS, "action_size": ACT}])
    monitor = SimpleNamespace(resume_from=lambda *args: None, base_steps=0)
    try:
        with pytest.raises(ValueError) as err:
            restore(path, cfg, fleet, monitor)
    finally:
        ray.kill(replay)
    message = str(err.value)
    assert "\n" not in message and "\x1b" not in message and "ray::" not in message
    assert "--buffer-size 5000" in message and "without --save-replay" in message
