"""--initialize-from: a new run starts from another run's networks, with fresh optimizers
and counters (mlagents-learn's flag of that name)."""

import torch

NETWORKS = ("actor", "critic", "actor_target", "critic_target")
SMALL = ["--mode", "local", "--num-workers", "1", "--base-port", "5420", "--batch-size", "32",
         "--learning-starts", "200", "--max-step", "60"]


def saved(run_dir) -> dict:
    return torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=True)


def assert_same_networks(a: dict, b: dict) -> None:
    for name in NETWORKS:
        assert a[name].keys() == b[name].keys()
        for key in a[name]:
            assert torch.equal(a[name][key], b[name][key]), (name, key)


def test_a_new_run_starts_from_another_runs_networks(tmp_path, main_run, main_error):
    common = ["--results-dir", str(tmp_path), *SMALL]
    source = main_run("--run-id", "source", "--train-steps", "400", "--test-steps", "0",
                      *common)
    assert source.returncode == 0, source.stderr[-2000:]
    trained = saved(tmp_path / "source")["learner"]
    assert trained["learner_steps"] > 0
    # --train-steps 0: the new run's checkpoint holds what it started from.
    new = main_run("--run-id", "new", "--initialize-from", "source", "--train-steps", "0",
                   "--test-steps", "60", *common)
    assert new.returncode == 0, new.stderr[-2000:]
    assert f"initialized from {tmp_path / 'source' / 'checkpoints' / 'latest.pt'}" in new.stdout
    started = saved(tmp_path / "new")["learner"]
    assert_same_networks(started, trained)
    assert started["learner_steps"] == 0 and started["actor_opt"]["state"] == {}
    assert "initialize_from: source" in (tmp_path / "new" / "configuration.yaml").read_text()
    # A checkpoint file works as well as a run id; a mismatch names the checkpoint: one of
    # the env's sizes once the env has started...
    line, _ = main_error("--run-id", "other", "--initialize-from",
                         str(tmp_path / "source" / "checkpoints" / "latest.pt"),
                         "--env", "gymnasium:Pendulum-v1", "--transport", "in-process",
                         "--train-steps", "0", *common)
    assert "--initialize-from" in line and "obs_size 9 but this run has obs_size 3" in line
    # ... leaving nothing that blocks the corrected rerun (it needed --force);
    again = main_run("--run-id", "other", "--initialize-from", "source", "--train-steps", "0",
                     "--test-steps", "0", *common)
    assert again.returncode == 0, again.stderr[-2000:]
    # an option before anything starts
    line, _ = main_error("--run-id", "other2", "--initialize-from", "source", "--hidden-size",
                         "64", *common)
    assert "--initialize-from" in line and "hidden_size 128 but this run has hidden_size 64" \
        in line
    # (it told a new run to "resume with the sizes it was trained with")
    assert line.endswith("give --hidden-size 128, or drop --initialize-from")
    # the run's ONNX policy is not a checkpoint: which file is
    line, _ = main_error("--run-id", "other2", "--initialize-from",
                         str(tmp_path / "source" / "My Behavior.onnx"), *common)
    assert "is an ONNX policy" in line and "checkpoints/latest.pt" in line
    assert not (tmp_path / "other2").exists()
    line, _ = main_error("--run-id", "other2", "--initialize-from", "nosuch", *common)
    assert "no checkpoint at" in line and "nosuch" in line
    # --force sets this run's folder aside before the checkpoint would be read
    line, _ = main_error("--run-id", "new", "--force", "--initialize-from",
                         str(tmp_path / "new" / "checkpoints" / "latest.pt"), *common)
    assert "is in this run's own folder" in line
