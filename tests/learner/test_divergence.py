"""A learner whose weights went NaN or Inf (a learning rate far too high) refuses to hand
them out: not to the workers, not to a checkpoint; a checkpoint that holds such weights is
refused on load. One line each, naming the fix."""

import math

import numpy as np
import pytest
import torch

from learner.checkpoint import CheckpointError
from learner.config import LearnerConfig
from learner.learner import Learner

OBS, ACT = 5, 3


def learner() -> Learner:
    return Learner(OBS, ACT, LearnerConfig(hidden_size=8, device="cpu"))


def poison(net: torch.nn.Module, value: float = math.nan) -> None:
    with torch.no_grad():
        next(net.parameters()).view(-1)[0] = value


def one_line_error(kind, call) -> str:
    with pytest.raises(kind) as err:
        call()
    message = str(err.value)
    assert "\n" not in message
    return message


def test_publishing_non_finite_weights_is_refused():
    learn = learner()
    learn.learner_steps = 12
    poison(learn.state.critic, math.inf)
    message = one_line_error(ValueError, learn.publish_weights)
    assert message.startswith("training diverged (non-finite critic weights at learner step 12)")
    assert "--actor-lr/--critic-lr" in message and "--resume" in message
    assert learn.policy_version == 0  # nothing was published


def test_saving_non_finite_weights_is_refused_and_names_every_culprit():
    learn = learner()
    poison(learn.state.actor)
    poison(learn.state.critic_target)
    message = one_line_error(ValueError, learn.state_dict)
    assert "non-finite actor/critic_target weights" in message


def test_finite_weights_publish_and_save():
    learn = learner()
    weights, version = learn.publish_weights(critic=True)
    assert version == 1 and all(torch.isfinite(v).all() for v in weights["actor"].values())
    assert learn.state_dict()["learner_steps"] == 0


def test_a_checkpoint_with_non_finite_weights_is_refused_on_load():
    """A checkpoint written before divergence was caught at save time."""
    saved = learner()
    state = saved.state_dict()
    state["actor"] = {k: torch.full_like(v, np.nan) for k, v in state["actor"].items()}
    target = learner()
    before = [p.clone() for p in target.state.actor.parameters()]
    message = one_line_error(CheckpointError, lambda: target.load_state_dict(state))
    assert "non-finite" in message and "--force" in message
    for p, q in zip(target.state.actor.parameters(), before):
        assert torch.equal(p, q)  # refused before anything was loaded


def test_huge_but_finite_weights_are_not_refused():
    """The fast check sums the weights; a sum that overflows is not a diverged network."""
    learn = learner()
    with torch.no_grad():
        next(learn.state.actor.parameters()).view(-1)[:4] = 3e38  # their sum is +Inf
    _, version = learn.publish_weights()
    assert version == 1
