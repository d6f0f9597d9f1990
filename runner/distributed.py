"""Ray mode: N env worker actors, one replay actor and one learner actor, run by this driver.

The workers and the learner run their own loops (actors/ray_worker.py,
learner/ray_learner.py). The update-to-data ratio is held by the learner on the rows it
has fetched (`--device-replay`, the default; the replay actor mirrors its count to tell
the workers to back off), or by the replay actor's rate limiter on the sampled path
(`--no-device-replay`, `--prioritized`). The driver only watches (runner/ray_fleet.py
keeps the loops alive): every second (every `log_interval` seconds if that is shorter) it
drains the workers' episodes and reads the counters; it logs rates every `log_interval`
seconds and checkpoints every `checkpoint_interval` env steps. When the budget is spent it
stops the workers, lets the learner take the updates their last inserts call for, stops
it, saves, and tests the final policy on the live workers. The run folder is the same as
local mode's.
"""

from __future__ import annotations

import time

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

from learner.checkpoint import check_compatible, load_checkpoint
from runner.config import Config
from runner.distributed_metrics import Monitor
from runner.metrics import bar_values
from runner.progress import Progress
from runner.ray_errors import REPLAY_DIED, answered, task_cause
from runner.ray_fleet import Fleet
from learner.export import export_policy
from learner.learner import TrainingDiverged
from runner.config_file import save_config
from runner.errors import RunAborted
from runner.session import run_session
from runner.run_dir import checkpoint_path, keep_checkpoint
from runner.state import (initialize_learner, load_replay, replay_made_with, save_run,
                          warn_empty_replay)


def train(cfg: Config, fleet: Fleet, monitor: Monitor, save) -> None:
    # The replay counts its own inserts; what earlier sessions did is in base_steps.
    fleet.start_loops(budget=cfg.run.train_steps - monitor.base_steps)
    next_checkpoint = monitor.env_steps + cfg.run.checkpoint_interval
    try:
        while monitor.env_steps < cfg.run.train_steps:
            time.sleep(min(cfg.run.log_interval, 1.0))
            check_learner(fleet)
            for k in fleet.check():
                monitor.worker_restarted(k, fleet.specs[k]["node"])
            monitor.poll(fleet)
            if monitor.env_steps >= next_checkpoint:
                save("train")
                next_checkpoint = monitor.env_steps + cfg.run.checkpoint_interval
    except BaseException:
        monitor.close_bar()  # what comes next ("interrupted: ...") prints below the bar
        fleet.stop_loops()  # at once: no catch-up after an interrupt or a failure
        raise
    # The learner takes the updates the last inserts call for; a worker whose actor came
    # back meanwhile is counted before the poll drains its new incarnation.
    for k in fleet.finish_loops():
        monitor.worker_restarted(k, fleet.specs[k]["node"])
    check_learner(fleet)  # and publishes the last of them: a divergence there ends the run
    monitor.poll(fleet)
    monitor.end_training()
    save("test")  # as local mode: nothing of training is lost if the test phase fails


def check_learner(fleet: Fleet) -> None:
    """Raise TrainingDiverged if that is what ended the learner's loop (it refused to
    publish non-finite weights); fleet.check() would report it as a learner that died."""
    if fleet.learner_run is None or not ray.wait([fleet.learner_run], timeout=0)[0]:
        return
    try:
        ray.get(fleet.learner_run)
    except RayTaskError as err:
        if isinstance(getattr(err, "cause", None), TrainingDiverged):
            raise err.cause from None
    except RayActorError:
        return  # fleet.check() says so


def test(cfg: Config, fleet: Fleet, monitor: Monitor) -> None:
    """The final policy, greedy, on the live workers; `test_steps` agent steps in all,
    spread over them. A worker whose env fails past its restart limits ends the run with
    that one line (the checkpoint of the end of training is on disk)."""
    live = fleet.live_workers()
    if not live:
        raise RunAborted("no env worker is left to test with (see the lines above); fix the "
                         "env, then --inference tests the saved checkpoint")
    policy_version, ref = ray.get(fleet.learner.latest_weights.remote(-1))
    shares = split_evenly(cfg.run.test_steps, len(live))
    print(f"[test] the greedy policy on {len(live)} env worker(s), {cfg.run.test_steps} env "
          "steps", flush=True)
    calls = {k: fleet.workers[k].test.remote(ref, policy_version, n) for k, n in zip(live, shares)}
    with Progress(cfg.run.test_steps, "test", interval_s=cfg.run.log_interval) as bar:
        watch = EvalWatch(cfg, fleet, monitor, bar, dict(zip(live, shares)))
        waiting = dict(calls)
        while waiting:
            ready, _ = ray.wait(list(waiting.values()), num_returns=len(waiting), timeout=1.0)
            for k in [k for k, call in waiting.items() if call in ready]:
                watch.finish(k, waiting.pop(k))  # an env error ends the run at once
            watch.poll(calls)


