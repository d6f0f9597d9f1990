"""Per-agent bookkeeping on hand-made steps: matching by id, success, agents that vanish."""

from types import SimpleNamespace

import numpy as np

from actors.agents import Agents


def steps(ids=(), rewards=(), terminal_ids=(), terminal_rewards=(), interrupted=()):
    """A (DecisionSteps, TerminalSteps)-like pair with just the fields Agents reads."""
    decision = SimpleNamespace(agent_id=np.array(ids, np.int64),
                               reward=np.array(rewards, np.float32))
    terminal = SimpleNamespace(agent_id=np.array(terminal_ids, np.int64),
                               reward=np.array(terminal_rewards, np.float32),
                               interrupted=np.array(interrupted, bool))
    return decision, terminal


def obs(n: int, value: float = 0.0) -> np.ndarray:
    return np.full((n, 2), value, np.float32)


def decide(agents: Agents, ids) -> None:
    agents.decided(np.array(ids, np.int64), obs(len(ids)), np.zeros((len(ids), 1), np.float32))


def test_rows_for_agents_that_acted_and_episodes_for_those_that_ended():
    agents = Agents(tracks_success=True, timeout=100)
    decide(agents, [0, 1])
    # Agent 1 ends at the goal and starts again in the same message; 0 goes on.
    decision, terminal = steps([0, 1], [0.5, 0.0], [1], [1.0], [False])
    rows, ended = agents.step(decision, terminal, obs(2, 1.0), obs(1, 2.0))
    assert [(r[0], r[3], r[5], r[6]) for r in rows] == [(1, 1.0, 1.0, True), (0, 0.5, 0.0, False)]
    assert [(e.agent_id, e.success, e.interrupted) for e in ended] == [(1, True, False)]


def test_no_success_for_an_env_that_defines_none():
    agents = Agents(tracks_success=False, timeout=100)
    decide(agents, [3])
    _, ended = agents.step(*steps([], [], [3], [1.0], [False]), obs(0), obs(1))
    assert ended[0].success is None


def test_agents_with_a_decision_period_keep_their_pending_decision():
    agents = Agents(tracks_success=False, timeout=100)
    decide(agents, [0, 1])
    rows, _ = agents.step(*steps([0], [1.0]), obs(1), obs(0))  # 1 skips this step
    assert [r[0] for r in rows] == [0] and 1 in agents.last
    decide(agents, [0])
    rows, _ = agents.step(*steps([0, 1], [1.0, 2.0]), obs(2), obs(0))
    assert sorted(r[0] for r in rows) == [0, 1]


def test_agents_that_vanish_are_forgotten_after_the_timeout():
    agents = Agents(tracks_success=False, timeout=5)
    for t in range(200):
        new = [t]  # every step a new agent appears, acts once, and is never seen again
        decide(agents, new)
        agents.step(*steps(), obs(0), obs(0))
        agents.vanished()
        assert len(agents.last) <= 6 and len(agents.seen) <= 6
    assert set(agents.last) == set(range(195, 200))  # seen within the last 5 steps


def test_each_row_keeps_its_own_agents_observations():
    """Rows are matched by id, not by position: every agent's obs and next_obs differ here,
    and the decision list comes in another order than the agents decided in."""
    agents = Agents(tracks_success=True, timeout=100)
    ids = [5, 7, 9, 11]
    agents.decided(np.array(ids, np.int64), np.array([[a, 0.0] for a in ids], np.float32),
                   np.array([[-a] for a in ids], np.float32))
    # 9 ends (its terminal obs in terminal_obs) and starts again; the others go on.
    decision, terminal = steps([11, 9, 5, 7], [0.1, 0.0, 0.2, 0.3], [9], [1.0], [False])
    next_obs = np.array([[a, 1.0] for a in (11, 9, 5, 7)], np.float32)
    rows, _ = agents.step(decision, terminal, next_obs, np.array([[9, -1.0]], np.float32))
    assert sorted(r[0] for r in rows) == ids
    for agent, o, action, _, nxt, _, end in rows:
        np.testing.assert_array_equal(o, [agent, 0.0])
        np.testing.assert_array_equal(action, [-agent])
        np.testing.assert_array_equal(nxt, [agent, -1.0 if end else 1.0])


def test_a_terminal_step_with_a_negative_reward_is_no_success():
    """Success is a termination with a positive final reward: a crash (terminated, not
    interrupted, reward -1) ends the episode but is a failure."""
    agents = Agents(tracks_success=True, timeout=100)
    decide(agents, [0, 1])
    _, ended = agents.step(*steps([], [], [0, 1], [-1.0, 1.0], [False, False]), obs(0),
                           obs(2))
    assert [(e.agent_id, e.success, e.interrupted) for e in ended] == [
        (0, False, False), (1, True, False)]
