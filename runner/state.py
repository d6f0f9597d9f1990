"""Run state that is not the learner's: replay contents, noise and RNG, made checkpointable.

Checkpoints load with `weights_only=True`, which accepts tensors and plain containers but
not numpy arrays; these helpers convert both ways.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from learner.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, tree_map


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


def replay_path(checkpoint_path: str) -> str:
    return os.path.join(os.path.dirname(checkpoint_path), "replay.pt")


def save_replay(checkpoint_path: str, state: dict) -> None:
    """Write the replay next to the checkpoint, atomically (before the checkpoint itself,
    so a checkpoint never points at an older replay than its own)."""
    save_checkpoint(replay_path(checkpoint_path), {"replay": to_torch(state)})


def load_replay(checkpoint_path: str) -> dict | None:
    """The saved replay state, or None (with a warning) when there is none."""
    path = replay_path(checkpoint_path)
    if not os.path.exists(path):
        print(f"warning: no saved replay at {path}: the replay restarts empty", flush=True)
        return None
    try:
        return to_numpy(load_checkpoint(path, holds="replay")["replay"])
    except CheckpointError as err:  # the checkpoint itself may be fine: say how to keep it
        raise CheckpointError(f"{str(err).split(';')[0]}; --resume --no-save-replay continues "
                              "from the checkpoint with an empty replay") from None
