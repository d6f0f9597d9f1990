"""n-step returns and prioritized replay in whole runs: local mode and Ray, with resume."""

import dataclasses
import json

import numpy as np
import pytest
import ray
import torch

from replay.config import ReplayConfig
from runner.config import validate
from runner.distributed import run_distributed
from runner.state import load_replay
from tests.test_distributed import tiny
from tests.test_launch import TINY

GAMMA = 0.95  # the default
N_STEP_DISCOUNTS = [0.0, GAMMA, GAMMA**2, GAMMA**3]


def check_replay(state: dict, rows: int) -> None:
    """A saved n-step, prioritized replay: discounts of 1-3 steps (0 after a termination)
    and priorities the learner has moved away from the initial ones."""
    assert state["size"] == min(rows, len(state["obs"]))
    disc = state["discount"]
    assert np.all(np.isclose(disc[:, None], N_STEP_DISCOUNTS, atol=1e-6).any(axis=1))
    assert np.isclose(disc, GAMMA**3).mean() > 0.5  # most windows are full
    pri = state["priorities"]
    assert pri.shape == (state["size"],) and np.all(pri > 0)
    assert len(np.unique(np.round(pri, 6))) > 100  # TD errors, not one max priority
    assert state["per_updates"] > 0


def test_local_run_with_n_step_and_per_survives_resume(tmp_path, main_run):
    """In this process: local mode needs no launch.py subprocess of its own."""
    flags = [*TINY, "--mode", "local", "--results-dir", str(tmp_path), "--run-id", "per",
             "--base-port", "5340", "--n-step", "3", "--prioritized", "--save-replay"]
    done = main_run(*flags)
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = tmp_path / "per"
    first = json.loads((run_dir / "summary.json").read_text())
    saved = load_replay(str(run_dir / "checkpoints" / "latest.pt"))["buffer"]
    check_replay(saved, first["env_steps"])
    more = flags.copy()
    more[more.index("--train-steps") + 1] = "900"
    again = main_run(*more, "--resume")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "replay restarts empty" not in again.stdout + again.stderr
    after = json.loads((run_dir / "summary.json").read_text())
    resumed = load_replay(str(run_dir / "checkpoints" / "latest.pt"))["buffer"]
    # The replay (priorities included) came back and kept growing: by every transition the
    # resumed session received, but for the n-step windows still open at its end (n - 1 per
    # agent, at most: 2 workers x 2 areas).
    received = after["env_steps"] - first["env_steps"]
    open_windows = received - (resumed["total_added"] - saved["total_added"])
    assert 0 <= open_windows <= (3 - 1) * 2 * 2
    assert resumed["per_updates"] > saved["per_updates"]
    check_replay(resumed, resumed["total_added"])
    # Resuming that replay with another --n-step would mix up targets: one line, no run.
    other = main_run(*more, "--resume", "--n-step", "1", "--train-steps", "1200")
    assert other.returncode == 2 and "another --n-step" in other.stderr
    assert len(other.stderr.strip().splitlines()) == 1, other.stderr
    config = (run_dir / "configuration.yaml").read_text()
    assert "n_step: 3" in config  # left as it was
    # A resume with nothing to do says so before anything starts (it started the envs, warned
    # that the replay restarts empty, and left an empty events file), and leaves the run's
    # configuration as it was.
    events = sorted(run_dir.glob("events.out.tfevents.*"))
    done = main_run(*flags, "--resume")
    assert done.returncode == 0 and "already finished" in done.stdout, done.stderr[-2000:]
    assert "warning" not in done.stdout + done.stderr
    assert sorted(run_dir.glob("events.out.tfevents.*")) == events
    assert (run_dir / "configuration.yaml").read_text() == config



