"""What the Ray-mode driver watches: counters from every actor, turned into metrics.

perf/env_steps_per_s, perf/learner_updates_per_s, perf/samples_per_insert,
perf/policy_lag (learner version minus the version of the sampled transitions),
perf/replay_size and perf/worker_<k>_env_steps go to TensorBoard with the charts/ and
losses/ of local mode; summary.json adds `workers`.
"""

from __future__ import annotations

import time

import ray
from ray.exceptions import GetTimeoutError, RayActorError

from actors.agents import Episode
from runner.config import Config
from runner.progress import Progress
from runner.errors import RunAborted
from runner.ray_errors import answered
from runner.metrics import EpisodeStats, Metrics, bar_values, training_average
from runner.run_dir import write_summary


class Monitor:
    """Aggregates worker, replay and learner counters for logs, checkpoints and summary."""

    def __init__(self, cfg: Config, run_dir: str, specs: list[dict], resources: dict):
        self.cfg = cfg
        self.run_dir = run_dir
        self.metrics = Metrics(run_dir, cfg.run.log_interval)
        self.train = EpisodeStats()
        self.test = EpisodeStats(window=None)  # the test result covers every episode
        self.base_steps = 0  # env steps of earlier sessions (resume)
        self.env_steps = 0
        self.learner: dict = {"learner_steps": 0, "policy_version": 0}
        self.replay: dict = {}
        self.workers = {k: {"env_steps": 0, "episodes": 0, "restarts": 0, "actor_restarts": 0,
                            "inserted": 0, "weight_updates": 0, "node": s["node"]}
                        for k, s in enumerate(specs)}
        # Totals of earlier incarnations of a worker whose actor Ray restarted.
        self.bases = {k: {"env_steps": 0, "restarts": 0, "weight_updates": 0}
                      for k in self.workers}
        self.last_seen: dict[int, dict] = {}
        self.last = (time.monotonic(), 0, 0)
        # Each worker's own env steps and the run's at its last drain: where its episodes
        # ended on the run's axis (they were all logged at the poll's step, in a staircase).
        self.marks = {k: (0, 0) for k in self.workers}
        self.episodes_at = 0  # the step of the last training episode logged
        self.lag_mark = (0.0, 0)  # the learner's policy_lag_sums at the last report
        self.train_wall_s: float | None = None  # wall time when training ended
        self.shown: dict = {}
        # Before the bar exists: a print through a live bar tears it.
        print(f"ray: {len(specs)} env workers on {len({s['node'] for s in specs})} node(s), "
              f"{resources['worker_cpus']} CPU each; learner {resources['learner_cpus']} CPU"
              f"{' + 1 GPU' if resources['learner_gpus'] else ''}", flush=True)
        # Made at the first poll: restore's warnings then print above it, not through it.
        self.progress: Progress | None = None

    def resume_from(self, payload: dict, learner_steps: int) -> None:
        """The saved counters; rates count from them (the first line's updates/s counted
        every restored update as done in its interval)."""
        self.base_steps = self.env_steps = payload["env_steps"]
        self.train.restore(payload["train_episodes"], payload.get("train_recent", []))
        self.metrics.restore_walls(payload)
        self.train_wall_s = self.metrics.train_wall_s()  # earlier sessions' (until this trains)
        self.last = (time.monotonic(), self.env_steps, learner_steps)
        self.marks = {k: (0, self.env_steps) for k in self.workers}
        self.episodes_at = self.env_steps

    def wall_s(self) -> float:
        return self.metrics.wall_s()

    def poll(self, fleet) -> None:
        """Read every actor once; log episodes now and rates when a line is due."""
        try:
            self.replay = answered(fleet.replay.stats.remote(), "replay actor")
            self.learner = answered(fleet.learner.progress.remote(), "learner actor")
        except RayActorError as err:
            raise RunAborted(f"the replay or learner actor died ({str(err).splitlines()[0]}); "
                             "--resume continues from the last checkpoint") from None
        self.env_steps = self.base_steps + self.replay["inserted"]
        for k, n in self.replay.get("worker_inserted", {}).items():
            if int(k) in self.workers:  # not a worker of an earlier session with more of them
                self.workers[int(k)]["inserted"] = n
        # Not a worker whose actor Ray restarts: its new incarnation's counters, taken
        # before check() hands it to worker_restarted(), would replace its totals (lost).
        asked = [w for k, w in enumerate(fleet.workers) if fleet.restarting.answers(k)]
        ended = [placed for d in self._drain(asked) for placed in self._record(d)]
        for step, k, episode in sorted(ended, key=lambda placed: placed[0]):
            # In step order, never before one logged: TensorBoard drops a tag's points past
            # a step that goes back (a worker not drained for a while is placed from its
            # last drain, which may be before another worker's last episode).
            self.episodes_at = max(self.episodes_at, step)
            self.train.add([episode])
            self.metrics.episodes([episode], self.episodes_at, k, "train", stats=self.train)
        if self.metrics.line_due():
            self.report()
        if self.progress is None:
            self.progress = Progress(self.cfg.run.train_steps, "train",
                                     interval_s=self.cfg.run.log_interval)
        self.progress.update(self.env_steps, self.shown)

    def _drain(self, workers) -> list[dict]:
        """What every live worker has to say; a dead or restarting one is skipped."""
        refs = [w.drain.remote() for w in workers]
        drained = []
        for ref in refs:
            try:
                answer = ray.get(ref, timeout=10)
            except (RayActorError, GetTimeoutError):
                continue
            if answer is not None:
                drained.append(answer)
        return drained

    def _record(self, d: dict) -> list[tuple[int, int, Episode]]:
        """A worker's counters; its new episodes as (run's env step, worker id, episode)."""
        k = d["worker_id"]
        stats, base = self.workers[k], self.bases[k]
        stats["env_steps"] = base["env_steps"] + d["env_steps"]  # agent transitions
        stats["restarts"] = base["restarts"] + d["restarts"]
        stats["weight_updates"] = base["weight_updates"] + d["weight_updates"]
        stats["episodes"] += len(d["episodes"])
        self.last_seen[k] = stats.copy()
        (mine, run), now = self.marks[k], (d["env_steps"], self.env_steps)
        self.marks[k] = now
        if now[0] < mine:  # a new incarnation of the worker counts from zero
            mine = 0
        return [(placed(e.ended_at, (mine, run), now), k, e) for e in d["episodes"]]

    def worker_restarted(self, k: int, node: str) -> None:
        """Worker k's actor came back from zero, on `node` (Ray may have placed it on
        another one, its first node lost): keep its totals counting up."""
        seen = self.last_seen.get(k, self.workers[k])
        self.bases[k] = {key: seen[key] for key in ("env_steps", "restarts", "weight_updates")}
        self.workers[k]["actor_restarts"] += 1
        self.workers[k]["node"] = node

    def report(self) -> None:
        """TensorBoard scalars now; the progress line shows them from here on. None while
        no env step came since the last report: the x axis is env steps, so that point
        would repeat the last one's step with rates of 0 (the poll after the workers stop,
        the learner's catch-up, a first poll before any insert); the next report's rates
        then cover both intervals."""
        if self.env_steps == self.last[1]:
            return
        now = time.monotonic()
        t0, e0, l0 = self.last
        steps = self.learner["learner_steps"]
        dt = max(now - t0, 1e-9)
        sps, ups = (self.env_steps - e0) / dt, (steps - l0) / dt
        self.last = (now, self.env_steps, steps)
        lag = self.interval_lag()
        stats = self.train.summary()
        restarts = sum(w["restarts"] for w in self.workers.values())
        values = {"perf/env_steps_per_s": sps, "charts/SPS": sps,
                  "perf/learner_updates_per_s": ups,
                  "perf/samples_per_insert": self.replay.get("samples_per_insert"),
                  "perf/policy_lag": lag,
                  "perf/replay_size": self.replay.get("size"),
                  "perf/per_beta": self.replay.get("per_beta"),  # None: uniform replay
                  "perf/priority_updates": self.replay.get("priority_updates")
                  if self.replay.get("per_beta") is not None else None,
                  "perf/env_restarts": restarts, **self.learner["losses"]}
        values.update({f"perf/worker_{k}_env_steps": w["env_steps"]
                       for k, w in self.workers.items()})
        self.metrics.scalars(values, self.env_steps)
        # No batch sampled since the last report (the end of the catch-up, a stall): the
        # bar keeps the last lag it showed rather than turning to "-".
        self.shown = {**bar_values(stats, self.cfg.env.tracks_success(), sps, ups),
                      "policy_lag": self.shown.get("policy_lag") if lag is None else lag,
                      "env_restarts": restarts}

    def interval_lag(self) -> float | None:
        """The mean policy lag of the batches sampled since the last report (None: none)."""
        total, batches = self.learner.get("policy_lag_sums", (0.0, 0))
        before, counted = self.lag_mark
        self.lag_mark = (total, batches)
        return (total - before) / (batches - counted) if batches > counted else None

    def write_summary(self) -> dict:
        summary = {
            "env_steps": self.env_steps,
            "learner_steps": self.learner["learner_steps"],
            "policy_version": self.learner["policy_version"],
            "wall_s": round(self.wall_s(), 2),
            "train_wall_s": self.train_wall_s,
            "env_restarts": sum(w["restarts"] for w in self.workers.values()),
            "train": self.train.summary(),
            "test": self.test.summary(),
            "perf": {"samples_per_insert": self.replay.get("samples_per_insert"),
                     "replay_size": self.replay.get("size"),
                     # the session's mean: the last poll's often saw no batch (None)
                     "policy_lag": self.learner.get("policy_lag_session"),
                     **({key: self.replay.get(key) for key in
                         ("per_beta", "priority_updates", "stale_priority_updates")}
                        if self.replay.get("per_beta") is not None else {})},
            "workers": [self.workers[k] for k in sorted(self.workers)],
        }
        return write_summary(self.run_dir, summary, self.cfg.run.inference)

    def end_training(self) -> None:
        # The last interval's scalars (a run shorter than --log-interval logged none);
        # report() skips them when a poll already logged this env step.
        self.report()
        self.train_wall_s = self.metrics.train_wall_s()
        if self.progress is not None:
            # The last frame: the table's training average and the results now (not those
            # of the last line, up to --log-interval old).
            sps, ups = training_average(self.env_steps, self.learner["learner_steps"],
                                        self.train_wall_s)
            self.shown.update(bar_values(self.train.summary(), self.cfg.env.tracks_success(),
                                         sps, ups))
            self.progress.update(self.env_steps, self.shown)
        self.close_bar()

    def close_bar(self) -> None:
        """Below the bar from here on ("interrupted: ...", the test phase, the table)."""
        if self.progress is not None:
            self.progress.close()

    def close(self) -> None:
        self.close_bar()
        self.metrics.close()


def placed(ended_at: int, before: tuple[int, int], now: tuple[int, int]) -> int:
    """The run's env step where a worker's episode ended, from the worker's own count: its
    count and the run's went from `before` to `now` (worker's, run's), spread evenly."""
    (mine, run), (mine_now, run_now) = before, now
    if mine_now <= mine:
        return run_now
    share = min(max((ended_at - mine) / (mine_now - mine), 0.0), 1.0)
    return run + round(share * (run_now - run))
