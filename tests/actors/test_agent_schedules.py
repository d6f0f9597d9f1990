"""EnvWorker on scenes whose agents report on their own schedule (tests/envs/sims): env steps
count the agent transitions received, and agents that vanish leave nothing behind."""

import os

import numpy as np
import pytest

from actors.config import EnvConfig
from actors.env_worker import EnvWorker
from actors.config import ExperienceConfig
from actors.config import NoiseConfig

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIM = os.path.join(REPO, "tests", "envs", "sims", "Sim")
WORKER_IDS = iter(range(730, 750))  # ports 5735-5754: this module's own


@pytest.fixture
def make_worker():
    made = []

    def make(scene: str, num_areas: int, **kwargs):
        cfg = EnvConfig(env=SIM, env_args=["--sim", scene], num_areas=num_areas,
                        agent_timeout=kwargs.pop("agent_timeout", 1000))
        worker = EnvWorker(cfg, kwargs.pop("noise", NoiseConfig()), hidden_size=16,
                           worker_id=next(WORKER_IDS), seed=1, **kwargs)
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.close()


def test_env_steps_count_transitions_of_agents_with_decision_periods(make_worker):
    """4 agents per area with periods 1-4: 12 env.step() calls give 12 + 6 + 4 + 3 = 25
    transitions per area, not 12 x 4 and not 12 x num_areas."""
    worker = make_worker("decision-periods", num_areas=2)
    rollout = worker.collect(12, "random")
    assert rollout.env_calls == 12
    assert rollout.env_steps == rollout.num_transitions == 2 * 25
    assert (worker.env_steps, worker.env_calls) == (50, 12)
    # Every agent's episode is 4 decisions: by step 12 the period-1 agents (12 decisions)
    # ended 3 episodes, the period-2 (6) and period-3 (4) agents 1 each, per area.
    assert sorted(e.length for e in rollout.episodes) == [4] * 10
    assert all(e.success is None for e in rollout.episodes)  # no success defined here


def test_agents_that_vanish_leave_no_state_behind(make_worker):
    """Agents live 3 or 5 steps and are never seen again, with no terminal step: their
    pending decision, noise state and n-step windows go after --agent-timeout steps."""
    worker = make_worker("vanishing", num_areas=2, agent_timeout=10,
                         noise=NoiseConfig(noise="ou"), experience=ExperienceConfig(n_step=3))
    for _ in range(6):
        worker.collect(50, "explore")
        live = 4 + 4 * 10 // 3  # at most the agents seen within the timeout, per 2 areas
        assert len(worker.agents.last) <= live and len(worker.agents.seen) <= live
        assert len(worker.noise._states) <= live
        assert worker.experience.nstep.pending <= 3 * live
        assert len(worker.experience.nstep._a["ids"]) <= 64  # slots reused, not growing
    assert worker.env_steps == 2 * ((300 - 300 // 3) + (300 - 300 // 5))
    ids = np.array(list(worker.agents.last))
    assert ids.min() > 100  # the early agents are long forgotten


@pytest.mark.parametrize("scene, num_areas, warned", [
    ("one-area", 3, True), ("one-area", 1, False), ("decision-periods", 3, False)])
def test_a_scene_that_ignores_num_areas_is_said_once(capsys, scene, num_areas, warned):
    """A Unity scene without a TrainingAreaReplicator runs one area whatever --num-areas
    says: the run got a third of the transitions its flags promised, silently."""
    cfg = EnvConfig(env=SIM, env_args=["--sim", scene], num_areas=num_areas, base_port=5756)
    workers = []
    try:
        for worker_id in (0, 1):  # worker 0 says it for the run
            workers.append(EnvWorker(cfg, NoiseConfig(), hidden_size=16, worker_id=worker_id,
                                     seed=1))
    finally:
        for worker in workers:
            worker.close()
    lines = [line for line in capsys.readouterr().out.splitlines() if "--num-areas" in line]
    assert lines == ([f"warning: the env started with 1 agent(s) for --num-areas 3: its scene "
                      "does not copy its training area on request (ML-Agents' "
                      "TrainingAreaReplicator), so each env step gives 1 transition(s); add "
                      "the replicator to the scene, or raise --num-workers for more data"]
                     if warned else [])
