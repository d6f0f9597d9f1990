"""The run's Ray resource requests, against a stand-in for Ray's resource view (no Ray
started: seconds)."""

import types

from runner import ray_resources


def fake_ray(monkeypatch, node_cpus=(2.0,), gpus=0.0, free_cpus=None, free_gpus=0.0):
    """Alive nodes with `node_cpus` CPUs each (0: none, as a head started with
    --num-cpus 0) and `gpus` GPUs on the cluster."""
    nodes = [{"Alive": True, "Resources": {"CPU": c} if c else {}} for c in node_cpus]
    total = float(sum(node_cpus))
    free = total if free_cpus is None else free_cpus
    fake = types.SimpleNamespace(
        nodes=lambda: nodes,
        cluster_resources=lambda: {**({"CPU": total} if total else {}), "GPU": gpus},
        available_resources=lambda: {"CPU": free, "GPU": free_gpus})
    monkeypatch.setattr(ray_resources, "ray", fake)


def test_a_cpu_learner_asks_for_no_gpu(monkeypatch):
    """--device cpu on a cluster with a GPU: the learner reserved the GPU anyway, and when
    another job held it the run was refused with 'pass --device cpu', which it had."""
    fake_ray(monkeypatch, gpus=1.0)
    res = ray_resources.resources(2, device="cpu")
    assert res["learner_gpus"] == 0.0
    assert ray_resources.capacity_problem(res, 2) is None


def test_an_auto_learner_takes_the_clusters_gpu(monkeypatch):
    fake_ray(monkeypatch, gpus=1.0)
    res = ray_resources.resources(2, device="auto")
    assert res["learner_gpus"] == 1.0
    assert "pass --device cpu" in ray_resources.capacity_problem(res, 2)


def test_a_cpuless_head_does_not_shrink_every_request(monkeypatch):
    """The head's 0 CPUs (`ray start --head --num-cpus 0`, a head that only coordinates)
    were the 'smallest node': every actor asked for almost nothing (learner 0.025 CPU,
    workers 0.059), so Ray reserved nothing for the run on its 16-core nodes."""
    fake_ray(monkeypatch, [0, 16, 16])
    res = ray_resources.resources(2)
    assert res["learner_cpus"] == 1.0 and res["worker_cpus"] == 0.95


def test_a_cluster_without_cpus_is_not_blamed_on_other_jobs(monkeypatch):
    fake_ray(monkeypatch, [0])
    problem = ray_resources.capacity_problem(ray_resources.resources(2), 2)
    assert "other jobs" not in problem and "no CPUs" in problem
