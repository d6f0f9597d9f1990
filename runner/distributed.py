"""Ray mode: N env worker actors, one replay actor and one learner actor, run by this driver.

The workers and the learner run their own loops (actors/ray_worker.py,
learner/ray_learner.py); the replay actor's rate limiter holds the update-to-data ratio.
The driver only watches: every `log_interval` seconds it drains the workers' episodes,
reads the counters, logs them, and checkpoints every `checkpoint_interval` env steps.
When the budget is spent it stops the loops, saves, and tests the final policy on every
worker. The components and the run folder are the same as local mode's.
"""

from __future__ import annotations

import time

import ray

from actors.ray_worker import EnvWorkerActor, LoopConfig
from learner.checkpoint import check_sizes, load_checkpoint, save_checkpoint
from learner.ray_learner import LearnerActor
from replay.ray_replay import ReplayActor
from runner.config import Config
from runner.distributed_metrics import Monitor
from runner.results import EpisodeStats, save_config

def resources(num_workers: int) -> dict:
    """CPU (and GPU) requests that fit the nodes, so no actor pends forever.

    SPREAD places about ceil(N / nodes) workers on each node, and the learner and replay
    land on one of them; sizing everything against the smallest node makes that node fit
    too. Env processes run outside Ray's accounting: a worker asks for at most one CPU.
    """
    nodes = [n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n["Alive"]]
    smallest = max(min(nodes), 0.1)
    per_node = -(-num_workers // len(nodes))
    learner = min(1.0, smallest / 4)
    replay = min(0.25, smallest / 8)
    worker = 0.95 * min(1.0, (smallest - learner - replay) / per_node)
    gpu = 1.0 if ray.cluster_resources().get("GPU", 0.0) >= 1.0 else 0.0
    return {"learner_cpus": learner, "learner_gpus": gpu, "replay_cpus": replay,
            "worker_cpus": round(max(worker, 0.001), 3), "nodes": len(nodes)}


def start(cfg: Config, run_dir: str):
    """Create the actors; returns (workers, replay, learner, spec, resources)."""
    res = resources(cfg.run.num_workers)
    log_folder = f"{run_dir}/env_logs"
    workers = [
        EnvWorkerActor.options(num_cpus=res["worker_cpus"], scheduling_strategy="SPREAD",
                               max_restarts=0).remote(
            cfg.env, cfg.noise, cfg.learner.hidden_size, k, cfg.run.seed, log_folder)
        for k in range(cfg.run.num_workers)
    ]
    specs = ray.get([w.spec.remote() for w in workers])
    spec = specs[0]
    replay = ReplayActor.options(num_cpus=res["replay_cpus"]).remote(
        spec["obs_size"], spec["action_size"], cfg.replay, cfg.run.updates_per_step,
        seed=cfg.run.seed)
    learner = LearnerActor.options(num_cpus=res["learner_cpus"],
                                   num_gpus=res["learner_gpus"]).remote(
        spec["obs_size"], spec["action_size"], cfg.learner, cfg.replay.batch_size,
        cfg.run.publish_interval, cfg.run.seed)
    return workers, replay, learner, specs, res


def loop_config(cfg: Config) -> LoopConfig:
    return LoopConfig(chunk_steps=cfg.run.chunk_steps, sync_interval=cfg.run.sync_interval,
                      random_warmup=cfg.run.warmup_actions == "random")


def train(cfg: Config, workers, replay, learner, monitor: Monitor, save) -> None:
    learner_run = learner.run.remote(replay)
    worker_runs = [w.run.remote(replay, learner, loop_config(cfg)) for w in workers]
    next_checkpoint = monitor.env_steps + cfg.run.checkpoint_interval
    try:
        while monitor.env_steps < cfg.run.train_steps:
            time.sleep(min(cfg.run.log_interval, 1.0))
            monitor.poll(workers, replay, learner)
            if monitor.env_steps >= next_checkpoint:
                save("train")
                next_checkpoint = monitor.env_steps + cfg.run.checkpoint_interval
    finally:
        ray.get([w.stop.remote() for w in workers])
        ray.get(worker_runs)
        catch_up(replay)
        learner.stop.remote()
        ray.get(learner_run)
        monitor.poll(workers, replay, learner)


def catch_up(replay, timeout_s: float = 10.0) -> None:
    """Let the learner take the updates the last inserts allowed, so that the run ends at
    the configured update-to-data ratio."""
    deadline = time.monotonic() + timeout_s
    while ray.get(replay.stats.remote())["updates_allowed"] > 8 and time.monotonic() < deadline:
        time.sleep(0.05)


def test(cfg: Config, workers, learner, monitor: Monitor) -> None:
    """The final policy, greedy, on every worker; `test_steps` agent steps in all."""
    version, ref = ray.get(learner.latest_weights.remote(-1))
    per_worker = -(-cfg.run.test_steps // (len(workers) * cfg.env.num_areas))
    results = ray.get([w.test.remote(ref, version, per_worker) for w in workers])
    for k, episodes in enumerate(results):
        monitor.test.add(episodes)
        monitor.metrics.episodes(episodes, monitor.env_steps, k, "test")


def run_distributed(cfg: Config, run_dir: str) -> dict | None:
    """Train then test on Ray (the caller has initialised Ray); returns the summary."""
    save_config(run_dir, cfg)
    workers, replay, learner, specs, res = start(cfg, run_dir)
    monitor = Monitor(cfg, run_dir, specs, res)
    path = f"{run_dir}/checkpoints/latest.pt"

    def save(phase: str) -> None:
        state = ray.get(learner.state_dict.remote())
        save_checkpoint(path, {"learner": state, "env_steps": monitor.env_steps,
                               "train_episodes": monitor.train.count, "phase": phase,
                               "wall_s": monitor.wall_s()})

    try:
        phase = "train"
        if cfg.run.resume or cfg.run.inference:
            phase = restore(path, cfg, learner, monitor, specs[0])
        finished = monitor.env_steps >= cfg.run.train_steps
        if cfg.run.resume and phase == "done" and finished:
            print(f"run {cfg.run.run_id!r} already finished ({monitor.env_steps} env steps): "
                  "raise --train-steps to train it further, or use --inference to test it")
            return None
        try:
            if not cfg.run.inference and not finished:
                train(cfg, workers, replay, learner, monitor, save)
            test(cfg, workers, learner, monitor)
        except KeyboardInterrupt:
            if not cfg.run.inference:
                save("test" if monitor.env_steps >= cfg.run.train_steps else "train")
                print(f"interrupted: checkpoint saved at {monitor.env_steps} env steps; pass "
                      "--resume to continue", flush=True)
            raise
        if not cfg.run.inference:
            save("done")
        return monitor.write_summary()
    finally:
        ray.get([w.close.remote() for w in workers])
        monitor.close()


def restore(path: str, cfg: Config, learner, monitor: Monitor, spec: dict) -> str:
    payload = load_checkpoint(path)
    check_sizes(payload["learner"], spec["obs_size"], spec["action_size"])
    ray.get(learner.load_state_dict.remote(payload["learner"]))
    monitor.resume_from(payload["env_steps"], payload["train_episodes"], payload["wall_s"])
    monitor.learner = ray.get(learner.progress.remote())
    print("warning: the replay restarts empty on --resume (it is not saved yet)", flush=True)
    return payload["phase"]


__all__ = ["run_distributed", "EpisodeStats"]
