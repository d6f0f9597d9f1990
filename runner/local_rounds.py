"""Local mode's rounds: the workers step, then hand back their rollouts; with
--overlap-envs the next round steps in a thread while the learner updates.

A run that stops (Ctrl-C, an error) lets the round in flight end before it saves, so that
the checkpoint gets the workers' noise and RNG states, but for no more than --timeout-wait
seconds: an env that hangs inside a worker's child process (`--transport in-process`,
where no protocol time-out watches it) would otherwise keep the run from ever saving or
exiting. Such a worker is killed, with its env, and the checkpoint keeps the learner.

`run` is a `runner.local.Run` (not imported: runner.local imports this module).
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Callable

from actors.process_worker import ProcessWorker

NOTICE_AFTER_S = 2.0  # a round ends within this, unless its env is slow or hangs


class Rounds:
    """The thread the next round steps in (--overlap-envs). Leaving on an exception first
    lets the round in flight end (stop_within), so that the thread can be joined."""

    def __init__(self, run):
        self.run = run
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="envs")
        self.pending: Future | None = None

    def submit(self, fn: Callable, *args) -> Future:
        self.pending = self.pool.submit(fn, *args)
        return self.pending

    def __enter__(self) -> Rounds:
        return self

    def __exit__(self, kind, err, tb) -> None:
        try:
            if err is not None and self.pending is not None:
                pending = self.pending
                stop_within(self.run, lambda until: _done_by(pending, until),
                            lambda: kill_children(self.run))
        finally:
            self.pool.shutdown(wait=True)


def _done_by(pending: Future, until: float) -> bool:
    return not wait([pending], timeout=max(0.0, until - time.monotonic())).not_done


def settle_workers(run) -> None:
    """Before a stopping run saves: the answers the workers' children still owe (a round
    in flight) are read, so that they can be asked for their state."""
    children = [w for w in run.workers if isinstance(w, ProcessWorker)]
    if children:
        stop_within(run, lambda until: all([w.settle(until) for w in children]),
                    lambda: kill_children(run))


def stop_within(run, done_by: Callable[[float], bool], kill: Callable[[], None]) -> None:
    """Wait until `done_by(deadline)` says the round in flight ended, for up to
    --timeout-wait seconds; `kill` what is still stepping then, or at a second Ctrl-C."""
    timeout = run.cfg.env.timeout_wait
    start, done = time.monotonic(), False
    try:
        done = done_by(start + min(NOTICE_AFTER_S, timeout))
        if not done:
            print(f"stopping: waiting up to {timeout} s (--timeout-wait) for the env workers "
                  "to end their round; Ctrl-C again stops them now", flush=True)
            done = done_by(start + timeout)
    except KeyboardInterrupt:
        pass  # "stops them now": the finally does, and the save goes on
    finally:
        if not done:
            print("stopping the env workers still stepping (an env that hangs needs the "
                  "protocol transport, which times it out and restarts it)", flush=True)
            kill()


def kill_children(run) -> None:
    for worker in run.workers:
        if isinstance(worker, ProcessWorker):
            worker.kill()


def publish(run, new: bool = True) -> tuple[dict, int]:
    """The learner's weights for the workers, checked and copied, and their version."""
    return run.learner.publish_weights(run.cfg.replay.prioritized, new)


def hand_out(run, published: tuple[dict, int]) -> None:
    for worker in run.workers:
        worker.set_weights(*published)


def sync_weights(run, new: bool = True) -> None:
    hand_out(run, publish(run, new))


def adopt_initial_actor(run) -> None:
    """A fresh run's workers act with the learner's initial actor, the one it saves and
    exports, not with their own random initialization."""
    if run.learner.policy_version == 0:
        sync_weights(run)


def step_workers(run, mode: str, published: tuple[dict, int] | None = None) -> list:
    """One round: every worker adopts `published` weights (if any), then steps
    `collect_steps` times (touches the workers only, so it may run in a thread while the
    learner updates). Workers in child processes (--overlap-envs) step at the same time."""
    if published is not None:
        hand_out(run, published)
    steps = run.cfg.run.collect_steps
    if not all(isinstance(worker, ProcessWorker) for worker in run.workers):
        return [worker.collect(steps, mode) for worker in run.workers]
    for worker in run.workers:
        worker.send_collect(steps, mode)
    return [worker.result() for worker in run.workers]


def next_round(run, rounds: Rounds, published: tuple | None) -> Future | None:
    """--overlap-envs: start the next round in `rounds`' thread, handing out the
    `published` weights in the same thread, so that sending them overlaps the updates too
    (pickled and piped, 0.45 ms of a 6 ms TD3 update on HalfCheetah). None when training is
    done."""
    if run.cfg.run.overlap_envs and run.env_steps < run.cfg.run.train_steps:
        return rounds.submit(step_workers, run, train_mode(run), published)
    if published is not None:  # no round to carry them
        hand_out(run, published)
    return None


def moved(run, losses: dict) -> bool:
    """Whether the round's updates changed what the workers hold: the actor (not on TD3's
    critic-only updates), the critic they compute priorities with, the normalizer."""
    if not losses:
        return False
    return ("losses/actor_loss" in losses or run.cfg.replay.prioritized
            or run.cfg.learner.normalize)


def train_mode(run) -> str:
    # A policy given by --initialize-from is a trained one: it acts from the first step.
    warmup = run.cfg.run.warmup_actions == "random" and run.cfg.run.initialize_from is None
    return "random" if warmup and run.env_steps < run.cfg.replay.learning_starts else "explore"
