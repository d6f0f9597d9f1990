"""What an EnvWorker stores: n-step transitions and Ape-X initial priorities, on the real Drone."""

from collections import defaultdict

import numpy as np
import pytest
import torch

from actors.config import EnvConfig
from actors.env_worker import EnvWorker
from actors.config import ExperienceConfig
from actors.config import NoiseConfig
from envs.drone.controller import proportional_action
from learner.networks import Critic

WORKER_IDS = iter(range(103, 112))  # ports 5108-5116: this module's own
GAMMA = 0.9


@pytest.fixture
def make_worker():
    made = []

    def make(experience, num_areas=4, max_step=60):
        worker = EnvWorker(EnvConfig(num_areas=num_areas, max_step=max_step), NoiseConfig(),
                           worker_id=next(WORKER_IDS), seed=5, experience=experience)
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.close()


def mixed_policy(obs, agent_ids, mode):
    """Even agents fly to the goal (terminations), odd ones idle until the step limit
    (truncations)."""
    steer = (np.asarray(agent_ids) % 2 == 0)[:, None]
    return np.where(steer, proportional_action(obs), 0.0).astype(np.float32)


def reference_nstep(steps: list[dict], n: int, gamma: float) -> tuple[list[tuple], int]:
    """n-step transitions by the textbook definition, from whole per-agent episodes; also
    the windows still open (episodes not over, windows shorter than n)."""
    episodes, ongoing = [], defaultdict(list)
    for step in steps:
        for i, agent in enumerate(step["agent_id"].tolist()):
            ongoing[agent].append({k: v[i] for k, v in step.items()})
            if step["episode_end"][i]:
                episodes.append((ongoing.pop(agent), True))
    episodes += [(rows, False) for rows in ongoing.values()]
    out, pending = [], 0
    for rows, ended in episodes:
        for t in range(len(rows)):
            window = rows[t : t + n]
            if len(window) < n and not ended:
                pending += 1
                continue
            ret = sum(gamma**j * r["reward"] for j, r in enumerate(window))
            term = window[-1]["terminated"]
            out.append((rows[t]["obs"], rows[t]["action"], ret, window[-1]["next_obs"], term,
                        0.0 if term else gamma ** len(window)))
    return out, pending


def by_obs(rows):
    return sorted(rows, key=lambda r: tuple(r[0]) + tuple(r[1]))


def test_worker_emits_textbook_n_step_transitions(make_worker):
    worker = make_worker(ExperienceConfig(n_step=3, gamma=GAMMA))
    worker.act = mixed_policy
    steps = []
    push = worker.experience.transitions
    worker.experience.transitions = lambda step: (steps.append(dict(step)), push(step))[1]
    rollout = worker.collect(150)
    ends = np.concatenate([s["episode_end"] for s in steps])
    terminated = np.concatenate([s["terminated"] for s in steps])
    # The flags the worker feeds n-step come from the env: one end per finished episode.
    assert ends.sum() == len(rollout.episodes)
    assert terminated.sum() == sum(not e.interrupted for e in rollout.episodes) >= 1
    assert sum(e.interrupted for e in rollout.episodes) >= 1
    expected, pending = reference_nstep(steps, 3, GAMMA)
    t = rollout.transitions
    got = list(zip(t["obs"], t["action"], t["reward"], t["next_obs"], t["terminated"],
                   t["discount"]))
    assert len(got) == len(expected) and worker.experience.nstep.pending == pending
    for g, e in zip(by_obs(got), by_obs(expected)):
        for gv, ev in zip(g, e):
            np.testing.assert_allclose(gv, ev, rtol=1e-5, atol=1e-6)


def test_one_step_worker_stores_no_discount(make_worker):
    t = make_worker(ExperienceConfig(n_step=1)).collect(3).transitions
    assert "discount" not in t and "priority" not in t and len(t["reward"]) == 12


def test_initial_priorities_are_the_local_critics_td_errors(make_worker):
    worker = make_worker(ExperienceConfig(n_step=2, gamma=GAMMA, priorities=True))
    assert "priority" not in worker.collect(5).transitions  # no critic yet: replay's max
    torch.manual_seed(0)
    critic = Critic(worker.obs_size, worker.action_size)
    worker.set_weights({"actor": worker.policy.state_dict(), "critic": critic.state_dict()}, 2)
    t = worker.collect(30).transitions
    obs, nxt = torch.from_numpy(t["obs"]), torch.from_numpy(t["next_obs"])
    with torch.no_grad():
        target = (torch.from_numpy(t["reward"]) + torch.from_numpy(t["discount"])
                  * (1 - torch.from_numpy(t["terminated"])) * critic(nxt, worker.policy(nxt)))
        td = (target - critic(obs, torch.from_numpy(t["action"]))).abs().numpy()
    np.testing.assert_allclose(t["priority"], td, rtol=1e-5, atol=1e-6)
    assert np.all(t["priority"] > 0)
    assert "priority" not in worker.collect(3, "greedy").transitions  # test rows: not stored


def test_env_restart_drops_open_windows(make_worker):
    worker = make_worker(ExperienceConfig(n_step=4, gamma=GAMMA), num_areas=2)
    worker.collect(2)
    assert worker.experience.nstep.pending == 4  # 2 agents x 2 steps, windows not full
    worker._restart(RuntimeError("simulated crash"))
    assert worker.experience.nstep.pending == 0
    rollout = worker.collect(6)  # the fresh episodes chain as usual
    assert not rollout.episodes
    # 6 one-step rows per agent: windows opened at steps 0-2 are full, 3-5 still open.
    assert len(rollout.transitions["reward"]) == 2 * 3 and worker.experience.nstep.pending == 6
