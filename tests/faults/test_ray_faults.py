"""Ray mode under actor failures: a worker actor's death is survived; the learner's stops
the run cleanly, and --resume continues from the last checkpoint."""

import csv
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import ray
import torch

from runner.distributed import RunAborted, run_distributed
from tests.helpers import drone_pids, wait_until
from tests.test_distributed import tiny

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))



def later(seconds: float, action) -> threading.Thread:
    """Run `action` in the background after `seconds` (the driver blocks in run_distributed)."""
    def run():
        time.sleep(seconds)
        try:
            action()
        except Exception as err:  # surfaced by the test's own assertions
            thread.error = err
            raise


    thread = threading.Thread(target=run, daemon=True)
    thread.error = None
    thread.start()
    return thread


def test_killed_worker_actor_is_restarted_and_training_goes_on(local_ray, tmp_path):
    cfg, run_dir = tiny(tmp_path, "wdeath", 5800, num_workers=2, train_steps=5000)
    def inserted() -> int:
        try:
            replay = ray.get_actor("drone-ddpg-wdeath-replay")
        except ValueError:  # not created yet
            return 0
        return ray.get(replay.stats.remote())["inserted"]

    def kill_worker():
        # Mid-training: after 1000 of the 5000 env steps.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and inserted() < 1000:
            time.sleep(0.1)
        victim = ray.get_actor("drone-ddpg-wdeath-worker-0")
        kill_worker.env_pid = ray.get(victim.env_pid.remote())
        ray.kill(victim, no_restart=False)  # its process dies; Ray restarts the actor

    killer = later(0.0, kill_worker)
    summary = run_distributed(cfg, run_dir)
    assert killer.error is None, killer.error
    worker0 = summary["workers"][0]
    assert worker0["actor_restarts"] == 1
    assert summary["env_steps"] >= 5000 and summary["test"]["episodes"] > 0
    # the dead actor's env process exited with its parent: nothing orphaned
    assert kill_worker.env_pid not in drone_pids()
    # Its successor's env is seeded afresh: it replayed the first one's goals (seed + 0).
    logs = os.path.join(run_dir, "env_logs")
    seeds = set()
    for name in os.listdir(logs):
        with open(os.path.join(logs, name), encoding="utf-8") as log:
            seeds.update(int(line.rsplit("seed=", 1)[1]) for line in log if "seed=" in line)
    assert {0, 1} < seeds, seeds  # workers 0 and 1, and worker 0's successor


def test_learner_death_aborts_in_one_line_and_resume_finishes(local_ray, tmp_path):
    cfg, run_dir = tiny(tmp_path, "ldeath", 5820, num_workers=1, train_steps=6000)
    cfg.run = dataclasses.replace(cfg.run, checkpoint_interval=1000)
    checkpoint = os.path.join(run_dir, "checkpoints", "latest.pt")

    def kill_learner_after_a_checkpoint():
        deadline = time.monotonic() + 60
        while not os.path.exists(checkpoint) and time.monotonic() < deadline:
            time.sleep(0.1)
        ray.kill(ray.get_actor("drone-ddpg-ldeath-learner"), no_restart=True)

    later(0.0, kill_learner_after_a_checkpoint)
    with pytest.raises(RunAborted, match="learner") as aborted:
        run_distributed(cfg, run_dir)
    assert "\n" not in str(aborted.value) and "--resume" in str(aborted.value)
    cfg.run = dataclasses.replace(cfg.run, resume=True)
    summary = run_distributed(cfg, run_dir)
    assert summary["env_steps"] >= 6000 and summary["learner_steps"] > 0


def test_replay_death_aborts_in_one_line(local_ray, tmp_path):
    cfg, run_dir = tiny(tmp_path, "rdeath", 5840, num_workers=1, train_steps=50_000)
    later(8.0, lambda: ray.kill(ray.get_actor("drone-ddpg-rdeath-replay"), no_restart=True))
    with pytest.raises(RunAborted, match="replay") as aborted:
        run_distributed(cfg, run_dir)
    assert "\n" not in str(aborted.value) and "--resume" in str(aborted.value)


