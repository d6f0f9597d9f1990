"""Local mode's loop (runner/local.py), on the Drone in this process."""

import torch

from runner.cli import parse
from runner.local import build, close, train
from tests.helpers import tags


def one_drone(*flags: str) -> list[str]:
    """Local mode, one worker with one area: the cheapest run that exercises the loop."""
    return ["--mode", "local", "--num-workers", "1", "--num-areas", "1", "--base-port", "5477",
            *flags]


def assert_acts_with_the_learners_actor(run) -> None:
    acting = run.workers[0].actor.state_dict()
    for key, value in run.learner.state.actor.state_dict().items():
        torch.testing.assert_close(acting[key], value)


def test_a_fresh_run_acts_with_the_learners_initial_actor(tmp_path):
    """Before the first update the workers act with the learner's initial actor (what
    --warmup-actions policy promises, and what the first round after learning starts uses
    with --overlap-envs), not with a worker's own random initialization."""
    cfg = parse(one_drone("--train-steps", "5", "--learning-starts", "100", "--test-steps",
                          "0", "--warmup-actions", "policy"))
    run = build(cfg, str(tmp_path))
    try:
        train(run)
        assert run.learner.learner_steps == 0
        assert_acts_with_the_learners_actor(run)
    finally:
        close(run)


def test_a_run_without_training_tests_the_learners_actor(tmp_path):
    """--train-steps 0: the test phase acted with the workers' own random initialization,
    not the actor that the checkpoint and the ONNX hold."""
    from runner import local

    cfg = parse(one_drone("--train-steps", "0", "--test-steps", "5"))
    run = build(cfg, str(tmp_path))
    try:
        local.test(run)
        assert_acts_with_the_learners_actor(run)
    finally:
        close(run)


def test_a_dead_env_process_worker_does_not_cost_the_checkpoint(tmp_path):
    """--overlap-envs: a SIGTERM to the whole process group killed the child too, and
    then every save failed on its missing noise state: the learner's progress was lost.
    A dead child is started again (its fresh noise state is saved); past the restart
    limits the checkpoint goes without the workers' states."""
    import os
    import signal
    import time

    from runner import local

    cfg = parse(one_drone("--overlap-envs", "--train-steps", "0", "--max-lifetime-restarts",
                          "0"))
    run = build(cfg, str(tmp_path))
    try:
        child = run.workers[0]._process
        os.kill(child.pid, signal.SIGTERM)  # the trainer's to handle: the child stays
        time.sleep(0.5)
        assert child.is_alive()
        child.kill()  # an OOM kill
        child.join()
        local.save(run, "train")
    finally:
        close(run)
    payload = torch.load(run.checkpoint_path, weights_only=True)
    assert payload["learner"]["actor"] and "noise" not in payload


def test_a_phase_bar_ends_on_the_phase_results(tmp_path, monkeypatch):
    """A run that ends before its first progress line used to leave the live bar's last
    frame at '- steps/s - updates/s return -'; a longer one at the values of its last line
    (up to --log-interval old), while the table below gave the final ones. Its rates are
    the table's training average (they were an average over another span), and the last
    interval's scalars reach TensorBoard (a run shorter than --log-interval had none)."""
    import functools
    import io

    from runner import local

    frames = io.StringIO()
    monkeypatch.setattr(local, "Progress",
                        functools.partial(local.Progress, stream=frames, live=True))
    cfg = parse(one_drone("--train-steps", "150", "--learning-starts", "20", "--batch-size",
                          "8", "--test-steps", "100", "--max-step", "30", "--log-interval",
                          "600"))
    run = build(cfg, str(tmp_path))
    try:
        train(run)
        run.metrics.writer.flush()
        logged = tags(tmp_path)
        average = f"{run.env_steps / run.train_wall_s:.0f} steps/s"
        local.test(run)
        results = {phase: f"return {stats.summary()['mean_return']:+.2f}"
                   for phase, stats in (("train", run.train), ("test", run.test))}
    finally:
        close(run)
    assert {"losses/critic_loss", "losses/actor_loss", "charts/SPS"} <= logged
    drawn = [line for line in frames.getvalue().replace("\r", "\n").splitlines() if line]
    train_frame = [line for line in drawn if line.startswith("[train]")][-1]
    test_frame = drawn[-1]
    assert "- steps/s" not in train_frame and " updates/s" in train_frame, train_frame
    assert "[test]" in test_frame and "- steps/s" not in test_frame, test_frame
    assert results["train"] in train_frame and results["test"] in test_frame
    assert average in train_frame, (average, train_frame)


