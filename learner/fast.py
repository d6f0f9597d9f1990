"""The one opt-in place for learner speed: `--compile` and `--cudagraphs` around ddpg.update.

Layout as in LeanRL: the plain step first (ddpg.update, the reference, untouched), then the
speed-ups applied on top of it in one block (`make_update_fn`), each behind its own flag:

- compile: `torch.compile(step, dynamic=False)` of the same step. Dynamo graph-breaks at
  `zero_grad`, `backward` and the fused Adam kernel, so the forward/loss/target math and the
  soft update are compiled and the autograd and optimizer calls run as before.
- cudagraphs (CUDA only): the whole update (critic target, both losses, both backward passes,
  both optimizer steps, both soft updates) captured once into a CUDA graph and replayed per
  call, eager or compiled inside. The optimizers are switched to `capturable=True`.

Constraints of the CUDA-graph step (`CudaGraphStep`):
- static shapes: the first batch fixes the batch size and the key set; a batch that differs
  raises ValueError. Sample straight into `fn.static_batch` to skip the input copy.
- the metrics it returns are the graph's static output tensors, overwritten by the next call
  (`Learner.update_tensors` copies them for every caller).
- the state's tensors must stay the same objects: `Module.load_state_dict` copies in place
  (fine), `Optimizer.load_state_dict` replaces the moments and the param groups (call
  `make_capturable(state)` and `fn.reset()` after it; the next call captures again).
- learning rates and tau are baked into the graph (no schedules); no host syncs inside.
- capture runs a few warm-up updates on the first batch, then restores every parameter,
  target and optimizer moment, so the first replayed call is the first real update.

Caveats of compile: the first calls compile (tens of seconds on a small CPU; later processes
reuse inductor's cache), the second call recompiles once (the optimizers' lazy state), and a
new batch size or a new `DDPGState` recompiles (Dynamo guards on the modules it closes over;
after `torch._dynamo.config.recompile_limit` recompiles it falls back to eager with a warning).
"""

from __future__ import annotations

import warnings
from typing import Callable

import torch

from learner import ddpg

Batch = dict[str, torch.Tensor]
# (batch, update_actor) -> metrics; update_actor=False: TD3's critic-only steps.
UpdateFn = Callable[..., dict[str, torch.Tensor]]

# Bench/CLI names -> (compile, cudagraphs).
MODES = {
    "eager": (False, False),
    "compile": (True, False),
    "cudagraphs": (False, True),
    "compile+cudagraphs": (True, True),
}
CUDA_GRAPHS_ERROR = "--cudagraphs needs a CUDA device"
# Warm-up updates before capture: the optimizers' lazy state, cuBLAS handles and (compiled)
# the recompile on the second call all happen outside the graph.
WARMUP_UPDATES = 3


def plain_step(state: ddpg.DDPGState) -> UpdateFn:
    """ddpg.update as `(batch, update_actor) -> metrics`, updating `state` in place (its
    tensors never move)."""

    def step(batch: Batch, update_actor: bool = True) -> dict[str, torch.Tensor]:
        _, metrics = ddpg.update(state, batch, update_actor)
        return metrics

    return step


def make_update_fn(
    state: ddpg.DDPGState, *, compile: bool = False, cudagraphs: bool = False
) -> UpdateFn:
    """The update the learner calls: plain, compiled, captured into a CUDA graph, or both.

    Raises ValueError (one line) for cudagraphs on a state that is not on a CUDA device.
    """
    step = plain_step(state)
    # ---- opt-in speed: everything below only wraps the plain step ----------------------
    if cudagraphs:
        if state_device(state).type != "cuda":
            raise ValueError(CUDA_GRAPHS_ERROR)
        make_capturable(state)  # before compiling, so the compiled step sees it too
    if compile:
        step = torch.compile(step, dynamic=False)
    if cudagraphs:
        step = CudaGraphStep(step, state)
    return step


def state_device(state: ddpg.DDPGState) -> torch.device:
    """The device the networks live on."""
    return next(state.actor.parameters()).device


def make_capturable(state: ddpg.DDPGState) -> None:
    """Switch both optimizers to the capturable Adam path (no host reads of `step`)."""
    for opt in (state.actor_opt, state.critic_opt):
        for group in opt.param_groups:
            group["capturable"] = True


def state_tensors(state: ddpg.DDPGState) -> list[torch.Tensor]:
    """Every tensor an update writes, optimizer moments included (once they exist)."""
    nets = (state.actor, state.critic, state.actor_target, state.critic_target)
    tensors = [p for net in nets for p in net.parameters()]
    for opt in (state.actor_opt, state.critic_opt):
        for moments in opt.state.values():
            tensors += [v for v in moments.values() if isinstance(v, torch.Tensor)]
    return tensors


class CudaGraphStep:
    """`step` captured into a CUDA graph on its first call and replayed on every call: one
    graph per value of `update_actor` (TD3's critic-only steps get their own), both reading
    the same static batch.

    See the module docstring for the constraints (static shapes, static outputs).
    """

    def __init__(self, step: UpdateFn, state: ddpg.DDPGState):
        self.step = step
        self.state = state
        self.graphs: dict[bool, torch.cuda.CUDAGraph] = {}
        self.static_batch: Batch = {}
        self.static_metrics: dict[bool, dict[str, torch.Tensor]] = {}

    def __call__(self, batch: Batch, update_actor: bool = True) -> dict[str, torch.Tensor]:
        key = bool(update_actor)
        if key not in self.graphs:
            self._capture(batch, key)
        self._load(batch)
        self.graphs[key].replay()
        return self.static_metrics[key]

    def reset(self) -> None:
        """Drop the graphs (e.g. after Optimizer.load_state_dict); the next call captures."""
        self.graphs, self.static_batch, self.static_metrics = {}, {}, {}

    def _load(self, batch: Batch) -> None:
        """Copy `batch` into the static inputs (a no-op for tensors that already are them)."""
        static = self.static_batch
        if batch.keys() != static.keys() or any(
            v.shape != static[k].shape for k, v in batch.items()
        ):
            raise ValueError("a CUDA-graph update takes the batch size and keys it captured")
        for key, value in batch.items():
            if value is not static[key]:
                static[key].copy_(value, non_blocking=True)

    def _capture(self, batch: Batch, update_actor: bool) -> None:
        """Warm up on a side stream, capture one update, then undo the warm-up updates."""
        if not self.static_batch:
            self.static_batch = {k: v.detach().clone() for k, v in batch.items()}
        self._load(batch)
        before = [(t, t.detach().clone()) for t in state_tensors(self.state)]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*capturable=True.*")
            for _ in range(WARMUP_UPDATES):
                self.step(self.static_batch, update_actor)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        # thread_local: the Ray learner's other threads may touch CUDA while we capture.
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            self.static_metrics[update_actor] = self.step(self.static_batch, update_actor)
        self._restore(before)
        self.graphs[update_actor] = graph

    def _restore(self, before: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Put back the pre-warm-up values; moments created by the warm-up go back to zero
        (what Adam's lazy init would have made), so no update is lost or doubled. Matched by
        tensor, not position: a later capture may create moments that sort before others."""
        known = {id(t) for t, _ in before}
        with torch.no_grad():
            torch._foreach_copy_([t for t, _ in before], [v for _, v in before])
            for tensor in state_tensors(self.state):
                if id(tensor) not in known:
                    tensor.zero_()