class EvalWatch:
    """The test phase's bar: transitions and finished episodes as the workers report them."""

    def __init__(self, cfg: Config, fleet: Fleet, monitor: Monitor, bar: Progress,
                 shares: dict[int, int]):
        self.cfg, self.fleet, self.monitor, self.bar = cfg, fleet, monitor, bar
        self.shares = shares  # each worker's env steps to test
        self.tested: dict[int, int] = {}
        self.started = time.monotonic()

    def poll(self, calls: dict) -> None:
        for k in calls:
            try:
                d = ray.get(self.fleet.workers[k].test_drain.remote(), timeout=10)
            except (RayActorError, GetTimeoutError):
                continue
            # A restarted actor (the first one died mid-test) reports none: keep its share.
            self.tested[k] = max(self.tested.get(k, 0), d["env_steps"])
            self.record(k, d["episodes"])
        done = sum(self.tested.values())
        sps = done / max(time.monotonic() - self.started, 1e-9)
        self.bar.update(done, bar_values(self.monitor.test.summary(),
                                         self.cfg.env.tracks_success(), sps))

    def finish(self, k: int, call) -> None:
        try:
            self.record(k, ray.get(call))
        except RayTaskError as err:
            raise task_cause(err) from None
        except RayActorError:
            self.shares[k] = self.tested.get(k, 0)  # what it tested before it died counts
            self.bar.write(f"worker {k}: its actor died during the test; testing goes on "
                           f"without it: {sum(self.shares.values())} of the "
                           f"{self.cfg.run.test_steps} env steps at most")

    def record(self, k: int, episodes: list) -> None:
        self.monitor.test.add(episodes)
        self.monitor.metrics.episodes(episodes, self.monitor.env_steps, k, "test")