def test_the_test_phase_starts_fresh_episodes(tmp_path):
    """Training ends 15 steps into a 30-step episode. The test phase resets the env: its
    first episodes used to be those unfinished ones, ending after 15 greedy steps with
    the return their exploring steps had gathered."""
    from runner import local

    cfg = parse(one_drone("--train-steps", "45", "--learning-starts", "1000", "--test-steps",
                          "25", "--max-step", "30"))
    run = build(cfg, str(tmp_path))
    try:
        train(run)
        assert run.train.summary()["episodes"] == 1  # and one 15 steps in
        local.test(run)
        assert run.test.summary()["episodes"] == 0  # 25 steps of a fresh 30-step episode
    finally:
        close(run)


def test_a_resume_keeps_the_saved_policy_version(tmp_path):
    """Restoring republishes the saved policy to the workers under its own version: it
    was counted as one more policy at every resume. The workers' OU noise and RNG come
    back as saved too (a fresh worker has the same seed, but not the advanced state)."""
    import numpy as np

    from runner import local

    args = one_drone("--train-steps", "60", "--learning-starts", "20", "--batch-size", "8",
                     "--test-steps", "0", "--noise", "ou")
    run = build(parse(args), str(tmp_path))
    try:
        train(run)  # saves at its end
        saved = run.learner.policy_version
        assert saved > 1
        worker_state = run.workers[0].state_dict()
        assert len(worker_state["noise"]["agent_ids"]) == 1  # the area's agent is mid-episode
    finally:
        close(run)
    run = build(parse(args + ["--resume"]), str(tmp_path))
    try:
        assert run.workers[0].state_dict()["rng"] != worker_state["rng"]  # fresh, as seeded
        local.restore(run)
        assert run.learner.policy_version == run.workers[0].policy_version == saved
        restored = run.workers[0].state_dict()
        assert restored["rng"] == worker_state["rng"]
        for key in ("agent_ids", "states"):
            np.testing.assert_array_equal(restored["noise"][key], worker_state["noise"][key])
    finally:
        close(run)


def test_the_test_phase_acts_with_the_normalizer_it_saves(tmp_path):
    """--normalize: statistics merged after the last update (here no update at all) reach
    the workers before the test phase, so the policy tested is the one saved and exported;
    the workers kept the initial, empty statistics."""
    cfg = parse(one_drone("--normalize", "--train-steps", "40", "--learning-starts", "100",
                          "--test-steps", "0"))
    run = build(cfg, str(tmp_path))
    try:
        train(run)
        saved = run.learner.state.normalizer.state_dict()
        assert saved["count"].item() == 40
        for key, value in run.workers[0].normalizer.state_dict().items():
            torch.testing.assert_close(value, saved[key])
    finally:
        close(run)


def test_overlapped_rounds_carry_every_new_actor(tmp_path):
    """--overlap-envs: once learning starts, every round acts with a newer actor (the one
    before the update it overlaps: one update of lag, no more), and the test phase acts
    with the final one. The new weights travel in the round's own thread."""
    import numpy as np

    from runner import local

    cfg = parse(one_drone("--overlap-envs", "--train-steps", "40", "--learning-starts", "10",
                          "--batch-size", "8", "--test-steps", "0"))
    run = build(cfg, str(tmp_path))
    try:
        train(run)
        rows, _, _ = run.replay.buffer.rows_since(0, 100)
        versions = rows["policy_version"]
        assert len(versions) == 40
        assert np.all(np.diff(versions[12:]) == 1), versions
        (rollout,) = local.step_workers(run, "greedy")
        assert set(rollout.transitions["policy_version"]) == {run.learner.policy_version}
    finally:
        close(run)