def test_ray_run_with_n_step_and_per_survives_resume(local_ray, tmp_path):
    cfg, run_dir = tiny(tmp_path, "per", 5560, num_workers=2, train_steps=2000,
                        save_replay=True)
    cfg.replay = dataclasses.replace(cfg.replay, n_step=3, prioritized=True)
    validate(cfg)
    summary = run_distributed(cfg, run_dir)
    perf = summary["perf"]
    target = cfg.run.updates_per_step * cfg.replay.batch_size
    assert perf["samples_per_insert"] == pytest.approx(target, rel=0.10)
    # Every sampled row's new |TD| came back to the replay (fire-and-forget, so allow the
    # last call or two to be in flight when the stats were read).
    sampled_rows = summary["learner_steps"] * cfg.replay.batch_size
    assert 0.9 * sampled_rows <= perf["priority_updates"] + perf["stale_priority_updates"]
    assert 0.4 < perf["per_beta"] <= 1.0
    saved = load_replay(f"{run_dir}/checkpoints/latest.pt")["buffer"]  # the server's state
    check_replay(saved, summary["env_steps"])
    beta = torch.load(f"{run_dir}/checkpoints/latest.pt", weights_only=True)["per_beta"]
    assert beta == pytest.approx(perf["per_beta"], abs=0.05)  # kept for the resume

    cfg.run = dataclasses.replace(cfg.run, resume=True, train_steps=3000)
    again = run_distributed(cfg, run_dir)
    resumed = load_replay(f"{run_dir}/checkpoints/latest.pt")["buffer"]
    assert again["env_steps"] >= 3000
    assert resumed["size"] > saved["size"] and resumed["per_updates"] > saved["per_updates"]
    assert again["perf"]["per_beta"] >= beta  # went on from there


def test_per_config_reaches_the_learner_path(local_ray):
    """PER makes the learner sample from the replay actor: the device shard is uniform."""
    from learner.config import LearnerConfig
    from learner.ray_learner import LearnerActor

    per = ReplayConfig(batch_size=32, prioritized=True)
    actor = LearnerActor.options(num_cpus=0.1).remote(LearnerConfig(device="cpu"), per,
                                                      1.0, 10, 0)
    ray.get(actor.setup.remote(9, 3))
    version, (ref,) = ray.get(actor.latest_weights.remote(0))
    assert set(ray.get(ref)) == {"actor", "critic"}  # workers get the critic for priorities
    assert ray.get(actor.__ray_call__.remote(lambda self: self.feed)) is None
    ray.kill(actor)


def test_resume_after_a_stop_between_the_replay_and_the_checkpoint(tmp_path, main_run):
    """The replay is written first: a run stopped before its checkpoint leaves a replay
    newer than the checkpoint. The resume says so and starts the replay empty (Ray mode's
    learner refused the newer replay's counters, 'updates_done went back', at every
    resume; local mode trained on its rows and counted them again)."""
    flags = [*TINY, "--mode", "local", "--results-dir", str(tmp_path), "--run-id", "stop",
             "--base-port", "5350", "--save-replay", "--test-steps", "0"]
    assert main_run(*flags).returncode == 0
    checkpoint = tmp_path / "stop" / "checkpoints" / "latest.pt"
    first = checkpoint.read_bytes()
    more = flags.copy()
    more[more.index("--train-steps") + 1] = "900"
    assert main_run(*more, "--resume").returncode == 0
    checkpoint.write_bytes(first)  # as if the second save stopped after its replay
    before = json.loads((tmp_path / "stop" / "summary.json").read_text())
    more[more.index("--train-steps") + 1] = "1200"
    done = main_run(*more, "--resume")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "was not saved with the checkpoint" in done.stdout
    after = json.loads((tmp_path / "stop" / "summary.json").read_text())
    resumed = load_replay(str(checkpoint))["buffer"]
    assert resumed["total_added"] == after["env_steps"] - saved_steps(first, tmp_path)
    assert after["env_steps"] >= 1200 and before["env_steps"] >= 900


def saved_steps(checkpoint_bytes: bytes, tmp_path) -> int:
    """env_steps of a checkpoint kept as bytes."""
    path = tmp_path / "kept.pt"
    path.write_bytes(checkpoint_bytes)
    return torch.load(path, weights_only=True)["env_steps"]
