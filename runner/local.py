"""Local mode: env workers, replay and learner wired together in this one process, no Ray.

Train for `train_steps` env steps (agent transitions), keeping `updates_per_step`
learner updates per env step once `learning_starts` is reached; then test without noise
for `test_steps` (the seed's train-then-test). Ray mode runs the same objects in actors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field


from actors.env_worker import EnvWorker
from actors.process_worker import ProcessWorker
from learner.learner import Learner
from replay.server import ReplayServer
from runner.config import Config, experience_config, resolve_replay
from runner.progress import Progress
from runner.session import run_session
from runner.config_file import save_config
from runner.errors import RunError
from runner.local_checkpoint import load, save
from runner.local_rounds import (Rounds, adopt_initial_actor, moved, next_round, publish,
                                 settle_workers, step_workers, sync_weights, train_mode)
from runner.metrics import EpisodeStats, Metrics, RateMeter, bar_values, training_average
from runner.run_dir import checkpoint_path, write_summary
from runner.state import initialize_learner


@dataclass
class Run:
    """Everything a local run owns."""

    cfg: Config
    run_dir: str
    workers: list[EnvWorker | ProcessWorker]
    learner: Learner
    replay: ReplayServer  # the buffer and the limiter that owns the update count
    metrics: Metrics
    env_steps: int = 0
    train_wall_s: float | None = None  # wall time when training ended (earlier sessions too)
    train: EpisodeStats = field(default_factory=EpisodeStats)
    test: EpisodeStats = field(default_factory=lambda: EpisodeStats(window=None))

    @property
    def checkpoint_path(self) -> str:
        return checkpoint_path(self.run_dir)


def build(cfg: Config, run_dir: str) -> Run:
    """Start the env workers, then size the learner and replay from the env's spec."""
    log_folder = os.path.abspath(os.path.join(run_dir, "env_logs"))
    workers: list[EnvWorker | ProcessWorker] = []
    try:
        for k in range(cfg.run.num_workers):
            # --overlap-envs: each worker in its own process, so its env steps beside
            # the updates without sharing this process's GIL (actors/process_worker.py).
            worker_type = ProcessWorker if cfg.run.overlap_envs else EnvWorker
            workers.append(worker_type(cfg.env, cfg.noise, cfg.learner.hidden_size,
                                       worker_id=k, seed=cfg.run.seed, log_folder=log_folder,
                                       experience=experience_config(cfg)))
        obs_size, action_size = workers[0].obs_size, workers[0].action_size
        learner = Learner(obs_size, action_size, cfg.learner, seed=cfg.run.seed)
        # No slack: one process can keep the ratio exactly, update by update.
        replay = ReplayServer(obs_size, action_size, resolve_replay(cfg),
                              cfg.run.updates_per_step, seed=cfg.run.seed, tolerance=0.0)
        metrics = Metrics(run_dir, cfg.run.log_interval)
    except BaseException:
        for worker in workers:
            worker.close()
        raise
    return Run(cfg, run_dir, workers, learner, replay, metrics)


def close(run: Run) -> None:
    for worker in run.workers:
        worker.close()
    run.metrics.close()


def record(run: Run, rollouts: list, stats: EpisodeStats, store: bool) -> int:
    """Store a round's transitions (when training) and log its episodes; returns the agent
    transitions received (env steps)."""
    gathered = 0
    for worker, rollout in zip(run.workers, rollouts):
        if store:
            run.replay.insert(rollout.transitions, worker.worker_id)
            run.learner.merge_obs_stats(worker.take_obs_stats())
        gathered += rollout.env_steps
        stats.add(rollout.episodes)
        # Test episodes at the end of training, as Ray mode logs them (plot.py's test band).
        run.metrics.episodes(rollout.episodes, run.env_steps + gathered * store,
                             worker.worker_id, phase="train" if store else "test", stats=stats)
    return gathered


def learn(run: Run) -> dict:
    """The updates the replay's limiter grants: `updates_per_step` per transition inserted
    past `min_size`, counted since the replay's own start (a resume without --save-replay
    starts an empty replay, and with it what is owed). The caller hands the new weights
    to the workers when they are idle."""
    metrics: dict = {}
    while (batch := run.replay.sample(1, run.cfg.replay.batch_size)) is not None:
        step = run.learner.update(batch)
        metrics.update(step)  # TD3: keeps the actor's loss of the round's last actor update
        if "indices" in batch:  # prioritized: the new |TD| errors become the priorities
            run.replay.update_priorities(batch["indices"], step["td_abs"].cpu().numpy(),
                                         batch["generations"])
    return metrics


