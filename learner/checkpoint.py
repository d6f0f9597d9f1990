"""Atomic checkpoint files, read back with weights_only=True and one-line errors."""

import pickle
import reprlib
import zipfile

import torch

from learner.files import write_atomic

FORMAT = "drone-ddpg-checkpoint"
FORMAT_VERSION = 1
# torch.save has written zip archives since torch 1.6; anything else is not ours.
_ZIP_MAGIC = b"PK\x03\x04"


class CheckpointError(Exception):
    """A checkpoint that cannot be used; the message is one line naming the fix."""


def save_checkpoint(path: str, payload: dict) -> None:
    """Write `payload` (plus the format header) to `path` atomically (learner/files.py): a
    crash mid-save leaves the previous checkpoint intact.

    The payload may hold only what `torch.load(weights_only=True)` accepts: tensors,
    dicts, lists, tuples, ints, floats, str, bool, None. Convert anything else (numpy RNG
    states, dataclasses) to those types before saving, and back after loading.
    """
    header = {"format": FORMAT, "format_version": FORMAT_VERSION}
    write_atomic(path, lambda f: torch.save({**payload, **header}, f), mode=0o600)


_HOLDS = {"learner": "checkpoint", "replay": "replay (--save-replay)"}


def load_checkpoint(path: str, device="cpu", holds: str | None = None) -> dict:
    """Load a checkpoint written by `save_checkpoint`, tensors mapped onto `device`.

    Always `weights_only=True`: a checkpoint cannot run code. Raises CheckpointError for a
    missing, unreadable, truncated, corrupt or foreign file, another format_version, or
    one without the `holds` entry (a run's replay.pt copied over its latest.pt).
    """
    payload = _checked(_read(path, device), path)
    if holds is not None and holds not in payload:
        raise CheckpointError(f"{path} is a drone-ddpg file without {holds!r} state (another "
                              "of the run's files copied there?); put back the "
                              f"{_HOLDS.get(holds, 'file')} drone-ddpg wrote there")
    if holds is not None and not isinstance(payload[holds], dict):
        raise CheckpointError(f"{path}: its {holds!r} state is of type "
                              f"{type(payload[holds]).__name__}, not a mapping: it is corrupt "
                              "or was edited; use an earlier checkpoint "
                              "(checkpoints/checkpoint-<env steps>.pt)")
    if holds == "learner":
        _check_counters(payload, path)
    return payload


def _number(kind):
    return lambda value: isinstance(value, kind) and not isinstance(value, bool)


# A run's checkpoint: its counters, and what each must be.
_COUNTERS = {"env_steps": _number(int), "train_episodes": _number(int),
             "wall_s": _number((int, float)),
             "phase": lambda value: value in ("train", "test", "done")}
def _episodes(value) -> bool:
    """The last training episodes: [[return, length, success (None: undefined)], ...]."""
    return isinstance(value, list) and all(
        isinstance(e, list) and len(e) == 3 and _number((int, float))(e[0])
        and _number(int)(e[1]) and (e[2] is None or isinstance(e[2], bool)) for e in value)


# Counters that checkpoints of earlier versions lack.
_LATER_COUNTERS = {"test_wall_s": _number((int, float)), "train_recent": _episodes}


def _check_counters(payload: dict, path: str) -> None:
    for key, valid in (*_COUNTERS.items(), *_LATER_COUNTERS.items()):
        value = payload.get(key)
        if not valid(value) and (key in _COUNTERS or key in payload):
            raise CheckpointError(f"{path} holds no valid {key!r} ({reprlib.repr(value)}): it "
                                  "is corrupt or was edited; use an earlier checkpoint "
                                  "(checkpoints/checkpoint-<env steps>.pt) or start the run "
                                  "over (--force)")


def _checked(payload, path: str) -> dict:
    """`payload` when its header is this drone-ddpg's checkpoint format."""
    if not isinstance(payload, dict) or "format" not in payload:
        raise CheckpointError(
            f"{path} is not a drone-ddpg checkpoint (no 'format' key); "
            "pass a checkpoint file written by drone-ddpg"
        )
    if payload["format"] != FORMAT:
        raise CheckpointError(
            f"{path} is not a drone-ddpg checkpoint (format {payload['format']!r}); "
            "pass a checkpoint file written by drone-ddpg"
        )
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format_version {version!r} but this drone-ddpg reads "
            f"version {FORMAT_VERSION}; load it with the drone-ddpg release that wrote it"
        )
    return payload


def _read(path: str, device):
    """torch.load with every failure turned into a one-line CheckpointError."""
    try:
        with open(path, "rb") as f:
            magic = f.read(len(_ZIP_MAGIC))
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist; check the path") from None
    except OSError as exc:
        raise CheckpointError(
            f"cannot read checkpoint {path}: {exc.strerror}; check the path and permissions"
        ) from None
    if magic != _ZIP_MAGIC and path.lower().endswith(".onnx"):
        raise CheckpointError(
            f"{path} is an ONNX policy (the actor alone, for Unity), not a checkpoint; pass "
            "the checkpoint saved with it (checkpoints/checkpoint-<env steps>.pt, or "
            "checkpoints/latest.pt for the run's <Behavior>.onnx)"
        )
    if magic != _ZIP_MAGIC:
        raise CheckpointError(
            f"{path} is corrupt or not a checkpoint (not a torch archive); "
            "pass a checkpoint file written by drone-ddpg"
        )
    _check_crc(path)
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path} holds objects other than tensors and plain containers, so it is corrupt "
            "or not a drone-ddpg checkpoint; pass a checkpoint file written by drone-ddpg"
        ) from None
    except Exception as exc:
        raise CheckpointError(
            f"{path} is truncated or corrupt ({_first_line(exc)}); "
            "use an earlier checkpoint or start a new run"
        ) from None


