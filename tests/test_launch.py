"""launch.py as a user runs it: a subprocess with tiny step counts, then its outputs."""

import json
import os
import subprocess
import sys

import pytest
import torch

from runner.cli import parse
from runner.config import Config, validate
from runner.errors import write_error
from tests.helpers import tags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The test phase starts fresh episodes: 300 steps over 2 workers of 2 areas is 75 steps
# each, so every agent finishes one (--max-step 60).
TINY = ["--train-steps", "600", "--test-steps", "300", "--learning-starts", "200",
        "--batch-size", "32", "--max-step", "60", "--checkpoint-interval", "300",
        "--num-areas", "2", "--log-interval", "0.5"]
# Report at exit whether anything imported ray: local mode must not.
RAY_PROBE = ("import atexit, runpy, sys; "
             "atexit.register(lambda: print('RAY_IMPORTED', 'ray' in sys.modules)); "
             "sys.argv = ['launch.py'] + sys.argv[1:]; "
             "runpy.run_path('launch.py', run_name='__main__')")


def run_probe(probe: str) -> subprocess.CompletedProcess:
    """`python -c probe` in the repository: a stand-in for a moment of a run."""
    return subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                          text=True, timeout=60)


def launch(*args, timeout=240):
    return subprocess.run([sys.executable, "-c", RAY_PROBE, *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    done = launch("--mode", "local", "--run-id", "tiny", "--results-dir", str(results),
                  "--base-port", "5300", *TINY)
    return done, results / "tiny"


def test_smoke_run_writes_every_output(tiny_run):
    done, run_dir = tiny_run
    assert done.returncode == 0, done.stderr[-3000:]
    assert "RAY_IMPORTED False" in done.stdout
    assert (run_dir / "configuration.yaml").is_file()
    assert (run_dir / "My Behavior.onnx").is_file()  # the Unity hand-off, every checkpoint
    payload = torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=True)
    for key in ("actor", "critic", "actor_target", "critic_target", "actor_opt", "critic_opt"):
        assert key in payload["learner"]
    summary = json.loads((run_dir / "summary.json").read_text())
    # each checkpoint (every 300 env steps, and the end) is also kept, the last 5 of them
    kept = sorted(run_dir.glob("checkpoints/checkpoint-*.pt"))
    assert len(kept) == len(list(run_dir.glob("checkpoints/My Behavior-*.onnx"))) >= 2
    assert (run_dir / "checkpoints" / f"checkpoint-{payload['env_steps']}.pt").read_bytes() \
        == (run_dir / "checkpoints" / "latest.pt").read_bytes()
    assert summary["env_steps"] >= 600
    assert summary["learner_steps"] == 600 - 200 + (summary["env_steps"] - 600)
    assert summary["policy_version"] >= 1 and summary["wall_s"] > 0
    for phase in ("train", "test"):
        assert set(summary[phase]) >= {"episodes", "mean_return", "success_rate"}
        assert summary[phase]["episodes"] > 0
    assert summary["test"]["mean_over"] == summary["test"]["episodes"]  # every test episode
    assert tags(run_dir) >= {"charts/episodic_return", "charts/episodic_length",
                             "charts/success_rate", "charts/SPS", "losses/critic_loss",
                             "losses/actor_loss", "losses/q_values",
                             "charts/test_episodic_return", "charts/test_episodic_length"}
    assert not {t for t in tags(run_dir)
                if not t.startswith(("charts/", "losses/", "perf/", "Environment/"))}


def test_resume_continues_and_inference_only_tests(tiny_run, main_run):
    """Resume in local mode (in this process), then test the checkpoint alone on Ray."""
    done, run_dir = tiny_run
    assert done.returncode == 0
    before = json.loads((run_dir / "summary.json").read_text())
    more = TINY.copy()
    more[more.index("--train-steps") + 1] = "900"
    again = main_run("--run-id", "tiny", "--results-dir", str(run_dir.parent), "--resume",
                     "--mode", "local", "--base-port", "5300", *more)
    assert again.returncode == 0, again.stderr[-3000:]
    after = json.loads((run_dir / "summary.json").read_text())
    assert after["env_steps"] >= 900 and after["learner_steps"] > before["learner_steps"]
    # The replay restarted empty, and with it what is owed: one update per env step once it
    # holds --learning-starts (200) rows again, not a burst of the refill's updates.
    resumed_steps = after["env_steps"] - before["env_steps"]
    assert after["learner_steps"] - before["learner_steps"] == resumed_steps - 200
    assert after["train"]["episodes"] > before["train"]["episodes"]
    # A checkpoint is the same in both modes: test it on Ray this time.
    config = (run_dir / "configuration.yaml").read_text()
    infer = launch("--run-id", "tiny", "--results-dir", str(run_dir.parent), "--inference",
                   "--mode", "ray", "--num-workers", "1", "--base-port", "5300", *more)
    assert infer.returncode == 0, infer.stderr[-3000:]
    tested = json.loads((run_dir / "summary.json").read_text())
    assert tested["env_steps"] == after["env_steps"]  # no training happened
    assert tested["learner_steps"] == after["learner_steps"]
    assert tested["test"]["episodes"] > 0
    # Testing kept what training wrote: its configuration (not this session's --mode ray
    # --num-workers 1, which a later --resume would have inherited) and its train results.
    assert (run_dir / "configuration.yaml").read_text() == config
    assert tested["train"] == after["train"] and tested["wall_s"] == after["wall_s"]
    assert "(run average)" not in infer.stdout and "last 0 of" not in infer.stdout


def one_line_error(done):
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


def test_existing_run_needs_resume_or_force(tiny_run):
    _, run_dir = tiny_run
    line = one_line_error(launch("--run-id", "tiny", "--results-dir", str(run_dir.parent)))
    assert "--resume" in line and "--force" in line


def test_bad_env_path_is_one_line(tmp_path):
    line = one_line_error(launch("--env", str(tmp_path / "NoSuchBuild"),
                                 "--results-dir", str(tmp_path)))
    assert "NoSuchBuild" in line and "Unity Linux build" in line
    not_exec = tmp_path / "Build.x86_64"
    not_exec.write_text("")
    line = one_line_error(launch("--env", str(tmp_path / "Build"), "--results-dir",
                                 str(tmp_path)))
    assert "chmod +x" in line


def test_help_has_a_line_per_field():
    done = subprocess.run([sys.executable, "launch.py", "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    flags = ["--env", "--run-id", "--results-dir", "--mode", "--num-workers", "--train-steps",
             "--test-steps", "--learning-starts", "--updates-per-step", "--seed", "--device",
             "--time-scale", "--base-port", "--num-areas", "--resume", "--inference",
             "--batch-size", "--buffer-size", "--gamma", "--tau", "--actor-lr", "--critic-lr",
             "--noise", "--noise-sigma", "--ou-theta", "--hidden-size", "--max-step"]
    for flag in flags:
        assert flag in done.stdout, flag
    assert "discount factor" in done.stdout  # docstrings are the help text


def test_seed_preset_and_overrides():
    seed = parse(["--preset", "seed", "--batch-size", "64"])
    assert seed.replay.batch_size == 64  # the flag wins over the preset
    assert (seed.replay.buffer_size, seed.replay.learning_starts) == (50_000, 5_000)
    assert (seed.learner.gamma, seed.learner.tau) == (0.9, 1e-3)
    assert (seed.learner.actor_lr, seed.learner.critic_lr) == (1e-4, 5e-4)
    assert (seed.noise.noise, seed.noise.ou_theta, seed.noise.noise_sigma) == ("ou", 1e-3, 2e-3)
    assert (seed.run.train_steps, seed.run.test_steps, seed.run.updates_per_step) == (
        50_000, 10_000, 1.0)
    assert parse([]) == Config()
    td3 = parse(["--preset", "td3"]).learner
    assert (td3.twin_critics, td3.policy_delay, td3.target_noise, td3.target_noise_clip) == (
        True, 2, 0.2, 0.5)
    assert parse([os.path.join(REPO, "configs", "td3.yaml")]) == parse(["--preset", "td3"])


@pytest.mark.parametrize("args, message", [
    (["--num-workers", "0"], "--num-workers must be >= 1"),
    (["--tau", "0"], "--tau must be in (0, 1]"),
    (["--tau", "1.5"], "--tau must be in (0, 1]"),
    (["--batch-size", "512", "--buffer-size", "100"], "must not exceed --buffer-size"),
    (["--train-steps", "-5"], "--train-steps must be >= 0"),
])
def test_nonsense_config_values(args, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        validate(parse(args))


@pytest.mark.parametrize("env_args, message", [
    (["--env-kwargs", '{"gg": 5}'], "unexpected keyword argument 'gg'"),
    (["--env-kwargs", "[1]"], "must be a JSON object"),
    (["--max-episode-steps", "0"], "--max-episode-steps must be >= 1"),
    (["--max-episode-steps", "x"], "invalid int value: 'x'"),
])
def test_the_bridges_arguments_are_checked_before_anything_starts(env_args, message):
    from launch import env_problem

    problem = env_problem(parse(["--env", "gymnasium:Pendulum-v1", "--env-args", *env_args]))
    assert problem is not None and message in problem and "\n" not in problem
    assert env_problem(parse(["--env", "gymnasium:Pendulum-v1", "--env-args", "--env-kwargs",
                              '{"g": 5.0}'])) is None


def test_overlapped_envs_keep_the_ratio(tmp_path, main_run):
    """--overlap-envs: the next round steps in child processes while the learner updates;
    the update-to-data ratio, the budget and the outputs stay those of the plain loop."""
    done = main_run("--mode", "local", "--run-id", "overlap", "--results-dir", str(tmp_path),
                    "--base-port", "5360", "--overlap-envs", *TINY)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "overlap" / "summary.json").read_text())
    assert summary["env_steps"] >= 600
    assert summary["learner_steps"] == summary["env_steps"] - 200
    assert summary["test"]["episodes"] > 0


def full_disk(*args, **kwargs):
    import errno

    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as a write() raises it: no path


def test_a_full_disk_at_a_checkpoint_is_one_line(tmp_path, monkeypatch, capsys):
    """The ONNX export's write hits a full disk at the first checkpoint (a cheap
    in-process local run): one line naming the place and the fix, exit status 2."""
    import launch
    import learner.export

    monkeypatch.setattr(launch, "stop_on_sigterm", lambda: None)  # not in pytest's process
    monkeypatch.setattr(learner.export, "write_atomic", full_disk)
    rc = launch.main(["--mode", "local", "--run-id", "full", "--results-dir", str(tmp_path),
                      "--base-port", "5380", "--train-steps", "100", "--test-steps", "10",
                      "--learning-starts", "50", "--batch-size", "16",
                      "--checkpoint-interval", "50", "--max-step", "60"])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert rc == 2 and errors == [f"error: cannot write in {tmp_path / 'full'}: No space left "
                                  "on device; free space (or pass another --results-dir) and "
                                  "--resume"], errors
    # The checkpoint goes first: an ONNX that cannot be written costs no training.
    assert (tmp_path / "full" / "checkpoints" / "latest.pt").is_file()


def test_a_folder_where_a_file_goes_is_one_line_naming_it(tmp_path):
    """A rename onto a folder names the temporary file first: the line named that, and
    a folder was no write error it knew (a traceback)."""
    from learner.files import write_atomic

    target = tmp_path / "My Behavior.onnx"
    target.mkdir()
    with pytest.raises(OSError) as err:
        write_atomic(str(target), b"onnx")
    assert write_error(err.value, str(tmp_path)) == (
        f"cannot write {target}: Is a directory; remove that folder (or pass another "
        "--results-dir) and --resume")


def test_a_write_error_names_the_file_not_its_temporary_one(tmp_path):
    """A folder that refuses new files failed at the temporary file: the line named
    .latest.pt.x6te7t5u.tmp."""
    import errno

    err = OSError(errno.EACCES, "Permission denied", str(tmp_path / ".latest.pt.x6te7t5u.tmp"))
    assert write_error(err, str(tmp_path)) == (
        f"cannot write {tmp_path / 'latest.pt'}: Permission denied; make it writable (or pass "
        "another --results-dir) and --resume")


def test_a_write_error_names_its_file(tmp_path, monkeypatch, capsys):
    import errno

    import launch
    import runner.local

    path = str(tmp_path / "checkpoints" / "latest.pt")

    def unwritable(cfg, run_dir):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)

    monkeypatch.setattr(runner.local, "run_local", unwritable)
    assert launch.train_and_report(parse(["--mode", "local"]), str(tmp_path)) == 2
    errors = capsys.readouterr().err.splitlines()
    assert errors == [f"error: cannot write {path}: Permission denied; make it writable (or "
                      "pass another --results-dir) and --resume"], errors