def test_weights_published_in_the_last_round_reach_the_test_phase(tmp_path):
    """--overlap-envs, half an update per step: the last round's weights were published
    with no round left to carry them and no update after them to publish again; the test
    phase acted with the actor before them."""
    from runner import local

    cfg = parse(one_drone("--overlap-envs", "--train-steps", "41", "--learning-starts", "10",
                          "--batch-size", "8", "--test-steps", "0", "--updates-per-step", "0.5"))
    run = build(cfg, str(tmp_path))
    try:
        train(run)
        (rollout,) = local.step_workers(run, "greedy")
        assert set(rollout.transitions["policy_version"]) == {run.learner.policy_version}
    finally:
        close(run)


def test_critic_only_updates_publish_nothing(tmp_path):
    """--overlap-envs with TD3's delay 2: every other update leaves the actor as it was, and
    sending it again cost each step a weight check and a pipe's worth of copying. Rounds
    get a new actor every second round, each time it moved."""
    import numpy as np

    cfg = parse(one_drone("--overlap-envs", "--train-steps", "40", "--learning-starts", "10",
                          "--batch-size", "8", "--test-steps", "0", "--policy-delay", "2"))
    run = build(cfg, str(tmp_path))
    try:
        train(run)
        rows, _, _ = run.replay.buffer.rows_since(0, 100)
        steps = np.diff(rows["policy_version"][12:])
        assert set(steps.tolist()) == {0, 1} and np.all(steps[:-1] + steps[1:] == 1), steps
    finally:
        close(run)


def test_the_summary_counts_the_env_restarts(tmp_path):
    """README: restarts show in summary.json; local mode's summary had none (Ray mode's
    only per worker)."""
    import json

    from runner.local import run_local

    cfg = parse(one_drone("--train-steps", "40", "--test-steps", "0", "--results-dir",
                          str(tmp_path), "--restarts-rate-limit-n", "10", "--env-args",
                          "--fault-nan-at-step", "15"))
    summary = run_local(cfg, str(tmp_path))
    assert summary["env_restarts"] >= 2  # NaN at steps 15 and 30 (15 of the new env)
    assert json.loads((tmp_path / "summary.json").read_text())["env_restarts"] == \
        summary["env_restarts"]


def test_a_resumed_prioritized_run_goes_on_from_its_beta(tmp_path):
    """Resumed without its replay, PER's beta went back to 0.4 (the replay's count
    restarted) and ended the longer run near 0.7: never the 1 that makes it unbiased."""
    import dataclasses

    from runner.local import run_local

    cfg = parse(one_drone("--prioritized", "--train-steps", "400", "--learning-starts", "100",
                          "--batch-size", "16", "--test-steps", "0", "--results-dir",
                          str(tmp_path)))
    run_local(cfg, str(tmp_path))
    path = tmp_path / "checkpoints" / "latest.pt"
    assert torch.load(path, weights_only=True)["per_beta"] == 1.0  # its schedule ran out
    longer = dataclasses.replace(cfg.run, resume=True, train_steps=700)
    run_local(dataclasses.replace(cfg, run=longer), str(tmp_path))
    assert torch.load(path, weights_only=True)["per_beta"] == 1.0


def test_the_end_of_training_writes_no_zero_rate_after_a_line_just_logged(tmp_path):
    """When the last round's line was due, the report after the loop found no new steps
    and ended the run's charts/SPS and perf/learner_updates_per_s curves on a 0."""
    cfg = parse(one_drone("--train-steps", "40", "--learning-starts", "10", "--batch-size",
                          "8", "--test-steps", "0", "--log-interval", "1e-9",
                          "--transport", "in-process"))
    run = build(cfg, str(tmp_path))
    logged = []
    run.metrics.scalars = lambda values, step: logged.append(values)
    try:
        train(run)
    finally:
        close(run)
    assert logged and all(v["charts/SPS"] > 0 for v in logged), [v["charts/SPS"] for v in logged]


