"""Ray mode for real: a local instance with 2 workers, and a 2-node Cluster."""

import dataclasses
import json
import os
import shutil

import pytest
import ray
import torch

from runner.config import Config, RunConfig, validate
from runner.distributed import run_distributed
from runner.ray_resources import resources
from actors.config import EnvConfig
from replay.config import ReplayConfig
from tests.helpers import tags


def tiny(tmp_path, run_id: str, base_port: int, **run) -> tuple[Config, str]:
    """A short Ray run. Its test phase starts fresh episodes (max_step 60): 300 steps over
    2 workers of 2 areas is 75 steps each, so every agent finishes one."""
    cfg = Config(
        run=RunConfig(run_id=run_id, results_dir=str(tmp_path), train_steps=run.pop(
            "train_steps", 3000), test_steps=300, log_interval=0.5, chunk_steps=16,
            sync_interval=50, publish_interval=run.pop("publish_interval", 20), **run),
        env=EnvConfig(num_areas=2, max_step=60, base_port=base_port),
        replay=ReplayConfig(batch_size=32, learning_starts=300))
    validate(cfg)
    run_dir = tmp_path / run_id
    run_dir.mkdir()
    return cfg, str(run_dir)



@pytest.fixture(scope="module")
def two_worker_run(local_ray, tmp_path_factory):
    """Also keeps the weights the test phase was given, in TESTED."""
    from runner import distributed

    def test_phase(cfg, fleet, monitor):
        version, ref = ray.get(fleet.learner.latest_weights.remote(-1))
        TESTED.update(version=version, weights=ray.get(ref[0]))
        return tested(cfg, fleet, monitor)

    tested = distributed.test
    # Publishing every 500 updates: the last updates are almost never a publish's.
    cfg, run_dir = tiny(tmp_path_factory.mktemp("ray"), "two", 5500, num_workers=2,
                        publish_interval=500)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(distributed, "test", test_phase)
        return cfg, run_distributed(cfg, run_dir), run_dir


TESTED: dict = {}


def test_the_test_phase_tests_the_saved_policy(two_worker_run):
    """The learner publishes its last updates when its loop ends: the test phase tested a
    policy up to --publish-interval updates older than the checkpoint and the ONNX."""
    _, summary, run_dir = two_worker_run
    saved = torch.load(f"{run_dir}/checkpoints/latest.pt", weights_only=True)["learner"]
    assert TESTED["version"] == saved["policy_version"] == summary["policy_version"]
    for name, value in saved["actor"].items():
        torch.testing.assert_close(TESTED["weights"]["actor"][name], value)


def test_ray_checkpoints_are_kept_with_their_policies(two_worker_run):
    import pathlib

    _, _, run_dir = two_worker_run
    folder = pathlib.Path(run_dir) / "checkpoints"
    steps = sorted(int(p.stem.split("-")[1]) for p in folder.glob("checkpoint-*.pt"))
    assert steps and len(steps) <= 5
    assert {f"My Behavior-{s}.onnx" for s in steps} <= set(os.listdir(folder))
    last = folder / f"checkpoint-{steps[-1]}.pt"
    assert last.read_bytes() == (folder / "latest.pt").read_bytes()


def test_both_workers_contribute_and_get_new_weights(two_worker_run):
    cfg, summary, run_dir = two_worker_run
    assert summary["env_steps"] >= cfg.run.train_steps
    # Workers stop on the replay's "full" answer: at most ~2 chunks each past the budget.
    chunk = cfg.run.chunk_steps * cfg.env.num_areas
    assert summary["env_steps"] <= cfg.run.train_steps + 2 * 2 * chunk + chunk
    assert len(summary["workers"]) == 2
    for worker in summary["workers"]:
        assert worker["inserted"] > 0 and worker["env_steps"] > 0 and worker["episodes"] > 0
        assert worker["weight_updates"] >= 1  # picked up published weights
        assert worker["restarts"] == 0
    assert summary["env_restarts"] == 0
    assert summary["policy_version"] > 2 and summary["learner_steps"] > 0
    assert summary["test"]["episodes"] > 0
    assert summary["test"]["mean_over"] == summary["test"]["episodes"]  # every test episode
    on_disk = json.loads(open(f"{run_dir}/summary.json").read())
    assert on_disk["workers"] == summary["workers"]