def _check_crc(path: str) -> None:
    """torch.load reads a tensor's bytes without their checksum: flipped bits loaded as
    wrong weights, and the run went on with them."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise CheckpointError(f"{path} is truncated or corrupt ({_first_line(exc)}); use an "
                              "earlier checkpoint or start a new run") from None
    if bad is not None:
        raise CheckpointError(f"{path} is corrupt ({bad} fails its checksum); use an earlier "
                              "checkpoint (checkpoints/checkpoint-<env steps>.pt) or start a "
                              "new run")


def _first_line(exc: Exception, limit: int = 100) -> str:
    """torch's messages run to paragraphs; keep the first line, cut to `limit` chars."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


# The way out of a mismatch other than matching the checkpoint: for a resumed or tested
# run, a fresh start; for --initialize-from, none (INITIALIZING).
RESUMING = "start the run over (--force)"
INITIALIZING = "drop --initialize-from"


def check_sizes(payload: dict, obs_size: int | None, action_size: int | None,
                hidden_size: int | None = None, otherwise: str = RESUMING) -> None:
    """Raise CheckpointError when the env's sizes (or the configured hidden size) differ
    from those stored in `payload` (a Learner.state_dict(), as saved); None: not checked."""
    expected = {key: want for key, want in (("obs_size", obs_size), ("action_size", action_size),
                                            ("hidden_size", hidden_size)) if want is not None}
    for key, want in expected.items():
        have = payload.get(key)
        if have != want:
            match = (f"give --hidden-size {have}" if key == "hidden_size"
                     else "use the env it was trained on")
            raise CheckpointError(f"checkpoint has {key} {have!r} but this run has {key} "
                                  f"{want}; {match}, or {otherwise}")


def check_compatible(payload: dict, obs_size: int, action_size: int, cfg,
                     otherwise: str = RESUMING) -> None:
    """Raise CheckpointError (one line) unless the checkpoint's learner fits this run: the
    env's sizes, the hidden size, --normalize, --twin-critics, and finite weights. The one
    check of a load."""
    check_sizes(payload, obs_size, action_size, otherwise=otherwise)
    check_options(payload, cfg, otherwise)


def check_options(payload: dict, cfg, otherwise: str = RESUMING) -> None:
    """check_compatible without the env's sizes: what a run can check before its env
    starts (--initialize-from's checkpoint)."""
    check_sizes(payload, None, None, cfg.hidden_size, otherwise)
    check_finite(payload, otherwise)
    for flag, saved, wanted in (
            ("--normalize", payload.get("normalizer") is not None, cfg.normalize),
            ("--twin-critics", bool(payload.get("twin_critics", False)), cfg.twin_critics)):
        if saved != wanted:
            given = f"{'with' if saved else 'without'} {flag}"
            raise CheckpointError(f"the checkpoint was trained {given}; run it {given}, or "
                                  f"{otherwise}")
    layer = payload.get("critic_action_layer", 2)  # checkpoints from before the option: 2
    if layer != cfg.critic_action_layer:
        raise CheckpointError(f"the checkpoint's critic takes the action at layer {layer}; "
                              f"give --critic-action-layer {layer}, or {otherwise}")


def check_finite(payload: dict, otherwise: str = RESUMING) -> None:
    """Raise CheckpointError when the checkpoint's networks hold NaN or Inf (one saved
    before the learner refused to save diverged weights): nothing could resume from it."""
    bad = [name for name in ("actor", "critic", "actor_target", "critic_target",
                             "actor_opt", "critic_opt")
           if not all(torch.isfinite(t).all() for t in _tensors(payload.get(name, {})))]
    if bad:
        raise CheckpointError(f"the checkpoint holds non-finite {'/'.join(bad)} weights (its "
                              "run diverged): use one of its earlier checkpoints "
                              f"(checkpoints/checkpoint-<env steps>.pt), or {otherwise} with "
                              "lower --actor-lr/--critic-lr")


def _tensors(tree) -> list:
    """Every tensor in nested dicts, lists and tuples (an optimizer's state_dict)."""
    found: list = []
    tree_map(lambda leaf: found.append(leaf) if torch.is_tensor(leaf) else None, tree)
    return found


def tree_map(fn, tree):
    """`fn` applied to every leaf of nested dicts, lists and tuples (e.g. to move or
    convert every tensor of a state dict)."""
    if isinstance(tree, dict):
        return {k: tree_map(fn, v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(tree_map(fn, v) for v in tree)
    return fn(tree)
