"""The proportional controller flies the Drone to its goal: through the physics directly
(fast, many episodes) and through the stock ML-Agents client against the launched Drone.
"""

from __future__ import annotations

import numpy as np
import pytest

import envs  # noqa: F401  (must precede mlagents_envs: protobuf import hook)
from envs.drone import DRONE_EXECUTABLE
from envs.drone.controller import proportional_action
from envs.drone.physics import ACTION_TO_AXIS, DronePhysics
from mlagents_envs.base_env import ActionTuple
from mlagents_envs.environment import UnityEnvironment

WORKER_ID = 41  # unique among the test suite's UnityEnvironments (40-49: envs tests)
NUM_AREAS = 8
MIN_EPISODES = 30
MIN_SUCCESS = 0.9


def test_action_points_toward_the_goal_and_is_clipped():
    obs = np.zeros((3, 9), dtype=np.float32)
    obs[0, 0:3] = (-0.1, 0.0, 0.0)  # goal 0.1 m ahead in +x: gentle strafe right
    obs[1, 0:3] = (0.0, 0.0, 100.0)  # goal far behind in -z: full reverse drive
    obs[2, 0:3] = (0.0, -100.0, 0.0)  # goal far above: full lift
    action = proportional_action(obs)
    assert action.shape == (3, 3) and action.dtype == np.float32
    assert np.all(np.abs(action) <= 1.0)
    x, y, z = (ACTION_TO_AXIS.index(axis) for axis in range(3))
    assert 0.0 < action[0, x] < 1.0 and action[0, y] == 0.0 and action[0, z] == 0.0
    assert action[1, z] == -1.0
    assert action[2, y] == 1.0


def fly_physics(num_areas: int, seed: int, max_steps: int = 1000):
    """One episode per area under the controller: (reached goal, steps, max distance)."""
    p = DronePhysics(num_areas, seed=seed)
    active = np.ones(num_areas, dtype=bool)
    reached = np.zeros(num_areas, dtype=bool)
    steps = np.full(num_areas, max_steps)
    max_dist = p.dist.copy()
    for t in range(1, max_steps + 1):
        result = p.step(proportional_action(p.observe()))
        max_dist = np.where(active, np.maximum(max_dist, p.dist), max_dist)
        ended = active & result.terminated
        reached |= ended & result.reached_goal
        steps[ended] = t
        active &= ~ended
        if not active.any():
            break
    return reached, steps, max_dist


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_controller_reaches_every_goal_in_physics(seed):
    start = DronePhysics(500, seed=seed).dist
    reached, steps, max_dist = fly_physics(500, seed)
    assert reached.all()
    assert steps.max() <= 100  # 8.66 m at up to 7 m/s, then an exponential approach
    assert np.all(max_dist <= start + 1e-9)  # never flies farther than it started


def collect_episodes(env: UnityEnvironment, min_episodes: int, max_steps: int = 3000):
    """Fly every agent with the controller; returns {agent_id: [(reward, interrupted)]}."""
    env.reset()
    (behavior,) = env.behavior_specs
    episodes: dict[int, list[tuple[float, bool]]] = {}
    for _ in range(max_steps):
        decisions, terminals = env.get_steps(behavior)
        for agent_id in terminals.agent_id:
            end = terminals[agent_id]
            episodes.setdefault(int(agent_id), []).append((float(end.reward), end.interrupted))
        # Every agent that ended starts its next episode in the same message.
        assert set(terminals.agent_id) <= set(decisions.agent_id)
        if sum(map(len, episodes.values())) >= min_episodes:
            return episodes
        action = proportional_action(decisions.obs[0])
        env.set_actions(behavior, ActionTuple(continuous=action))
        env.step()
    return episodes


@pytest.fixture
def drone_env():
    env = UnityEnvironment(
        file_name=DRONE_EXECUTABLE,
        worker_id=WORKER_ID,
        num_areas=NUM_AREAS,
        no_graphics=True,
        additional_args=["--max-step", "1000", "--seed", "1"],
    )
    try:
        yield env
    finally:
        env.close()


@pytest.mark.timeout(120)
def test_controller_reaches_goals_through_stock_client(drone_env):
    episodes = collect_episodes(drone_env, MIN_EPISODES)
    outcomes = [outcome for per_agent in episodes.values() for outcome in per_agent]
    assert len(outcomes) >= MIN_EPISODES
    assert set(episodes) <= set(range(NUM_AREAS))
    successes = sum(reward == 1.0 and not interrupted for reward, interrupted in outcomes)
    assert successes / len(outcomes) >= MIN_SUCCESS, outcomes
