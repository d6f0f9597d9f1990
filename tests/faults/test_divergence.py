"""What a run cannot go on from ends it with one line naming the fix, in both modes: a
saved replay that no longer fits a resume, and training that diverged to NaN/Inf (whose
weights reach neither a worker nor a checkpoint)."""

import dataclasses
import os
from types import SimpleNamespace

import pytest
import torch

from learner.checkpoint import save_checkpoint, tree_map
from learner.learner import Learner
from runner.cli import parse
from runner.state import save_replay

OBS, ACT = 9, 3


def saved_run(tmp_path, buffer_size: int, cfg) -> str:
    """A checkpoint and a saved replay of `buffer_size` rows' capacity; returns its path."""
    from replay.server import ReplayServer

    path = str(tmp_path / "checkpoints" / "latest.pt")
    os.makedirs(os.path.dirname(path))
    server = ReplayServer(OBS, ACT, dataclasses.replace(cfg.replay, buffer_size=buffer_size),
                          1.0)
    save_replay(path, server.state_dict(), "save-1")
    save_checkpoint(path, {"learner": Learner(OBS, ACT, cfg.learner).state_dict(),
                           "env_steps": 0, "train_episodes": 0, "phase": "train",
                           "wall_s": 0.0, "save_id": "save-1"})
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


# --- training that diverges --------------------------------------------------------------

# Learning rates that blow the weights up within the first updates after learning starts;
# checkpoints every 100 env steps, so good ones are written before that.
DIVERGING = ["--actor-lr", "1e8", "--critic-lr", "1e8", "--checkpoint-interval", "100",
             "--learning-starts", "300", "--batch-size", "32", "--train-steps", "600",
             "--test-steps", "50", "--num-workers", "1", "--max-step", "80"]


def saved_env_steps(run_dir: str) -> int:
    """The checkpoint's env steps, after checking that every tensor in it is finite."""
    saved = torch.load(os.path.join(run_dir, "checkpoints", "latest.pt"), weights_only=True)
    tensors = []
    tree_map(lambda x: tensors.append(x) if isinstance(x, torch.Tensor) else None, saved)
    assert tensors and all(torch.isfinite(t).all() for t in tensors if t.is_floating_point())
    return saved["env_steps"]


def test_local_divergence_ends_in_one_line_and_keeps_the_last_good_checkpoint(tmp_path,
                                                                               main_run):
    where = ["--results-dir", str(tmp_path), "--run-id", "nan", "--base-port", "6300"]
    done = main_run("--mode", "local", *DIVERGING, *where)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: training diverged"), done.stderr
    assert "--actor-lr/--critic-lr" in lines[0]
    assert "env failed" not in done.stdout  # no worker acted with the non-finite weights
    steps = saved_env_steps(str(tmp_path / "nan"))
    assert 0 < steps < 600 and f"at {steps} env steps" in lines[0]
    # lower learning rates given on --resume take over from the saved optimizer state
    resumed = main_run("--resume", "--actor-lr", "3e-4", "--critic-lr", "3e-4", *where)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert saved_env_steps(str(tmp_path / "nan")) >= 600


def test_ray_divergence_ends_in_one_line_and_keeps_the_last_good_checkpoint(
        local_ray, tmp_path, capsys):
    from runner.distributed import run_distributed
    from tests.test_distributed import tiny

    cfg, run_dir = tiny(tmp_path, "raynan", 6320, num_workers=1, train_steps=4000)
    cfg.learner = dataclasses.replace(cfg.learner, actor_lr=1e8, critic_lr=1e8)
    cfg.run = dataclasses.replace(cfg.run, checkpoint_interval=100)
    # The driver checkpoints when it polls (every 0.5 s here): a late start of learning
    # leaves it time to write good ones first.
    cfg.replay = dataclasses.replace(cfg.replay, learning_starts=2000)
    with pytest.raises(ValueError) as err:
        run_distributed(cfg, run_dir)
    message = str(err.value)
    assert "\n" not in message and message.startswith("training diverged"), message
    out = capsys.readouterr().out
    assert "env failed" not in out and "stopped" not in out, out
    # Learning starts 20 checkpoint intervals in, well after the first poll: a good
    # checkpoint is always on disk, and the line names it.
    assert os.path.exists(os.path.join(run_dir, "checkpoints", "latest.pt")), message
    steps = saved_env_steps(run_dir)
    assert 0 < steps < 4000 and f"at {steps} env steps" in message, message