def test_training_ends_at_the_configured_ratio(two_worker_run):
    """The learner takes the updates the last inserts call for before it stops."""
    cfg, summary, _ = two_worker_run
    past_start = summary["env_steps"] - cfg.replay.learning_starts
    assert summary["learner_steps"] == pytest.approx(cfg.run.updates_per_step * past_start,
                                                     rel=0.02)


def test_samples_per_insert_held_near_target(two_worker_run):
    cfg, summary, _ = two_worker_run
    target = cfg.run.updates_per_step * cfg.replay.batch_size
    assert summary["perf"]["samples_per_insert"] == pytest.approx(target, rel=0.10)


def test_learner_falls_back_to_cpu_without_gpu(local_ray):
    from learner.config import LearnerConfig
    from learner.ray_learner import LearnerActor

    learner = LearnerActor.options(num_cpus=0.1).remote(LearnerConfig(device="auto"),
                                                        ReplayConfig(batch_size=32), 1.0, 10, 0)
    assert ray.get(learner.setup.remote(9, 3)) == "cpu"
    assert ray.get(learner.device.remote()) == "cpu"
    ray.kill(learner)


def test_statistics_merged_after_the_last_update_are_published_at_the_end(local_ray):
    """--normalize: a worker's last report lands after the last update (here there is
    none); the learner's loop end publishes it, so the test phase acts with the normalizer
    that the checkpoint and the ONNX hold."""
    import numpy as np

    from learner.config import LearnerConfig
    from learner.ray_learner import LearnerActor
    from replay.ray_replay import ReplayActor

    cfg = ReplayConfig(batch_size=32)
    learner = LearnerActor.options(num_cpus=0.1).remote(LearnerConfig(device="cpu",
                                                                      normalize=True),
                                                        cfg, 1.0, 10, 0)
    replay = ReplayActor.options(num_cpus=0.1).remote(9, 3, cfg, 1.0)
    ray.get(learner.setup.remote(9, 3))
    ray.get(learner.merge_obs_stats.remote({"count": 4, "mean": np.ones(9), "m2": np.ones(9)}))
    ray.get(learner.finish.remote())
    assert ray.get(learner.run.remote(replay)) == 0  # nothing to train on: no update
    version, (ref,) = ray.get(learner.latest_weights.remote(-1))
    assert ray.get(ref)["normalizer"]["count"].item() == 4 and version == 2
    ray.kill(learner)
    ray.kill(replay)


def test_a_cluster_whose_cpus_other_jobs_hold_is_one_line(local_ray, tmp_path):
    """--address auto joined an instance another job was using: the actors pended forever
    and the run said nothing."""
    from runner.ray_fleet import Fleet
    from runner.ray_resources import capacity_problem
    from tests.helpers import wait_until

    res = resources(num_workers=2)
    # Actors killed by earlier tests give their CPUs back asynchronously.
    assert wait_until(lambda: capacity_problem(res, 2) is None, timeout=10)
    blocker = ray.remote(num_cpus=1.5)(type("Blocker", (), {"ready": lambda self: 1})).remote()
    ray.get(blocker.ready.remote())
    assert wait_until(lambda: capacity_problem(res, 2) is not None, timeout=10)
    problem = capacity_problem(res, 2)
    assert "has 0.50 of its 2.00 CPUs free" in problem and "wait for them" in problem
    cfg = Config()
    cfg.run = dataclasses.replace(cfg.run, address="auto", num_workers=2)
    with pytest.raises(ValueError, match="other jobs hold the rest"):
        Fleet(cfg, str(tmp_path))  # before any actor or env is created
    ray.kill(blocker)
    assert wait_until(lambda: capacity_problem(res, 2) is None, timeout=10)


