"""What the Ray-mode driver watches: counters from every actor, turned into metrics.

perf/env_steps_per_s, perf/learner_updates_per_s, perf/samples_per_insert,
perf/policy_lag (learner version minus the version of the sampled transitions),
perf/replay_size and perf/worker_<k>_env_steps go to TensorBoard with the charts/ and
losses/ of local mode; summary.json adds `workers`.
"""

from __future__ import annotations

import json
import os
import time

import ray

from runner.config import Config
from runner.results import EpisodeStats, Metrics, write_atomic


class Monitor:
    """Aggregates worker, replay and learner counters for logs, checkpoints and summary."""

    def __init__(self, cfg: Config, run_dir: str, specs: list[dict], resources: dict):
        self.cfg = cfg
        self.run_dir = run_dir
        self.metrics = Metrics(run_dir, cfg.run.log_interval)
        self.train = EpisodeStats()
        self.test = EpisodeStats()
        self.base_steps = 0  # env steps of earlier sessions (resume)
        self.env_steps = 0
        self.learner: dict = {"learner_steps": 0, "policy_version": 0}
        self.replay: dict = {}
        self.workers = {k: {"env_steps": 0, "episodes": 0, "restarts": 0, "inserted": 0,
                            "weight_updates": 0, "node": s["node"]}
                        for k, s in enumerate(specs)}
        self.last = (time.monotonic(), 0, 0)
        print(f"ray: {len(specs)} workers on {len({s['node'] for s in specs})} node(s); "
              f"resources {resources}", flush=True)

    def resume_from(self, env_steps: int, train_episodes: int, wall_s: float) -> None:
        self.base_steps = self.env_steps = env_steps
        self.train.count = train_episodes
        self.metrics.wall_before = wall_s

    def wall_s(self) -> float:
        return self.metrics.wall_s()

    def poll(self, workers, replay, learner) -> None:
        """Read every actor once; log episodes now and rates when a line is due."""
        drained = ray.get([w.drain.remote() for w in workers])
        self.replay = ray.get(replay.stats.remote())
        self.learner = ray.get(learner.progress.remote())
        self.env_steps = self.base_steps + self.replay["inserted"]
        for k, n in self.replay.get("worker_inserted", {}).items():
            self.workers[int(k)]["inserted"] = n
        for d in drained:
            stats = self.workers[d["worker_id"]]
            stats["env_steps"] = d["env_steps"] * self.cfg.env.num_areas
            stats["episodes"] += len(d["episodes"])
            stats["weight_updates"] = d["weight_updates"]
            self.train.add(d["episodes"])
            self.metrics.episodes(d["episodes"], self.env_steps, d["worker_id"], "train")
        if self.metrics.line_due():
            self.report()

    def report(self) -> None:
        now = time.monotonic()
        t0, e0, l0 = self.last
        steps = self.learner["learner_steps"]
        dt = max(now - t0, 1e-9)
        sps, ups = (self.env_steps - e0) / dt, (steps - l0) / dt
        self.last = (now, self.env_steps, steps)
        stats = self.train.summary()
        values = {"perf/env_steps_per_s": sps, "charts/SPS": sps,
                  "perf/learner_updates_per_s": ups,
                  "perf/samples_per_insert": self.replay.get("samples_per_insert"),
                  "perf/policy_lag": self.learner.get("policy_lag"),
                  "perf/replay_size": self.replay.get("size"),
                  "charts/success_rate": stats["success_rate"], **self.learner["losses"]}
        values.update({f"perf/worker_{k}_env_steps": w["env_steps"]
                       for k, w in self.workers.items()})
        self.metrics.scalars(values, self.env_steps)
        ret, success, lag = stats["mean_return"], stats["success_rate"], values["perf/policy_lag"]
        spi = values["perf/samples_per_insert"]
        print(f"[train] env_steps {self.env_steps}/{self.cfg.run.train_steps}  {sps:.0f} steps/s"
              f"  {ups:.0f} updates/s  learner_steps {steps}  episodes {stats['episodes']}  "
              f"return {'-' if ret is None else f'{ret:+.2f}'}  "
              f"success {'-' if success is None else f'{success:.2f}'}  "
              f"spi {'-' if spi is None else f'{spi:.0f}'}  "
              f"lag {'-' if lag is None else f'{lag:.1f}'}", flush=True)

    def write_summary(self) -> dict:
        summary = {
            "env_steps": self.env_steps,
            "learner_steps": self.learner["learner_steps"],
            "policy_version": self.learner["policy_version"],
            "wall_s": round(self.wall_s(), 2),
            "train": self.train.summary(),
            "test": self.test.summary(),
            "perf": {"samples_per_insert": self.replay.get("samples_per_insert"),
                     "replay_size": self.replay.get("size"),
                     "policy_lag": self.learner.get("policy_lag")},
            "workers": [self.workers[k] for k in sorted(self.workers)],
        }
        write_atomic(os.path.join(self.run_dir, "summary.json"), json.dumps(summary, indent=2))
        return summary

    def close(self) -> None:
        self.metrics.close()