def test_ctrl_c_before_the_run_starts_is_one_line(monkeypatch, capsys):
    """A Ctrl-C while torch or Ray import (before the run's handlers) was a traceback."""
    import launch

    def interrupted(argv):
        raise KeyboardInterrupt

    monkeypatch.setattr(launch, "main", interrupted)
    assert launch.entry([]) == 130
    assert capsys.readouterr().err.splitlines() == [
        "interrupted before training started: nothing to save"]


@pytest.mark.parametrize("env_args", [["--env-id", "MountainCarContinuous-v0"],
                                      ["--env-id=MountainCarContinuous-v0"]])
def test_an_env_id_in_env_args_beside_a_gymnasium_env_is_refused(env_args):
    """It silently replaced --env's: the run trained MountainCar, its configuration said
    Pendulum."""
    from launch import env_problem

    problem = env_problem(parse(["--env", "gymnasium:Pendulum-v1", "--env-args", *env_args]))
    assert problem.startswith("--env-args --env-id conflicts with --env gymnasium:Pendulum-v1")


def test_launch_says_when_the_learner_would_never_update(tmp_path, monkeypatch, capsys):
    import launch as entry_point

    started = []
    monkeypatch.setattr(entry_point, "train_and_report",
                        lambda cfg, run_dir: started.append(run_dir) or 0)
    assert entry_point.main(["--mode", "local", "--results-dir", str(tmp_path), "--run-id", "w",
                             "--train-steps", "3000", "--learning-starts", "5000"]) == 0
    assert started  # a warning, not a refusal
    assert "warning: --train-steps 3000 does not pass" in capsys.readouterr().out