def train(run: Run) -> None:
    """Rounds of stepping then learning. With --overlap-envs the next round steps in a
    thread while the learner takes this round's updates; the workers adopt new weights as
    a round starts, and checkpoints are written only while no round is in flight."""
    cfg = run.cfg
    next_checkpoint = run.env_steps + cfg.run.checkpoint_interval
    rate = RateMeter(run.env_steps, run.learner.learner_steps)
    values, losses, stale, pending = {}, {}, False, None
    adopt_initial_actor(run)  # its first update may come after an overlapped round
    with Progress(cfg.run.train_steps, "train", interval_s=cfg.run.log_interval) as progress, \
            Rounds(run) as rounds:
        while run.env_steps < cfg.run.train_steps:
            rollouts = pending.result() if pending else step_workers(run, train_mode(run))
            published = publish(run) if stale else None
            run.env_steps += record(run, rollouts, run.train, True)
            if run.env_steps >= next_checkpoint:
                save(run, phase="train")
                next_checkpoint = run.env_steps + cfg.run.checkpoint_interval
            pending = next_round(run, rounds, published)
            losses = learn(run)
            stale = pending is not None and moved(run, losses)
            if losses and pending is None:
                sync_weights(run)
            if run.metrics.line_due():
                values = report(run, "train", losses, rate)
            progress.update(run.env_steps, values)
        # The last interval's scalars (a run shorter than --log-interval logged none),
        # unless the last round's line just logged them: no new steps would log rates of 0.
        if rate.last[1:] != (run.env_steps, run.learner.learner_steps):
            report(run, "train", losses, rate)
        # The last frame: the table's training average
        # and the results now (not those of the last line, up to --log-interval old).
        run.train_wall_s = run.metrics.train_wall_s()
        progress.update(run.env_steps, shown(run, "train", *training_average(
            run.env_steps, run.learner.learner_steps, run.train_wall_s)))
    if run.learner.unpublished:  # e.g. statistics merged after the last update: the test
        sync_weights(run)  # phase tests what is saved and exported
    save(run, phase="test")


def test(run: Run) -> None:
    """Greedy policy, nothing stored, for `test_steps` env steps."""
    done = 0
    adopt_initial_actor(run)  # a fresh run of --train-steps 0 tests the actor it saves
    for worker in run.workers:
        worker.reset()  # no test episode carries steps taken while exploring
    rate = RateMeter(0, run.learner.learner_steps)
    values: dict = {}
    print(f"[test] the greedy policy on {len(run.workers)} env worker(s), "
          f"{run.cfg.run.test_steps} env steps", flush=True)  # as Ray mode says it
    with Progress(run.cfg.run.test_steps, "test", interval_s=run.cfg.run.log_interval) as progress:
        while done < run.cfg.run.test_steps:
            done += record(run, step_workers(run, "greedy"), run.test, store=False)
            if run.metrics.line_due():
                values = report(run, "test", {}, rate, steps=done)
            progress.update(done, values)
        progress.update(done, shown(run, "test", *rate.average(done, run.learner.learner_steps)))


def report(run: Run, phase: str, losses: dict, rate: RateMeter, steps: int | None = None) -> dict:
    """Log the rates and losses to TensorBoard; returns what the progress line shows."""
    steps = run.env_steps if steps is None else steps
    sps, ups = rate.read(steps, run.learner.learner_steps)
    restarts = sum(w.restarts for w in run.workers)
    if phase == "train":
        run.metrics.scalars({"charts/SPS": sps, "perf/learner_updates_per_s": ups,
                             "perf/env_restarts": restarts,
                             **{k: v.item() for k, v in losses.items()
                                if k.startswith("losses/")}}, run.env_steps)
    return shown(run, phase, sps, ups)


def shown(run: Run, phase: str, sps: float, ups: float) -> dict:
    """What the progress bar shows: these rates and the phase's results now."""
    stats = (run.train if phase == "train" else run.test).summary()
    return {**bar_values(stats, run.cfg.env.tracks_success(), sps, ups),
            "env_restarts": sum(w.restarts for w in run.workers)}


def initialize(run: Run) -> None:
    """--initialize-from: the learner takes the other run's networks, the workers act
    with them (a new policy version)."""
    def load(state: dict) -> None:
        run.learner.initialize_from(state)
        sync_weights(run)

    initialize_learner(run.cfg, load)


def restore(run: Run) -> str:
    """Load the run's checkpoint into `run`; returns the phase it was saved in."""
    phase = load(run)
    sync_weights(run, new=False)  # the saved policy, under its saved version
    return phase


def summarize(run: Run) -> dict:
    """The run's counters and results, also written to summary.json."""
    summary = {
        "env_steps": run.env_steps,
        "learner_steps": run.learner.learner_steps,
        "policy_version": run.learner.policy_version,
        "wall_s": round(run.metrics.wall_s(), 2),
        "train_wall_s": run.train_wall_s,
        "env_restarts": sum(w.restarts for w in run.workers),
        "train": run.train.summary(),
        "test": run.test.summary(),
    }
    return write_summary(run.run_dir, summary, run.cfg.run.inference)


def run_local(cfg: Config, run_dir: str) -> dict | None:
    """Train then test (or only test, with --inference); returns the summary, or None
    when --resume finds the run already finished."""
    run = build(cfg, run_dir)
    try:
        if not run_session(cfg, restore=lambda: restore(run), train=lambda: train(run),
                           test=lambda: test(run), save=lambda phase: save(run, phase),
                           env_steps=lambda: run.env_steps, stop=lambda: settle_workers(run),
                           started=lambda: save_config(run_dir, cfg),
                           checkpoint=run.checkpoint_path,
                           initialize=lambda: initialize(run), testing=run.metrics.testing):
            return None
        return summarize(run)
    finally:
        close(run)


__all__ = ["run_local", "RunError"]
