"""learner.fast: the opt-in compiled and CUDA-graph updates give the plain update's results.

Tolerance: after N updates every parameter (online, target) matches the eager run within
atol 1e-5 / rtol 1e-4 and every step's metrics within the same; compiled kernels may fuse
and order float reductions differently, so bit equality is not expected.
"""

import pytest
import torch

from learner import ddpg
from learner.fast import (
    CUDA_GRAPHS_ERROR,
    CudaGraphStep,
    make_update_fn,
    plain_step,
    state_tensors,
)
from learner.config import LearnerConfig

# Raised from inside torch while Dynamo traces; nothing this project calls.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated")

OBS, ACT, BATCH, STEPS = 9, 3, 32, 6
ATOL, RTOL = 1e-5, 1e-4
NO_CUDA = "no CUDA device: the CUDA-graph path is tested on GPU machines only"


def make_state(device="cpu") -> ddpg.DDPGState:
    torch.manual_seed(0)
    cfg = LearnerConfig(hidden_size=16, actor_lr=1e-2, critic_lr=1e-2, tau=0.1)
    return ddpg.make_state(OBS, ACT, cfg, device)


def batches(device="cpu", n=STEPS) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    out = []
    for _ in range(n):
        batch = {
            "obs": torch.randn(BATCH, OBS, generator=g),
            "action": torch.rand(BATCH, ACT, generator=g) * 2 - 1,
            "reward": torch.randn(BATCH, generator=g),
            "next_obs": torch.randn(BATCH, OBS, generator=g),
            "terminated": (torch.rand(BATCH, generator=g) < 0.2).float(),
        }
        out.append({k: v.to(device) for k, v in batch.items()})
    return out


def run(state, fn, data) -> list[dict]:
    """Metrics of each update as floats or lists (td_abs is (B,)), read right away: a
    CUDA-graph step's outputs are overwritten by its next call."""
    return [{k: v.cpu().tolist() for k, v in fn(batch).items()} for batch in data]


def params(state) -> list[torch.Tensor]:
    nets = (state.actor, state.critic, state.actor_target, state.critic_target)
    return [p.detach().cpu() for net in nets for p in net.parameters()]


def assert_same_run(state_a, metrics_a, state_b, metrics_b):
    for a, b in zip(params(state_a), params(state_b), strict=True):
        torch.testing.assert_close(a, b, atol=ATOL, rtol=RTOL)
    assert [m.keys() for m in metrics_a] == [m.keys() for m in metrics_b]
    for a, b in zip(metrics_a, metrics_b, strict=True):
        for key in a:
            assert a[key] == pytest.approx(b[key], abs=ATOL, rel=RTOL), key


def test_eager_fn_is_ddpg_update_bit_for_bit():
    data = batches()
    ref = make_state()
    ref_metrics = run(ref, lambda b: ddpg.update(ref, b)[1], data)
    state = make_state()
    metrics = run(state, make_update_fn(state), data)
    assert metrics == ref_metrics
    assert all(torch.equal(a, b) for a, b in zip(params(ref), params(state)))


def test_compiled_update_matches_eager_on_cpu():
    data = batches()
    eager = make_state()
    eager_metrics = run(eager, make_update_fn(eager), data)
    compiled = make_state()
    graphs_before = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    compiled_metrics = run(compiled, make_update_fn(compiled, compile=True), data)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > graphs_before  # compiled
    assert_same_run(eager, eager_metrics, compiled, compiled_metrics)
    # ... and moved the parameters at all (a no-op update would also "match" nothing).
    assert any(not torch.equal(a, b) for a, b in zip(params(make_state()), params(compiled)))


def test_capture_warmup_is_undone_exactly():
    """What CudaGraphStep does around its capture, on the CPU: warm-up updates, then every
    parameter, target and Adam moment restored, so the next update is the first one."""
    data = batches()
    eager = make_state()
    eager_metrics = run(eager, make_update_fn(eager), data)
    state = make_state()
    step = CudaGraphStep(plain_step(state), state)  # only _restore is used: no CUDA here
    before = [(t, t.detach().clone()) for t in state_tensors(state)]
    run(state, step.step, data[:3])
    step._restore(before)
    metrics = run(state, step.step, data)
    assert metrics == eager_metrics
    assert all(torch.equal(a, b) for a, b in zip(params(eager), params(state)))