def test_a_replay_actor_that_cannot_be_built_is_one_line(local_ray):
    """On a cluster the driver cannot check the replay's node: the actor's own refusal
    surfaced later, as a multi-line ActorDiedError traceback after the run had started."""
    from ray.exceptions import RayActorError

    from replay.ray_replay import ReplayActor
    from runner.ray_errors import creation_error

    replay = ReplayActor.options(num_cpus=0.1).remote(9, 3, ReplayConfig(buffer_size=10**13),
                                                      1.0)
    with pytest.raises(RayActorError) as died:
        ray.get(replay.stats.remote())
    ray.kill(replay)
    err = creation_error(died.value)
    assert isinstance(err, ValueError) and "\n" not in str(err)
    assert str(err).startswith(f"--buffer-size {10**13} needs ~") and "lower --buffer-size" \
        in str(err)


def test_resources_fit_this_instance(local_ray):
    res = resources(num_workers=3)
    total = res["learner_cpus"] + res["replay_cpus"] + 3 * res["worker_cpus"]
    assert total <= 2.0 and res["worker_cpus"] > 0 and res["learner_gpus"] == 0.0


def test_plain_sampled_path_holds_the_ratio_too(local_ray, tmp_path):
    """--no-device-replay: the reference path, batches sampled by the replay actor."""
    import dataclasses

    cfg, run_dir = tiny(tmp_path, "plain", 5540, num_workers=2, train_steps=2500)
    cfg.learner = dataclasses.replace(cfg.learner, device_replay=False)
    summary = run_distributed(cfg, run_dir)
    target = cfg.run.updates_per_step * cfg.replay.batch_size
    assert summary["perf"]["samples_per_insert"] == pytest.approx(target, rel=0.10)
    assert summary["learner_steps"] > 0 and summary["policy_version"] > 2


@pytest.fixture(scope="module")
def saved_ray_run(local_ray, tmp_path_factory):
    """A finished Ray run (default device-replay path) saved with its replay."""
    cfg, run_dir = tiny(tmp_path_factory.mktemp("keep"), "keep", 5580, num_workers=2,
                        train_steps=4000, save_replay=True)
    return cfg, run_distributed(cfg, run_dir), run_dir


def _saved(run_dir) -> dict:
    return torch.load(f"{run_dir}/checkpoints/latest.pt", weights_only=True)


def assert_resumed_at_the_ratio(summary: dict, before: dict, cfg) -> None:
    """The resumed part took --updates-per-step updates per new env step (within 10%):
    neither refused nor burst."""
    new_steps = summary["env_steps"] - before["env_steps"]
    new_updates = summary["learner_steps"] - before["learner"]["learner_steps"]
    assert new_updates == pytest.approx(cfg.run.updates_per_step * new_steps, rel=0.10)


def test_resume_with_the_saved_replay_continues_the_count(saved_ray_run):
    """The default (device replay) path: the learner's feed counters come back with the
    learner, so the resumed run keeps the ratio instead of refusing or bursting."""
    cfg, first, run_dir = saved_ray_run
    assert _saved(run_dir)["learner"]["learner_steps"] == first["learner_steps"]  # end saved
    cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, resume=True,
                                                           train_steps=8000))
    second = run_distributed(cfg, run_dir)
    assert second["env_steps"] >= 8000
    new_steps = second["env_steps"] - first["env_steps"]
    new_updates = second["learner_steps"] - first["learner_steps"]
    assert new_updates == pytest.approx(cfg.run.updates_per_step * new_steps, rel=0.10)


