"""The plain Learner: device choice, acting, weights, checkpoints and their failures."""

import io
import os

import numpy as np
import pytest
import torch

from learner.checkpoint import CheckpointError, check_sizes, load_checkpoint, save_checkpoint
from learner.learner import Learner, resolve_device
from learner.config import LearnerConfig
from tests.helpers import act

OBS, ACT = 5, 3
CUDA_ERROR = "--device cuda but no CUDA device is available; use --device auto or cpu"


def make_learner(seed=0, hidden_size=16, device="cpu"):
    return Learner(OBS, ACT, LearnerConfig(hidden_size=hidden_size, device=device), seed=seed)


def make_batch(seed, b=32):
    """A numpy batch as replay hands it out: read-only arrays, bool flags, extra keys."""
    rng = np.random.default_rng(seed)
    batch = {
        "obs": rng.standard_normal((b, OBS), dtype=np.float32),
        "action": rng.uniform(-1, 1, (b, ACT)).astype(np.float32),
        "reward": rng.standard_normal(b).astype(np.float32),
        "next_obs": rng.standard_normal((b, OBS), dtype=np.float32),
        "terminated": rng.random(b) < 0.3,
        "policy_version": np.zeros(b, dtype=np.int64),
    }
    for array in batch.values():
        array.setflags(write=False)
    return batch


def nets(learner):
    s = learner.state
    return {
        "actor": s.actor,
        "critic": s.critic,
        "actor_target": s.actor_target,
        "critic_target": s.critic_target,
    }


