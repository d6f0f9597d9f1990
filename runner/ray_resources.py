"""The Ray resources a run asks for, sized to the cluster's nodes, and whether they fit
what other jobs leave free. Called once Ray is running."""

from __future__ import annotations

import ray

from runner.errors import venv_command


def resources(num_workers: int, device: str = "auto") -> dict:
    """CPU (and GPU) requests that fit the nodes, so no actor pends forever. The learner
    asks for a GPU only when the cluster has one and `device` (--device) may use it.

    SPREAD places about ceil(N / nodes) workers on each node, and the learner and replay
    land on one of them; sizing everything against the smallest node makes that node fit
    too. Env processes run outside Ray's accounting: a worker asks for at most one CPU.
    """
    alive = [n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n["Alive"]]
    # A node without CPUs (a head started with --num-cpus 0) hosts no actor of ours: sized
    # against it, every request shrank to almost nothing on the nodes that do the work.
    nodes = [cpus for cpus in alive if cpus > 0] or alive
    smallest = max(min(nodes), 0.1)
    per_node = -(-num_workers // len(nodes))
    learner = min(1.0, smallest / 4)
    replay = min(0.25, smallest / 8)
    worker = 0.95 * min(1.0, (smallest - learner - replay) / per_node)
    has_gpu = ray.cluster_resources().get("GPU", 0.0) >= 1.0
    gpu = 1.0 if has_gpu and device != "cpu" else 0.0
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
    if total == 0:
        return ("the Ray cluster has no CPUs (its nodes were started with --num-cpus 0, or "
                "none has joined yet; `" + venv_command('ray') + " status` shows them): add "
                "a node with CPUs, or drop --address to train on a fresh local instance")
    return (f"the Ray cluster has {free:.2f} of its {total:.2f} CPUs free (other jobs hold "
            f"the rest; `{venv_command('ray')} status` shows them) and this run asks for "
            f"{ask:.2f}: wait for them to finish, or drop --address to train on a fresh "
            "local instance")
