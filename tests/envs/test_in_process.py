"""--transport in-process: the trainer sees what the stock client shows of the same env over
the protocol, step for step, bit for bit."""

import numpy as np
import pytest

import envs  # noqa: F401
from envs.drone import DRONE_EXECUTABLE
from envs.gymnasium import GYMNASIUM_EXECUTABLE
from envs.in_process import InProcessEnv, open_in_process
from mlagents_envs.base_env import ActionTuple
from mlagents_envs.exception import UnityActionException, UnityEnvironmentException
from tests.envs.players import opened
from tests.envs.sims import SCENES, SIM_EXECUTABLE

ECHO = "tests.envs.sims.gym_envs:Echo-v0"
ARRAY_ECHO = "tests.envs.sims.gym_envs:ArrayEcho-v0"


def scene(name: str, seed: int, num_areas: int) -> InProcessEnv:
    env = InProcessEnv(SCENES[name](), seed, num_areas)
    env.reset()
    return env


# (what --env names or a test scene, the executable, its arguments, areas, steps)
CASES = {
    "drone": (lambda seed, n: open_in_process("bundled-drone", ["--max-step", "6"], seed, n),
              DRONE_EXECUTABLE, ["--max-step", "6"], 3, 14),
    "pendulum": (lambda seed, n: open_in_process(
        "gymnasium:Pendulum-v1", ["--env-id", "Pendulum-v1", "--max-episode-steps", "5"],
        seed, n), GYMNASIUM_EXECUTABLE, ["--env-id", "Pendulum-v1", "--max-episode-steps", "5"],
        2, 12),
    "dict-observations": (lambda seed, n: open_in_process(
        f"gymnasium:{ECHO}", ["--env-id", ECHO], seed, n), GYMNASIUM_EXECUTABLE,
        ["--env-id", ECHO], 2, 12),
    # rewards and flags returned as arrays of one: the episode ends broke both sides
    "array-rewards": (lambda seed, n: open_in_process(
        f"gymnasium:{ARRAY_ECHO}", ["--env-id", ARRAY_ECHO], seed, n), GYMNASIUM_EXECUTABLE,
        ["--env-id", ARRAY_ECHO], 2, 12),
    "decision-periods": (lambda seed, n: scene("decision-periods", seed, n), SIM_EXECUTABLE,
                         ["--sim", "decision-periods"], 2, 14),
    "two-behaviors": (lambda seed, n: scene("two-behaviors", seed, n), SIM_EXECUTABLE,
                      ["--sim", "two-behaviors"], 2, 24),
}


def random_actions(spec, n: int, rng) -> ActionTuple:
    """Actions past the bounds too: both sides must treat them alike."""
    actions = spec.action_spec
    discrete = np.stack([rng.integers(0, b, n) for b in actions.discrete_branches], axis=1) \
        if actions.discrete_size else np.zeros((n, 0), np.int32)
    return ActionTuple(continuous=rng.uniform(-1.3, 1.3, (n, actions.continuous_size)),
                       discrete=discrete.astype(np.int32))


def assert_same_steps(stock, ours) -> None:
    assert dict(stock.behavior_specs) == dict(ours.behavior_specs)
    for name in stock.behavior_specs:
        for a, b in zip(stock.get_steps(name), ours.get_steps(name)):
            assert type(a) is type(b) and len(a) == len(b)
            for x, y in zip(a.obs, b.obs):
                assert x.dtype == y.dtype and x.shape == y.shape
                np.testing.assert_array_equal(x, y)
            for field in ("reward", "agent_id", "group_id", "group_reward", "interrupted"):
                if hasattr(a, field):
                    np.testing.assert_array_equal(getattr(a, field), getattr(b, field), field)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.filterwarnings("ignore:.*(terminated. signal to be a boolean|reward returned by)")
def test_in_process_shows_what_the_stock_client_shows(player_worker_id, case):
    make, executable, args, num_areas, steps = CASES[case]
    rng, ended = np.random.default_rng(0), 0
    ours = make(7, num_areas)
    try:
        with opened(executable, player_worker_id, args, seed=7, num_areas=num_areas) as stock:
            assert_same_steps(stock, ours)
            for _ in range(steps):
                for name, spec in stock.behavior_specs.items():
                    actions = random_actions(spec, len(stock.get_steps(name)[0]), rng)
                    stock.set_actions(name, actions)
                    ours.set_actions(name, actions)
                stock.step()
                ours.step()
                assert_same_steps(stock, ours)
                ended += sum(len(stock.get_steps(name)[1]) for name in stock.behavior_specs)
    finally:
        ours.close()
    # The cases must have shown terminal steps (decision-periods: agents that skip steps).
    assert ended > 0 or case == "decision-periods"


def test_actions_set_before_a_reset_are_dropped_as_the_stock_client_drops_them(
        player_worker_id):
    ours = open_in_process(f"gymnasium:{ECHO}", ["--env-id", ECHO], 3, 2)
    try:
        with opened(GYMNASIUM_EXECUTABLE, player_worker_id, ["--env-id", ECHO], seed=3,
                    num_areas=2) as stock:
            name = list(stock.behavior_specs)[0]
            for env in (stock, ours):
                env.set_actions(name, ActionTuple(continuous=np.ones((2, 2), np.float32)))
                env.reset()
                env.step()
            assert_same_steps(stock, ours)  # the Echo shows the action it received
    finally:
        ours.close()


def test_nan_is_refused_as_the_stock_client_refuses_it():
    env = open_in_process("bundled-drone", ["--fault-nan-at-step", "2"], 0, 1)
    name = list(env.behavior_specs)[0]
    env.step()
    with pytest.raises(RuntimeError, match="NaN or Inf observations"):
        env.step()
    env.close()


def test_wrong_actions_and_names_are_refused_as_the_stock_client_does():
    env = open_in_process("bundled-drone", [], 0, 2)
    with pytest.raises(UnityActionException, match=r"\(2, 3\)"):
        env.set_actions("My Behavior?team=0", ActionTuple(continuous=np.zeros((1, 3))))
    with pytest.raises(UnityActionException, match="does not correspond"):
        env.get_steps("Other?team=0")
    env.close()
    env.close()  # twice is safe


def test_a_failing_simulation_is_an_env_failure():
    class Broken:
        name, behaviors = "broken", SCENES["two-behaviors"]().behaviors

        def start(self, num_areas, seed):
            raise ZeroDivisionError("division by zero")

    with pytest.raises(UnityEnvironmentException, match="ZeroDivisionError: division by zero"):
        InProcessEnv(Broken(), 0, 1)


def test_actions_set_agent_by_agent_are_those_set_at_once():
    together, one_by_one = (open_in_process("bundled-drone", [], 5, 3) for _ in range(2))
    name = "My Behavior?team=0"
    actions = np.random.default_rng(1).uniform(-1, 1, (3, 3)).astype(np.float32)
    together.set_actions(name, ActionTuple(continuous=actions))
    for agent_id, row in zip(one_by_one.get_steps(name)[0].agent_id, actions):
        one_by_one.set_action_for_agent(name, agent_id, ActionTuple(continuous=row[None]))
    with pytest.raises(UnityEnvironmentException, match="did not ask for a decision"):
        one_by_one.set_action_for_agent(name, 99, ActionTuple(continuous=actions[:1]))
    together.step()
    one_by_one.step()
    assert_same_steps(together, one_by_one)
    together.close()
    one_by_one.close()