def split_evenly(total: int, parts: int) -> list[int]:
    """`total` as `parts` whole shares that differ by at most one."""
    return [total // parts + (k < total % parts) for k in range(parts)]


def make_saver(cfg: Config, fleet: Fleet, monitor: Monitor, path: str):
    def save(phase: str) -> None:
        try:  # the learner refuses to hand out diverged weights (TrainingDiverged)
            state = answered(fleet.learner.state_dict.remote(), "learner actor")
        except RayTaskError as err:
            raise task_cause(err) from None
        except RayActorError:  # e.g. it died as Ctrl-C came: nothing newer to save
            raise RunAborted("the learner actor died; --resume continues from the last "
                             "checkpoint") from None
        replay = None
        if cfg.run.save_replay:
            try:
                replay = answered(fleet.replay.state_dict.remote(), "replay actor", 120.0)
            except RayActorError:  # what it held is gone: this save would lose it
                raise RunAborted(REPLAY_DIED) from None
            # Counted from the same snapshot the replay file holds, so that a resume that
            # restores it neither loses nor doubles the rows inserted since the last poll.
            env_steps = monitor.base_steps + replay["limiter"]["inserted"]
        else:
            env_steps = inserted_now(fleet, monitor)
        monitor.env_steps = env_steps  # what "checkpoint saved at N env steps" then says
        beta = answered(fleet.replay.stats.remote(), "replay actor")["per_beta"] \
            if cfg.replay.prioritized else None
        save_run(path, {"learner": state, "env_steps": env_steps, "per_beta": beta,
                        "train_episodes": monitor.train.count, "phase": phase,
                        "train_recent": monitor.train.saved(),
                        "wall_s": monitor.wall_s(), "test_wall_s": monitor.metrics.test_wall_s},
                 replay, replay_made_with(cfg))
        # The ONNX after the checkpoint: one that cannot be written then costs no training.
        spec = fleet.specs[0]
        onnx = export_policy(monitor.run_dir, spec["behavior"], spec["obs_sizes"],
                             spec["action_size"], cfg.learner.hidden_size, state["actor"],
                             state["normalizer"])
        keep_checkpoint(monitor.run_dir, onnx, env_steps, cfg.run.keep_checkpoints)
    return save


def inserted_now(fleet: Fleet, monitor: Monitor) -> int:
    """The env steps in the replay now: after stop_loops() the workers' last inserts land
    after the last poll, and the learner's updates on them are saved too."""
    try:
        return monitor.base_steps + answered(fleet.replay.stats.remote(),
                                             "replay actor")["inserted"]
    except RayActorError:  # the replay died (the caller reports it): the last poll's count
        return monitor.env_steps


def run_distributed(cfg: Config, run_dir: str) -> dict | None:
    """Train then test on Ray (the caller has initialised Ray); returns the summary."""
    fleet = Fleet(cfg, run_dir)
    try:
        monitor = Monitor(cfg, run_dir, fleet.specs, fleet.res)
    except BaseException:
        fleet.close()
        raise
    path = checkpoint_path(run_dir)
    save = make_saver(cfg, fleet, monitor, path)
    try:
        if not run_session(cfg, restore=lambda: restore(path, cfg, fleet, monitor),
                           train=lambda: train(cfg, fleet, monitor, save),
                           test=lambda: test(cfg, fleet, monitor), save=save,
                           env_steps=lambda: monitor.env_steps, stop=fleet.stop_loops,
                           started=lambda: save_config(run_dir, cfg), checkpoint=path,
                           initialize=lambda: initialize(cfg, fleet, monitor),
                           testing=monitor.metrics.testing):
            return None
        return monitor.write_summary()
    finally:
        fleet.close()
        monitor.close()


def initialize(cfg: Config, fleet: Fleet, monitor: Monitor) -> None:
    """--initialize-from: the learner takes the other run's networks and publishes them."""
    initialize_learner(cfg, lambda state: ray_call(fleet.learner.initialize_from, state))
    monitor.learner = ray.get(fleet.learner.progress.remote())


def ray_call(method, *args):
    """method.remote(*args)'s result; a task's own error as itself (a CheckpointError's
    one line), not as Ray's wrapper."""
    try:
        return ray.get(method.remote(*args))
    except RayTaskError as err:
        raise task_cause(err) from None


def restore_replay(path: str, payload: dict, cfg: Config, fleet: Fleet,
                   monitor: Monitor) -> dict | None:
    """The replay saved with the checkpoint `payload`, into the replay actor (None: none)."""
    # --inference trains nothing: a replay file (perhaps broken) would only be in the way.
    replay = (load_replay(path, payload.get("save_id"), replay_made_with(cfg))
              if cfg.run.save_replay and not cfg.run.inference else None)
    if replay is not None:  # one that no longer fits (--buffer-size, --n-step): its one line
        feed = payload["learner"].get("feed")
        if feed is not None:
            # The feed owns the update count; the replay's mirror of it, snapshotted after
            # the learner's state while both ran, may be ahead of it ("went back" forever).
            replay["limiter"]["updates_done"] = feed["updates_done"]
        ray_call(fleet.replay.load_state_dict, replay)
        monitor.base_steps -= replay["limiter"]["inserted"]  # counted again by the replay
    else:  # (with --save-replay, load_replay said why)
        warn_empty_replay(cfg, payload["env_steps"])
    return replay


def restore(path: str, cfg: Config, fleet: Fleet, monitor: Monitor) -> str:
    """The replay first (when saved), then the learner, with the feed's counters only when
    the replay they count came back: otherwise what is owed restarts with the empty replay."""
    payload = load_checkpoint(path, holds="learner")
    learner = payload["learner"]
    # Checked here, before the replay, so that a resume on another env is told about the env
    # (as in local mode), not about its saved replay's shapes.
    check_compatible(learner, fleet.specs[0]["obs_size"], fleet.specs[0]["action_size"],
                     cfg.learner)
    monitor.resume_from(payload, learner["learner_steps"])
    replay = restore_replay(path, payload, cfg, fleet, monitor)
    ray_call(fleet.replay.continue_beta, learner["learner_steps"], payload.get("per_beta"))
    # A checkpoint from local mode has no feed: the restored replay's counters stand in.
    feed = (learner.get("feed") or replay["limiter"]) if replay is not None else None
    # the learner checks the checkpoint against this run (sizes, options) as it loads
    ray_call(fleet.learner.load_state_dict, learner, feed)
    monitor.learner = ray.get(fleet.learner.progress.remote())
    return payload["phase"]


__all__ = ["run_distributed", "RunAborted"]