def test_a_resume_with_fewer_workers_and_the_replay_mirror_ahead(saved_ray_run):
    """Two resumes of a saved replay that failed for good: the replay's copy of the update
    count, snapshotted after the learner's state while both ran, could be ahead of the
    learner's ("updates_done went back" on every resume); and a replay that counted rows
    of a worker this session does not have gave a KeyError traceback. (Runs on what the
    resume above saved: a Ray checkpoint of the default path and its replay.)"""
    from runner.state import load_replay, save_replay

    cfg, _, run_dir = saved_ray_run
    path = f"{run_dir}/checkpoints/latest.pt"
    before = _saved(run_dir)
    feed = before["learner"]["feed"]
    replay = load_replay(path, before["save_id"])
    assert feed is not None and replay is not None and replay["worker_inserted"].get(1)
    replay["limiter"]["updates_done"] = feed["updates_done"] + 64
    save_replay(path, replay, before["save_id"])
    more = before["env_steps"] + 1000
    cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, resume=True, num_workers=1,
                                                           train_steps=more))
    summary = run_distributed(cfg, run_dir)
    assert summary["env_steps"] >= more
    assert_resumed_at_the_ratio(summary, before, cfg)
    # --inference trains nothing: a broken replay file does not stop it
    kept = f"{run_dir}/checkpoints/replay.pt"
    shutil.copy(kept, f"{kept}.kept")
    with open(kept, "r+b") as f:
        f.truncate(1000)
    cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, resume=False,
                                                           inference=True))
    try:
        assert run_distributed(cfg, run_dir)["test"]["episodes"] > 0
        from runner.local import run_local

        local = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, mode="local"))
        assert run_local(local, run_dir)["test"]["episodes"] > 0
    finally:  # the next test resumes with it
        os.replace(f"{kept}.kept", kept)


def test_a_ray_checkpoint_resumes_in_local_mode(saved_ray_run):
    """A Ray checkpoint has no worker noise or RNG: local mode starts fresh ones (it
    raised KeyError 'noise'), and the replay's counters keep the ratio."""
    from runner.local import run_local

    from runner.state import load_replay, save_replay

    cfg, _, run_dir = saved_ray_run
    before = _saved(run_dir)  # whatever the Ray resume above left, or the first run's end
    path = f"{run_dir}/checkpoints/latest.pt"
    replay = load_replay(path, before["save_id"])  # the mirror as a save may catch it: behind
    replay["limiter"]["updates_done"] = before["learner"]["feed"]["updates_done"] - 64
    save_replay(path, replay, before["save_id"])
    more = before["env_steps"] + 1000
    cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, resume=True, mode="local",
                                                           train_steps=more))
    summary = run_local(cfg, run_dir)
    assert summary["env_steps"] >= more
    assert_resumed_at_the_ratio(summary, before, cfg)
    # Exactly, as local mode holds it: the count goes on from the learner's own (from the
    # replay's mirror, local mode took 64 updates more)
    past_start = summary["env_steps"] - cfg.replay.min_size
    assert summary["learner_steps"] == pytest.approx(cfg.run.updates_per_step * past_start,
                                                     abs=2)
    assert _saved(run_dir)["noise"]  # the local save has them again


def test_a_ray_resume_prints_its_warnings_above_the_live_bar(saved_ray_run, monkeypatch, capsys):
    """The bar used to be drawn before the restore, whose warning then tore it:
    '[train] |        | 0.00/5.00k [00:00<?]warning: the replay restarts empty ...'. The
    test phase has a bar too (it had none: a silent wait until every worker was done)."""
    import functools
    import sys

    from runner import distributed, distributed_metrics

    cfg, _, run_dir = saved_ray_run
    more = _saved(run_dir)["env_steps"] + 500
    live = functools.partial(distributed_metrics.Progress, stream=sys.stdout, live=True)
    for module in (distributed, distributed_metrics):
        monkeypatch.setattr(module, "Progress", live, raising=False)
    cfg = dataclasses.replace(cfg, run=dataclasses.replace(
        cfg.run, resume=True, save_replay=False, train_steps=more, test_steps=300))
    summary = run_distributed(cfg, run_dir)
    assert summary["env_steps"] >= more
    out = capsys.readouterr().out.replace("\r", "\n")
    warning = out.index("warning: the replay restarts empty")
    assert "[train]" not in out[:warning] and out[warning - 1] == "\n", out[:warning + 80]
    train_frame = [line for line in out.splitlines() if line.startswith("[train] |")][-1]
    assert f"return {summary['train']['mean_return']:+.2f}" in train_frame, train_frame
    test_frame = [line for line in out.splitlines() if line.startswith("[test] |")][-1]
    assert "300/300" in test_frame and "return -" not in test_frame, test_frame
    assert f"return {summary['test']['mean_return']:+.2f}" in test_frame


