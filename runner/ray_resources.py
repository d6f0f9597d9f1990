"""The Ray resources a run asks for, sized to the cluster's nodes, and whether they fit
what other jobs leave free. Called once Ray is running."""

from __future__ import annotations

import ray

from runner.errors import venv_command


def resources(num_workers: int) -> dict:
    """CPU (and GPU) requests that fit the nodes, so no actor pends forever.

    SPREAD places about ceil(N / nodes) workers on each node, and the learner and replay
    land on one of them; sizing everything against the smallest node makes that node fit
    too. Env processes run outside Ray's accounting: a worker asks for at most one CPU.
    """
    nodes = [n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n["Alive"]]
    smallest = max(min(nodes), 0.1)
    per_node = -(-num_workers // len(nodes))
    learner = min(1.0, smallest / 4)
    replay = min(0.25, smallest / 8)
    worker = 0.95 * min(1.0, (smallest - learner - replay) / per_node)
    gpu = 1.0 if ray.cluster_resources().get("GPU", 0.0) >= 1.0 else 0.0
    return {"learner_cpus": learner, "learner_gpus": gpu, "replay_cpus": replay,
            "worker_cpus": round(max(worker, 0.001), 3), "nodes": len(nodes)}


def capacity_problem(res: dict, num_workers: int) -> str | None:
    """On a cluster that other jobs share, actors that do not fit what is free pend
    forever, silently: a one-line complaint when the CPUs free now fall short, else None."""
    ask = res["learner_cpus"] + res["replay_cpus"] + num_workers * res["worker_cpus"]
    free = ray.available_resources().get("CPU", 0.0)
    if res["learner_gpus"] and ray.available_resources().get("GPU", 0.0) < res["learner_gpus"]:
        return (f"the Ray cluster's GPU is held by other jobs (`{venv_command('ray')} status` "
                "shows them) and this run's learner asks for one: wait for them to finish, "
                "or pass --device cpu")
    if free + 1e-6 >= ask:
        return None
    total = ray.cluster_resources().get("CPU", 0.0)
    return (f"the Ray cluster has {free:.2f} of its {total:.2f} CPUs free (other jobs hold "
            f"the rest; `{venv_command('ray')} status` shows them) and this run asks for "
            f"{ask:.2f}: wait for them to finish, or drop --address to train on a fresh "
            "local instance")
