"""The ONNX actor: ML-Agents' input/output interface, same actions as torch, atomic writes."""

import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from learner.export import export_onnx, onnx_filename
from learner.networks import Actor

OBS, ACT = 9, 3
FLOAT = "tensor(float)"


def make_actor(seed=0):
    torch.manual_seed(seed)
    return Actor(OBS, ACT, 128)


def session(path):
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def run(sess, obs):
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, {"obs_0": obs})))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One export shared by the interface tests (the export itself is tested separately)."""
    actor = make_actor()
    path = str(tmp_path_factory.mktemp("onnx") / "My Behavior.onnx")
    assert export_onnx(actor, [OBS], ACT, path) == path
    return actor, path


def test_inputs_are_one_float_obs_with_dynamic_batch(exported):
    _, path = exported
    (inp,) = session(path).get_inputs()
    assert inp.name == "obs_0" and inp.type == FLOAT
    assert isinstance(inp.shape[0], str) and inp.shape[1] == OBS  # symbolic batch dim


def test_outputs_names_types_and_shapes(exported):
    _, path = exported
    outs = {o.name: o for o in session(path).get_outputs()}
    assert set(outs) == {
        "version_number",
        "memory_size",
        "continuous_actions",
        "continuous_action_output_shape",
        "deterministic_continuous_actions",
    }
    assert all(o.type == FLOAT for o in outs.values())
    for name in ("version_number", "memory_size", "continuous_action_output_shape"):
        assert outs[name].shape == [1]
    for name in ("continuous_actions", "deterministic_continuous_actions"):
        assert isinstance(outs[name].shape[0], str) and outs[name].shape[1] == ACT


@pytest.mark.parametrize("batch", [1, 7])
def test_constants_and_actions_match_torch(exported, batch):
    actor, path = exported
    obs = np.random.default_rng(batch).standard_normal((batch, OBS)).astype(np.float32)
    out = run(session(path), obs)
    assert all(v.dtype == np.float32 for v in out.values())
    np.testing.assert_array_equal(out["version_number"], [3.0])
    np.testing.assert_array_equal(out["memory_size"], [0.0])
    np.testing.assert_array_equal(out["continuous_action_output_shape"], [float(ACT)])
    with torch.no_grad():
        expected = actor(torch.from_numpy(obs)).numpy()
    for name in ("continuous_actions", "deterministic_continuous_actions"):
        assert out[name].shape == (batch, ACT)
        np.testing.assert_allclose(out[name], expected, atol=1e-5, rtol=0)
        assert np.all(np.abs(out[name]) <= 1.0)


def test_checker_passes_and_opset_is_low(exported):
    _, path = exported
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    (opset,) = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    assert 9 <= opset <= 15


@pytest.mark.parametrize("opset", [9, 15])
def test_requested_opset_is_written(tmp_path, opset):
    path = export_onnx(make_actor(), [OBS], ACT, str(tmp_path / "a.onnx"), opset=opset)
    model = onnx.load(path)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [opset]


def test_out_of_range_opset_is_refused(tmp_path):
    with pytest.raises(ValueError, match="opset"):
        export_onnx(make_actor(), [OBS], ACT, str(tmp_path / "a.onnx"), opset=18)
    assert os.listdir(tmp_path) == []


def test_several_observations_are_concatenated_in_the_graph(tmp_path):
    actor = make_actor()
    path = export_onnx(actor, [4, 5], ACT, str(tmp_path / "a.onnx"))
    sess = session(path)
    assert [(i.name, i.shape[1]) for i in sess.get_inputs()] == [("obs_0", 4), ("obs_1", 5)]
    obs = np.random.default_rng(0).standard_normal((7, OBS)).astype(np.float32)
    out = sess.run(["continuous_actions"], {"obs_0": obs[:, :4], "obs_1": obs[:, 4:]})[0]
    with torch.no_grad():
        np.testing.assert_allclose(out, actor(torch.from_numpy(obs)).numpy(), atol=1e-5, rtol=0)


def test_mismatched_sizes_fail_before_writing(tmp_path):
    with pytest.raises(ValueError, match="size 8"):
        export_onnx(make_actor(), [8], ACT, str(tmp_path / "a.onnx"))
    with pytest.raises(ValueError, match=r"expected \(1, 2\)"):
        export_onnx(make_actor(), [OBS], 2, str(tmp_path / "a.onnx"))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("train_mode", [True, False])
def test_live_actor_is_untouched(tmp_path, train_mode):
    actor = make_actor().train(train_mode)
    before = {k: v.clone() for k, v in actor.state_dict().items()}
    params = [id(p) for p in actor.parameters()]
    export_onnx(actor, [OBS], ACT, str(tmp_path / "a.onnx"))
    assert actor.training is train_mode
    assert all(m.training is train_mode for m in actor.modules())
    assert [id(p) for p in actor.parameters()] == params
    assert all(p.requires_grad for p in actor.parameters())
    after = actor.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_write_is_atomic_and_replaces_existing_file(tmp_path):
    path = tmp_path / "My Behavior.onnx"
    path.write_bytes(b"stale model")
    export_onnx(make_actor(seed=1), [OBS], ACT, str(path))
    assert os.listdir(tmp_path) == ["My Behavior.onnx"]  # no temp file left behind
    first = run(session(str(path)), np.ones((1, OBS), np.float32))["continuous_actions"]
    export_onnx(make_actor(seed=2), [OBS], ACT, str(path))
    assert os.listdir(tmp_path) == ["My Behavior.onnx"]
    second = run(session(str(path)), np.ones((1, OBS), np.float32))["continuous_actions"]
    assert not np.allclose(first, second)  # the second export really replaced the first
    assert os.stat(path).st_mode & 0o644 == 0o644


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "a.onnx"
    path.write_bytes(b"previous model")

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        export_onnx(make_actor(), [OBS], ACT, str(path))
    assert path.read_bytes() == b"previous model"
    assert os.listdir(tmp_path) == ["a.onnx"]  # the temp file was cleaned up


def test_export_creates_missing_directory(tmp_path):
    path = tmp_path / "results" / "run-1" / "a.onnx"
    assert export_onnx(make_actor(), [OBS], ACT, str(path)) == str(path)
    assert path.is_file()


@pytest.mark.parametrize(
    ("behavior", "filename"),
    [
        ("My Behavior?team=0", "My Behavior.onnx"),
        ("My Behavior", "My Behavior.onnx"),
        ("Drone?team=12", "Drone.onnx"),
        ("a/b\\c:d*e\"f<g>h|i?team=0", "a_b_c_d_e_f_g_h_i.onnx"),
        ("../escape?team=1", ".._escape.onnx"),
    ],
)
def test_onnx_filename(behavior, filename):
    assert onnx_filename(behavior) == filename
    assert os.sep not in onnx_filename(behavior)


def test_onnx_filename_refuses_empty_name():
    with pytest.raises(ValueError):
        onnx_filename("?team=0")


def test_the_normalizer_is_inside_the_graph(tmp_path):
    """--normalize: Unity feeds raw observations; the exported graph normalizes them and
    gives torch's actions within 1e-5."""
    from learner.normalizer import NormalizedActor, ObsNormalizer, ObsStats

    rng = np.random.default_rng(0)
    raw = rng.normal(50.0, [1.0, 5.0, 20.0, 0.1, 3.0, 8.0, 1.0, 2.0, 40.0], (500, OBS))
    stats = ObsStats(OBS)
    stats.add(raw)
    normalizer = ObsNormalizer(OBS)
    normalizer.merge(stats.take())
    policy = NormalizedActor(normalizer, make_actor(3))
    path = export_onnx(policy, [OBS], ACT, str(tmp_path / "norm.onnx"))
    obs = raw[:64].astype(np.float32)
    with torch.no_grad():
        expected = policy(torch.from_numpy(obs)).numpy()
    got = run(session(path), obs)
    np.testing.assert_allclose(got["continuous_actions"], expected, atol=1e-5)
    np.testing.assert_allclose(got["deterministic_continuous_actions"], expected, atol=1e-5)
    # Raw inputs matter: the same actor without its normalizer acts differently.
    with torch.no_grad():
        assert not np.allclose(make_actor(3)(torch.from_numpy(obs)).numpy(), expected, atol=1e-3)
