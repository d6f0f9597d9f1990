"""The actors of a Ray run and their long-running loops, kept alive by the driver.

- An env worker actor that dies (its process killed, its node lost) is restarted by Ray
  (`max_restarts`); the driver then starts its loop again, and the worker fetches the
  current weights before it acts. A worker that gives up (its env failed past the
  restart limits) is dropped; the run goes on while one worker remains.
- The learner or the replay dying ends the run with `RunAborted`: their state lives only
  in memory, and `--resume` continues from the last checkpoint.
"""

from __future__ import annotations

import ray
from ray.exceptions import RayActorError, RayTaskError

from actors.env_process import RestartPolicy
from actors.ray_worker import EnvWorkerActor
from learner.ray_learner import LearnerActor
from replay.ray_replay import ReplayActor
from runner.config import Config, experience_config, loop_config, resolve_replay
from runner.errors import RunAborted
from runner.ray_errors import (REPLAY_DIED, answered, creation_error, failure, one_line,
                               task_cause)
from runner.ray_resources import capacity_problem, resources
from runner.ray_restarts import Restarting

WORKER_MAX_RESTARTS = 5


class Fleet:
    """Creates the workers, the replay and the learner, and supervises their loops."""

    def __init__(self, cfg: Config, run_dir: str):
        self.cfg = cfg
        self.res = resources(cfg.run.num_workers, cfg.learner.device)
        problem = capacity_problem(self.res, cfg.run.num_workers) if cfg.run.address else None
        if problem:  # a fresh local instance is this run's alone
            raise ValueError(problem)
        name = f"drone-ddpg-{cfg.run.run_id}"
        self.workers = self._start_workers(name, run_dir)
        self.restarting = Restarting(self.workers)  # workers whose actor Ray restarts
        # Started now, so its process comes up while the envs do; sized by `setup` below.
        self.learner = LearnerActor.options(name=f"{name}-learner",
                                            num_cpus=self.res["learner_cpus"],
                                            num_gpus=self.res["learner_gpus"]).remote(
            cfg.learner, cfg.replay, cfg.run.updates_per_step, cfg.run.publish_interval,
            cfg.run.seed)
        self.replay = None
        self.specs = self._open_envs()
        obs, act = self.specs[0]["obs_size"], self.specs[0]["action_size"]
        self.replay = self._start_replay(f"{name}-replay", obs, act)
        self.learner_run = None
        self.worker_runs: dict[int, ray.ObjectRef] = {}
        self._setup_learner(obs, act)
        self.actor_restarts = [0] * cfg.run.num_workers
        self.dropped: dict[int, str] = {}  # workers given up on, and why (env, actor failed)
        self.budget_spent = False  # a worker's loop returned: the replay holds the budget

    def _start_workers(self, name: str, run_dir: str) -> list:
        cfg, e = self.cfg, self.cfg.env
        restarts = RestartPolicy(e.max_lifetime_restarts, e.restarts_rate_limit_n,
                                 e.restarts_rate_limit_period_s)
        return [
            EnvWorkerActor.options(name=f"{name}-worker-{k}", num_cpus=self.res["worker_cpus"],
                                   scheduling_strategy="SPREAD",
                                   max_restarts=WORKER_MAX_RESTARTS).remote(
                cfg.env, cfg.noise, cfg.learner.hidden_size, k, cfg.run.seed,
                f"{run_dir}/env_logs", cfg.run.num_workers, restarts, experience_config(cfg))
            for k in range(cfg.run.num_workers)]

    def _setup_learner(self, obs: int, act: int) -> None:
        """Size the learner for the env; its refusal (e.g. --cudagraphs on a cluster without
        a GPU) or its death is one line, every env closed."""
        try:
            ray.get(self.learner.setup.remote(obs, act))
        except RayTaskError as err:
            self.close()
            raise task_cause(err) from None
        except RayActorError:
            self.close()
            raise RunAborted("the learner actor died as the run started (its process is "
                             "gone): run the same command again") from None

    def _start_replay(self, name: str, obs: int, act: int):
        """The replay actor, built: a replay too large for memory is one line, every env
        closed (checked here on a fresh local instance, by the actor itself on a cluster)."""
        cfg = self.cfg
        # On this machine the replay actor and the learner's device shard each hold one.
        shard = cfg.learner.device_replay and not cfg.replay.prioritized  # (else no shard)
        on_cpu = cfg.learner.device == "cpu" or not self.res["learner_gpus"]
        copies = 2 if shard and on_cpu else 1
        problem = None if cfg.run.address else cfg.replay.memory_problem(obs, act, copies)
        if problem:
            self.close()
            raise ValueError(problem)
        replay = ReplayActor.options(name=name, num_cpus=self.res["replay_cpus"]).remote(
            obs, act, resolve_replay(cfg), cfg.run.updates_per_step, seed=cfg.run.seed)
        try:  # its constructor's refusal (e.g. a replay too large for its node): one line
            ray.get(replay.stats.remote())
        except RayActorError as err:
            self.replay = replay  # killed by close() with the rest
            self.close()
            raise creation_error(err) from None
        return replay

    def _open_envs(self) -> list[dict]:
        """Every worker's spec once its env is open. An env that fails to start, or that we
        cannot train, raises its own one-line error here, after every env is closed."""
        refs = [w.spec.remote() for w in self.workers]
        ray.wait(refs, num_returns=len(refs))  # all settled: whatever opened gets closed
        specs = []
        for k, ref in enumerate(refs):
            try:
                specs.append(ray.get(ref))
            except RayTaskError as err:
                self.close()
                raise task_cause(err) from None
            except RayActorError:  # killed as its env started: Ray restarts it, and it opens
                specs.append(self._restarted(k))  # its env again
            if specs[-1] is None:
                self.close()
                raise RunAborted(f"worker {k}'s actor died as its env started and did not "
                                 "come back; start the run again")
        return specs

    def start_loops(self, budget: int | None = None) -> None:
        """Start the learner's and the workers' loops; the workers stop by themselves once
        the replay holds `budget` transitions."""
        try:
            answered(self.replay.set_budget.remote(budget), "replay actor")
        except RayActorError:  # killed as the run started (a traceback, status 1)
            raise RunAborted(REPLAY_DIED) from None
        self.learner_run = self.learner.run.remote(self.replay)
        for k, worker in enumerate(self.workers):
            self.worker_runs[k] = worker.run.remote(self.replay, self.learner,
                                                    loop_config(self.cfg))

    def check(self) -> list[int]:
        """Raise RunAborted if the learner died; restart dead workers' loops. Returns the
        ids of workers whose actor was restarted since the last check."""
        self._check_learner()
        for k, ref in list(self.worker_runs.items()):
            if ray.wait([ref], timeout=0)[0]:
                self._worker_ended(k, ref)
        restarted = [k for k, spec in self.restarting.poll() if self._came_back(k, spec)]
        if not (self.worker_runs or self.restarting.waiting) and self.dropped \
                and not self.budget_spent:
            k, why = list(self.dropped.items())[-1]
            raise RunAborted(f"every env worker has stopped (the last, worker {k}: {why}); fix "
                             "the env, then --resume continues from the last checkpoint")
        return restarted

    def _learner_ended(self, ref) -> None:
        self._check_replay()  # a dead replay ends the learner's loop: name the real culprit
        try:
            ray.get(ref)
            reason = "its loop ended early"
        except RayActorError:
            reason = "its process is gone"
        except RayTaskError as err:
            cause = getattr(err, "cause", err)
            reason = f"{type(cause).__name__}: {one_line(cause)}"
        raise RunAborted(f"the learner actor died ({reason}); --resume continues from the "
                         "last checkpoint")

    def _check_learner(self) -> None:
        ready, _ = ray.wait([self.learner_run], timeout=0)
        if ready:
            self._learner_ended(ready[0])

    def _check_replay(self) -> None:
        try:
            ray.get(self.replay.stats.remote(), timeout=10)
        except (RayActorError, ray.exceptions.GetTimeoutError):
            raise RunAborted(REPLAY_DIED) from None

    def _worker_ended(self, k: int, ref) -> None:
        del self.worker_runs[k]
        try:
            ray.get(ref)
            self.budget_spent = True  # it returned: stop(), or the budget is spent
        except RayActorError:  # Ray restarts it; check() takes it back once it answers,
            self.restarting.add(k)  # without holding up the run meanwhile
        except RayTaskError as err:  # its env failed past the restart limits
            if isinstance(getattr(err, "cause", None), RayActorError):
                self._check_replay()  # the actor its loop called died: name it, not the
                self._check_learner()  # worker
            self._drop(k, failure(k, err))

    def _came_back(self, k: int, spec: dict | None, stopping: bool = False,
                   going_on: bool = True) -> bool:
        """Worker k's restarted actor answered (`spec`), or not in time (None): start its
        loop again unless `stopping`. True if its actor had died (not only a call that
        reached it mid-restart)."""
        if spec is None:
            return self._drop(k, self.restarting.why(k), going_on)
        # A call also fails when it only reached the actor mid-restart: count deaths by
        # new processes, not by failed calls.
        died = spec["pid"] != self.specs[k]["pid"]
        self.specs[k] = spec
        self.actor_restarts[k] += died  # at most max_restarts: past it, Ray gives up (above)
        if stopping:
            return died
        if died:
            print(f"worker {k}: its actor died; Ray restarted it and it carries on with "
                  "the current weights", flush=True)
        self.worker_runs[k] = self.workers[k].run.remote(self.replay, self.learner,
                                                         loop_config(self.cfg))
        return died

    def _drop(self, k: int, why: str, going_on: bool = True) -> bool:
        print(f"worker {k}: {why}" + ("; continuing without it" if going_on else ""),
              flush=True)
        self.worker_runs.pop(k, None)
        self.dropped[k] = why
        return False

    def _restarted(self, k: int) -> dict | None:
        """Worker k's spec once its restarted actor answers (None: not in time), waited for
        here: at the start, nothing else goes on."""
        self.restarting.add(k)
        spec = dict(self.restarting.settle()).get(k)
        if k in self.restarting.failed:  # its env did not open again: as any env that fails
            self.close()  # to start, its own line, every env closed
            raise task_cause(self.restarting.failed[k])
        return spec

    def stop_loops(self) -> None:
        """Stop the workers, then the learner, at once (an interrupt or a failure)."""
        # A loop stops within a chunk; a hung env's does not. Nothing goes on after this.
        self._stop_workers(grace_s=10.0, going_on=False)
        if self.learner_run is not None:
            try:
                answered(self.learner.stop.remote(), "learner actor", timeout=10.0)
            except (RayActorError, RunAborted):
                return  # it died or hangs: there is nothing to stop (the caller reports it)
            ray.wait([self.learner_run], timeout=30)

    def finish_loops(self, timeout_s: float = 120.0) -> list[int]:
        """The end of training: stop the workers (their last inserts land), let the learner
        take exactly the updates those inserts call for, then stop it. Returns the ids of
        workers whose actor died and came back meanwhile (as check() does)."""
        # Time for a worker that is restarting its env (a Unity build may take long to start).
        restarted = self._stop_workers(grace_s=self.cfg.env.timeout_wait + 10.0)
        if self.learner_run is None:
            return restarted
        try:
            ray.get(self.learner.finish.remote())
        except RayActorError:
            return restarted
        if not ray.wait([self.learner_run], timeout=timeout_s)[0]:
            print("the learner did not catch up in time; stopping it", flush=True)
        self.stop_loops()
        return restarted

    def _stop_workers(self, grace_s: float, going_on: bool = True) -> list[int]:
        """Stop the workers' loops. One that failed since the last check() (its env past
        its limits as the budget ran out) or did not stop is dropped: the test phase must
        not call it. Returns the ids of workers whose pending restart came back."""
        restarted = []
        if going_on:
            restarted = [k for k, spec in self.restarting.settle(grace_s)  # back in time
                         if self._came_back(k, spec, stopping=True)]  # for the test phase?
        else:  # an interrupt or a failure: nothing that follows needs them; waiting here
            self.restarting.waiting.clear()  # kept the other loops running grace_s longer
        alive = [self.workers[k] for k in self.worker_runs]
        ray.wait([w.stop.remote() for w in alive], num_returns=len(alive), timeout=10)
        runs = dict(self.worker_runs)
        ended, _ = ray.wait(list(runs.values()), num_returns=len(runs), timeout=grace_s)
        for k, ref in runs.items():
            if ref not in ended:
                self._drop(k, "its loop did not stop", going_on)
                continue
            try:
                ray.get(ref)
            except RayTaskError as err:
                self._drop(k, failure(k, err), going_on)
            except RayActorError:
                pass  # restarted by Ray, or gone: the test phase finds out (EvalWatch)
        self.worker_runs.clear()
        return restarted

    def live_workers(self) -> list[int]:
        """Ids of the workers not given up on (their env and actor still usable)."""
        return [k for k in range(len(self.workers)) if k not in self.dropped]

    def close(self) -> None:
        """Close every env (a dead actor's env already exited with its parent), then
        release every actor, so their names and resources are free for the next run."""
        refs = [w.close.remote() for w in self.workers]
        ray.wait(refs, num_returns=len(refs), timeout=30)
        for actor in [*self.workers, self.replay, self.learner]:
            if actor is None:
                continue
            try:
                ray.kill(actor, no_restart=True)
            except RayActorError:
                pass