def test_test_episodes_are_logged_at_the_end_of_training(tmp_path):
    """Ray mode logs every test episode at the final training env step (what plot.py and
    its test band rely on); local mode logged each at that step plus the test steps of its
    round, so they landed past the end of training, at several steps."""
    import csv

    from runner import local

    cfg = parse(one_drone("--train-steps", "0", "--test-steps", "40", "--max-step", "10",
                          "--transport", "in-process"))
    run = build(cfg, str(tmp_path))
    try:
        local.test(run)
    finally:
        close(run)
    with open(tmp_path / "episodes.csv", encoding="utf-8") as f:
        steps = {row["env_steps"] for row in csv.DictReader(f) if row["phase"] == "test"}
    assert steps == {"0"}


def test_the_training_average_leaves_out_earlier_sessions_test_phases(tmp_path, monkeypatch):
    """A resumed run's training average (summary.json's train_wall_s, the table's steps/s)
    counted the earlier sessions' test phases as training time: their checkpoints kept
    only the whole wall time."""
    import dataclasses
    import json
    import time

    from runner import local

    slow = 2.0
    untimed = local.test
    monkeypatch.setattr(local, "test", lambda run: (time.sleep(slow), untimed(run)))
    cfg = parse(one_drone("--train-steps", "40", "--learning-starts", "10", "--batch-size",
                          "8", "--test-steps", "20", "--results-dir", str(tmp_path),
                          "--transport", "in-process"))
    local.run_local(cfg, str(tmp_path))
    saved = torch.load(tmp_path / "checkpoints" / "latest.pt", weights_only=True)
    assert saved["test_wall_s"] >= slow
    monkeypatch.setattr(local, "test", untimed)
    longer = dataclasses.replace(cfg.run, resume=True, train_steps=80)
    local.run_local(dataclasses.replace(cfg, run=longer), str(tmp_path))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["wall_s"] - summary["train_wall_s"] >= slow, summary


def test_a_resume_that_only_tests_reports_the_earlier_training(tmp_path, monkeypatch, capsys):
    """Stopped in its test phase, a run resumed to test again: its table read 'train
    return - (last 0 of N episodes)' and 'steps/s 23 (run average)' (summary.json: a null
    train return and train_wall_s), under a warning that the replay restarts empty, though
    nothing was left to train."""
    import dataclasses
    import json

    import pytest

    from runner import local

    cfg = parse(one_drone("--train-steps", "60", "--learning-starts", "10", "--batch-size",
                          "8", "--test-steps", "20", "--max-step", "10", "--results-dir",
                          str(tmp_path), "--transport", "in-process"))
    untimed = local.test

    def interrupted(run):
        trained.update(run.train.summary(), wall=run.train_wall_s)
        raise KeyboardInterrupt

    trained: dict = {}
    monkeypatch.setattr(local, "test", interrupted)
    with pytest.raises(KeyboardInterrupt):
        local.run_local(cfg, str(tmp_path))
    monkeypatch.setattr(local, "test", untimed)
    capsys.readouterr()
    summary = local.run_local(dataclasses.replace(cfg, run=dataclasses.replace(
        cfg.run, resume=True)), str(tmp_path))
    assert "replay restarts empty" not in capsys.readouterr().out
    assert trained["episodes"] >= 5 and summary["train"]["episodes"] == trained["episodes"]
    assert summary["train"]["mean_return"] == pytest.approx(trained["mean_return"])
    assert summary["train"]["mean_over"] == trained["mean_over"]
    assert summary["train_wall_s"] == pytest.approx(trained["wall"], abs=1.0)
    assert json.loads((tmp_path / "summary.json").read_text())["train"] == summary["train"]
