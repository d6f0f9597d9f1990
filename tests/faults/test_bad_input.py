"""Bad input gets one line naming the problem and the fix, a non-zero exit, no traceback."""

import os
import subprocess
import sys
import time

import pytest
import torch

from learner.checkpoint import save_checkpoint
from learner.learner import Learner
from learner.config import LearnerConfig

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def one_line(*args, timeout=120) -> str:
    done = subprocess.run([sys.executable, "launch.py", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


@pytest.mark.parametrize("args, expected", [
    (["--bogus-flag", "1"], "unknown flag --bogus-flag"),
    (["--batch-sise", "64"], "did you mean --batch-size?"),
    (["--device", "tpu"], "--torch-device/--device 'tpu': expected one of auto, cpu, cuda"),
    (["--train-steps", "many"], "--train-steps"),
    (["--preset", "nope"], "unknown preset 'nope'"),
    (["--learning-starts", "900", "--buffer-size", "500", "--batch-size", "64"],
     "learning would never start"),
    (["--n-step", "0"], "--n-step must be >= 1"),
    (["--per-beta", "2"], "--per-beta must be in [0, 1]"),
])
def test_cli_mistakes(args, expected):
    assert expected in one_line(*args)


def test_cuda_without_a_gpu(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: --device cuda is valid here")
    assert "no CUDA device" in one_line("--device", "cuda", "--results-dir", str(tmp_path))
    assert "drop --cudagraphs" in one_line("--cudagraphs", "--results-dir", str(tmp_path))


def test_results_dir_not_writable(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    line = one_line("--results-dir", str(blocker / "results"), "--mode", "local")
    assert "writable --results-dir" in line


def test_unreachable_ray_address_fails_fast(tmp_path):
    started = time.monotonic()
    line = one_line("--address", "127.0.0.1:6399", "--results-dir", str(tmp_path))
    assert "cannot reach the Ray cluster at 127.0.0.1:6399" in line
    assert time.monotonic() - started < 30


def make_run(tmp_path, name: str, payload_bytes: bytes | None = None, payload=None) -> str:
    """A run folder whose checkpoint holds exactly what a test wants."""
    path = tmp_path / name / "checkpoints" / "latest.pt"
    path.parent.mkdir(parents=True)
    (tmp_path / name / "configuration.yaml").write_text("{}\n")  # the defaults
    if payload_bytes is not None:
        path.write_bytes(payload_bytes)
    else:
        save_checkpoint(str(path), payload)
    return name


def good_payload(obs_size: int = 9) -> dict:
    learner = Learner(obs_size, 3, LearnerConfig())
    return {"learner": learner.state_dict(), "env_steps": 10, "train_episodes": 0,
            "phase": "train", "wall_s": 1.0, "noise": [{}], "worker_rng": [None]}


def checkpoint_cases(tmp_path):
    good = tmp_path / "good.pt"
    save_checkpoint(str(good), good_payload())
    data = good.read_bytes()
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": torch.zeros(3)}, foreign)
    return {
        "truncated": (data[: len(data) // 2], None),
        "corrupt": (os.urandom(4096), None),
        "foreign": (foreign.read_bytes(), None),
        "version": (None, good_payload()),
        "sizes": (None, good_payload(obs_size=12)),
        "replay": (None, {"replay": {"obs": torch.zeros(4, 9)}}),  # replay.pt copied over
        "inconsistent": (None, {**good_payload(), "learner": {**good_payload()["learner"],
                                                             "actor": {}}}),
    }


BAD_CHECKPOINT_WORDS = {
    "truncated": "is truncated or corrupt", "corrupt": "is corrupt or not a checkpoint",
    "foreign": "is not a drone-ddpg checkpoint", "version": "format_version 99",
    "sizes": "checkpoint has obs_size 12 but this run has obs_size 9",
    "replay": "without 'learner' state",
    "inconsistent": "the checkpoint's learner state does not fit this learner (RuntimeError",
}


@pytest.mark.parametrize("case", list(BAD_CHECKPOINT_WORDS))
def test_bad_checkpoints(tmp_path, case, main_error):
    """Each in one line that says what is wrong with it."""
    raw, payload = checkpoint_cases(tmp_path)[case]
    run = make_run(tmp_path, case, payload_bytes=raw, payload=payload)
    if case == "version":  # a file from another drone-ddpg version
        path = tmp_path / case / "checkpoints" / "latest.pt"
        saved = torch.load(path, weights_only=True)
        saved["format_version"] = 99
        torch.save(saved, path)
    line, _ = main_error("--run-id", run, "--results-dir", str(tmp_path), "--inference",
                         "--mode", "local", "--num-workers", "1", "--num-areas", "1",
                         "--base-port", "6100")
    assert BAD_CHECKPOINT_WORDS[case] in line


def test_an_env_that_never_connects(tmp_path):
    """Not an ML-Agents build: it starts a child and never connects. One line with the fix,
    a prompt exit (no gRPC thread left waiting), and no process of it left behind."""
    import signal

    script, pid_file = tmp_path / "NotUnity.sh", tmp_path / "child.pid"
    script.write_text(f"#!/bin/sh\nsleep 1000 &\necho $! > {pid_file}\nwait\n")
    script.chmod(0o755)

    def child_alive() -> bool:  # a zombie awaiting its reaper is gone
        try:
            with open(f"/proc/{int(pid_file.read_text())}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    try:
        line = one_line("--env", str(script), "--timeout-wait", "1", "--mode", "local",
                        "--results-dir", str(tmp_path), "--base-port", "6120", timeout=60)
        assert f"env {str(script)!r}: did not connect within --timeout-wait 1 s" in line
        assert "raise --timeout-wait" in line and "env_logs" in line
        assert not child_alive()
    finally:
        if pid_file.exists() and child_alive():
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def test_force_with_an_env_that_does_not_start_keeps_the_old_run(tmp_path, main_error):
    """--force deleted the previous run before finding out that the new one could start."""
    old = tmp_path / "f1"
    (old / "checkpoints").mkdir(parents=True)
    (old / "checkpoints" / "latest.pt").write_bytes(b"the old run")
    (old / "configuration.yaml").write_text("{}\n")
    env = tmp_path / "Exit.x86_64"
    env.write_text("#!/bin/sh\nexit 3\n")
    env.chmod(0o755)
    _, out = main_error("--mode", "local", "--run-id", "f1", "--force", "--results-dir",
                        str(tmp_path), "--env", str(tmp_path / "Exit"), "--num-workers", "1",
                        "--base-port", "6130")
    assert "the previous run is back" in out and ".f1.failed-start" in out
    assert (old / "checkpoints" / "latest.pt").read_bytes() == b"the old run"
    assert not (tmp_path / ".f1.replaced").exists()


def test_a_replay_larger_than_memory_is_one_line(tmp_path, main_error):
    """--buffer-size 10**13 ended in numpy's _ArrayMemoryError traceback (Ray mode: the
    replay actor's traceback, then the learner's allocation error without a fix)."""
    one = ["--mode", "local", "--results-dir", str(tmp_path), "--num-workers", "1",
           "--num-areas", "1", "--base-port", "6140"]
    line, _ = main_error(*one, "--run-id", "m1", "--buffer-size", str(10**13))
    assert line.startswith(f"error: --buffer-size {10**13} needs ~") and \
        "more than this machine's" in line and line.endswith("lower --buffer-size")
    # Networks too large for memory: torch's allocator raises a RuntimeError (a traceback).
    line, _ = main_error(*one, "--run-id", "h1", "--hidden-size", str(10**6))
    assert line.startswith("error: out of memory (") and f"lower --hidden-size ({10**6})" in line


def test_a_resumed_cluster_run_whose_cluster_is_gone_says_how_to_go_local(tmp_path):
    """A run trained on a cluster keeps its --address in configuration.yaml; resumed on a
    laptop (no --address given), the error said only 'fix --address', which the user never
    passed: the way on, --address None, was not named."""
    run = tmp_path / "was-on-a-cluster"
    run.mkdir()
    (run / "configuration.yaml").write_text("run:\n  address: 127.0.0.1:6398\n")
    line = one_line("--run-id", "was-on-a-cluster", "--resume", "--results-dir",
                    str(tmp_path))
    assert "cannot reach the Ray cluster at 127.0.0.1:6398" in line
    assert "--address None" in line
