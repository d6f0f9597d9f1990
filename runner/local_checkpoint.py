"""Local mode's checkpoint: what `save` writes (learner, counters, the workers' noise and
RNG states, the replay with --save-replay, the ONNX policy) and what `load` restores.
`run` is a `runner.local.Run` (not imported: runner.local imports this module)."""

from __future__ import annotations

from actors.process_worker import WorkerProcessDied
from learner.checkpoint import load_checkpoint
from learner.export import export_policy
from runner.run_dir import keep_checkpoint
from runner.state import (load_replay, replay_made_with, save_run, to_numpy, to_torch,
                          warn_empty_replay)


def save(run, phase: str) -> None:
    learner = run.learner.state_dict()  # first: it refuses diverged weights, before any write
    save_run(run.checkpoint_path, {
        "learner": learner,
        "env_steps": run.env_steps,
        "train_episodes": run.train.count,
        "train_recent": run.train.saved(),
        "phase": phase,
        "wall_s": run.metrics.wall_s(),
        "test_wall_s": run.metrics.test_wall_s,
        "per_beta": run.replay.stats()["per_beta"],  # None: uniform replay
        **worker_states(run.workers),
    }, run.replay.state_dict() if run.cfg.run.save_replay else None, replay_made_with(run.cfg))
    # The ONNX after the checkpoint: one that cannot be written then costs no training.
    worker = run.workers[0]
    onnx = export_policy(run.run_dir, worker.behavior, worker.obs_sizes, worker.action_size,
                         run.cfg.learner.hidden_size, learner["actor"], learner["normalizer"])
    keep_checkpoint(run.run_dir, onnx, run.env_steps, run.cfg.run.keep_checkpoints)


def worker_states(workers: list) -> dict:
    """The workers' noise and RNG states, as the checkpoint keeps them; none when a
    worker's process died (--overlap-envs): the learner's state is still saved, and a
    resume starts fresh ones, as after a Ray run."""
    try:
        states = [w.state_dict() for w in workers]
    except WorkerProcessDied:
        return {}
    return {"noise": [to_torch(s["noise"]) for s in states],
            "worker_rng": [s["rng"] for s in states]}


def load(run) -> str:
    """Load the run's checkpoint into `run` (the workers' weights aside); returns the phase
    it was saved in."""
    payload = load_checkpoint(run.checkpoint_path, holds="learner")
    run.learner.load_state_dict(payload["learner"])
    run.env_steps = payload["env_steps"]
    run.train.restore(payload["train_episodes"], payload.get("train_recent", []))
    run.metrics.restore_walls(payload)
    run.train_wall_s = run.metrics.train_wall_s()  # the earlier sessions' (until this trains)
    # A Ray-mode checkpoint has no worker states: the workers then start fresh ones.
    for worker, noise, rng in zip(run.workers, payload.get("noise", ()),
                                  payload.get("worker_rng", ())):
        worker.load_state_dict({"noise": to_numpy(noise), "rng": rng})
    replay = (load_replay(run.checkpoint_path, payload.get("save_id"), replay_made_with(run.cfg))
              if run.cfg.run.save_replay and not run.cfg.run.inference else None)
    if replay is not None:
        feed = payload["learner"].get("feed")  # a Ray checkpoint's: its learner's own count;
        if feed is not None:  # the replay's mirror of it, snapshotted apart, may differ
            replay["limiter"]["updates_done"] = feed["updates_done"]
        run.replay.load_state_dict(replay)
    else:  # (with --save-replay, load_replay said why)
        warn_empty_replay(run.cfg, run.env_steps)
    run.replay.continue_beta(payload["learner"]["learner_steps"], payload.get("per_beta"))
    return payload["phase"]