def assert_nested_equal(a, b):
    """Bitwise equality of nested dicts/lists of tensors and plain values."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_nested_equal(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_nested_equal(x, y)
    else:
        assert a == b


# --- device ---------------------------------------------------------------------------------


def test_auto_device_follows_cuda_availability():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert Learner(OBS, ACT, LearnerConfig(hidden_size=8)).device.type == expected


def test_cuda_device_is_used_or_refused_in_one_line():
    if torch.cuda.is_available():
        assert make_learner(device="cuda").device.type == "cuda"
    else:
        with pytest.raises(ValueError) as err:
            make_learner(device="cuda")
        assert str(err.value) == CUDA_ERROR


def test_without_a_gpu_auto_is_cpu_and_cuda_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError) as err:
        resolve_device("cuda")
    assert str(err.value) == CUDA_ERROR


# --- acting, updating, publishing -----------------------------------------------------------


def test_act_is_deterministic_bounded_numpy():
    learner = make_learner()
    obs = np.random.default_rng(0).standard_normal((7, OBS)).astype(np.float32) * 100
    action = act(learner, obs)
    assert isinstance(action, np.ndarray) and action.dtype == np.float32
    assert action.shape == (7, ACT)
    assert np.all(np.abs(action) <= 1)
    np.testing.assert_array_equal(act(learner, obs), action)
    assert act(learner, obs[0]).shape == (ACT,)


def test_update_takes_read_only_numpy_and_counts_steps():
    learner = make_learner()
    for i in range(3):
        metrics = learner.update(make_batch(i))
    assert learner.learner_steps == 3
    assert learner.policy_version == 0  # updating does not publish
    assert all(bool(torch.isfinite(v).all()) and not v.requires_grad for v in metrics.values())


def test_kept_metrics_stay_their_own_update_s_with_an_output_reusing_update_fn():
    """A CUDA graph hands back the same output tensors on every call. Whatever keeps an
    update's metrics (the Ray learner keeps each batch's |TD| for priorities) must get that
    update's values, not the last one's: checked on the CPU with a fake update fn that
    reuses its output buffers as the CUDA-graph step does."""
    learner = make_learner()
    out = {"td_abs": torch.zeros(32), "losses/critic_loss": torch.zeros(())}

    def reusing_update(batch, update_actor=True):
        out["td_abs"].copy_(batch["reward"])  # this batch's own values, in the shared buffer
        out["losses/critic_loss"].fill_(float(batch["reward"].sum()))
        return out

    learner.update_fn = reusing_update
    batches = [make_batch(seed) for seed in range(3)]
    kept = [learner.update(batch)["td_abs"] for batch in batches]
    for batch, td in zip(batches, kept):
        np.testing.assert_array_equal(td.numpy(), batch["reward"])
    _, td = learner.update_batches(batches)  # the Ray learner's stacked-sample path
    np.testing.assert_array_equal(td.numpy(), np.concatenate([b["reward"] for b in batches]))
    assert learner.learner_steps == 6


def test_publish_bumps_version_and_ships_a_detached_copy():
    learner = make_learner()
    weights, version = learner.publish_weights()
    assert version == learner.policy_version == 1
    assert learner.publish_weights()[1] == 2
    assert weights.keys() == {"actor"}
    assert weights["actor"].keys() == learner.state.actor.state_dict().keys()
    for key, value in weights["actor"].items():
        assert value.device.type == "cpu" and not value.requires_grad
        value.add_(1.0)  # a worker mutating its copy must not touch the learner
        assert not torch.equal(value, learner.state.actor.state_dict()[key])


def test_publish_with_critic_ships_a_copy_of_the_critic_too():
    learner = make_learner()
    weights, _ = learner.publish_weights(critic=True)
    assert weights.keys() == {"actor", "critic"}
    for key, value in weights["critic"].items():
        assert value.device.type == "cpu"
        value.add_(1.0)
        assert not torch.equal(value, learner.state.critic.state_dict()[key])


# --- checkpoints ----------------------------------------------------------------------------


def test_checkpoint_round_trip_restores_everything(tmp_path):
    path = str(tmp_path / "run" / "ckpt.pt")  # the directory does not exist yet
    a = make_learner(seed=0)
    for i in range(3):
        a.update(make_batch(i))
    a.publish_weights()
    a.publish_weights()
    torch.rand(3)  # move the RNG away from its seeded state
    rng = torch.get_rng_state()
    save_checkpoint(path, a.state_dict())

    b = make_learner(seed=1)  # different weights, fresh optimizers, reseeded RNG
    b.load_state_dict(load_checkpoint(path))
    assert torch.equal(torch.get_rng_state(), rng)
    assert (b.learner_steps, b.policy_version) == (3, 2)
    for name, net in nets(a).items():
        assert_nested_equal(net.state_dict(), nets(b)[name].state_dict())
    for name in ("actor_opt", "critic_opt"):
        opt_a, opt_b = getattr(a.state, name), getattr(b.state, name)
        assert_nested_equal(opt_a.state_dict(), opt_b.state_dict())

    # Adam's moments and step counts came back too: the next update is bitwise identical.
    metrics_a, metrics_b = a.update(make_batch(9)), b.update(make_batch(9))
    assert_nested_equal(metrics_a, metrics_b)
    for name, net in nets(a).items():
        assert_nested_equal(net.state_dict(), nets(b)[name].state_dict())


def test_checkpoint_gets_the_format_header(tmp_path):
    path = str(tmp_path / "ckpt.pt")
    payload = {"x": torch.ones(2)}
    save_checkpoint(path, payload)
    assert "format" not in payload  # the caller's dict is left alone
    loaded = load_checkpoint(path)
    assert loaded["format"] == "drone-ddpg-checkpoint" and loaded["format_version"] == 1


def _good_bytes(tmp_path):
    path = str(tmp_path / "good.pt")
    save_checkpoint(path, make_learner().state_dict())
    with open(path, "rb") as f:
        return f.read()


class NotAllowed:
    """A class weights_only loading refuses to build."""


def _write(path, tmp_path, case):
    if case == "missing":
        return
    if case == "truncated":
        data = _good_bytes(tmp_path)
        path.write_bytes(data[: len(data) // 2])
    elif case == "random":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif case == "corrupt_zip":
        path.write_bytes(b"PK\x03\x04" + np.random.default_rng(1).bytes(4096))
    elif case == "unsafe":
        torch.save({"format": "drone-ddpg-checkpoint", "obj": NotAllowed()}, path)
    elif case == "foreign":
        torch.save({"foo": 1}, path)
    elif case == "other_format":
        torch.save({"format": "someone-else", "format_version": 1}, path)
    elif case == "other_version":
        torch.save({"format": "drone-ddpg-checkpoint", "format_version": 2}, path)


@pytest.mark.parametrize(
    "case, words",
    [
        ("missing", "does not exist"),
        ("truncated", "truncated or corrupt"),
        ("random", "corrupt or not a checkpoint"),
        ("corrupt_zip", "truncated or corrupt"),
        ("unsafe", "objects other than tensors"),
        ("foreign", "not a drone-ddpg checkpoint (no 'format' key)"),
        ("other_format", "not a drone-ddpg checkpoint (format 'someone-else')"),
        ("other_version", "format_version 2"),
    ],
)
def test_bad_checkpoints_raise_one_line_errors(tmp_path, case, words):
    path = tmp_path / "ckpt.pt"
    _write(path, tmp_path, case)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(str(path))
    message = str(err.value)
    assert "\n" not in message and str(path) in message and words in message, message


def test_size_mismatch_names_both_sizes():
    payload = make_learner().state_dict()
    check_sizes(payload, OBS, ACT)  # matching sizes pass
    with pytest.raises(CheckpointError) as err:
        check_sizes(payload, OBS + 4, ACT)
    assert "obs_size 5" in str(err.value) and "obs_size 9" in str(err.value)
    with pytest.raises(CheckpointError, match="action_size 3 .* action_size 1"):
        check_sizes(payload, OBS, 1)
    with pytest.raises(CheckpointError, match="hidden_size 16 .* hidden_size 32"):
        make_learner(hidden_size=32).load_state_dict(payload)


def test_failed_save_keeps_the_old_file_and_no_temp_files(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    save_checkpoint(str(path), {"x": torch.ones(3)})
    before = path.read_bytes()
    real_save = torch.save

    def dies_halfway(obj, f, *args, **kwargs):
        buffer = io.BytesIO()
        real_save(obj, buffer)
        f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(str(path), {"x": torch.zeros(3)})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.pt"]
    assert torch.equal(load_checkpoint(str(path))["x"], torch.ones(3))


def test_the_critic_takes_the_action_at_the_chosen_layer_and_checkpoints_say_which():
    from learner.networks import Critic

    first, second = Critic(OBS, ACT, 16, action_layer=1), Critic(OBS, ACT, 16, action_layer=2)
    assert first.fc1.in_features == OBS + ACT and first.fc2.in_features == 16
    assert second.fc1.in_features == OBS and second.fc2.in_features == 16 + ACT
    obs, action = torch.randn(4, OBS), torch.randn(4, ACT, requires_grad=True)
    first(obs, action).sum().backward()
    assert action.grad is not None and action.grad.abs().sum() > 0
    trained = Learner(OBS, ACT, LearnerConfig(hidden_size=16, critic_action_layer=1))
    with pytest.raises(CheckpointError, match="--critic-action-layer 1"):
        make_learner().load_state_dict(trained.state_dict())


def test_republishing_keeps_the_version():
    learner = Learner(9, 3, LearnerConfig(device="cpu"))
    assert learner.publish_weights()[1] == 1
    weights, version = learner.publish_weights(new=False)  # the same policy, restored
    assert version == learner.policy_version == 1


def test_initialize_from_a_checkpoint_that_does_not_fit_names_initialize_from():
    """--initialize-from with networks of the right sizes but the wrong tensors told the
    user to 'start the run over (--force)', which fails the same way: the fix is another
    checkpoint or no --initialize-from."""
    state = make_learner().state_dict()
    state["actor"] = {}
    with pytest.raises(CheckpointError, match=r"does not fit this learner .*or drop "
                                              r"--initialize-from$"):
        make_learner().initialize_from(state)
    with pytest.raises(CheckpointError, match=r"or start the run over \(--force\)$"):
        make_learner().load_state_dict(state)  # a resume's fix stays
