"""The Ray driver's counters against workers whose actor Ray restarts (fake actors: no Ray
started). A restart is looked at on every check (runner/ray_restarts.py), so polls come
between an actor's death and the check that takes its new incarnation back."""

import types

import pytest
from ray.exceptions import GetTimeoutError

from runner import distributed_metrics, ray_fleet, ray_restarts
from runner.config import Config, RunConfig


def call(answer):
    """A fake actor method whose remote() returns `answer` as its ref."""
    return types.SimpleNamespace(remote=lambda *args: answer)


def drained(env_steps: int, restarts: int = 0) -> dict:
    return {"worker_id": 0, "episodes": [], "env_steps": env_steps, "policy_version": 1,
            "weight_updates": 1, "restarts": restarts, "node": "n"}


@pytest.fixture
def monitor(tmp_path, monkeypatch):
    def get(ref, timeout=None):
        if isinstance(ref, BaseException):
            raise ref
        return ref

    monkeypatch.setattr(distributed_metrics.ray, "get", get)
    cfg = Config(run=RunConfig(results_dir=str(tmp_path), log_interval=1e6))
    made = distributed_metrics.Monitor(cfg, str(tmp_path), [{"node": "n"}, {"node": "n"}], {
        "worker_cpus": 0.5, "learner_cpus": 0.5, "learner_gpus": 0})
    yield made
    made.close()


def fleet_of(worker0, worker1) -> ray_fleet.Fleet:
    fleet = object.__new__(ray_fleet.Fleet)
    fleet.replay = types.SimpleNamespace(stats=call({"inserted": 0}))
    fleet.learner = types.SimpleNamespace(progress=call({"learner_steps": 0,
                                                         "policy_version": 1, "losses": {}}))
    fleet.workers = [worker0, worker1]
    fleet.restarting = ray_restarts.Restarting(fleet.workers)
    fleet.dropped = {}
    return fleet


def test_a_restarting_workers_new_counters_do_not_replace_its_totals(monitor):
    """Worker 0 stepped 500 times, then its actor died. Its new incarnation opened its env
    (answering the check's ping) after that check and before the poll's drain: the poll
    took its counters (0) as the worker's totals, and the next check's worker_restarted()
    made them its base. summary.json lost the first incarnation's 500 env steps."""
    worker = types.SimpleNamespace(drain=call(drained(500, restarts=2)),
                                   spec=call({"pid": 2}))
    fleet = fleet_of(worker, types.SimpleNamespace(drain=call(None)))
    monitor.poll(fleet)
    fleet.restarting.waiting[0] = ("ping", float("inf"))  # it died: check() pings it
    worker.drain = call(drained(0))  # the new incarnation, not taken back yet
    monitor.poll(fleet)
    del fleet.restarting.waiting[0]  # the next check() takes it back
    monitor.worker_restarted(0, "n")
    worker.drain = call(drained(10))
    monitor.poll(fleet)
    assert monitor.workers[0]["env_steps"] == 510
    assert monitor.workers[0]["restarts"] == 2 and monitor.workers[0]["actor_restarts"] == 1


def test_a_worker_waiting_for_a_node_is_not_asked(monitor, monkeypatch):
    """An actor Ray cannot place again (its node lost) queues every call: each poll's drain
    of it waited its 10 s time limit, while restarting and for good once it was dropped
    ('did not come back'), so the driver's loop (progress, checkpoints) slowed tenfold."""
    asked = []
    pending = types.SimpleNamespace(
        drain=types.SimpleNamespace(remote=lambda: asked.append(1) or GetTimeoutError()))
    fleet = fleet_of(pending, types.SimpleNamespace(drain=call(None)))
    fleet.restarting.waiting[0] = ("ping", 0.0)
    monitor.poll(fleet)
    monkeypatch.setattr(ray_restarts.ray, "wait", lambda refs, timeout=None: ([], refs))
    assert fleet.restarting.poll() == [(0, None)]  # past its deadline: dropped
    monitor.poll(fleet)
    assert asked == []