def test_env_steps_are_the_transitions_received_with_decision_periods(local_ray, tmp_path):
    """Agents with decision periods 1-4 (tests/envs/sims): a worker's env steps are the
    transitions it received, all inserted (1-step), not env.step() calls x num_areas."""
    import os

    sim = os.path.join(os.path.dirname(os.path.abspath(__file__)), "envs", "sims", "Sim")
    cfg, run_dir = tiny(tmp_path, "periods", 5600, num_workers=1, train_steps=800)
    cfg.env = EnvConfig(env=sim, env_args=["--sim", "decision-periods"], num_areas=2,
                        base_port=5600)
    summary = run_distributed(cfg, run_dir)
    worker = summary["workers"][0]
    assert worker["env_steps"] == worker["inserted"] == summary["env_steps"] >= 800
    assert summary["train"]["success_rate"] is None  # no success defined for this env


def test_resumed_rates_count_only_this_sessions_updates(tmp_path, monkeypatch):
    from runner import distributed_metrics

    clock = [100.0]
    monkeypatch.setattr(distributed_metrics.time, "monotonic", lambda: clock[0])
    cfg, run_dir = tiny(tmp_path, "rates", 5990)
    monitor = distributed_metrics.Monitor(cfg, run_dir, [{"node": "n"}], {
        "worker_cpus": 0.5, "learner_cpus": 0.5, "learner_gpus": 0})
    try:
        monitor.resume_from({"env_steps": 4000, "train_episodes": 9, "wall_s": 30.0,
                             "test_wall_s": 5.0, "train_recent": [[1.0, 5, None], [3.0, 7, None]]},
                            learner_steps=3700)
        # the earlier sessions' training results stand until this one trains
        assert monitor.train_wall_s == pytest.approx(25.0)
        assert {k: monitor.train.summary()[k] for k in ("episodes", "mean_over", "mean_return")} \
            == {"episodes": 9, "mean_over": 2, "mean_return": 2.0}
        monitor.learner = {"learner_steps": 3750, "policy_version": 40, "losses": {}}
        monitor.env_steps = 4050
        clock[0] += 1.0
        monitor.report()
    finally:
        monitor.metrics.close()
    assert monitor.shown["updates_per_s"] == pytest.approx(50.0)  # it said 3,750/s
    assert monitor.shown["steps_per_s"] == pytest.approx(50.0)
    # the training time leaves out the earlier sessions' test phases
    assert monitor.metrics.train_wall_s() == pytest.approx(26.0)


def test_the_end_of_training_logs_its_last_interval_and_shows_the_tables_rates(
        tmp_path, monkeypatch):
    """A run shorter than --log-interval wrote no losses/ or perf/ to TensorBoard (every
    run lost its last interval), and the bar's last frame gave other rates than the
    table's training average."""
    import io

    from runner import distributed_metrics
    from runner.progress import Progress

    clock = [100.0]
    monkeypatch.setattr(distributed_metrics.time, "monotonic", lambda: clock[0])
    cfg, run_dir = tiny(tmp_path, "end", 5991)
    monitor = distributed_metrics.Monitor(cfg, run_dir, [{"node": "n"}], {
        "worker_cpus": 0.5, "learner_cpus": 0.5, "learner_gpus": 0})
    out = io.StringIO()
    try:
        monitor.progress = Progress(cfg.run.train_steps, "train", stream=out, live=False)
        monitor.learner = {"learner_steps": 2700, "policy_version": 9,
                           "losses": {"losses/critic_loss": 0.5}}
        monitor.env_steps = 3000
        clock[0] += 6.0
        monitor.end_training()
        monitor.metrics.writer.flush()
        logged = tags(run_dir)
    finally:
        monitor.close()
    assert {"losses/critic_loss", "charts/SPS", "perf/learner_updates_per_s"} <= logged
    assert monitor.train_wall_s == pytest.approx(6.0)
    assert "500 steps/s  450 updates/s" in out.getvalue(), out.getvalue()