def replay_inserted(run_id: str) -> int:
    try:
        replay = ray.get_actor(f"drone-ddpg-{run_id}-replay")
    except ValueError:  # not created yet
        return 0
    return ray.get(replay.stats.remote())["inserted"]


def test_a_dropped_worker_is_left_out_of_the_test_phase(local_ray, tmp_path, capsys):
    """Worker 1's env fails past its limits mid-training: the run goes on without it (said
    once, naming the worker once), and the test phase runs on worker 0 alone instead of
    calling the dropped one."""
    cfg, run_dir = tiny(tmp_path, "dropped", 5860, num_workers=2, train_steps=3000)
    cfg.env = dataclasses.replace(cfg.env, max_lifetime_restarts=0)

    def kill_env_of_worker_1():
        wait_until(lambda: replay_inserted("dropped") >= 800, timeout=60)
        os.kill(drone_pids(5861)[0], signal.SIGKILL)

    killer = later(0.0, kill_env_of_worker_1)
    summary = run_distributed(cfg, run_dir)
    assert killer.error is None, killer.error
    assert summary["env_steps"] >= 3000 and summary["test"]["episodes"] > 0
    with open(f"{run_dir}/episodes.csv") as f:
        tested_by = {row["worker"] for row in csv.DictReader(f) if row["phase"] == "test"}
    assert tested_by == {"0"}
    assert drone_pids(5861) == []
    out = capsys.readouterr().out
    # (no restart allowed: its first failure is not "again")
    assert "\nworker 1: env failed (" in out and "worker 1: worker 1" not in out, out
    assert "failed again" not in out, out


