"""Our update against Stable-Baselines3's on the same weights and the same batches.

bench/mujoco.py compares returns, which vary a lot between seeds at short budgets; this
compares the math itself. Both implementations start from the same weights (ours are
copied into SB3's networks), take the same sequence of batches, and after every update
the largest difference between any of their parameters (actor, critics, both targets) is
printed. Target policy smoothing is off on both sides (its noise comes from different
random streams; tests/learner/test_td3.py pins it), everything else is the MuJoCo setup:
256-256, Adam 3e-4, gamma 0.99, tau 0.005, the action at the critic's input; TD3 adds twin
critics and the actor and targets moving on every 2nd update. A negative control (our TD3 with the
actor moving on every update) shows what a real mismatch looks like.

    .venv/bin/python -m bench.sb3_parity            # needs `make install-bench`

Writes bench/results/sb3_parity.json (every update's largest difference, per algorithm).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os

import gymnasium
import numpy as np
import torch

from bench.sb3_run import quiet
from learner.config import LearnerConfig
from learner.files import write_atomic
from learner.learner import Learner

OBS, ACT, BATCH = 17, 6, 256  # HalfCheetah's sizes
RESULTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench",
                       "results", "sb3_parity.json")


def sb3_model(algo: str):
    from stable_baselines3 import DDPG, TD3

    space = gymnasium.spaces.Box(-np.inf, np.inf, (OBS,), np.float32)
    env = _SpecOnly(space, gymnasium.spaces.Box(-1.0, 1.0, (ACT,), np.float32))
    common = dict(learning_rate=3e-4, batch_size=BATCH, tau=0.005, gamma=0.99,
                  policy_kwargs={"net_arch": [256, 256]}, device="cpu", seed=0)
    if algo != "ddpg":
        return TD3("MlpPolicy", env, policy_delay=2, target_policy_noise=0.0, **common)
    return DDPG("MlpPolicy", env, **common)


class _SpecOnly(gymnasium.Env):
    """An env with the right spaces; SB3 needs one to build its networks, never steps it."""

    def __init__(self, observation_space, action_space):
        self.observation_space, self.action_space = observation_space, action_space


# The negative control: our TD3 with its actor moving on every update, against SB3's TD3
# (every 2nd). It must come out DIFFERENT, or the comparison could not see a real mismatch.
CONTROL = "control_td3_actor_every_update"
ALGOS = ("ddpg", "td3", CONTROL)


def ours(algo: str) -> Learner:
    td3 = algo != "ddpg"
    cfg = LearnerConfig(hidden_size=256, actor_lr=3e-4, critic_lr=3e-4, gamma=0.99, tau=0.005,
                        critic_action_layer=1, twin_critics=td3,
                        policy_delay=2 if algo == "td3" else 1,
                        target_noise=0.0, device="cpu")
    return Learner(OBS, ACT, cfg, seed=0)


def pairs(learner: Learner, model) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(ours, SB3's) for every parameter: actor, critic(s), and both targets."""
    s, p = learner.state, model.policy
    critics = list(s.critic.children()) if hasattr(s.critic, "q1") else [s.critic]
    targets = (list(s.critic_target.children()) if hasattr(s.critic_target, "q1")
               else [s.critic_target])

    def mlp(net, seq):  # ours: fc1, fc2, head; SB3: Sequential(Linear, ReLU, ...) at 0, 2, 4
        return [(a, b) for a, b in zip(net.parameters(), seq.parameters(), strict=True)]

    out = mlp(s.actor, p.actor.mu) + mlp(s.actor_target, p.actor_target.mu)
    for ours_q, sb3_q in zip(critics, p.critic.q_networks, strict=True):
        out += mlp(ours_q, sb3_q)
    for ours_q, sb3_q in zip(targets, p.critic_target.q_networks, strict=True):
        out += mlp(ours_q, sb3_q)
    return out


def batches(count: int, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    return [{"obs": rng.normal(size=(BATCH, OBS)).astype(np.float32),
             "action": rng.uniform(-1, 1, (BATCH, ACT)).astype(np.float32),
             "reward": rng.normal(size=BATCH).astype(np.float32),
             "next_obs": rng.normal(size=(BATCH, OBS)).astype(np.float32),
             "terminated": (rng.random(BATCH) < 0.1).astype(np.float32)}
            for _ in range(count)]


def sb3_step(model, batch: dict[str, np.ndarray]) -> None:
    """One SB3 gradient step on exactly this batch (its replay's sampling is bypassed)."""
    from stable_baselines3.common.type_aliases import ReplayBufferSamples

    def t(x):
        return torch.as_tensor(x)
    fixed = ReplayBufferSamples(t(batch["obs"]), t(batch["action"]), t(batch["next_obs"]),
                                t(batch["terminated"])[:, None], t(batch["reward"])[:, None])
    model.replay_buffer.sample = lambda *args, **kwargs: fixed
    model.train(gradient_steps=1, batch_size=BATCH)


def compare(algo: str, steps: int) -> list[float]:
    """The largest parameter difference after each update."""
    learner, model = ours(algo), quiet(sb3_model(algo))
    with torch.no_grad():
        for mine, theirs in pairs(learner, model):
            theirs.copy_(mine)
    diffs = []
    for i, batch in enumerate(batches(steps, np.random.default_rng(0)), 1):
        learner.update(batch)
        sb3_step(model, batch)
        diffs.append(max((a - b).abs().max().item() for a, b in pairs(learner, model)))
        print(f"{algo} update {i}: largest parameter difference {diffs[-1]:.2e}")
    return diffs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=8, help="updates per algorithm")
    args = p.parse_args()
    torch.set_num_threads(1)
    diffs = {algo: compare(algo, args.steps) for algo in ALGOS}
    for algo, per_update in diffs.items():
        verdict = "same" if max(per_update) < 1e-5 else "DIFFERENT"
        print(f"{algo}: after {args.steps} updates, largest difference {max(per_update):.2e} "
              f"({verdict})")
    out = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "updates": args.steps, "largest_difference_per_update": diffs,
           "largest_difference": {algo: max(d) for algo, d in diffs.items()}}
    write_atomic(RESULTS, json.dumps(out, indent=1))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
