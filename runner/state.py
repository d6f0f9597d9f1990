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
    """A contiguous, writable array: arrays that came through Ray are read-only views."""
    x = np.ascontiguousarray(x)
    return x if x.flags.writeable else x.copy()


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


def save_run(checkpoint_path: str, payload: dict, replay: dict | None = None) -> None:
    """The checkpoint and, written first, the replay next to it (when given), so that a
    checkpoint never points at an older replay than its own; both atomic, and tied by one
    save id that `load_replay` checks."""
    save_id = uuid.uuid4().hex
    if replay is not None:
        save_replay(checkpoint_path, replay, save_id)
    save_checkpoint(checkpoint_path, {**payload, "save_id": save_id})


def save_replay(checkpoint_path: str, state: dict, save_id: str) -> None:
    """Write the replay next to the checkpoint, atomically (see `save_run`)."""
    save_checkpoint(replay_path(checkpoint_path), {"replay": to_torch(state),
                                                   "save_id": save_id})


def load_replay(checkpoint_path: str, save_id: str | None = None) -> dict | None:
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
    return to_numpy(payload["replay"])