def test_a_ray_mode_exit_skips_the_c_exit_handlers_but_runs_pythons():
    """Ray's C-level exit handler segfaulted now and then after a clean Ctrl-C (status 139
    instead of 130): once Ray is imported, launch.py exits past the C handlers. Stood in for
    here by abort() registered as a C exit handler (status 134 if it runs)."""
    probe = ("import atexit, ctypes, sys; sys.modules.setdefault('ray', sys); "
             "libc = ctypes.CDLL(None); libc.__cxa_atexit(libc.abort, None, None); "
             "atexit.register(lambda: print('python handler ran')); "
             "import launch; launch.finish(130)")
    done = run_probe(probe)
    assert done.returncode == 130, done.stderr
    assert "python handler ran" in done.stdout


def test_sigterm_while_the_flags_are_read_is_one_line_and_130():
    """SIGTERM's handler was installed only once the run folder was made: one sent in the
    first second (a scheduler cancelling a job as it starts) killed the process, status 143
    and no line."""
    probe = ("import os, signal, sys, launch, runner.cli as cli\n"
             "def parse(argv):\n"
             "    os.kill(os.getpid(), signal.SIGTERM)\n"
             "    raise AssertionError('SIGTERM did not interrupt')\n"
             "cli.parse = parse\n"
             "sys.exit(launch.entry([]))\n")
    done = run_probe(probe)
    assert done.returncode == 130, (done.returncode, done.stderr[-2000:])
    assert done.stderr.splitlines() == ["interrupted before training started: nothing to save"]


