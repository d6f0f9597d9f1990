"""Run state that is not the learner's: replay contents, noise and RNG, made checkpointable.

Checkpoints load with `weights_only=True`, which accepts tensors and plain containers but
not numpy arrays; these helpers convert both ways.
"""

from __future__ import annotations

import os
import uuid
from typing import Callable

import numpy as np
import torch

from learner.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, tree_map
from runner.run_dir import initialize_path


def to_torch(tree):
    """numpy arrays -> tensors, recursively through dicts, lists and tuples."""
    return tree_map(lambda x: torch.from_numpy(_writable(x)) if isinstance(x, np.ndarray)
                    else x, tree)


def _writable(x: np.ndarray) -> np.ndarray:
    """A contiguous, writable array of its own: arrays that came through Ray are read-only
    views, and empty arrays unpickled from a worker's pipe (--overlap-envs: OU noise with
    no agent state, after the test phase) share one address whatever their dtype, which
    torch.save refuses ("view the same data as different types"); a copy of an empty
    array owns no memory."""
    x = np.ascontiguousarray(x)
    return x if x.flags.writeable and x.size else x.copy()


def to_numpy(tree):
    """tensors -> numpy arrays, recursively (the inverse of `to_torch`)."""
    return tree_map(lambda x: x.numpy() if isinstance(x, torch.Tensor) else x, tree)


def initialize_learner(cfg, load: Callable[[dict], None]) -> None:
    """--initialize-from: `load` gets the named run's learner state (the mode's learner
    keeps its networks, targets and normalizer); a mismatch names the checkpoint."""
    path = initialize_path(cfg.run.results_dir, cfg.run.initialize_from)
    learner = load_checkpoint(path, holds="learner")["learner"]
    try:
        load(learner)
    except CheckpointError as err:
        raise CheckpointError(f"--initialize-from {path}: {err}") from None
    print(f"initialized from {path}: its networks and targets"
          f"{' and normalizer' if learner.get('normalizer') is not None else ''} "
          "(the optimizers and counters start fresh)", flush=True)


def replay_path(checkpoint_path: str) -> str:
    return os.path.join(os.path.dirname(checkpoint_path), "replay.pt")


def save_run(checkpoint_path: str, payload: dict, replay: dict | None = None,
             made_with: dict | None = None) -> None:
    """The checkpoint and, written first, the replay next to it (when given, with the
    `made_with` of `replay_made_with`), so that a checkpoint never points at an older
    replay than its own; both atomic, and tied by one save id that `load_replay` checks."""
    save_id = uuid.uuid4().hex
    if replay is not None:
        save_replay(checkpoint_path, replay, save_id, made_with)
    save_checkpoint(checkpoint_path, {**payload, "save_id": save_id})


def save_replay(checkpoint_path: str, state: dict, save_id: str,
                made_with: dict | None = None) -> None:
    """Write the replay next to the checkpoint, atomically (see `save_run`)."""
    save_checkpoint(replay_path(checkpoint_path), {"replay": to_torch(state),
                                                   "save_id": save_id, "made_with": made_with})


def replay_made_with(cfg) -> dict:
    """What a saved replay's rows depend on beyond their shapes: n-step rows hold sums of
    rewards discounted by gamma, and gamma^k as their bootstrap discount."""
    return {"n_step": cfg.replay.n_step, "gamma": cfg.learner.gamma}


def warn_empty_replay(cfg, env_steps: int) -> None:
    """A resume without --save-replay trains on an empty replay: said, unless nothing is
    left to train (a run stopped in its test phase: only that runs again)."""
    if not (cfg.run.inference or cfg.run.save_replay) and env_steps < cfg.run.train_steps:
        print("warning: the replay restarts empty (pass --save-replay to keep it across "
              "resumes)", flush=True)


def load_replay(checkpoint_path: str, save_id: str | None = None,
                made_with: dict | None = None) -> dict | None:
    """The replay saved with the checkpoint whose save_id is given (None: any), or None
    (with a warning) when there is none: no file, or one from another save. A run stopped
    between writing the replay and the checkpoint leaves a replay newer than the
    checkpoint, whose counters (rows inserted, updates granted) run ahead of the learner's:
    Ray mode's learner refused them, and local mode trained on rows it counted again."""
    path = replay_path(checkpoint_path)
    if not os.path.exists(path):
        print(f"warning: no saved replay at {path}: the replay restarts empty", flush=True)
        return None
    try:
        payload = load_checkpoint(path, holds="replay")
    except CheckpointError as err:  # the checkpoint itself may be fine: say how to keep it
        raise CheckpointError(f"{str(err).split(';')[0]}; --resume --no-save-replay continues "
                              "from the checkpoint with an empty replay") from None
    if None not in (save_id, payload.get("save_id")) and payload["save_id"] != save_id:
        print(f"warning: {path} was not saved with the checkpoint (the run stopped between "
              "writing the two): the replay restarts empty", flush=True)
        return None
    check_made_with(payload.get("made_with"), made_with)
    return to_numpy(payload["replay"])


def check_made_with(saved: dict | None, now: dict | None) -> None:
    """ValueError (one line) when a saved n-step replay's rows were summed with another n
    or gamma than this run's: they would be wrong targets. (1-step rows hold raw rewards;
    the buffer itself tells n = 1 from n > 1.)"""
    if None in (saved, now) or saved["n_step"] == 1 or saved == now:
        return
    def flags(made: dict) -> str:
        return f"--n-step {made['n_step']} --gamma {made['gamma']}"
    raise ValueError(f"the saved replay was made with another --n-step or --gamma "
                     f"({flags(saved)}; this run has {flags(now)}): its n-step returns would "
                     "be wrong targets; resume with those, or without --save-replay")
