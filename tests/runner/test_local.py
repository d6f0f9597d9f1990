"""Local mode's loop (runner/local.py), on the Drone in this process."""

import torch

from runner.config import parse
from runner.local import build, close, train


def test_a_fresh_run_acts_with_the_learners_initial_actor(tmp_path):
    """Before the first update the workers act with the learner's initial actor (what
    --warmup-actions policy promises, and what the first round after learning starts uses
    with --overlap-envs), not with a worker's own random initialization."""
    cfg = parse(["--mode", "local", "--num-workers", "1", "--num-areas", "1",
                 "--train-steps", "5", "--learning-starts", "100", "--test-steps", "0",
                 "--warmup-actions", "policy", "--base-port", "5477"])
    run = build(cfg, str(tmp_path))
    try:
        train(run)
        assert run.learner.learner_steps == 0
        acting = run.workers[0].actor.state_dict()
        for key, value in run.learner.state.actor.state_dict().items():
            torch.testing.assert_close(acting[key], value)
    finally:
        close(run)