def test_a_save_counts_the_rows_inserted_since_the_last_poll(local_ray, tmp_path, monkeypatch):
    """After stop_loops() the workers' last inserts land after the last poll: a save (an
    interrupt's, without --save-replay) counted only what that poll had seen."""
    from types import SimpleNamespace

    from runner import distributed

    saved = {}
    monkeypatch.setattr(distributed, "export_policy", lambda *args: None)
    monkeypatch.setattr(distributed, "save_run", lambda path, p, *replay: saved.update(p))
    monkeypatch.setattr(distributed, "keep_checkpoint", lambda *args: None)  # nothing written
    remote = lambda value: SimpleNamespace(remote=lambda: ray.put(value))  # noqa: E731
    fleet = SimpleNamespace(
        learner=SimpleNamespace(state_dict=remote({"actor": {}, "normalizer": None})),
        replay=SimpleNamespace(stats=remote({"inserted": 1300})),
        specs=[{"behavior": "B", "obs_sizes": [9], "action_size": 3}])
    monitor = SimpleNamespace(env_steps=5000, base_steps=4000, run_dir=str(tmp_path),
                              train=SimpleNamespace(count=7, saved=lambda: []),
                              wall_s=lambda: 9.0,
                              metrics=SimpleNamespace(test_wall_s=2.0))
    cfg, _ = tiny(tmp_path, "late", 5995)
    distributed.make_saver(cfg, fleet, monitor, str(tmp_path / "latest.pt"))("train")
    assert saved["env_steps"] == 5300  # the last poll had seen 1,000 of the 1,300
    # and "interrupted: checkpoint saved at N env steps" says the saved N, not the poll's
    assert monitor.env_steps == 5300


def test_a_learner_dead_at_save_time_is_one_line(local_ray, tmp_path):
    """A learner that died as Ctrl-C came: the interrupt's save raised RayActorError, which
    nothing turned into a line (a traceback)."""
    from types import SimpleNamespace

    from runner import distributed

    @ray.remote
    class Gone:
        def state_dict(self):
            return {}

    learner = Gone.remote()
    ray.kill(learner)
    fleet = SimpleNamespace(learner=learner, specs=[{}])
    cfg, _ = tiny(tmp_path, "gone", 5996)
    save = distributed.make_saver(cfg, fleet, SimpleNamespace(), str(tmp_path / "latest.pt"))
    with pytest.raises(distributed.RunAborted, match="learner actor died") as raised:
        save("train")
    assert "\n" not in str(raised.value)


def test_a_ray_run_starts_from_another_runs_networks(saved_ray_run, tmp_path):
    """--initialize-from in Ray mode: the learner takes the networks and publishes them as
    a new policy, which the workers act with (and the test phase tests)."""
    _, _, source = saved_ray_run
    trained = _saved(source)["learner"]
    cfg, run_dir = tiny(tmp_path, "init", 5700, num_workers=2, train_steps=0,
                        initialize_from=f"{source}/checkpoints/latest.pt")
    summary = run_distributed(cfg, run_dir)
    assert summary["test"]["episodes"] > 0
    started = _saved(run_dir)["learner"]
    for name in ("actor", "critic", "actor_target", "critic_target"):
        for key, value in trained[name].items():
            assert torch.equal(started[name][key], value), (name, key)
    assert started["learner_steps"] == 0 and started["actor_opt"]["state"] == {}
    assert started["policy_version"] == summary["policy_version"] == 2  # initial, loaded


