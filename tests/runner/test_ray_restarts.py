"""Restarted worker actors waited for without blocking the driver (fake Ray: no Ray
started). A worker whose node was lost could not be placed again, and the driver's loop
waited 60 s on it: no progress, no checkpoint, no look at the learner meanwhile."""

import types

import pytest
from ray.exceptions import ActorUnavailableError

from runner import ray_fleet, ray_restarts
from runner.errors import RunAborted

PENDING = object()  # a call with no answer yet


class Worker:
    """A fake worker actor whose `spec` calls answer in turn from `answers`."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.spec = types.SimpleNamespace(remote=lambda: self.answers.pop(0))
        self.run = types.SimpleNamespace(remote=lambda *args: PENDING)


@pytest.fixture
def fake_ray(monkeypatch):
    clock = [0.0]

    def get(ref, timeout=None):
        if isinstance(ref, BaseException):
            raise ref
        return ref

    for module in (ray_restarts, ray_fleet):
        monkeypatch.setattr(module.ray, "get", get)
        monkeypatch.setattr(module.ray, "wait", lambda refs, **kw: (
            [r for r in refs if r is not PENDING], [r for r in refs if r is PENDING]))
    monkeypatch.setattr(ray_restarts.time, "monotonic", lambda: clock[0])
    return clock


def test_a_restart_is_looked_at_not_waited_for(fake_ray):
    restarting = ray_restarts.Restarting([Worker(PENDING, {"pid": 2})], wait_s=60)
    restarting.add(0)
    assert restarting.poll() == [] and 0 in restarting.waiting  # at once, still waiting
    fake_ray[0] = 61.0
    assert restarting.poll() == [(0, None)] and not restarting.waiting


def test_a_ping_that_reached_the_actor_mid_restart_is_sent_again(fake_ray):
    restarting = ray_restarts.Restarting([Worker(ActorUnavailableError("x", None),
                                                 {"pid": 2})])
    restarting.add(0)
    assert restarting.poll() == []  # failed, sent again
    assert restarting.poll() == [(0, {"pid": 2})]


def fleet_with_a_dead_worker(ping) -> ray_fleet.Fleet:
    """Worker 0's loop ended as its actor died; worker 1's runs."""
    from ray.exceptions import ActorDiedError

    fleet = object.__new__(ray_fleet.Fleet)
    fleet.cfg, fleet.replay, fleet.learner = ray_fleet.Config(), None, None
    fleet.workers = [Worker(ping), Worker()]
    fleet.restarting = ray_restarts.Restarting(fleet.workers)
    fleet.learner_run, fleet.budget_spent, fleet.dropped = PENDING, False, {}
    fleet.worker_runs = {0: ActorDiedError(), 1: PENDING}
    fleet.specs, fleet.actor_restarts = [{"pid": 1}, {"pid": 5}], [0, 0]
    return fleet


def test_the_run_goes_on_while_a_dead_workers_actor_restarts(fake_ray, capsys):
    fleet = fleet_with_a_dead_worker(PENDING)
    assert fleet.check() == []  # returned at once: the driver's loop goes on
    assert 0 in fleet.restarting.waiting and not fleet.dropped
    fleet.worker_runs.clear()  # the other worker's loop gone too: still not every worker
    assert fleet.check() == []
    fake_ray[0] = 61.0
    with pytest.raises(RunAborted, match="worker 0: its actor did not come back"):
        fleet.check()


def test_a_restarted_worker_starts_its_loop_again(fake_ray, capsys):
    fleet = fleet_with_a_dead_worker({"pid": 2})
    assert fleet.check() == [0]
    assert fleet.worker_runs[0] is PENDING and fleet.actor_restarts == [1, 0]
    assert "worker 0: its actor died; Ray restarted it" in capsys.readouterr().out


def test_a_restart_that_comes_back_as_the_workers_stop_is_counted(fake_ray):
    """Worker 0 died just before the budget was spent; its actor answered only once the
    workers stopped: train() must hear of it, or summary.json shows 0 actor restarts and
    0 env steps for that worker (its new incarnation's counters, with no base)."""
    fleet = fleet_with_a_dead_worker(PENDING)
    fleet.workers[1].stop = types.SimpleNamespace(remote=lambda: None)
    fleet.worker_runs = {1: 4096}  # worker 1's loop returned: the budget is spent
    fleet.learner_run = None
    fleet.workers[0].answers = [{"pid": 2}]
    fleet.restarting.add(0)  # came back only now
    assert fleet.finish_loops() == [0]
    assert fleet.actor_restarts == [1, 0] and not fleet.dropped


def test_an_actor_ray_gave_up_on_is_dropped_at_once(fake_ray, capsys):
    """Past max_restarts the actor is dead for good: its ping fails with ActorDiedError at
    once, every time. It was pinged again for 60 s, then 'did not come back'."""
    from ray.exceptions import ActorDiedError

    fleet = fleet_with_a_dead_worker(ActorDiedError())
    assert fleet.check() == []
    assert not fleet.restarting.waiting and 0 in fleet.dropped  # no clock moved
    assert "worker 0: its actor died too often; continuing without it" in \
        capsys.readouterr().out


def test_an_interrupt_does_not_wait_for_a_pending_restart(fake_ray, monkeypatch, capsys):
    """Ctrl-C while a worker's actor could not be placed again: the other workers were
    told to stop only after a 10 s wait for it (they kept inserting), then 'did not come
    back' was printed for a run that was being interrupted anyway."""
    monkeypatch.setattr(ray_restarts.time, "sleep",
                        lambda s: fake_ray.__setitem__(0, fake_ray[0] + s))
    fleet = fleet_with_a_dead_worker(PENDING)
    stops = []
    fleet.workers[1].stop = types.SimpleNamespace(remote=lambda: stops.append(fake_ray[0]))
    assert fleet.check() == []  # worker 0 pending: its node is gone
    fleet.learner_run = None
    fleet.stop_loops()
    assert stops == [0.0]  # at once
    assert "did not come back" not in capsys.readouterr().out


def env_failed() -> BaseException:
    """What ray.get raises for a `spec` call whose env did not open (Ray's wrapper)."""
    from mlagents_envs.exception import UnityTimeOutException
    from ray.exceptions import RayTaskError

    return RayTaskError("spec", "Traceback ...", UnityTimeOutException(
        "the env did not connect in 60 s: raise --timeout-wait")).as_instanceof_cause()


def test_a_restarted_actor_whose_env_does_not_open_is_dropped(fake_ray, capsys):
    """Ray restarted worker 0's actor, but its env failed to open there (its ping raised
    the env's error): the error escaped check() and ended the run with 'error: env ...:
    ray::EnvWorkerActor.spec() (pid=...' instead of going on with the other workers."""
    fleet = fleet_with_a_dead_worker(env_failed())
    assert fleet.check() == []
    assert 0 in fleet.dropped and not fleet.restarting.waiting and 1 in fleet.worker_runs
    assert "worker 0: the env did not connect in 60 s: raise --timeout-wait; continuing " \
        "without it" in capsys.readouterr().out


def test_a_worker_whose_env_does_not_open_again_at_the_start_is_its_line(fake_ray):
    """The same as the envs open: the env's own one line, every env closed."""
    from mlagents_envs.exception import UnityTimeOutException

    fleet = fleet_with_a_dead_worker(None)
    fleet.workers[0].answers = [env_failed()]
    closed = []
    fleet.close = lambda: closed.append(True)
    with pytest.raises(UnityTimeOutException, match="did not connect in 60 s"):
        fleet._restarted(0)
    assert closed
