"""Ray mode: N env worker actors, one replay actor and one learner actor, run by this driver.

The workers and the learner run their own loops (actors/ray_worker.py,
learner/ray_learner.py); the replay actor's rate limiter holds the update-to-data ratio.
The driver only watches (runner/ray_fleet.py keeps the loops alive): every `log_interval`
seconds it drains the workers' episodes, reads the counters, logs them, and checkpoints
every `checkpoint_interval` env steps. When the budget is spent it stops the loops, saves,
and tests the final policy on every worker. The run folder is the same as local mode's.
"""

from __future__ import annotations

import time

import ray

from learner.checkpoint import check_sizes, load_checkpoint, save_checkpoint
from runner.config import Config
from runner.distributed_metrics import Monitor
from runner.ray_fleet import Fleet
from runner.results import RunAborted, export_policy, save_config
from runner.session import run_session
from runner.state import load_replay, save_replay


def train(cfg: Config, fleet: Fleet, monitor: Monitor, save) -> None:
    # The replay counts its own inserts; what earlier sessions did is in base_steps.
    fleet.start_loops(budget=cfg.run.train_steps - monitor.base_steps)
    next_checkpoint = monitor.env_steps + cfg.run.checkpoint_interval
    try:
        while monitor.env_steps < cfg.run.train_steps:
            time.sleep(min(cfg.run.log_interval, 1.0))
            for k in fleet.check():
                monitor.worker_restarted(k)
            monitor.poll(fleet)
            if monitor.env_steps >= next_checkpoint:
                save("train")
                next_checkpoint = monitor.env_steps + cfg.run.checkpoint_interval
    finally:
        fleet.stop_loops()
    catch_up(fleet.replay)
    monitor.poll(fleet)
    monitor.end_training()


def catch_up(replay, timeout_s: float = 10.0) -> None:
    """Let the learner take the updates the last inserts allowed, so that the run ends at
    the configured update-to-data ratio."""
    deadline = time.monotonic() + timeout_s
    while ray.get(replay.stats.remote())["updates_allowed"] > 8 and time.monotonic() < deadline:
        time.sleep(0.05)


def test(cfg: Config, fleet: Fleet, monitor: Monitor) -> None:
    """The final policy, greedy, on every worker; `test_steps` agent steps in all."""
    version, ref = ray.get(fleet.learner.latest_weights.remote(-1))
    per_worker = -(-cfg.run.test_steps // (len(fleet.workers) * cfg.env.num_areas))
    results = ray.get([w.test.remote(ref, version, per_worker) for w in fleet.workers])
    for k, episodes in enumerate(results):
        monitor.test.add(episodes)
        monitor.metrics.episodes(episodes, monitor.env_steps, k, "test")


def make_saver(cfg: Config, fleet: Fleet, monitor: Monitor, path: str):
    def save(phase: str) -> None:
        state = ray.get(fleet.learner.state_dict.remote())
        spec = fleet.specs[0]
        export_policy(monitor.run_dir, spec["behavior"], spec["obs_sizes"],
                      spec["action_size"], cfg.learner.hidden_size, state["actor"])
        if cfg.run.save_replay:
            save_replay(path, ray.get(fleet.replay.state_dict.remote()))
        save_checkpoint(path, {"learner": state, "env_steps": monitor.env_steps,
                               "train_episodes": monitor.train.count, "phase": phase,
                               "wall_s": monitor.wall_s()})
    return save


def run_distributed(cfg: Config, run_dir: str) -> dict | None:
    """Train then test on Ray (the caller has initialised Ray); returns the summary."""
    fleet = Fleet(cfg, run_dir)
    monitor = Monitor(cfg, run_dir, fleet.specs, fleet.res)
    path = f"{run_dir}/checkpoints/latest.pt"
    save = make_saver(cfg, fleet, monitor, path)
    try:
        if not run_session(cfg, restore=lambda: restore(path, cfg, fleet, monitor),
                           train=lambda: train(cfg, fleet, monitor, save),
                           test=lambda: test(cfg, fleet, monitor), save=save,
                           env_steps=lambda: monitor.env_steps, stop=fleet.stop_loops,
                           started=lambda: save_config(run_dir, cfg)):
            return None
        return monitor.write_summary()
    finally:
        fleet.close()
        monitor.close()


def restore(path: str, cfg: Config, fleet: Fleet, monitor: Monitor) -> str:
    payload = load_checkpoint(path)
    check_sizes(payload["learner"], fleet.specs[0]["obs_size"], fleet.specs[0]["action_size"])
    ray.get(fleet.learner.load_state_dict.remote(payload["learner"]))
    monitor.resume_from(payload["env_steps"], payload["train_episodes"], payload["wall_s"])
    monitor.learner = ray.get(fleet.learner.progress.remote())
    replay = load_replay(path) if cfg.run.save_replay else None
    if replay is not None:
        ray.get(fleet.replay.load_state_dict.remote(replay))
        monitor.base_steps -= replay["limiter"]["inserted"]  # counted again by the replay
    elif not cfg.run.inference:
        print("warning: the replay restarts empty (pass --save-replay to keep it across "
              "resumes)", flush=True)
    return payload["phase"]


__all__ = ["run_distributed", "RunAborted"]
