"""--resume with new --actor-lr/--critic-lr: the flags win over the saved optimizer state."""

import numpy as np

from learner.config import LearnerConfig
from learner.learner import Learner

OBS, ACT = 5, 3


def batch(b: int = 16) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"obs": rng.standard_normal((b, OBS), dtype=np.float32),
            "action": rng.uniform(-1, 1, (b, ACT)).astype(np.float32),
            "reward": rng.standard_normal(b).astype(np.float32),
            "next_obs": rng.standard_normal((b, OBS), dtype=np.float32),
            "terminated": np.zeros(b, np.float32)}


def learner(actor_lr: float, critic_lr: float) -> Learner:
    cfg = LearnerConfig(hidden_size=8, device="cpu", actor_lr=actor_lr, critic_lr=critic_lr)
    return Learner(OBS, ACT, cfg)


def lrs(opt) -> list[float]:
    return [group["lr"] for group in opt.param_groups]


def test_resume_uses_the_configured_learning_rates_not_the_saved_ones():
    saved = learner(1e-3, 2e-3)
    saved.update(batch())  # the optimizers hold state (moments, step) worth keeping
    resumed = learner(1e-5, 3e-5)
    resumed.load_state_dict(saved.state_dict())
    assert lrs(resumed.state.actor_opt) == [1e-5]
    assert lrs(resumed.state.critic_opt) == [3e-5]
    # the moments still come from the checkpoint: only the learning rates follow the flags
    step = resumed.state.critic_opt.state_dict()["state"][0]["step"]
    assert float(step) == 1.0
    # and the update (rebuilt after the load) steps by them: Adam moves each weight by
    # about lr, so the saved 2e-3 would move the critic ~60 times further than 3e-5 does
    before = [p.detach().clone() for p in resumed.state.critic.parameters()]
    resumed.update(batch())
    moved = max((p - q).abs().max().item()
                for p, q in zip(resumed.state.critic.parameters(), before))
    assert 0 < moved < 3e-4
