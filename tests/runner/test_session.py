"""The train-then-test flow both modes share: what an interruption leaves behind."""

import pytest

from runner.config import Config
from runner.session import run_session


def interrupted_session(capsys, save):
    def train():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_session(Config(), restore=lambda: "train", train=train, test=lambda: None,
                    save=save, env_steps=lambda: 700)
    return capsys.readouterr().out


def test_ctrl_c_saves_and_says_so(capsys):
    saved = []
    out = interrupted_session(capsys, save=saved.append)
    assert saved == ["train"] and "checkpoint saved at 700 env steps" in out


def test_a_second_ctrl_c_during_the_save_says_which_checkpoint_stays(capsys):
    """It used to end with exit 130 and no word that the save had been skipped."""
    def save(phase):
        raise KeyboardInterrupt

    out = interrupted_session(capsys, save=save)
    assert "interrupted again while saving" in out and "checkpoint saved" not in out


def test_ctrl_c_during_the_final_save_says_what_stays(capsys):
    """It said only 'interrupted: envs closed': no word of the checkpoint or of --resume."""
    def save(phase):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_session(Config(), restore=lambda: "train", train=lambda: None, test=lambda: None,
                    save=save, env_steps=lambda: 700)
    out = capsys.readouterr().out
    assert "the checkpoint of the end of training stays; --resume tests it again" in out


def test_a_resume_that_has_nothing_to_do_changes_nothing(capsys):
    """--resume of a finished run with a smaller --train-steps said 'already finished' but
    had rewritten the run's configuration.yaml with this session's flags first."""
    import dataclasses

    cfg = Config()
    cfg.run = dataclasses.replace(cfg.run, resume=True, train_steps=100)
    calls = []
    ran = run_session(cfg, restore=lambda: "done", train=lambda: calls.append("train"),
                      test=lambda: calls.append("test"), save=calls.append,
                      env_steps=lambda: 300, started=lambda: calls.append("started"))
    assert ran is False and calls == [] and "already finished (300 env steps)" in \
        capsys.readouterr().out


def test_a_ctrl_c_after_the_finished_checkpoint_is_tested_again_on_resume(tmp_path, capsys):
    """A Ctrl-C during the finished run's ONNX export or its summary left a checkpoint that
    said "done" and no summary.json: --resume said "already finished", though the line had
    said it would test again, and the run's test results were never written."""
    import dataclasses
    import json

    import torch

    from runner.session import finished_before_start

    checkpoint = tmp_path / "checkpoints" / "latest.pt"
    checkpoint.parent.mkdir()
    torch.save({"format": "drone-ddpg-checkpoint", "format_version": 1, "learner": {},
                "env_steps": 300, "phase": "done", "train_episodes": 1, "wall_s": 1.0},
               checkpoint)
    cfg = Config()
    cfg.run = dataclasses.replace(cfg.run, resume=True, train_steps=300)

    def resume():
        calls = []
        ran = run_session(cfg, restore=lambda: "done", train=lambda: calls.append("train"),
                          test=lambda: calls.append("test"), save=calls.append,
                          env_steps=lambda: 300, checkpoint=str(checkpoint))
        return ran, calls

    assert finished_before_start(cfg, str(checkpoint)) is None
    assert resume() == (True, ["test", "done"])
    (tmp_path / "summary.json").write_text(json.dumps({"env_steps": 100}))  # an earlier one
    assert resume() == (True, ["test", "done"])
    (tmp_path / "summary.json").write_text(json.dumps({"env_steps": 300}))  # its own
    assert "already finished (300 env steps)" in (finished_before_start(cfg, str(checkpoint))
                                                  or "")
    assert resume() == (False, [])
    capsys.readouterr()