def test_the_logged_policy_lag_covers_every_batch_since_the_last_report(monitor):
    """The learner reset its lag average on every poll (about one a second), but a report
    comes once per --log-interval: perf/policy_lag was that of the last poll's batches
    only, and None (no point, 'lag -' on the bar) when that poll saw none."""
    logged = []
    monitor.metrics.scalars = lambda values, step: logged.append(values["perf/policy_lag"])

    def read(total: float, batches: int) -> None:  # a poll of the learner's progress()
        monitor.learner = {"learner_steps": batches, "policy_version": 9, "losses": {},
                           "policy_lag_sums": (total, batches)}

    read(10.0, 5)
    monitor.env_steps = 100
    monitor.report()
    read(14.0, 7)  # a poll between two reports
    read(30.0, 12)  # the last one before the next: no batch since the one before
    monitor.env_steps = 200
    monitor.report()
    monitor.env_steps = 300
    monitor.report()  # nothing sampled since
    assert logged == [2.0, pytest.approx(20.0 / 7), None]
    assert monitor.shown["policy_lag"] == pytest.approx(20.0 / 7)


def test_no_second_point_at_an_env_step_already_logged(monitor):
    """A poll logged step 6080; the workers then stopped and the learner took its catch-up
    updates, so end_training() saw the learner's count move and reported again: every
    perf/ tag got a second point at 6080, perf/env_steps_per_s and charts/SPS one of 0."""
    logged = []
    monitor.metrics.scalars = lambda values, step: logged.append(
        (step, values["perf/env_steps_per_s"]))
    monitor.learner = {"learner_steps": 5000, "policy_version": 9, "losses": {}}
    monitor.env_steps = 6080
    monitor.report()
    monitor.learner = {"learner_steps": 5080, "policy_version": 10, "losses": {}}
    monitor.end_training()
    monitor.report()  # a poll due after finish_loops(): no new env step either
    assert [step for step, _ in logged] == [6080]
    assert logged[0][1] > 0


def test_the_first_report_waits_for_an_env_step(monitor):
    """A poll before the first insert (the envs still starting) logged rates of 0 at
    step 0, or at a resumed run's step, where the earlier session's last point is."""
    logged = []
    monitor.metrics.scalars = lambda values, step: logged.append(step)
    monitor.learner = {"learner_steps": 0, "policy_version": 1, "losses": {}}
    monitor.report()
    monitor.env_steps = 64
    monitor.report()
    assert logged == [64]



def test_episodes_are_logged_where_they_ended_in_step_order(monitor):
    """Every episode of a poll was logged at the poll's env step: a staircase of points at
    one step (three 200-step Pendulum episodes all at step 768), though docs/deviations.md
    promised each at the step it ended. Each lands where its worker's own count puts it,
    and a poll's episodes of several workers reach TensorBoard in step order."""
    from actors.agents import Episode

    logged = []
    monitor.metrics.episodes = lambda eps, step, k, phase, stats: logged.append((step, k))

    def ended(worker: int, env_steps: int, *at: int) -> types.SimpleNamespace:
        episodes = [Episode(0, 1.0, 10, None, False, ended_at) for ended_at in at]
        return types.SimpleNamespace(drain=call({**drained(env_steps), "worker_id": worker,
                                                 "episodes": episodes}))

    fleet = fleet_of(ended(0, 100, 30, 90), ended(1, 60, 20))
    fleet.replay = types.SimpleNamespace(stats=call({"inserted": 160}))
    monitor.poll(fleet)
    assert logged == [(48, 0), (53, 1), (144, 0)]  # 160 run steps over 100 and 60 of theirs
    logged.clear()
    fleet.workers = [ended(0, 40, 40), ended(1, 60)]  # worker 0 anew, from zero
    fleet.replay = types.SimpleNamespace(stats=call({"inserted": 200}))
    monitor.poll(fleet)
    assert logged == [(200, 0)]
    logged.clear()
    fleet.restarting.waiting[0] = ("ping", float("inf"))  # worker 0 restarts: not drained
    fleet.workers = [ended(0, 40), ended(1, 160, 120)]
    fleet.replay = types.SimpleNamespace(stats=call({"inserted": 300}))
    monitor.poll(fleet)
    del fleet.restarting.waiting[0]
    fleet.workers = [ended(0, 90, 50), ended(1, 160)]  # placed from its drain at 200
    fleet.replay = types.SimpleNamespace(stats=call({"inserted": 400}))
    monitor.poll(fleet)
    assert logged == [(260, 1), (260, 0)]  # not at 240, behind the one already logged
