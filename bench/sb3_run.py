"""One Stable-Baselines3 run for bench/mujoco.py, in its own process: train, then evaluate.

    .venv/bin/python -m bench.sb3_run --algo td3 --task HalfCheetah-v5 --seed 0 \\
        --budget 30000 --learning-starts 1500 --out run.json

The same hyperparameters as ours (configs/mujoco.yaml and --preset td3): 256-256 networks,
Adam 3e-4, batch 256, gamma 0.99, tau 0.005, Gaussian exploration 0.1 on the [-1, 1] action
scale, one gradient step per env step, one torch thread; TD3 adds SB3's (= the paper's)
policy delay 2 and target smoothing 0.2 clipped at 0.5, DDPG is SB3's DDPG (one critic, no
delay, no smoothing). The result is the mean return of 10 greedy episodes after training,
the training episodes' (env step, return) and the training wall time. Benchmark-only: the
trainer never imports SB3 (`pip install -e ".[bench]"`).
"""

from __future__ import annotations

import argparse
import json
import time

import gymnasium
import numpy as np
import torch

EVAL_EPISODES = 10


def make_model(algo: str, env, seed: int, learning_starts: int):
    from stable_baselines3 import DDPG, TD3
    from stable_baselines3.common.noise import NormalActionNoise

    size = env.action_space.shape[0]
    common = dict(learning_rate=3e-4, buffer_size=1_000_000, learning_starts=learning_starts,
                  batch_size=256, tau=0.005, gamma=0.99, train_freq=1, gradient_steps=1,
                  action_noise=NormalActionNoise(np.zeros(size), 0.1 * np.ones(size)),
                  policy_kwargs={"net_arch": [256, 256]}, seed=seed, device="cpu", verbose=0)
    if algo == "td3":
        return quiet(TD3("MlpPolicy", env, policy_delay=2, target_policy_noise=0.2,
                         target_noise_clip=0.5, **common))
    return quiet(DDPG("MlpPolicy", env, **common))


def quiet(model):
    """`model` logging nowhere: SB3's default logger leaves an empty tempdir/SB3-<time>
    folder behind for every run."""
    from stable_baselines3.common.logger import Logger

    model.set_logger(Logger(None, []))
    return model


def evaluate(model, task: str, seed: int) -> list[float]:
    """Returns of EVAL_EPISODES greedy episodes on a fresh env."""
    env = gymnasium.make(task)
    returns = []
    for k in range(EVAL_EPISODES):
        obs, _ = env.reset(seed=10_000 + 100 * seed + k)
        done, total = False, 0.0
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return returns


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--algo", choices=["td3", "ddpg"], required=True)
    p.add_argument("--task", required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--budget", type=int, required=True)
    p.add_argument("--learning-starts", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--torch-threads", type=int, default=1,
                   help="1: as our learner (--torch-threads 1), and two jobs share 2 cores")
    args = p.parse_args()
    torch.set_num_threads(args.torch_threads)
    from stable_baselines3.common.monitor import Monitor

    env = Monitor(gymnasium.make(args.task))
    model = make_model(args.algo, env, args.seed, args.learning_starts)
    started = time.monotonic()
    model.learn(total_timesteps=args.budget)
    train_wall = time.monotonic() - started
    steps = np.cumsum(env.get_episode_lengths()).tolist()
    curve = list(zip(steps, env.get_episode_rewards()))
    returns = evaluate(model, args.task, args.seed)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"final_return": float(np.mean(returns)), "eval_returns": returns,
                   "train_wall_s": train_wall, "env_steps": args.budget, "curve": curve}, f)


if __name__ == "__main__":
    main()