def test_an_env_failing_in_the_test_phase_is_one_line_and_training_is_kept(tmp_path):
    """The end of training is saved before the test phase; an env that fails past its
    limits there ends the run with one line and exit status 2, no env left behind."""
    port = 5880
    proc = subprocess.Popen(
        [sys.executable, "launch.py", "--run-id", "t", "--results-dir", str(tmp_path),
         "--base-port", str(port), "--num-workers", "1", "--train-steps", "800",
         "--test-steps", "1000000", "--learning-starts", "300", "--batch-size", "32",
         "--max-step", "60", "--num-areas", "2", "--checkpoint-interval", "100000",
         "--max-lifetime-restarts", "0", "--log-interval", "0.5"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    checkpoint = tmp_path / "t" / "checkpoints" / "latest.pt"
    try:
        assert wait_until(checkpoint.exists, timeout=120), "training's end was not saved"
        time.sleep(1.0)  # well into the test phase
        os.kill(drone_pids(port)[0], signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 2 and "Traceback" not in err, err[-3000:]
    assert len(lines) == 1 and "restart limits" in lines[0], err[-3000:]
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["env_steps"] >= 800 and saved["phase"] == "test"
    assert wait_until(lambda: drone_pids(port) == [], timeout=10)


def test_a_learner_that_cannot_start_is_one_line_and_closes_every_env(local_ray, tmp_path):
    """--cudagraphs on a cluster without a GPU passes the driver's checks (the GPU may be
    on another node) and fails in the learner's setup: that came out as a ValueError
    holding Ray's coloured remote traceback, with the env workers left running."""
    cfg, run_dir = tiny(tmp_path, "nogpu", 5860, num_workers=1)
    cfg.learner = dataclasses.replace(cfg.learner, cudagraphs=True)  # device auto: the CPU
    with pytest.raises(ValueError, match="--cudagraphs needs a CUDA device") as raised:
        run_distributed(cfg, run_dir)
    assert "\n" not in str(raised.value)
    assert wait_until(lambda: not drone_pids(5860), timeout=10)


def test_when_every_worker_has_stopped_the_line_says_why(monkeypatch):
    """The error line said only 'see the lines above': the cause (NaN observations, a
    crash) was on stdout, above the bar, if at all in view."""
    from runner import ray_fleet

    fleet = object.__new__(ray_fleet.Fleet)
    fleet.learner_run, fleet.worker_runs, fleet.budget_spent = object(), {}, False
    fleet.restarting = ray_fleet.Restarting([])
    fleet.dropped = {1: "env failed again (RuntimeError: The observations provided had NaN "
                        "values) after 10 restarts, past the restart limits"}
    monkeypatch.setattr(ray_fleet.ray, "wait", lambda refs, timeout=0: ([], refs))
    with pytest.raises(RunAborted, match=r"every env worker has stopped \(the last, worker 1: "
                                         r"env failed again .*NaN values.*\); fix the env"):
        fleet.check()


class _Call:
    """A fake actor method: `.remote()` gives back what `ray.get` is to answer."""

    def __init__(self, answer):
        self.answer = answer

    def remote(self, *args):
        return self.answer


class _Actor:
    def __init__(self, **methods):
        for name, answer in methods.items():
            setattr(self, name, _Call(answer))


def _fake_get(monkeypatch, module) -> None:
    """ray.get of a fake call: its answer, or raise it when it is an exception."""
    def get(ref, timeout=None):
        if isinstance(ref, BaseException):
            raise ref
        return ref
    monkeypatch.setattr(module.ray, "get", get)
    monkeypatch.setattr(module.ray, "wait", lambda refs, **kw: (refs, []))


@pytest.mark.parametrize("comes_back", [True, False])
def test_a_worker_actor_killed_as_its_env_starts_is_waited_for(monkeypatch, comes_back):
    """Ray restarts it, but the start took its death for a bug: ActorUnavailableError's
    traceback, exit status 1."""
    from ray.exceptions import ActorDiedError

    from runner import ray_fleet

    _fake_get(monkeypatch, ray_fleet)
    fleet = object.__new__(ray_fleet.Fleet)
    fleet.workers = [_Actor(spec={"pid": 1}), _Actor(spec=ActorDiedError())]
    closed = []
    fleet.close = lambda: closed.append(True)
    fleet._restarted = lambda k: {"pid": 2} if comes_back else None
    if comes_back:
        assert fleet._open_envs() == [{"pid": 1}, {"pid": 2}] and not closed
        return
    with pytest.raises(RunAborted, match="worker 1's actor died as its env started"):
        fleet._open_envs()
    assert closed


def test_a_replay_that_died_before_a_save_is_one_line(monkeypatch):
    """--save-replay: a replay actor killed in the test phase gave ActorDiedError's
    traceback from the final save, exit status 1."""
    from ray.exceptions import ActorDiedError

    from runner import distributed
    from runner.config import RunConfig

    _fake_get(monkeypatch, distributed)
    fleet = type("F", (), {})()
    fleet.learner = _Actor(state_dict={"actor": {}})
    fleet.replay = _Actor(state_dict=ActorDiedError())
    cfg = type("C", (), {})()
    cfg.run = RunConfig(save_replay=True)
    save = distributed.make_saver(cfg, fleet, monitor=None, path="unused")
    with pytest.raises(RunAborted, match="the replay actor died; --resume continues"):
        save("test")


def test_a_hung_learner_or_replay_ends_the_run_in_one_line(monkeypatch):
    """A learner or replay whose process was stopped (SIGSTOP) held the run forever: the
    progress line froze, and two SIGTERMs hung in the stop and the save before a third
    ended it, saving nothing."""
    from ray.exceptions import GetTimeoutError

    from runner import distributed_metrics, ray_errors, ray_fleet

    def get(ref, timeout=None):
        assert timeout is not None  # every call to those actors has a time limit
        if isinstance(ref, BaseException):
            raise ref
        return ref
    monkeypatch.setattr(ray_errors.ray, "get", get)
    fleet = object.__new__(ray_fleet.Fleet)
    fleet.replay = _Actor(stats={"inserted": 0})
    fleet.learner = _Actor(progress=GetTimeoutError(), stop=GetTimeoutError())
    monitor = object.__new__(distributed_metrics.Monitor)
    with pytest.raises(RunAborted, match="the learner actor stopped answering"):
        monitor.poll(fleet)
    fleet.learner_run = object()
    monkeypatch.setattr(fleet, "_stop_workers", lambda grace_s, going_on=True: None)
    monkeypatch.setattr(ray_fleet.ray, "wait", lambda refs, timeout=None: ([], refs))
    fleet.stop_loops()  # returns: the save that follows says what happened


def test_a_worker_that_died_mid_test_keeps_what_it_tested(monkeypatch):
    """Ray restarted the dead worker's actor, whose report (nothing tested) replaced what
    the first had tested: the bar went back (3121 to 2500), and nothing said the test
    would end short of its budget."""
    from ray.exceptions import ActorDiedError

    from runner import distributed

    reports = iter([{"env_steps": 300, "episodes": []}, {"env_steps": 0, "episodes": []}])

    class Drain:
        def remote(self):
            return next(reports)

    _fake_get(monkeypatch, distributed)
    fleet = type("F", (), {})()
    fleet.workers = [type("W", (), {"test_drain": Drain()})()]
    shown, written = [], []
    bar = type("B", (), {"update": lambda self, n, values: shown.append(n),
                         "write": lambda self, line: written.append(line)})()
    cfg = type("C", (), {})()
    cfg.run, cfg.env = type("R", (), {"test_steps": 1000})(), type("E", (), {})()
    cfg.env.tracks_success = lambda: False
    monitor = type("M", (), {})()
    monitor.test = type("S", (), {"summary": lambda self: {"mean_return": None}})()
    watch = distributed.EvalWatch(cfg, fleet, monitor, bar, {0: 1000})
    watch.record = lambda k, episodes: None
    watch.poll({0: None})
    watch.poll({0: None})  # the restarted actor's report
    assert shown == [300, 300]
    watch.finish(0, ActorDiedError())
    assert written and "300 of the 1000 env steps at most" in written[0]


def test_workers_whose_replay_died_name_the_replay(monkeypatch):
    """The replay killed: every worker was dropped as 'worker 0: The actor died
    unexpectedly before finishing this task.; continuing without it'."""
    from ray.exceptions import ActorDiedError, RayTaskError

    from runner import ray_fleet

    _fake_get(monkeypatch, ray_fleet)
    monkeypatch.setattr(ray_fleet.ray, "wait", lambda refs, **kw: (
        [r for r in refs if r is not LEARNER_RUNNING], []))
    fleet = object.__new__(ray_fleet.Fleet)
    fleet.learner_run = LEARNER_RUNNING
    fleet.worker_runs = {0: RayTaskError("run", "", ActorDiedError())}
    fleet.replay = _Actor(stats=ActorDiedError())
    fleet.dropped = {}
    fleet.restarting = ray_fleet.Restarting([])
    with pytest.raises(RunAborted, match="the replay actor died"):
        fleet.check()
    assert fleet.dropped == {}


LEARNER_RUNNING = object()  # a learner loop that has not ended


def test_a_replay_that_died_before_the_loops_start_is_one_line(monkeypatch):
    """Killed while the run started (a loaded machine: the envs took long to open), the
    replay's death came out of start_loops as ActorDiedError's traceback, status 1."""
    from ray.exceptions import ActorDiedError

    from runner import ray_errors, ray_fleet

    _fake_get(monkeypatch, ray_errors)
    fleet = object.__new__(ray_fleet.Fleet)
    fleet.replay = _Actor(set_budget=ActorDiedError())
    with pytest.raises(RunAborted, match="the replay actor died; --resume continues"):
        fleet.start_loops(budget=100)