def test_a_second_capture_restores_moments_by_tensor_not_position():
    """TD3 captures its critic-only graph first: the actor's Adam moments appear only at
    the second capture's warm-up, ahead of the critic's in state_tensors' order."""
    data = batches()
    eager = make_state()
    eager_fn = make_update_fn(eager)
    eager_metrics = [eager_fn(b, False) for b in data[:2]] + [eager_fn(b) for b in data[2:]]
    state = make_state()
    step = CudaGraphStep(plain_step(state), state)
    for update_actor in (False, True):  # the two warm-ups of the two captures
        before = [(t, t.detach().clone()) for t in state_tensors(state)]
        for batch in data[:3]:
            step.step(batch, update_actor)
        step._restore(before)
    metrics = [step.step(b, False) for b in data[:2]] + [step.step(b) for b in data[2:]]
    for a, b in zip(metrics, eager_metrics, strict=True):
        assert {k: v.tolist() for k, v in a.items()} == {k: v.tolist() for k, v in b.items()}
    assert all(torch.equal(a, b) for a, b in zip(params(eager), params(state)))


def test_cudagraphs_without_cuda_is_refused_in_one_line():
    with pytest.raises(ValueError) as err:
        make_update_fn(make_state("cpu"), cudagraphs=True)
    assert str(err.value) == CUDA_GRAPHS_ERROR


@pytest.mark.parametrize("compile", [False, True], ids=["cudagraphs", "compile+cudagraphs"])
def test_cuda_graph_update_matches_eager_on_gpu(compile):
    if not torch.cuda.is_available():
        pytest.skip(NO_CUDA)
    data = batches("cuda")
    eager = make_state("cuda")
    eager_metrics = run(eager, make_update_fn(eager), data)
    graphed = make_state("cuda")
    fn = make_update_fn(graphed, compile=compile, cudagraphs=True)
    # The capture's warm-up updates are undone: the first replay is the first update.
    graphed_metrics = run(graphed, fn, data)
    assert_same_run(eager, eager_metrics, graphed, graphed_metrics)
    with pytest.raises(ValueError, match="batch size"):
        fn({k: v[:-1] for k, v in data[0].items()})


def test_td3_cuda_graphs_match_eager_on_gpu():
    """Twin critics and delayed updates (one graph per kind of step) on the GPU; smoothing
    noise is left out, since capture's warm-up draws from the RNG too."""
    if not torch.cuda.is_available():
        pytest.skip(NO_CUDA)
    cfg = LearnerConfig(hidden_size=16, actor_lr=1e-2, critic_lr=1e-2, tau=0.1,
                        twin_critics=True)
    data = batches("cuda")
    states = []
    for cudagraphs in (False, True):
        torch.manual_seed(0)
        state = ddpg.make_state(OBS, ACT, cfg, "cuda")
        fn = make_update_fn(state, cudagraphs=cudagraphs)
        metrics = [{k: v.cpu().tolist() for k, v in fn(b, i % 2 == 1).items()}
                   for i, b in enumerate(data)]
        states.append((state, metrics))
    assert_same_run(*states[0], *states[1])


def test_cuda_graph_update_takes_its_static_batch_without_a_copy():
    if not torch.cuda.is_available():
        pytest.skip(NO_CUDA)
    data = batches("cuda", n=2)
    eager = make_state("cuda")
    eager_metrics = run(eager, make_update_fn(eager), data)
    graphed = make_state("cuda")
    fn = make_update_fn(graphed, cudagraphs=True)
    metrics = run(graphed, fn, data[:1])
    for key, value in data[1].items():  # as DeviceReplay.sample(out=fn.static_batch) would
        fn.static_batch[key].copy_(value)
    metrics += run(graphed, fn, [fn.static_batch])
    assert_same_run(eager, eager_metrics, graphed, metrics)