def test_a_ctrl_c_while_the_runner_imports_waits_until_the_import_is_done(tmp_path):
    """A Ctrl-C that cut the imports short (torch's of numpy swallowed it) left numpy half
    made: importing onnx's ml_dtypes then recursed until RecursionError (a traceback,
    status 1). Stood in for by a Ctrl-C in the middle of runner.session's import."""
    # SIGINT as a terminal leaves it: a suite started in the background hands its children
    # SIGINT ignored.
    probe = ("import importlib.abc, os, signal, sys, launch\n"
             "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
             "from runner.cli import parse\n"
             "class Interrupt(importlib.abc.MetaPathFinder):\n"
             "    def find_spec(self, name, path, target=None):\n"
             "        if name == 'learner.checkpoint':\n"
             "            os.kill(os.getpid(), signal.SIGINT)\n"
             "        return None\n"
             "sys.meta_path.insert(0, Interrupt())\n"
             "try:\n"
             f"    launch.train_and_report(parse(['--mode', 'local']), {str(tmp_path)!r})\n"
             "except KeyboardInterrupt:\n"
             "    print('whole' if {'runner.local', 'learner.checkpoint'} <= set(sys.modules)\n"
             "          else 'cut short')\n")
    done = run_probe(probe)
    assert done.stdout.split() == ["whole"], (done.stdout, done.stderr[-2000:])


@pytest.mark.parametrize("ray_imported", [False, True])
def test_a_second_signal_while_the_process_winds_down_keeps_the_status(ray_imported):
    """A second Ctrl-C or SIGTERM after the run had saved and closed, while the interpreter
    wound down (torch's teardown, up to a second), killed it by that signal: status -2 or
    -15 (143 in a shell) instead of 130. Stood in for by an atexit handler that takes it."""
    probe = ("import atexit, os, signal, sys, time\n"
             + ("sys.modules.setdefault('ray', sys)\n" if ray_imported else "")
             + "def winding_down():\n"
             "    os.kill(os.getpid(), signal.SIGTERM)\n"
             "    time.sleep(0.5)\n"
             "atexit.register(winding_down)\n"
             "import launch\n"
             "launch.stop_on_sigterm()\n"
             "launch.finish(130)\n")
    done = run_probe(probe)
    assert done.returncode == 130, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
