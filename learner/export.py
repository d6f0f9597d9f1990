"""The actor as an ONNX model Unity's ML-Agents inference loads: <run>/<Behavior>.onnx.

In Unity: Behavior Parameters > Model = <Behavior>.onnx (the same Behavior Name, the same
observation sizes and continuous actions), then pick the Inference Device. With --normalize
the observation normalizer sits in front of the actor inside the graph.
"""

import copy
import io
import os
import re
import warnings
from collections.abc import Sequence

import onnx
import torch
from torch import nn

from learner.files import write_atomic

# The ML-Agents "model API" version whose outputs are the ones written below
# (continuous_actions, continuous_action_output_shape, deterministic_continuous_actions).
MODEL_API_VERSION = 3.0
# Unity's inference backends (Barracuda / Sentis) read opsets 9..15; mlagents-learn uses 9.
MIN_OPSET, MAX_OPSET = 9, 15
OUTPUT_NAMES = (
    "version_number",
    "memory_size",
    "continuous_actions",
    "continuous_action_output_shape",
    "deterministic_continuous_actions",
)
# Characters that are unsafe in file names on some platform, plus control characters.
_UNSAFE = re.compile(r'[/\\:*?"<>|\x00-\x1f]')


def onnx_filename(behavior: str) -> str:
    """File name for a behavior's model: "My Behavior?team=0" -> "My Behavior.onnx".

    Unity matches the model to the agent by the Behavior Name, which on the wire carries a
    "?team=N" suffix that the Behavior Parameters field does not show, so it is dropped.
    """
    name = behavior.partition("?")[0]
    if not name:
        raise ValueError(f"behavior name {behavior!r} is empty before its '?team=' suffix")
    return _UNSAFE.sub("_", name) + ".onnx"


class _UnityPolicy(nn.Module):
    """The actor wrapped in the input and output names ML-Agents' model loader looks up."""

    def __init__(self, actor: nn.Module, num_obs: int, action_size: int):
        super().__init__()
        self.actor = actor
        self.num_obs = num_obs
        # Buffers rather than tensors built in forward(): the tracer stores them as
        # initializers without a TracerWarning, as mlagents-learn's own exporter does.
        self.register_buffer("version_number", torch.tensor([MODEL_API_VERSION]))
        self.register_buffer("memory_size", torch.tensor([0.0]))  # no recurrent memory
        self.register_buffer("action_shape", torch.tensor([float(action_size)]))

    def forward(self, *obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """obs_0..obs_{k-1} -> the five outputs of OUTPUT_NAMES, in that order."""
        # Unity feeds each vector observation separately; our actor was trained on their
        # concatenation in the same order, so the join happens inside the graph.
        x = obs[0] if self.num_obs == 1 else torch.cat(obs, dim=-1)
        action = self.actor(x)
        # DDPG's policy is deterministic: sampling and deterministic outputs coincide.
        return self.version_number, self.memory_size, action, self.action_shape, action


def export_onnx(
    actor: nn.Module,
    obs_sizes: Sequence[int] | int,
    action_size: int,
    path: str,
    opset: int = MIN_OPSET,
) -> str:
    """Write `actor` as an ML-Agents-loadable ONNX model at `path` atomically; return path.

    `obs_sizes` lists the behavior's vector observation sizes in order (one input obs_i
    each; a plain int means a single observation). The actor must map their
    concatenation (B, sum(obs_sizes)) to tanh actions (B, action_size). The live actor is
    never touched: a CPU float32 copy in eval mode is exported, so this may be called
    between updates from the thread that trains it.
    """
    sizes = [obs_sizes] if isinstance(obs_sizes, int) else [int(s) for s in obs_sizes]
    if not sizes or any(s <= 0 for s in sizes):
        raise ValueError(
            f"obs_sizes must be positive, one size per observation; got {obs_sizes!r}")
    if action_size <= 0:
        raise ValueError(f"action_size must be positive; got {action_size!r}")
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"opset {opset} is outside {MIN_OPSET}..{MAX_OPSET}, which Unity reads")
    frozen = copy.deepcopy(actor).cpu().float().eval()
    frozen.requires_grad_(False)
    _check_action_shape(frozen, sum(sizes), action_size)
    data = _to_onnx_bytes(_UnityPolicy(frozen, len(sizes), action_size), sizes, opset)
    write_atomic(path, data)  # Unity may read the model while training goes on
    return path


def _check_action_shape(actor: nn.Module, obs_size: int, action_size: int) -> None:
    """Fail with a one-line message now, rather than in Unity, on mismatched sizes."""
    try:
        with torch.no_grad():
            out = actor(torch.zeros(1, obs_size))
    except RuntimeError as e:
        raise ValueError(f"actor does not accept observations of size {obs_size}: {e}") from e
    if tuple(out.shape) != (1, action_size):
        raise ValueError(
            f"actor maps (1, {obs_size}) to {tuple(out.shape)}, expected (1, {action_size})"
        )


def _to_onnx_bytes(policy: nn.Module, obs_sizes: list[int], opset: int) -> bytes:
    """Trace `policy` with the TorchScript exporter and return the checked model bytes.

    The TorchScript exporter (dynamo=False) writes opset 9 directly; the dynamo exporter
    targets opset 18 and would need a lossy down-conversion plus onnxscript.
    """
    input_names = [f"obs_{i}" for i in range(len(obs_sizes))]
    batched = input_names + ["continuous_actions", "deterministic_continuous_actions"]
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # The exporter's deprecation notices are expected: the legacy path is chosen on
        # purpose (above) and torch is pinned, so they would only be noise in the logs.
        for notice in ("You are using the legacy TorchScript", "The feature will be removed"):
            warnings.filterwarnings("ignore", notice, DeprecationWarning)
        torch.onnx.export(
            policy,
            tuple(torch.zeros(1, s) for s in obs_sizes),
            buf,
            dynamo=False,
            opset_version=opset,
            input_names=input_names,
            output_names=list(OUTPUT_NAMES),
            dynamic_axes={name: {0: "batch"} for name in batched},
        )
    data = buf.getvalue()
    # Checked before anything reaches disk, so a bad export never replaces a good file.
    onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    return data


def export_policy(run_dir: str, behavior: str, obs_sizes, action_size: int,
                  hidden_size: int, actor_weights: dict, normalizer: dict | None = None) -> str:
    """Write a checkpoint's actor as <run_dir>/<Behavior>.onnx for Unity's inference;
    returns the path.
    With --normalize the normalizer goes in front of it, inside the graph: Unity feeds raw
    observations."""
    from learner.networks import Actor
    from learner.normalizer import NormalizedActor, ObsNormalizer

    actor = Actor(sum(obs_sizes), action_size, hidden_size)
    actor.load_state_dict(actor_weights)
    if normalizer is not None:
        norm = ObsNormalizer(sum(obs_sizes))
        norm.load_state_dict(normalizer)
        actor = NormalizedActor(norm, actor)
    return export_onnx(actor, list(obs_sizes), action_size,
                       os.path.join(run_dir, onnx_filename(behavior)))