def test_the_summary_has_the_sessions_policy_lag(two_worker_run):
    """summary.json's policy lag was the last poll's, None when that poll saw no batch
    (usually, at the end of training): now the mean over every batch of the session."""
    _, summary, run_dir = two_worker_run
    lag = summary["perf"]["policy_lag"]
    assert lag is not None and 0 < lag < summary["policy_version"]
    assert json.loads(open(f"{run_dir}/summary.json").read())["perf"]["policy_lag"] == lag


def test_the_end_of_training_writes_no_zero_rate_after_a_line_just_logged(
        tmp_path, monkeypatch):
    """The poll after finish_loops() often logs a line at the final env step; the end of
    training then reported again, found no new steps, and every run's charts/SPS,
    perf/env_steps_per_s and perf/learner_updates_per_s ended on a point at 0."""
    from runner import distributed_metrics

    clock = [100.0]
    monkeypatch.setattr(distributed_metrics.time, "monotonic", lambda: clock[0])
    cfg, run_dir = tiny(tmp_path, "zero", 5992)
    monitor = distributed_metrics.Monitor(cfg, run_dir, [{"node": "n"}], {
        "worker_cpus": 0.5, "learner_cpus": 0.5, "learner_gpus": 0})
    logged = []
    monkeypatch.setattr(monitor.metrics, "scalars", lambda values, step: logged.append(values))
    try:
        monitor.learner = {"learner_steps": 2700, "policy_version": 9, "losses": {}}
        monitor.env_steps = 3000
        clock[0] += 6.0
        monitor.report()  # the post-finish poll's line
        clock[0] += 0.01
        monitor.end_training()
    finally:
        monitor.close()
    assert [v["charts/SPS"] for v in logged] == [pytest.approx(500.0)]


def test_the_device_path_publishes_every_publish_interval_updates(local_ray):
    """The device-replay loop trains in chunks of up to 64 updates and checked the
    publish interval only after a chunk: with --publish-interval 50 a learner that had
    data waiting published every 64 updates, not every 50 (policy versions, acting lag)."""
    import numpy as np

    from learner.config import LearnerConfig
    from learner.ray_learner import LearnerActor
    from replay.ray_replay import ReplayActor

    cfg = ReplayConfig(batch_size=32, learning_starts=0)  # min_size 32
    learner = LearnerActor.options(num_cpus=0.1).remote(LearnerConfig(device="cpu"),
                                                        cfg, 1.0, 50, 0)
    replay = ReplayActor.options(num_cpus=0.1).remote(9, 3, cfg, 1.0)
    ray.get(learner.setup.remote(9, 3))  # publishes version 1, the initial actor
    n = 32 + 640  # 640 updates owed
    rng = np.random.default_rng(0)
    ray.get(replay.insert.remote({
        "obs": rng.normal(size=(n, 9)).astype(np.float32),
        "action": rng.uniform(-1, 1, (n, 3)).astype(np.float32),
        "reward": rng.normal(size=n).astype(np.float32),
        "next_obs": rng.normal(size=(n, 9)).astype(np.float32),
        "terminated": np.zeros(n, np.float32)}, 0))
    ray.get(learner.finish.remote())
    assert ray.get(learner.run.remote(replay)) == 640
    version, _ = ray.get(learner.latest_weights.remote(-1))
    ray.kill(learner)
    ray.kill(replay)
    # one publication per 50 updates (12), the last 40 updates published at the end (1)
    assert version == 1 + 12 + 1


def test_a_restarted_worker_is_reported_on_its_new_node(tmp_path):
    """Ray placed a worker whose node was lost on another one; summary.json kept naming
    the dead node."""
    from runner import distributed_metrics

    cfg, run_dir = tiny(tmp_path, "moved", 5993)
    monitor = distributed_metrics.Monitor(cfg, run_dir, [{"node": "lost"}], {
        "worker_cpus": 0.5, "learner_cpus": 0.5, "learner_gpus": 0})
    try:
        monitor.worker_restarted(0, "other")
    finally:
        monitor.close()
    assert monitor.workers[0]["node"] == "other" and monitor.workers[0]["actor_restarts"] == 1
