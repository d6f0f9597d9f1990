"""Fast hyperparameter check: the project's Learner, ReplayBuffer and noise trained on
DronePhysics in-process (no protocol, one area), with the local mode's schedule: uniform
random actions until --starts, then policy + noise and --utd updates per env step.
Every 10,000 env steps the greedy actor flies 300 fresh episodes (max 1000 steps) and
their success rate is recorded. Prints one JSON line. It exists to choose defaults with
evidence (docs/deviations.md), ~2x faster than launch.py since the env costs nothing.

    .venv/bin/python -m bench.sweep_physics --name g95 --gamma 0.95 --seed 1
"""
import argparse
import json
import time

import numpy as np
import torch

from envs.drone.physics import DronePhysics
from learner.learner import Learner
from learner.config import LearnerConfig
from replay.buffer import ReplayBuffer
from actors.noise import make_noise, explore
from actors.config import NoiseConfig

def greedy_eval(actor, n=300, seed=999):
    ph = DronePhysics(n, seed=seed, max_step=1000)
    done = np.zeros(n, bool); ok = np.zeros(n, bool)
    for t in range(1000):
        with torch.no_grad(): a = actor(torch.from_numpy(ph.observe())).numpy()
        r = ph.step(a); newly = ~done & (r.terminated | r.truncated)
        ok |= newly & r.reached_goal; done |= newly
        if done.all(): break
    return float(ok.mean())

def main():
    p = argparse.ArgumentParser()
    p.add_argument("--name"); p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gamma", type=float, default=0.99); p.add_argument("--tau", type=float, default=0.005)
    p.add_argument("--alr", type=float, default=3e-4); p.add_argument("--clr", type=float, default=3e-4)
    p.add_argument("--batch", type=int, default=256); p.add_argument("--sigma", type=float, default=0.1)
    p.add_argument("--noise", default="gaussian"); p.add_argument("--theta", type=float, default=0.15)
    p.add_argument("--hidden", type=int, default=128); p.add_argument("--starts", type=int, default=5000)
    p.add_argument("--steps", type=int, default=50000); p.add_argument("--utd", type=float, default=1.0)
    p.add_argument("--buffer", type=int, default=200000); p.add_argument("--max-step", type=int, default=1000)
    a = p.parse_args()
    torch.set_num_threads(1)
    cfg = LearnerConfig(gamma=a.gamma, tau=a.tau, actor_lr=a.alr, critic_lr=a.clr, hidden_size=a.hidden, torch_threads=1)
    L = Learner(9, 3, cfg, seed=a.seed); R = ReplayBuffer(9, 3, a.buffer, seed=a.seed)
    rng = np.random.default_rng(a.seed); noise = make_noise(NoiseConfig(noise=a.noise, noise_sigma=a.sigma, ou_theta=a.theta), 3, rng)
    ph = DronePhysics(1, seed=a.seed, max_step=a.max_step)
    evals = {}; succ = []; t0 = time.time()
    for step in range(1, a.steps + 1):
        obs = ph.observe()
        if step <= a.starts: act = rng.uniform(-1, 1, (1, 3)).astype(np.float32)
        else:
            with torch.no_grad(): act = L.state.actor(torch.from_numpy(obs)).numpy()
            act = explore(act, noise.sample(np.array([0])))
        r = ph.step(act); nxt = ph.observe()
        R.add({"obs": obs, "action": act, "reward": r.reward, "next_obs": nxt, "terminated": r.terminated.astype(np.float32)})
        if r.terminated[0] or r.truncated[0]:
            succ.append(bool(r.reached_goal[0])); ph.reset(r.terminated | r.truncated); noise.reset(np.array([0]))
        if step > a.starts:
            owed = int(a.utd * (step - a.starts)) - L.learner_steps
            for _ in range(owed): L.update(R.sample(a.batch))
        if step % 10000 == 0:
            evals[step] = greedy_eval(L.state.actor)
    out = {"name": a.name, "seed": a.seed, "evals": evals, "train_succ_last50": float(np.mean(succ[-50:])), "episodes": len(succ), "wall": time.time() - t0}
    print(json.dumps(out), flush=True)

main()
